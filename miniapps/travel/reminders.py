"""Reminders before the trip and its bookings, as app timers (``trip.remind``).

``sync(ctx, trip)`` (called after any change of the plan or the dates) sets, for the trip as it
is stored now, one timer per reminder under a stable key ``rm-<trip_id>-<item_id>-<n>``
(scheduling a key again moves it):

- a flight (with a time): 24 h (n = 0) and 3 h (n = 1) before departure;
- a stay: 18:00 local the evening before check-in (n = 0);
- the trip: 09:00 at the destination the day before it starts (``rm-<trip_id>-start-0``).

Reminders already past are not set (and a key that moved into the past is cancelled); so are
those of cancelled items and of an ended trip. A timer carries the item's ``start`` and
``zone``: when it fires after the item moved or went away it does nothing (but sets the
reminders again, in case a late, older sync won a race). Timers are at most 366 days ahead:
reminders further off are set by a re-sync timer (``rm-<trip_id>-resync``) a year from now.

A reminder posts a short text in the group and sends it as a service message to each
traveller (``notifications.send``); a traveller who has not opted in is skipped silently. The
group text goes first: if it fails the timer is tried again with nothing sent yet.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import card
import clock
import itinerary
import store

from sdk import HostError, NotFound, ScopeDenied

log = logging.getLogger("travel.reminders")

TIMER = "trip.remind"
HOUR_MS = 3_600_000
HORIZON_MS = 365 * 24 * HOUR_MS  # the host takes timers up to 366 days ahead
FLIGHT_BEFORE_MS = (24 * HOUR_MS, 3 * HOUR_MS)
STAY_EVENING = "18:00"
TRIP_MORNING = "09:00"


def key(trip_id: str, item_id: str | None, n: int = 0) -> str:
    return f"rm-{trip_id}-{item_id or 'start'}-{n}"


def slots(item: dict[str, Any]) -> int:
    """How many reminders an item of this kind has (keys ``-0`` … ``-{slots-1}``)."""
    return {"flight": len(FLIGHT_BEFORE_MS), "stay": 1}.get(item.get("kind", ""), 0)


def _evening_before(local: str, zone: str, at: str) -> int:
    day = itinerary.local_date(local) - dt.timedelta(days=1)
    return itinerary.instant_ms(f"{day.isoformat()}T{at}", zone)


def due_at(trip: dict[str, Any], item: dict[str, Any] | None, n: int) -> int | None:
    """When reminder ``n`` of ``item`` (None: the trip's start) is due; None when it has none."""
    if trip.get("status") == "ended":
        return None
    if item is None:
        return _evening_before(trip["start"], trip["destination"]["zone"], TRIP_MORNING)
    if item.get("status") == "cancelled":
        return None
    if item["kind"] == "flight" and len(item["start"]) > 10 and n < len(FLIGHT_BEFORE_MS):
        return itinerary.instant_ms(item["start"], item["zone"]) - FLIGHT_BEFORE_MS[n]
    if item["kind"] == "stay" and n == 0:
        return _evening_before(item["start"], item["zone"], STAY_EVENING)
    return None


async def sync(ctx, trip: dict[str, Any]) -> None:
    """(Re)set the trip's reminders from the trip as stored now (see the module's docstring)."""
    trip = await store.load(ctx, trip["id"]) or trip
    now = clock.now_ms()
    far = False
    wanted: list[tuple[str, dict[str, Any] | None, int]] = [(key(trip["id"], None), None, 0)]
    for item in trip.get("items") or []:
        wanted += [(key(trip["id"], item["id"], n), item, n) for n in range(slots(item))]
    for name, item, n in wanted:
        due = due_at(trip, item, n)
        if due is None or due <= now:
            await _cancel(ctx, name)
            continue
        if due > now + HORIZON_MS:
            far = True
            await _cancel(ctx, name)
            continue
        start = trip["start"] if item is None else item["start"]
        zone = trip["destination"]["zone"] if item is None else item["zone"]
        payload = {
            "trip_id": trip["id"],
            "item_id": None if item is None else item["id"],
            "n": n,
            "start": start,
            "zone": zone,
        }
        await _schedule(ctx, name, due, payload)
    if far:
        payload = {"trip_id": trip["id"], "resync": True}
        await _schedule(ctx, f"rm-{trip['id']}-resync", now + HORIZON_MS, payload)


# The change that called ``sync`` is written already: a timer the host refuses now is logged,
# not raised (the next change, or a stale firing, sets it again).


async def _schedule(ctx, name: str, due: int, payload: dict[str, Any]) -> None:
    try:
        await ctx.schedule(TIMER, at=due, payload=payload, key=name)
    except HostError as exc:
        log.warning("reminder %s not set: %s", name, exc.code)


async def _cancel(ctx, name: str) -> None:
    try:
        await ctx.cancel_schedule(name)
    except HostError as exc:
        log.warning("reminder %s not cancelled: %s", name, exc.code)


async def forget(ctx, trip_id: str, item: dict[str, Any]) -> None:
    """Cancel the reminders of an item that was removed."""
    for n in range(slots(item)):
        await _cancel(ctx, key(trip_id, item["id"], n))


def text(trip: dict[str, Any], item: dict[str, Any] | None, n: int) -> str:
    """What a reminder says."""
    if item is None:
        return (
            f"🧳 {trip['title']} starts tomorrow ({card.day_label(trip['start'])})! "
            "/trip shows the plan."
        )
    city = card.zone_city(item["zone"])
    place = f" · {item['place']}" if item.get("place") else ""
    if item["kind"] == "flight":
        if n == 0:
            return (
                f"✈ Tomorrow: {item['title']}, {card.when_text(item, zones=True)}{place}. "
                "Check in online."
            )
        return (
            f"✈ In 3 hours: {item['title']}, departs {itinerary.local_time(item['start'])} "
            f"({city} time){place}."
        )
    when = itinerary.local_time(item["start"])
    return f"🏨 Check-in tomorrow: {item['title']}{place}, {card.day_label(item['start'])}" + (
        f" from {when} ({city} time)." if when else "."
    )


async def remind(ctx) -> None:
    """The ``trip.remind`` timer: say it in the group and to each traveller, unless what it was
    for moved, went away or the trip ended."""
    payload = ctx.payload or {}
    trip = await store.load(ctx, payload.get("trip_id") or "")
    if trip is None or trip.get("status") == "ended":
        return
    if payload.get("resync"):
        await sync(ctx, trip)
        return
    item = None
    if payload.get("item_id"):
        item = next((i for i in trip.get("items") or [] if i["id"] == payload["item_id"]), None)
        current = None if item is None or item.get("status") == "cancelled" else item
        where = (current["start"], current["zone"]) if current else None
    else:
        where = (trip["start"], trip["destination"]["zone"])
    if where != (payload.get("start"), payload.get("zone")):
        await sync(ctx, trip)  # it moved: its reminders are set for the new time
        return
    message = text(trip, item, int(payload.get("n") or 0))
    if ctx.conversation_id == trip["conversation_id"]:
        await ctx.send_text(message)
    for user_id in trip.get("travellers") or {}:
        try:
            await ctx.send_service_message(user_id, f"{trip['title']}: {message}")
        except (ScopeDenied, NotFound):
            continue  # not opted in (or gone): skipped, as promised
        except HostError as exc:
            log.warning("a reminder to a traveller was not sent: %s", exc.code)


TIMERS = {TIMER: remind}
