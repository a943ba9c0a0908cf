"""Texts shown on every trading card and view."""

from __future__ import annotations

PAPER = "Paper trading — no real money."
SIMULATED = "Simulated market prices (not real quotes)."
