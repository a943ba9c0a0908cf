"""The trip card: the group's view of its trip, posted once (``/trip new``, ``/trip card``) and
redrawn in place after every change (``store.refresh_card``).

``render(trip) -> Card`` is pure (it reads only the trip doc, and the clock to know which days
are still to come). Within the card limits (title ≤ 100, text ≤ 2000, ≤ 20 fields, ≤ 10
buttons; longer text is cut with "…") it shows: where (destination, airport, zone), when,
the travellers, the booking under way, what was spent, the open votes with their tallies and
the plan day by day (from today on, local times of each item's zone). Buttons: I'm in / Leave,
Plan and Open trip (web view), Balances.

The small formatters (``day_label``, ``item_line``, ``when_text``…) are shared with the plan
card, the vote cards and the reminders.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import clock
import flights
import itinerary
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, get_currency_precision

from sdk import Button, Card, Field

TITLE_MAX = 100
TEXT_MAX = 2000
FIELDS_MAX = 20
VALUE_MAX = 1000
VOTES_SHOWN = 4
LOCALE = "en"  # the card is the group's, one for all readers
DASH = "\u2013"  # an en dash, between dates and times
ICONS = {"flight": "✈", "stay": "🏨", "activity": "•", "note": "✎"}
STATUS_TAGS = {"booked": " · booked", "changed": " · ⚠ changed", "cancelled": " · ✕ cancelled"}


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _date(value: dt.date | str) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value[:10])


def day_label(value: dt.date | str) -> str:
    """``Sat 1 May``."""
    return format_date(_date(value), "EEE d MMM", locale=LOCALE)


def range_label(start: str, end: str) -> str:
    """``1-5 May 2027`` (en dashes), ``28 Apr - 3 May 2027``, ``30 Dec 2027 - 2 Jan 2028``."""
    first, last = _date(start), _date(end)
    if first.year != last.year:
        return f"{format_date(first, 'd MMM y', locale=LOCALE)} {DASH} " + format_date(
            last, "d MMM y", locale=LOCALE
        )
    if first.month != last.month:
        return f"{format_date(first, 'd MMM', locale=LOCALE)} {DASH} " + format_date(
            last, "d MMM y", locale=LOCALE
        )
    if first == last:
        return format_date(first, "d MMM y", locale=LOCALE)
    return f"{first.day}{DASH}{format_date(last, 'd MMM y', locale=LOCALE)}"


def zone_city(zone: str) -> str:
    """``Europe/Lisbon`` → ``Lisbon``."""
    return zone.rsplit("/", 1)[-1].replace("_", " ")


def when_text(item: dict[str, Any], *, zones: bool = False) -> str:
    """``Sun 2 May 10:00-12:00``, ``Sat 1 May 07:05 → Sun 2 May 10:00``, ``Sun 2 May (all
    day)``; an end in another zone names both zones (``Sat 1 May 07:05 (Madrid time) → 07:20
    (Lisbon time)``), ``zones=True`` names the zone in any case."""
    start, end = item["start"], item.get("end")
    timed = len(start) > 10
    text = day_label(start) + (f" {itinerary.local_time(start)}" if timed else "")
    here = f" ({zone_city(item['zone'])} time)" if timed else ""
    if not end:
        return text + (here if zones else "") if timed else f"{text} (all day)"
    end_zone = item.get("end_zone") or item["zone"]
    later = "" if end[:10] == start[:10] else day_label(end) + " "
    later += itinerary.local_time(end) or ""
    if end_zone != item["zone"] and len(end) > 10:
        return f"{text}{here} → {later} ({zone_city(end_zone)} time)"
    if not later.strip():  # a whole-day item ending the day it starts
        return f"{text} (all day)"
    dash = DASH if end[:10] == start[:10] else " → "
    return f"{text}{dash}{later.strip()}" + (here if zones else "")


def item_line(item: dict[str, Any], home_zone: str | None = None) -> str:
    """One line of the plan: ``07:05 ✈ MAD → LIS · booked`` (the day is the field's label)."""
    start = item["start"]
    when = itinerary.local_time(start) or "All day"
    end = item.get("end")
    if end and end[:10] == start[:10] and len(end) > 10:
        when += f"{DASH}{itinerary.local_time(end)}"
    elif end:
        when += f" → {day_label(end)}" + (f" {itinerary.local_time(end)}" if len(end) > 10 else "")
    if home_zone and item["zone"] != home_zone and len(start) > 10:
        when += f" ({zone_city(item['zone'])} time)"
    line = f"{when} {ICONS.get(item['kind'], '•')} {item['title']}"
    if item.get("place"):
        line += f" · {item['place']}"
    return line + STATUS_TAGS.get(item.get("status", ""), "")


def money(amount: int, currency: str) -> str:
    """``123450, "EUR"`` → ``€1,234.50``."""
    digits = get_currency_precision(currency)
    return format_currency(amount / 10**digits, currency, locale=LOCALE)


def tallies(trip: dict[str, Any], vote: dict[str, Any]) -> dict[str, int]:
    """``{option_id: ballots}``, counting the ballots of the trip's current travellers."""
    counts = {option["id"]: 0 for option in vote["options"]}
    for uid, option_id in (vote.get("ballots") or {}).items():
        if uid in (trip.get("travellers") or {}) and option_id in counts:
            counts[option_id] += 1
    return counts


def vote_summary(trip: dict[str, Any], vote: dict[str, Any]) -> str:
    counts = tallies(trip, vote)
    return " · ".join(f"{o['label']} ({counts[o['id']]})" for o in vote["options"])


def booking_line(trip: dict[str, Any]) -> str | None:
    """``Booking MAD → LIS: 2/3 held, until 18:05 (Madrid time)``."""
    booking = trip.get("booking")
    if not booking:
        return None
    title, state = booking.get("title") or "the offer", booking.get("state")
    if state == "collecting":
        line = f"Booking {title}: {booking.get('held', 0)}/{booking.get('of', 0)} held"
        if booking.get("deadline_ms"):
            zone = trip["destination"]["zone"]
            if trip.get("home_airport"):
                try:
                    zone = flights.airport_zone(trip["home_airport"])
                except flights.ProviderError:  # an airport the data no longer knows
                    zone = trip["destination"]["zone"]
            deadline = dt.datetime.fromtimestamp(booking["deadline_ms"] / 1000, dt.UTC)
            local = deadline.astimezone(zoneinfo.ZoneInfo(zone))
            line += f", until {local:%H:%M} ({zone_city(zone)} time)"
        return line
    if state == "booking":
        return f"Booking {title}: confirming with the provider…"
    if state == "booked":
        return f"Booked {title}"
    return f"{title}: not booked ({state})"


def _where(trip: dict[str, Any]) -> str:
    place = trip["destination"]
    parts = [place.get("name") or trip["title"]]
    if place.get("airport"):
        parts.append(place["airport"])
    if place.get("country"):
        parts.append(Locale.parse(LOCALE).territories.get(place["country"], place["country"]))
    parts.append(place["zone"])
    where = " · ".join(parts)
    if trip.get("home_airport"):
        where += f"\nFrom {trip['home_airport']}"
    return where


def render(trip: dict[str, Any], now_ms: int | None = None) -> Card:
    """The trip card of ``trip`` (see the module's docstring)."""
    ended = trip.get("status") == "ended"
    title = f"✈ {trip['title']} · {range_label(trip['start'], trip['end'])}"
    card = Card(clip(title + (" · ended" if ended else ""), TITLE_MAX))
    nights = (_date(trip["end"]) - _date(trip["start"])).days
    when = f"{day_label(trip['start'])} {DASH} {day_label(trip['end'])} · {nights + 1} days"
    travellers = [p.get("name") or "?" for p in (trip.get("travellers") or {}).values()]
    card.fields += [
        Field("Where", clip(_where(trip), VALUE_MAX)),
        Field("When", when),
        Field(
            f"Travellers ({len(travellers)})",
            clip(", ".join(travellers) or "Nobody yet: press I'm in", VALUE_MAX),
        ),
    ]
    if booking := booking_line(trip):
        card.fields.append(Field("Booking", clip(booking, VALUE_MAX)))
    spent = trip.get("spent") or {}
    if any(spent.values()):
        value = " · ".join(money(amount, cur) for cur, amount in sorted(spent.items()) if amount)
        card.fields.append(Field("Spent", clip(value, VALUE_MAX)))
    notes = []
    open_votes = [v for v in trip.get("votes") or [] if v.get("status") == "open"]
    for vote in open_votes[:VOTES_SHOWN]:
        label = clip(f"Vote {vote['id']}: {vote['question']}", TITLE_MAX)
        card.fields.append(Field(label, clip(vote_summary(trip, vote), VALUE_MAX)))
    if len(open_votes) > VOTES_SHOWN:
        notes.append(f"{len(open_votes) - VOTES_SHOWN} more open votes in the app.")
    if not ended:
        _plan_fields(card, trip, now_ms, notes)
    text = ["This trip has ended: balances and settling up stay open."] if ended else []
    card.text = clip("\n".join(text + notes), TEXT_MAX) if text or notes else None
    if not ended:
        card.buttons += [
            Button("trip.join", "I'm in", value=trip["id"], style="primary"),
            Button("trip.leave", "Leave", value=trip["id"]),
            Button.webview("Plan", path="#plan"),
        ]
    card.buttons += [
        Button.webview("Open trip", path="#trip"),
        Button("expense.balances", "Balances", value=trip["id"]),
    ]
    return card


def _plan_fields(card: Card, trip: dict[str, Any], now_ms: int | None, notes: list) -> None:
    """The plan from today (in the destination's zone) on, a field per day with items."""
    zone = trip["destination"]["zone"]
    now = clock.now_ms() if now_ms is None else now_ms
    today = dt.datetime.fromtimestamp(now / 1000, zoneinfo.ZoneInfo(zone)).date()
    coming = [d for d in itinerary.days(trip) if d["items"] and _date(d["date"]) >= today]
    if not trip.get("items"):
        notes.append('Nothing planned yet: press Plan, or /trip plan add 2027-05-02 10:00 "…"')
    room = FIELDS_MAX - len(card.fields)
    for index, day in enumerate(coming):
        if index == room - 1 and len(coming) > room:
            card.fields.append(Field("More", f"{len(coming) - index} more days: press Plan"))
            break
        lines = [item_line(item, zone) for item in day["items"]]
        card.fields.append(Field(day_label(day["date"]), clip("\n".join(lines), VALUE_MAX)))
