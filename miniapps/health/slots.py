"""Slots: when a practitioner can be booked, in their own time zone, shown in the reader's.

A practitioner's profile (``practitioners``) has a ``zone`` (IANA), ``visit_minutes`` and weekly
hours ``weekly: [{weekday 0-6 (Mon=0), start "HH:MM", end "HH:MM"}]`` with ``exceptions:
[{date, off: true} | {date, start, end}]`` (an exception day with hours has only those hours).
``generate`` walks each local day of a range and steps through its windows by the visit length
in local wall time (as calendars do): a local start that does not exist (the hour skipped when
clocks go forward) gives no slot; one that exists twice (the hour repeated when clocks go back)
is taken at its first occurrence (``fold=0``). Every slot is then an instant: epoch ms UTC, its
end ``visit_minutes`` later in real time.

Taking a slot is the only way two people could collide, so it is one document per slot —
``slots/<practitioner>:<start ms>`` ``{practitioner, start, appointment_id, state: "held" |
"booked" | "free", hold_until}`` — changed only by conditional writes: created with
``expected_version: 0`` (create-only), or taken over at the version read from ``free`` (or from
a hold whose ``hold_until`` passed, in case its expiry timer runs late, or from a cancelled
appointment whose release was cut short). Whoever loses gets ``slot_taken``. It is freed
(``state: "free"``) only by a conditional write that first checks it still names that
appointment, so a late or repeated release never frees someone else's hold. Free slots =
generated slots minus the slot documents that are held or booked.

``BookingError`` (a stable ``code`` and a message) is the refusal every booking module raises.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import clock
from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, format_time

from sdk import Conflict
from sdk.documents import find_all

MINUTE_MS = 60_000
DAY_MS = 86_400_000
TIME_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
DAYS_MAX = 31  # days one slot listing may span
ATTEMPTS = 25  # re-reads of a slot document after a Conflict


class BookingError(Exception):
    """Why an input is refused: a stable ``code`` and a ``message`` for the person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- time zones, times, dates ----------------------------------------------------------------


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones() - {"localtime", "posixrules", "Factory"})


def check_zone(name: Any) -> str:
    """An IANA time zone name (``Asia/Shanghai``), else ``BookingError`` ``invalid_zone``."""
    if not isinstance(name, str) or name not in _zone_names():
        raise BookingError(
            "invalid_zone", f"{str(name)[:64]!r} is not a time zone such as Europe/Lisbon."
        )
    return name


def zone_of(name: str | None) -> ZoneInfo:
    """The reader's zone (``ctx.time_zone``); UTC for anything unknown."""
    try:
        return ZoneInfo(name) if name in _zone_names() else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return ZoneInfo("UTC")


def parse_hhmm(text: Any, what: str) -> int:
    """``"09:30"`` → minutes after midnight (``"24:00"`` is 1440), else ``invalid_time``."""
    if not isinstance(text, str) or not TIME_RE.fullmatch(text):
        raise BookingError("invalid_time", f"{what}: a time such as 09:30, not {str(text)[:16]!r}.")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def parse_date(text: Any, what: str = "date") -> date:
    if not isinstance(text, str) or not DATE_RE.fullmatch(text):
        raise BookingError("invalid_date", f"{what}: a date such as 2027-03-15.")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BookingError("invalid_date", f"{what}: {text} is not a date.") from None


def to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def local_start(day: date, minutes: int, zone: ZoneInfo) -> datetime | None:
    """The aware local datetime of ``day`` at ``minutes`` after midnight in ``zone``: None when
    that wall time does not exist there (a DST gap); the first occurrence when it is
    ambiguous (``fold=0``)."""
    naive = datetime.combine(day, time()) + timedelta(minutes=minutes)
    aware = naive.replace(tzinfo=zone, fold=0)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        return None
    return aware


