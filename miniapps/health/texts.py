"""Texts shown on every card and view that holds health data."""

from __future__ import annotations

DISCLAIMER = "Not medical advice."
