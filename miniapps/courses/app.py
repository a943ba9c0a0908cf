"""Courses: learning inside chats (``/course …``). See README.md in this folder for its users.

This file only wires the handlers: each concern lives in its own module, which exports tables of
handlers registered here — ``SUBCOMMANDS`` (``/course <name> …`` → ``handler(ctx, args)``),
``ACTIONS``, ``EVENTS``, ``TIMERS``, ``VIEWS`` and ``PAYMENTS`` (``order_ref`` prefix →
``handler(ctx, name, payment)``), exactly as in the shop.

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

from sdk import App, InvalidSignature, Reply

app = App("courses")

MODULES = (catalog, quizzes, motivation, cohort)
SUBCOMMANDS: dict = {}
for module in MODULES:
    SUBCOMMANDS.update(getattr(module, "SUBCOMMANDS", {}))
    for action_id, handler in getattr(module, "ACTIONS", {}).items():
        app.action(action_id)(handler)
    for name, handler in getattr(module, "EVENTS", {}).items():
        app.event(name)(handler)
    for name, handler in getattr(module, "TIMERS", {}).items():
        app.timer(name)(handler)
    for name, handler in getattr(module, "VIEWS", {}).items():
        app.view(name)(handler)
PAYMENTS: dict = {}
for module in MODULES:
    PAYMENTS.update(getattr(module, "PAYMENTS", {}))
PAYMENT_EVENT_NAMES = (
    "payment.succeeded",
    "payment.failed",
    "payment.authorized",
    "payment.captured",
    "payment.voided",
)


async def on_payment_event(ctx) -> None:
    """A payment event, checked, to the module whose ``order_ref`` prefix it carries."""
    try:
        payment = ctx.verify_payment_event()
    except InvalidSignature:
        app.log.warning("a payment event with a bad signature was ignored")
        return
    handler = PAYMENTS.get(str(payment.get("order_ref", "")).split("-", 1)[0])
    if handler is None:
        app.log.warning("a payment event for an unknown order_ref was ignored")
        return
    await handler(ctx, ctx.event_name, payment)


for _name in PAYMENT_EVENT_NAMES:
    app.event(_name)(on_payment_event)

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
