"""The group as a study cohort: assignments with deadlines (``assignments``), live quizzes
(``livequiz``) and spaced-repetition flashcards (``flashcards``). This module only gathers their
tables for app.py; ``assignments.on_completed`` is the hook ``completion.check`` calls when a
learner completes a course (re-exported here as ``on_completed``)."""

from __future__ import annotations

import assignments
import flashcards
import livequiz

MODULES = (assignments, livequiz, flashcards)
on_completed = assignments.on_completed

SUBCOMMANDS: dict = {}
ACTIONS: dict = {}
EVENTS: dict = {}
TIMERS: dict = {}
VIEWS: dict = {}
PAYMENTS: dict = {}
for module in MODULES:
    SUBCOMMANDS.update(getattr(module, "SUBCOMMANDS", {}))
    ACTIONS.update(getattr(module, "ACTIONS", {}))
    EVENTS.update(getattr(module, "EVENTS", {}))
    TIMERS.update(getattr(module, "TIMERS", {}))
    VIEWS.update(getattr(module, "VIEWS", {}))
    PAYMENTS.update(getattr(module, "PAYMENTS", {}))
