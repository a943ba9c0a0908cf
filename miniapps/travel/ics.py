"""The plan as an iCalendar file (RFC 5545, written with ``icalendar``): ``/trip ics`` shows a
button to the web view's ``#ics`` page, whose call ``trip.ics`` answers ``{filename, text}``.

One ``VEVENT`` per plan item: ``UID`` ``<item id>.<trip id>@travel.aetherial`` (stable, so a
calendar importing the file again updates its events), ``SEQUENCE`` = the item's version,
``DTSTART``/``DTEND`` in the item's own zone (``TZID``; a flight may end in another zone than it
starts; the ``VTIMEZONE`` definitions are included), or whole days (``VALUE=DATE``) for an item
without a time; ``STATUS`` ``CONFIRMED`` (booked), ``TENTATIVE`` (planned, changed) or
``CANCELLED``; ``SUMMARY``, ``LOCATION`` and a description with the booking state.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import clock
import itinerary
import store
from icalendar import Calendar, Event
from store import viewing

from sdk import Button, Card, Reply

PRODID = "-//Aetherial//Travel//EN"
STATUSES = {
    "planned": "TENTATIVE",
    "booked": "CONFIRMED",
    "changed": "TENTATIVE",
    "cancelled": "CANCELLED",
}
NOTES = {
    "booked": "Booked together in Aetherial Travel.",
    "changed": "The provider changed its schedule: check the new times.",
    "cancelled": "Cancelled.",
}


def uid(trip: dict[str, Any], item: dict[str, Any]) -> str:
    return f"{item['id']}.{trip['id']}@travel.aetherial"


def _moment(local: str, zone: str) -> dt.date | dt.datetime:
    """An aware datetime in ``zone`` (its ``TZID``), or a date for a date alone."""
    if len(local) > 10:
        return itinerary.aware(local, zone)
    return dt.date.fromisoformat(local)


def calendar(trip: dict[str, Any], *, now_ms: int | None = None) -> bytes:
    """The ``.ics`` bytes of the trip's plan."""
    stamp = dt.datetime.fromtimestamp((now_ms or clock.now_ms()) / 1000, dt.UTC)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"Trip: {trip['title']}")
    for item in sorted(trip.get("items") or [], key=itinerary.sort_key):
        event = Event()
        event.add("uid", uid(trip, item))
        event.add("dtstamp", stamp)
        event.add("sequence", int(item.get("version") or 1))
        start = _moment(item["start"], item["zone"])
        event.add("dtstart", start)
        if item.get("end"):
            end = _moment(item["end"], item.get("end_zone") or item["zone"])
            if isinstance(end, dt.datetime) or end > start:
                event.add("dtend", end)
            else:  # a whole-day item ending on the day it starts: the day after (exclusive)
                event.add("dtend", end + dt.timedelta(days=1))
        elif not isinstance(start, dt.datetime):
            event.add("dtend", start + dt.timedelta(days=1))
        event.add("summary", item["title"])
        if item.get("place"):
            event.add("location", item["place"])
        event.add("status", STATUSES.get(item.get("status", ""), "TENTATIVE"))
        note = NOTES.get(item.get("status", ""))
        event.add(
            "description", f"{trip['title']} · {item['kind']}" + (f". {note}" if note else "")
        )
        event.add(
            "last-modified",
            dt.datetime.fromtimestamp(int(item.get("updated_at") or 0) / 1000, dt.UTC),
        )
        cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical()


def filename(trip: dict[str, Any]) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", trip["title"].lower()).strip("-") or "trip"
    return f"{slug}-{trip['start']}.ics"


async def ics_command(ctx, args: list[str]) -> Reply:
    """``/trip ics``: a button to the calendar file (in the web view)."""
    trip = await store.require_trip(ctx)
    shown = Card(
        f"Calendar · {trip['title']}"[:100],
        text=f"The plan as a calendar file ({len(trip.get('items') or [])} items): open it "
        "and add it to your calendar. Import it again after changes: events update in place.",
    )
    shown.buttons.append(Button.webview("Get the .ics file", path="#ics"))
    return Reply(ephemeral=shown)


@viewing
async def view_ics(ctx) -> dict[str, Any]:
    """``trip.ics`` → ``{filename, text, content_type}``."""
    trip = await store.require_trip(ctx)
    return {
        "filename": filename(trip),
        "content_type": "text/calendar",
        "text": calendar(trip).decode(),
    }


SUBCOMMANDS = {"ics": ics_command}
VIEWS = {"trip.ics": view_ics}
