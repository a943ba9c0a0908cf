"""Texts shared by the travel app's cards and views."""

from __future__ import annotations

SAMPLE_LABEL = "Sample data — not real flights or stays"
