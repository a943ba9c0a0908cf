"""Practitioners: their profile and weekly availability, and how patients find them.

- A practitioner (role ``practitioner``, granted by an administrator) keeps one profile,
  ``practitioners/<their per-app id>``: ``{id, name, specialties, languages, fee: {amount
  (minor units, 0 = free), currency}, zone (IANA), visit_minutes (10-120), visit_type
  ("video" | "in_person"), weekly: [{weekday 0-6 (Mon=0), start, end}], exceptions: [{date,
  off: true} | {date, start, end}], active, updated_at}``. Views ``practice.get`` and
  ``practice.save`` (the web view's editor); only its owner writes it. A bad field — overlapping
  windows on one weekday or date, an end not after its start, an unknown zone, a time that is
  not ``HH:MM`` — is refused with its code and nothing is written.
- Everyone: ``/health doctors [specialty]`` → a card per matching practitioner (name,
  specialties, languages, the fee in the reader's locale, the next free slots in the reader's
  zone, a **Book** button opening the web view at ``#doctor=<id>``); views ``doctors.list
  {specialty?}`` and ``doctor.get {practitioner_id}``, ``slots.list {practitioner_id, from?,
  days?}`` (free slots, grouped by the reader's local date).
- The assistant: the read-only tool ``find_doctors {specialty?, limit?}`` (``TOOLS``) → the
  matching practitioners as data, their next free times in the reader's zone, and the first
  one's card (its Book button opens the web view: a person books, never the tool).
"""

from __future__ import annotations

import itertools
import re
from decimal import Decimal
from typing import Any

import clock
import slots
from babel.numbers import format_currency, get_currency_precision, list_currencies
from slots import BookingError
from texts import DISCLAIMER

from sdk import Button, Card, Field, Reply, ViewError
from sdk.documents import find_all

PRACTITIONER = "practitioner"
NAME_MAX = 100
SPECIALTY_RE = re.compile(r"[a-z][a-z -]{1,39}")
LANGUAGE_RE = re.compile(r"[a-z]{2,3}")
LIST_MAX = 10  # specialties, languages
WEEKLY_MAX = 50
EXCEPTIONS_MAX = 200
FEE_MAX = 10_000_000  # minor units
VISIT_TYPES = ("video", "in_person")
CARDS_MAX = 5  # practitioner cards one /health doctors shows
NEXT_SLOTS = 3
LOOKAHEAD_DAYS = 14


def check_practitioner(ctx) -> None:
    if not ctx.has_role(PRACTITIONER):
        raise BookingError(
            "not_practitioner", "Only practitioners can do this: ask an administrator."
        )


async def load(ctx, practitioner_id: Any) -> dict[str, Any] | None:
    if not isinstance(practitioner_id, str) or not 1 <= len(practitioner_id) <= 64:
        return None
    return await ctx.storage_get("practitioners", practitioner_id)


async def get_active(ctx, practitioner_id: Any) -> dict[str, Any]:
    """An active practitioner's profile, else ``unknown_practitioner``."""
    profile = await load(ctx, practitioner_id)
    if not profile or not profile.get("active"):
        raise BookingError("unknown_practitioner", "No such practitioner.")
    return profile


# --- validation ------------------------------------------------------------------------------


def _text(params: dict, name: str, limit: int) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > limit:
        raise BookingError(f"invalid_{name}", f"{name}: 1-{limit} characters.")
    return " ".join(value.split())


def _words(params: dict, name: str, pattern: re.Pattern, example: str) -> list[str]:
    value = params.get(name)
    if isinstance(value, str):
        value = [v for v in re.split(r"[,;]", value) if v.strip()]
    if not isinstance(value, list) or not 1 <= len(value) <= LIST_MAX:
        raise BookingError(f"invalid_{name}", f"{name}: 1-{LIST_MAX} items such as {example}.")
    words = []
    for item in value:
        word = " ".join(str(item).lower().split()) if isinstance(item, str) else ""
        if not pattern.fullmatch(word):
            raise BookingError(
                f"invalid_{name}", f"{name}: {str(item)[:40]!r} is not like {example}."
            )
        if word not in words:
            words.append(word)
    return words


