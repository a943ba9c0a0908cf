"""Where a trip lives and the one way to change it.

A trip is a group: each group chat has at most one *current* trip (``current/<conversation_id>``
→ ``{"trip_id"}``); the trip itself is ``trips/<trip_id>`` (layout in README.md). Every change goes
through ``update`` (``sdk.documents.update_doc``: read, edit a copy, write only if nobody wrote in
between, else redo the edit on the fresh document), so two members editing at once both land —
an edit that cannot apply to the fresh document raises ``TravelError`` and writes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sdk import Reply, ViewError
from sdk.documents import update_doc

TRIPS = "trips"
CURRENT = "current"


class TravelError(Exception):
    """A refusal with a stable ``code`` and a ``message`` to show the invoker as is."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


async def load(ctx, trip_id: str) -> dict[str, Any] | None:
    return await ctx.storage_get(TRIPS, trip_id)


async def current_trip_id(ctx, conversation_id: str | None = None) -> str | None:
    pointer = await ctx.storage_get(CURRENT, conversation_id or ctx.conversation_id or "-")
    return (pointer or {}).get("trip_id")


async def current_trip(ctx) -> dict[str, Any] | None:
    """This chat's current trip, or None."""
    trip_id = await current_trip_id(ctx)
    return await load(ctx, trip_id) if trip_id else None


async def require_trip(ctx) -> dict[str, Any]:
    """This chat's current trip, else ``TravelError("no_trip")``."""
    trip = await current_trip(ctx)
    if trip is None:
        raise TravelError(
            "no_trip",
            'This chat has no trip yet: start one with /trip new "Lisbon" 2027-05-01 2027-05-05',
        )
    return trip


async def update(
    ctx, trip_id: str, edit: Callable[[dict[str, Any]], Any]
) -> tuple[Any, dict[str, Any]]:
    """Apply ``edit(trip)`` (in place, on a fresh copy, redone after a lost race) and write it
    → ``(outcome, trip as written)``. ``edit`` raising ``TravelError`` writes nothing; a missing
    trip is ``TravelError("no_trip")``."""

    def guarded(doc: dict[str, Any] | None) -> Any:
        if doc is None:
            raise TravelError("no_trip", "That trip no longer exists.")
        return edit(doc)

    return await update_doc(ctx, TRIPS, trip_id, guarded, busy="The trip is busy: try again.")


def is_traveller(trip: dict[str, Any], user_id: str | None) -> bool:
    return bool(user_id) and user_id in (trip.get("travellers") or {})


def require_traveller(trip: dict[str, Any], user_id: str | None) -> None:
    if not is_traveller(trip, user_id):
        raise TravelError(
            "not_a_traveller",
            "Only the trip's travellers can do that: press I'm in on the trip card.",
        )


async def refresh_card(ctx, trip: dict[str, Any]) -> None:
    """Redraw the trip card in its group (``card.render``), when one was posted."""
    import card  # the trip card module (imported late: it imports this one)

    message_id = (trip.get("card") or {}).get("message_id")
    if message_id:
        await ctx.update_card(
            message_id, card.render(trip), conversation_id=trip["conversation_id"]
        )


def answers(handler: Callable) -> Callable:
    """Wrap a command, subcommand or button handler: a ``TravelError`` it raises becomes a short
    ephemeral answer to the invoker (nothing was written)."""

    @functools.wraps(handler)
    async def wrapped(ctx, *args: Any) -> Any:
        try:
            return await handler(ctx, *args)
        except TravelError as exc:
            return Reply(ephemeral=exc.message)

    return wrapped


def viewing(handler: Callable) -> Callable:
    """Wrap a web view handler: a ``TravelError`` becomes ``ViewError`` (same code, message)."""

    @functools.wraps(handler)
    async def wrapped(ctx, *args: Any) -> Any:
        try:
            return await handler(ctx, *args)
        except TravelError as exc:
            raise ViewError(exc.code, exc.message) from None

    return wrapped
