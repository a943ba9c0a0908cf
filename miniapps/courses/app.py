"""Courses: learning inside chats (``/course …``). See README.md in this folder for its users.

This file only wires the handlers (``sdk.tables.include``): each concern lives in its own
module, which exports tables of handlers registered here — ``SUBCOMMANDS`` (``/course <name>
…`` → ``handler(ctx, args)``), ``ACTIONS``, ``EVENTS``, ``TIMERS``, ``VIEWS`` and ``PAYMENTS``
(``order_ref`` prefix → ``handler(ctx, name, payment)``), exactly as in the shop.

Modules: ``catalog`` (courses, lessons, enrolment, progress, completion; re-exports its helpers'
tables), ``quizzes`` (server-graded quizzes, attempts, grades, XP), ``motivation`` (streaks,
leagues, badges), ``cohort`` (assignments, live quizzes, flashcards). Each may gather the tables
of its sub-modules.
"""

from __future__ import annotations

import catalog
import cohort
import motivation
import quizzes

from sdk import App, Reply
from sdk.tables import include

app = App("courses")

MODULES = (catalog, quizzes, motivation, cohort)
SUBCOMMANDS = include(app, MODULES)

USAGE = (
    "Usage: /course — the catalogue · /course mine · /course progress <course> · "
    "/course league · /course assign … · /course live … · /course cards"
)


@app.command("course")
async def course(ctx) -> Reply | None:
    """``/course`` alone shows the catalogue; ``/course <sub> …`` goes to the module's handler."""
    if not ctx.args:
        return await catalog.catalogue(ctx)
    handler = SUBCOMMANDS.get(ctx.args[0].lower())
    if handler is None:
        return Reply(ephemeral=f"Unknown /course command {ctx.args[0]!r}. {USAGE}")
    return await handler(ctx, ctx.args[1:])