def _int(params: dict, name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BookingError(f"invalid_{name}", f"{name}: a whole number from {low} to {high}.")
    return value


def check_fee(value: Any) -> dict[str, Any]:
    value = {"amount": 0, "currency": "USD"} if value is None else value
    if not isinstance(value, dict):
        raise BookingError("invalid_fee", "fee: {amount (minor units, 0 = free), currency}.")
    amount = _int(value, "amount", 0, 0, FEE_MAX)
    currency = value.get("currency", "USD")
    if not isinstance(currency, str) or currency not in list_currencies():
        raise BookingError("invalid_currency", "currency: an ISO 4217 code such as USD.")
    return {"amount": amount, "currency": currency}


def _no_overlap(windows: list[tuple[int, int]], where: str) -> None:
    windows = sorted(windows)
    for (_, end), (start, _) in itertools.pairwise(windows):
        if start < end:
            raise BookingError(
                "overlapping_availability", f"Two windows overlap on {where}: merge or move them."
            )


def _window(item: Any, what: str) -> tuple[int, int]:
    if not isinstance(item, dict):
        raise BookingError("invalid_window", f"{what}: {{start, end}} times such as 09:00.")
    start = slots.parse_hhmm(item.get("start"), f"{what} start")
    end = slots.parse_hhmm(item.get("end"), f"{what} end")
    if end <= start:
        raise BookingError("invalid_window", f"{what}: the end must be after the start.")
    return start, end


def check_weekly(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > WEEKLY_MAX:
        raise BookingError("invalid_weekly", f"weekly: a list of at most {WEEKLY_MAX} windows.")
    by_day: dict[int, list[tuple[int, int]]] = {}
    weekly = []
    for item in value:
        weekday = item.get("weekday") if isinstance(item, dict) else None
        if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise BookingError("invalid_weekday", "weekday: 0 (Monday) to 6 (Sunday).")
        start, end = _window(item, "weekly")
        by_day.setdefault(weekday, []).append((start, end))
        weekly.append({"weekday": weekday, "start": item["start"], "end": item["end"]})
    for weekday, windows in by_day.items():
        _no_overlap(windows, WEEKDAYS[weekday])
    return sorted(weekly, key=lambda w: (w["weekday"], w["start"]))


def check_exceptions(value: Any) -> list[dict[str, Any]]:
    value = [] if value is None else value
    if not isinstance(value, list) or len(value) > EXCEPTIONS_MAX:
        raise BookingError(
            "invalid_exceptions", f"exceptions: a list of at most {EXCEPTIONS_MAX} days."
        )
    by_date: dict[str, list[Any]] = {}
    for item in value:
        if not isinstance(item, dict):
            raise BookingError(
                "invalid_exceptions", "exceptions: {date, off} or {date, start, end}."
            )
        day = slots.parse_date(item.get("date"), "exception date").isoformat()
        by_date.setdefault(day, []).append(item)
    exceptions = []
    for day, items in sorted(by_date.items()):
        if any(i.get("off") is True for i in items):
            if len(items) > 1:
                raise BookingError(
                    "invalid_exceptions", f"{day} is a day off and also has hours: keep one."
                )
            exceptions.append({"date": day, "off": True})
            continue
        windows = [_window(i, f"exception {day}") for i in items]
        _no_overlap(windows, day)
        exceptions.extend({"date": day, "start": i["start"], "end": i["end"]} for i in items)
    return exceptions


def check_profile(ctx, params: dict[str, Any]) -> dict[str, Any]:
    """The profile ``params`` describe, every field checked (``BookingError`` on the first bad
    one)."""
    visit_type = params.get("visit_type", "video")
    if visit_type not in VISIT_TYPES:
        raise BookingError("invalid_visit_type", "visit_type: video or in_person.")
    active = params.get("active", True)
    if not isinstance(active, bool):
        raise BookingError("invalid_active", "active: true or false.")
    return {
        "id": ctx.user_id,
        "name": _text(params, "name", NAME_MAX),
        "specialties": _words(params, "specialties", SPECIALTY_RE, "cardiology"),
        "languages": _words(params, "languages", LANGUAGE_RE, "en"),
        "fee": check_fee(params.get("fee")),
        "zone": slots.check_zone(params.get("zone")),
        "visit_minutes": _int(params, "visit_minutes", 30, 10, 120),
        "visit_type": visit_type,
        "weekly": check_weekly(params.get("weekly")),
        "exceptions": check_exceptions(params.get("exceptions")),
        "active": active,
        "locale": ctx.locale,  # how their appointment cards are written for them
    }


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


# --- how a practitioner is shown -------------------------------------------------------------


def fee_text(fee: dict[str, Any] | None, locale: str | None) -> str:
    """``Free``, or the fee in the reader's locale: ``$45.00``, ``45,00 $``."""
    if not fee or not fee.get("amount"):
        return "Free"
    currency = fee["currency"]
    value = Decimal(int(fee["amount"])).scaleb(-get_currency_precision(currency))
    return format_currency(value, currency, locale=slots.babel_locale(locale))


def language_names(codes: list[str], locale: str | None) -> list[str]:
    names = slots.babel_locale(locale).languages
    return [names.get(code, code) for code in codes]


def visit_text(profile: dict[str, Any]) -> str:
    kind = "Video visit" if profile.get("visit_type") == "video" else "In person"
    return f"{kind} · {profile['visit_minutes']} min"


async def next_free(ctx, profile: dict[str, Any], count: int = NEXT_SLOTS) -> list[tuple[int, int]]:
    now = clock.now_ms()
    return await slots.free_slots(
        ctx, profile, now, now + LOOKAHEAD_DAYS * slots.DAY_MS, limit=count
    )


async def profile_json(ctx, profile: dict[str, Any], *, with_slots: bool = True) -> dict[str, Any]:
    item = {
        "id": profile["id"],
        "name": profile["name"],
        "specialties": profile["specialties"],
        "languages": profile["languages"],
        "language_names": language_names(profile["languages"], ctx.locale),
        "fee": profile["fee"],
        "fee_text": fee_text(profile["fee"], ctx.locale),
        "zone": profile["zone"],
        "visit_minutes": profile["visit_minutes"],
        "visit_type": profile["visit_type"],
        "active": profile.get("active", True),
        "mine": profile["id"] == ctx.user_id,
    }
    if with_slots:
        item["next_slots"] = [
            slots.slot_json(start, end, ctx.time_zone, ctx.locale)
            for start, end in await next_free(ctx, profile)
        ]
    return item


async def practitioner_card(ctx, profile: dict[str, Any]) -> Card:
    free = await next_free(ctx, profile)
    fields = [
        Field("Specialties", ", ".join(s.capitalize() for s in profile["specialties"])[:1000]),
        Field("Languages", ", ".join(language_names(profile["languages"], ctx.locale))[:1000]),
        Field("Fee", fee_text(profile["fee"], ctx.locale)),
        Field("Visit", visit_text(profile)),
        Field(
            "Next free",
            "\n".join(slots.when_text(s, ctx.time_zone, ctx.locale) for s, _ in free)
            or f"Nothing in the next {LOOKAHEAD_DAYS} days",
        ),
    ]
    card = Card(profile["name"][:100], text=DISCLAIMER, fields=fields)
    card.buttons.append(Button.webview("Book", path=f"#doctor={profile['id']}", style="primary"))
    return card


async def matching(ctx, specialty: str | None) -> list[dict[str, Any]]:
    """Active practitioners, those with a specialty starting with ``specialty`` when given."""
    items = await find_all(ctx, "practitioners", {"active": True})
    found = [item["value"] for item in items]
    if specialty:
        wanted = " ".join(specialty.lower().split())
        found = [p for p in found if any(s.startswith(wanted) for s in p["specialties"])]
    return sorted(found, key=lambda p: p["name"].lower())


# --- commands --------------------------------------------------------------------------------


async def doctors(ctx, args: list[str]) -> Reply | None:
    """``/health doctors [specialty]``: a card per practitioner, shown to the invoker only."""
    specialty = " ".join(args).strip() or None
    if specialty and not SPECIALTY_RE.fullmatch(" ".join(specialty.lower().split())):
        return Reply(
            ephemeral="Usage: /health doctors <specialty>, e.g. /health doctors cardiology"
        )
    found = await matching(ctx, specialty)
    if not found:
        what = f" for {specialty!r}" if specialty else ""
        return Reply(ephemeral=f"No practitioners{what} yet: try /health doctors alone.")
    for profile in found[:CARDS_MAX]:
        await ctx.reply_ephemeral(await practitioner_card(ctx, profile))
    if len(found) > CARDS_MAX:
        card = Card(
            f"…and {len(found) - CARDS_MAX} more",
            buttons=[Button.webview("See all doctors", path="#doctors")],
        )
        await ctx.reply_ephemeral(card)
    return None


# --- views -----------------------------------------------------------------------------------


async def do_doctors_list(ctx) -> dict[str, Any]:
    """``doctors.list {specialty?}``: the matching practitioners with their next free slots."""
    specialty = ctx.params.get("specialty")
    if specialty is not None and (not isinstance(specialty, str) or len(specialty) > 40):
        raise BookingError("invalid_specialty", "specialty: a word such as cardiology.")
    found = await matching(ctx, (specialty or "").strip() or None)
    return {
        "doctors": [await profile_json(ctx, p) for p in found[:50]],
        "practitioner": ctx.has_role(PRACTITIONER),
        "zone": slots.zone_of(ctx.time_zone).key,
        "disclaimer": DISCLAIMER,
    }


async def do_doctor_get(ctx) -> dict[str, Any]:
    """``doctor.get {practitioner_id}``."""
    profile = await get_active(ctx, ctx.params.get("practitioner_id"))
    return {"doctor": await profile_json(ctx, profile)}


async def do_slots_list(ctx) -> dict[str, Any]:
    """``slots.list {practitioner_id, from? (YYYY-MM-DD, reader's date), days? (1-31)}``: the
    free slots, grouped by the reader's local date, in the reader's zone."""
    profile = await get_active(ctx, ctx.params.get("practitioner_id"))
    begin, end = slots.reader_range(ctx.params, ctx.time_zone)
    days: dict[str, list[dict[str, Any]]] = {}
    for start, stop in await slots.free_slots(ctx, profile, begin, end):
        item = slots.slot_json(start, stop, ctx.time_zone, ctx.locale)
        days.setdefault(item["date"], []).append(item)
    return {
        "practitioner_id": profile["id"],
        "zone": slots.zone_of(ctx.time_zone).key,
        "practitioner_zone": profile["zone"],
        "days": [{"date": d, "slots": s} for d, s in sorted(days.items())],
    }


async def do_practice_get(ctx) -> dict[str, Any]:
    """``practice.get``: the invoking practitioner's own profile (None before the first save)."""
    check_practitioner(ctx)
    profile = await ctx.storage_get("practitioners", ctx.user_id)
    return {
        "profile": profile,
        "weekdays": list(WEEKDAYS),
        "zone": slots.zone_of(ctx.time_zone).key,
    }


async def do_practice_save(ctx) -> dict[str, Any]:
    """``practice.save {name, specialties, languages, fee, zone, visit_minutes, visit_type,
    weekly, exceptions?, active?}``: the whole profile, checked, then written as one document
    (its owner is the only writer)."""
    check_practitioner(ctx)
    profile = check_profile(ctx, ctx.params)
    profile["updated_at"] = clock.now_ms()
    await ctx.storage_put("practitioners", ctx.user_id, profile)
    return {"profile": profile}


def as_view(do):
    """A view handler answering a ``BookingError`` as a ``ViewError`` (same code, message)."""

    async def handler(ctx):
        try:
            return await do(ctx)
        except BookingError as exc:
            raise ViewError(exc.code, exc.message) from None

    handler.__name__ = getattr(do, "__name__", "view")
    return handler


def as_command(do):
    """A subcommand answering a ``BookingError`` as an ephemeral text."""

    async def handler(ctx, args):
        try:
            return await do(ctx, args)
        except BookingError as exc:
            return Reply(ephemeral=exc.message)

    handler.__name__ = getattr(do, "__name__", "command")
    return handler


def as_action(do):
    """A button handler answering a ``BookingError`` to the presser only."""

    async def handler(ctx):
        try:
            return await do(ctx)
        except BookingError as exc:
            return Reply(ephemeral=exc.message)

    handler.__name__ = getattr(do, "__name__", "action")
    return handler


# --- the assistant's tool ----------------------------------------------------------------------


async def tool_find_doctors(ctx) -> dict[str, Any]:
    """Tool ``find_doctors {specialty? (a word such as cardiology; a prefix matches), limit?
    (1-5, default 5)}``, for the assistant: the active practitioners ``/health doctors`` lists,
    ``[{id, name, specialties, zone, fee (the fee as the reader reads it, or "Free"), next_free:
    [the next free times, as text in the reader's zone]}]``, and the first one's practitioner
    card (its Book button opens the web view: a person books, never the tool). Only reads
    (``storage.find``/``storage.get``). No match: ``[]`` and no card."""
    specialty = " ".join(str(ctx.arguments.get("specialty") or "").split()) or None
    found = (await matching(ctx, specialty))[: ctx.arguments.get("limit", CARDS_MAX)]
    if not found:
        return {"result": [], "card": None}
    result = [
        {
            "id": profile["id"],
            "name": profile["name"],
            "specialties": profile["specialties"],
            "zone": profile["zone"],
            "fee": fee_text(profile["fee"], ctx.locale),
            "next_free": [
                slots.when_text(start, ctx.time_zone, ctx.locale)
                for start, _ in await next_free(ctx, profile)
            ],
        }
        for profile in found
    ]
    return {"result": result, "card": await practitioner_card(ctx, found[0])}


TOOLS = {"find_doctors": tool_find_doctors}
SUBCOMMANDS = {"doctors": as_command(doctors)}
VIEWS = {
    name: as_view(do)
    for name, do in {
        "doctors.list": do_doctors_list,
        "doctor.get": do_doctor_get,
        "slots.list": do_slots_list,
        "practice.get": do_practice_get,
        "practice.save": do_practice_save,
    }.items()
}
