"""Motivation: daily streaks (``streaks``), weekly leagues per group (``leagues``) and badges as
verifiable credentials (``badges``). This module only gathers their tables for app.py; the
other modules call ``streaks.on_activity``, ``leagues.on_xp`` and ``badges.on_completed``
directly."""

from __future__ import annotations

import badges
import leagues
import streaks

MODULES = (streaks, leagues, badges)
SUBCOMMANDS: dict = {}
ACTIONS: dict = {}
EVENTS: dict = {}
TIMERS: dict = {}
VIEWS: dict = {}
PAYMENTS: dict = {}
for _module in MODULES:
    for _table, _name in (
        (SUBCOMMANDS, "SUBCOMMANDS"),
        (ACTIONS, "ACTIONS"),
        (EVENTS, "EVENTS"),
        (TIMERS, "TIMERS"),
        (VIEWS, "VIEWS"),
        (PAYMENTS, "PAYMENTS"),
    ):
        _table.update(getattr(_module, _name, {}))
