"""Health: book a doctor, visits, private records and a care circle (``/health …``). See README.md
in this folder for its users.

This file only wires the handlers (``sdk.tables.include``): each concern lives in its own module,
which exports tables of handlers registered here — ``SUBCOMMANDS`` (``/health <name> …`` →
``handler(ctx, args)``), ``ACTIONS``, ``EVENTS``, ``TIMERS``, ``VIEWS`` and ``PAYMENTS``
(``order_ref`` prefix → ``handler(ctx, name, payment)``), as in the shop and the courses.

Modules: ``practitioners`` (profiles, availability), ``slots`` (slot generation across time
zones), ``booking`` (holds, confirmation, payment, cancel, reschedule), ``visits`` (reminders, the
video visit, visit notes), ``ics``, ``records`` (vitals, medications, allergies), ``fhir_export``,
``circle`` (care circle, dependents, audit), ``adherence`` (family group cards), ``demo``.
"""

from __future__ import annotations

import threading

import adherence
import booking
import circle
import demo
import fhir_export
import ics
import practitioners
import records
import units
import visits
from texts import DISCLAIMER

from sdk import App, Button, Card, Reply
from sdk.tables import include

app = App("health")


def warm_up() -> None:
    """Build pint's unit registry and import the FHIR models (about a second each) in the
    background as the process starts, so the first vital or export does not spend a third of
    its 3 s deadline loading them."""
    units.registry()
    fhir_export.load_models()


threading.Thread(target=warm_up, name="warm-up", daemon=True).start()

MODULES = (practitioners, booking, visits, ics, records, fhir_export, circle, adherence, demo)
SUBCOMMANDS = include(app, MODULES)

USAGE = (
    "Usage: /health · /health doctors <specialty> · /health appointments · "
    "/health vitals … · /health meds … · /health allergies … · /health export · "
    "/health circle … · /health dependent add … · /health adherence share|stop · /health practice"
)


def welcome() -> Reply:
    card = Card(
        "Health",
        text=f"Find a doctor and book a visit, keep your vitals and medications. {DISCLAIMER}",
    )
    card.buttons.append(Button.webview("Open Health", path="#home"))
    return Reply(card=card)


@app.command("health")
async def health(ctx) -> Reply | None:
    """``/health`` alone: what it does and the web view; ``/health <sub> …``: the module's."""
    if not ctx.args:
        return welcome()
    handler = SUBCOMMANDS.get(ctx.args[0].lower())
    if handler is None:
        return Reply(ephemeral=f"Unknown /health command {ctx.args[0]!r}. {USAGE}")
    return await handler(ctx, ctx.args[1:])