def babel_locale(locale: str | None) -> Locale:
    try:
        return Locale.parse((locale or "en").replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return Locale.parse("en")


def when_text(start: int, zone_name: str | None, locale: str | None) -> str:
    """``Sun, Mar 14, 2027 · 9:00 PM (America/New_York)``: ``start`` in the reader's zone and
    locale."""
    zone = zone_of(zone_name)
    moment = from_ms(start)
    loc = babel_locale(locale)
    day = format_skeleton("yMMMEd", moment, tzinfo=zone, locale=loc, fuzzy=True)
    hour = format_time(moment, "short", tzinfo=zone, locale=loc)
    return f"{day} · {hour} ({zone.key})"


def slot_json(start: int, end: int, zone_name: str | None, locale: str | None) -> dict[str, Any]:
    """A slot as the reader sees it: the instants, and the local times in their zone."""
    zone = zone_of(zone_name)
    local = from_ms(start).astimezone(zone)
    return {
        "start": start,
        "end": end,
        "local": local.isoformat(),
        "local_end": from_ms(end).astimezone(zone).isoformat(),
        "date": local.date().isoformat(),
        "time": format_time(local, "short", locale=babel_locale(locale)),
        "text": when_text(start, zone_name, locale),
        "zone": zone.key,
    }


# --- generation ------------------------------------------------------------------------------


def windows_on(profile: dict[str, Any], day: date) -> list[tuple[int, int]]:
    """The working windows (minutes after local midnight) of ``day``: its exception's hours,
    none on a day off, else the weekly hours of its weekday."""
    exceptions = [x for x in profile.get("exceptions", []) if x.get("date") == day.isoformat()]
    if exceptions:
        return sorted(
            (parse_hhmm(x["start"], "start"), parse_hhmm(x["end"], "end"))
            for x in exceptions
            if not x.get("off")
        )
    return sorted(
        (parse_hhmm(w["start"], "start"), parse_hhmm(w["end"], "end"))
        for w in profile.get("weekly", [])
        if w.get("weekday") == day.weekday()
    )


def day_slots(profile: dict[str, Any], day: date) -> list[tuple[int, int]]:
    """``(start ms, end ms)`` of every slot of the local ``day`` in the practitioner's zone."""
    zone = ZoneInfo(profile["zone"])
    length = int(profile["visit_minutes"])
    slots = []
    for first, last in windows_on(profile, day):
        minutes = first
        while minutes + length <= last:
            start = local_start(day, minutes, zone)
            if start is not None:
                start_ms = to_ms(start)
                slots.append((start_ms, start_ms + length * MINUTE_MS))
            minutes += length
    return slots


def generate(profile: dict[str, Any], from_ms: int, to_ms_: int) -> list[tuple[int, int]]:
    """Every slot starting in ``[from_ms, to_ms_)``, in order."""
    zone = ZoneInfo(profile["zone"])
    day = from_ms_to_date(from_ms - DAY_MS, zone)
    last = from_ms_to_date(to_ms_ + DAY_MS, zone)
    slots = []
    while day <= last:
        slots.extend(s for s in day_slots(profile, day) if from_ms <= s[0] < to_ms_)
        day += timedelta(days=1)
    return sorted(set(slots))


def from_ms_to_date(ms: int, zone: ZoneInfo) -> date:
    return from_ms(ms).astimezone(zone).date()


def check_slot(profile: dict[str, Any], start: Any, now: int | None = None) -> tuple[int, int]:
    """``(start, end)`` when ``start`` (epoch ms) is a slot of this practitioner that has not
    begun; ``slot_in_past``, or ``invalid_slot`` (not a slot: outside the hours, a day off,
    not on the visit grid)."""
    if isinstance(start, bool) or not isinstance(start, int):
        raise BookingError("invalid_slot", "start: the slot's time in epoch milliseconds.")
    now = clock.now_ms() if now is None else now
    if start <= now:
        raise BookingError("slot_in_past", "That time has passed: pick a later slot.")
    if not profile.get("active", True):
        raise BookingError("unknown_practitioner", "This practitioner takes no bookings now.")
    day = from_ms_to_date(start, ZoneInfo(profile["zone"]))
    for slot in day_slots(profile, day):
        if slot[0] == start:
            return slot
    raise BookingError("invalid_slot", "That is not one of the practitioner's free times.")


# --- slot documents --------------------------------------------------------------------------


def slot_key(practitioner: str, start: int) -> str:
    return f"{practitioner}:{start}"


def is_taken(doc: dict[str, Any] | None, now: int) -> bool:
    """Whether a slot document keeps the slot from others: booked, or held and not expired."""
    if not doc or not doc.get("appointment_id"):
        return False
    if doc.get("state") == "booked":
        return True
    return doc.get("state") == "held" and int(doc.get("hold_until") or 0) > now


async def abandoned(ctx, doc: dict[str, Any]) -> bool:
    """Whether a taken slot names an appointment that is cancelled: its release was cut short
    (a crash between the cancel and the release), so the slot may be taken over. An appointment
    not written yet is not abandoned: its hold is being made."""
    appointment = await ctx.storage_get("appointments", doc["appointment_id"])
    return bool(appointment) and appointment.get("status") == "cancelled"


async def take(
    ctx,
    practitioner: str,
    start: int,
    appointment_id: str,
    *,
    state: str,
    hold_until: int | None,
) -> None:
    """Take the slot for ``appointment_id`` (``state`` ``held`` until ``hold_until``, or
    ``booked``): create-only, or over a free (or expired) one at the version read. Taking a
    slot that already names this appointment changes nothing. ``slot_taken`` otherwise."""
    key = slot_key(practitioner, start)
    value = {
        "practitioner": practitioner,
        "start": start,
        "appointment_id": appointment_id,
        "state": state,
        "hold_until": hold_until,
        "taken_at": clock.now_ms(),
    }
    for _ in range(ATTEMPTS):
        doc, version = await ctx.storage_get_versioned("slots", key)
        if doc and doc.get("appointment_id") == appointment_id:
            return
        if is_taken(doc, clock.now_ms()) and not await abandoned(ctx, doc):
            raise BookingError("slot_taken", "Someone else has just taken that slot: pick another.")
        try:
            await ctx.storage_update(
                "slots", key, value, expected_version=version, upsert=version == 0
            )
        except Conflict:
            continue  # someone wrote it in between: read what they did
        return
    raise BookingError("slot_taken", "That slot is in demand right now: pick another.")


async def mark_booked(ctx, practitioner: str, start: int, appointment_id: str) -> bool:
    """``held → booked`` for ``appointment_id``; False when the slot no longer names it."""
    key = slot_key(practitioner, start)
    for _ in range(ATTEMPTS):
        doc, version = await ctx.storage_get_versioned("slots", key)
        if not doc or doc.get("appointment_id") != appointment_id:
            return False
        if doc.get("state") == "booked":
            return True
        try:
            await ctx.storage_update(
                "slots", key, {"state": "booked", "hold_until": None}, expected_version=version
            )
        except Conflict:
            continue
        return True
    return False


async def release(ctx, practitioner: str, start: int, appointment_id: str) -> bool:
    """Free the slot if it still names ``appointment_id`` (a conditional write); True when
    this call freed it — at most once per hold, however often it is called."""
    key = slot_key(practitioner, start)
    for _ in range(ATTEMPTS):
        doc, version = await ctx.storage_get_versioned("slots", key)
        if not doc or doc.get("appointment_id") != appointment_id:
            return False
        try:
            await ctx.storage_update(
                "slots",
                key,
                {
                    "state": "free",
                    "appointment_id": None,
                    "hold_until": None,
                    "freed_at": clock.now_ms(),
                    "freed": appointment_id,
                },
                expected_version=version,
            )
        except Conflict:
            continue
        return True
    return False


async def names(ctx, practitioner: str, start: int, appointment_id: str) -> dict[str, Any] | None:
    """The slot document when it names ``appointment_id``, else None."""
    doc = await ctx.storage_get("slots", slot_key(practitioner, start))
    return doc if doc and doc.get("appointment_id") == appointment_id else None


async def taken_starts(ctx, practitioner: str, from_ms: int, to_ms_: int) -> set[int]:
    items = await find_all(
        ctx,
        "slots",
        {"practitioner": practitioner, "start": {"$gte": from_ms, "$lt": to_ms_}},
    )
    now = clock.now_ms()
    return {item["value"]["start"] for item in items if is_taken(item["value"], now)}


async def free_slots(
    ctx, profile: dict[str, Any], from_ms: int, to_ms_: int, *, limit: int | None = None
) -> list[tuple[int, int]]:
    """The practitioner's slots in ``[from_ms, to_ms_)`` that have not begun and nobody holds."""
    from_ms = max(from_ms, clock.now_ms() + 1)
    if from_ms >= to_ms_:
        return []
    taken = await taken_starts(ctx, profile["id"], from_ms, to_ms_)
    free = [slot for slot in generate(profile, from_ms, to_ms_) if slot[0] not in taken]
    return free if limit is None else free[:limit]


def reader_range(params: dict[str, Any], zone_name: str | None) -> tuple[int, int]:
    """``[from, to)`` in epoch ms for a listing: ``from`` a date in the reader's zone (default
    today), ``days`` 1-31 (default 7)."""
    zone = zone_of(zone_name)
    days = params.get("days", 7)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= DAYS_MAX:
        raise BookingError("invalid_days", f"days: a whole number from 1 to {DAYS_MAX}.")
    if params.get("from") is None:
        first = from_ms(clock.now_ms()).astimezone(zone).date()
    else:
        first = parse_date(params["from"], "from")
    begin = datetime.combine(first, time()).replace(tzinfo=zone)
    end = datetime.combine(first + timedelta(days=days), time()).replace(tzinfo=zone)
    return to_ms(begin), to_ms(end)
