"""My appointments: the list (``/health appointments``, view ``appointments.mine``) and the same
as an iCalendar file (RFC 5545) written with ``icalendar`` (``/health appointments ics``, view
``appointments.ics``).

The calendar has one ``VEVENT`` per appointment: ``UID`` = the appointment id (so a calendar that
imports the file again updates the same events), ``DTSTART``/``DTEND`` as UTC instants,
``SUMMARY``, ``STATUS`` (``CONFIRMED`` for booked/arrived/fulfilled, ``TENTATIVE`` for a live hold,
``CANCELLED`` for cancelled and no-show visits), ``DTSTAMP``, and a description with the
practitioner, the visit type and the not-medical-advice line; expired holds are left out. The
command uploads the file (``media.upload``, ``text/calendar``) and shows the person its signed
address (``media.url``, valid for an hour); the web view's call answers its text. "Mine" is the
patient side: my own appointments, my dependents' and those I booked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import booking
import clock
import slots
import visits
from icalendar import Calendar, Event
from practitioners import as_command, as_view
from texts import DISCLAIMER

from sdk import Button, Card, Field, Reply
from sdk.documents import find_all

PRODID = "-//Aetherial//Health//EN"
LIST_MAX = 10  # appointments on a card
STATUSES = {
    "pending": "TENTATIVE",
    "booked": "CONFIRMED",
    "arrived": "CONFIRMED",
    "fulfilled": "CONFIRMED",
    "cancelled": "CANCELLED",
    "noshow": "CANCELLED",
}


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def summary(appointment: dict[str, Any]) -> str:
    kind = "Video visit" if appointment.get("visit_type") == "video" else "Visit"
    text = f"{kind} with {appointment.get('practitioner_name') or 'your practitioner'}"
    patient = appointment.get("patient") or {}
    if patient.get("dependent"):
        text += f" (for {patient.get('name') or 'a dependent'})"
    return text


def calendar(appointments: list[dict[str, Any]], *, now: int) -> bytes:
    """The ``.ics`` bytes of ``appointments`` (expired holds left out)."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", "Health appointments")
    for appointment in appointments:
        status = appointment.get("status")
        if status not in STATUSES:
            continue
        if status == "pending" and int(appointment.get("hold_until") or 0) <= now:
            continue
        event = Event()
        event.add("uid", appointment["id"])
        event.add("dtstamp", _utc(now))
        event.add("dtstart", _utc(appointment["start"]))
        event.add("dtend", _utc(appointment["end"]))
        event.add("summary", summary(appointment))
        event.add("status", STATUSES[status])
        kind = "video visit" if appointment.get("visit_type") == "video" else "in person"
        event.add(
            "description",
            f"{appointment.get('practitioner_name', '')} · {kind} · "
            f"{appointment.get('minutes', '')} min. {DISCLAIMER}",
        )
        cal.add_component(event)
    return cal.to_ical()


# --- my appointments -------------------------------------------------------------------------


async def mine(ctx) -> list[dict[str, Any]]:
    """The appointments I see as the patient side (mine, my dependents', those I booked)."""
    found = {a["id"]: a for a in await booking.appointments_of(ctx, ctx.user_id)}
    for item in await find_all(ctx, "appointments", {"booked_by": ctx.user_id}):
        found.setdefault(item["key"], item["value"])
    return sorted(found.values(), key=lambda a: a["start"])


def is_upcoming(appointment: dict[str, Any], now: int) -> bool:
    if appointment["status"] == "pending":
        return int(appointment.get("hold_until") or 0) > now
    return appointment["status"] in visits.LIVE and appointment["end"] > now


async def do_mine(ctx) -> dict[str, Any]:
    """``appointments.mine``: my appointments, upcoming and past, in my zone."""
    now = clock.now_ms()
    listed = []
    for appointment in await mine(ctx):
        appointment = await booking.settle(ctx, appointment)
        listed.append(visits.appointment_json(appointment, ctx, "patient"))
    upcoming = [a for a in listed if is_upcoming(a, now)]
    past = [a for a in listed if not is_upcoming(a, now)]
    return {"upcoming": upcoming, "past": past[::-1][:50], "disclaimer": DISCLAIMER}


def appointment_line(appointment: dict[str, Any], zone: str, locale: str) -> Field:
    when = slots.when_text(appointment["start"], zone, locale)
    who = appointment.get("practitioner_name", "")
    if appointment["patient"].get("dependent"):
        who = f"{who} · for {visits.patient_name(appointment)}"
    return Field(f"{when}"[:100], f"{who} · {visits.label(appointment['status'])}"[:1000])


async def my_appointments(ctx, args: list[str]) -> Reply | None:
    """``/health appointments [ics]``: my upcoming visits (to me only), or the calendar file."""
    if args and args[0].lower() == "ics":
        return await send_ics(ctx)
    if args:
        return Reply(ephemeral="Usage: /health appointments · /health appointments ics")
    now = clock.now_ms()
    upcoming = [a for a in await mine(ctx) if is_upcoming(a, now)]
    if not upcoming:
        return Reply(ephemeral="No upcoming visits: /health doctors finds one.")
    card = Card("My appointments", text=DISCLAIMER)
    card.fields.extend(appointment_line(a, ctx.time_zone, ctx.locale) for a in upcoming[:LIST_MAX])
    if len(upcoming) > LIST_MAX:
        card.fields.append(Field("More", f"{len(upcoming) - LIST_MAX} more in the web view"))
    card.buttons.append(Button.webview("Open appointments", path="#appointments"))
    return Reply(ephemeral=card)


async def send_ics(ctx) -> Reply:
    """The calendar file: uploaded (``media.upload``), its signed address shown to me."""
    data = calendar(await mine(ctx), now=clock.now_ms())
    media_id = await ctx.upload_media(data, "text/calendar", "appointments.ics", kind="file")
    url = await ctx.media_url(media_id)
    return Reply(ephemeral=f"Your appointments as a calendar file (valid for an hour): {url}")


async def do_ics(ctx) -> dict[str, Any]:
    """``appointments.ics``: ``{filename, content_type, ics}`` (the file's text) for the page."""
    data = calendar(await mine(ctx), now=clock.now_ms())
    return {
        "filename": "appointments.ics",
        "content_type": "text/calendar",
        "ics": data.decode(),
    }


SUBCOMMANDS = {"appointments": as_command(my_appointments)}
VIEWS = {"appointments.mine": as_view(do_mine), "appointments.ics": as_view(do_ics)}
