"""Travel: plan a trip together in a group (``/trip …``). See README.md in this folder for its
users.

This file only wires the handlers (``sdk.tables.include``): each concern lives in its own module,
which exports tables of handlers registered here — ``SUBCOMMANDS`` (``/trip <name> …`` →
``handler(ctx, args)``), ``ACTIONS``, ``EVENTS``, ``TIMERS``, ``VIEWS`` and ``PAYMENTS``
(``order_ref`` prefix → ``handler(ctx, name, payment)``), as in the health and crypto apps.

Modules: ``store`` (where a trip lives, the one way to change it), ``trips`` (new, join, dates),
``card`` (the trip card), ``itinerary`` (days, items, versioned edits), ``votes``, ``ics``,
``reminders``, ``providers`` (sample or Duffel; ``flights`` and ``stays`` in Duffel's shape over
``duffel``, the shared HTTP client), ``stays``, ``search`` (flight and stay offer
cards), ``booking`` (book together: start, holds, the deadline; ``booking_holds`` every later
change, ``booking_card`` its card), ``changes`` (schedule changes from the provider's webhook),
``fx`` (currencies, rates), ``expenses`` (adding, splits), ``balances`` (balances, simplify
debts, the balances cards), ``settle`` (settling up by wallet transfer requests), ``demo``.
"""

from __future__ import annotations

import balances
import booking
import changes
import demo
import expenses
import ics
import itinerary
import reminders
import search
import settle
import trips
import votes
from store import answers

from sdk import App, Button, Card, Reply
from sdk.tables import include

app = App("travel")

MODULES = (
    trips, itinerary, votes, ics, reminders, search, booking, changes, expenses, balances, settle,
    demo,
)  # fmt: skip
SUBCOMMANDS = include(app, MODULES)

USAGE = (
    'Usage: /trip · /trip new "Lisbon" 2027-05-01 2027-05-05 · /trip join · /trip plan … · '
    "/trip vote … · /trip flights LIS 2027-05-01 · /trip stays · /trip expense add … · "
    "/trip balances · /trip ics"
)


def welcome() -> Reply:
    card = Card(
        "Travel",
        text="Plan a trip with this group: itinerary, votes, flights and stays, book together, "
        "split the costs and settle up.",
    )
    card.buttons.append(Button.webview("Open Travel", path="#trip"))
    return Reply(card=card)


@app.command("trip")
@answers
async def trip(ctx) -> Reply | None:
    """``/trip`` alone: the current trip card (or what the app does); ``/trip <sub> …``."""
    if not ctx.args:
        return await trips.show(ctx) or welcome()
    handler = SUBCOMMANDS.get(ctx.args[0].lower())
    if handler is None:
        return Reply(ephemeral=f"Unknown /trip command {ctx.args[0]!r}. {USAGE}")
    return await handler(ctx, ctx.args[1:])
