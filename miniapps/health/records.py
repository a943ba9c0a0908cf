"""Records: a person's own vitals, medications and allergies. Private:
everything here is shown to its owner only — ephemeral replies, service messages, the web view —
never posted in a group (``adherence.py`` posts an adherence card there only when the owner
asks). Every reply and view carries ``texts.DISCLAIMER``.

Commands (``/health …``):

- ``vitals add <kind> <value> <unit>`` — ``weight 154 lb``, ``bp 120/80 mmHg``, ``glucose 99
  mg/dL``, ``heart_rate 72 bpm``, ``temperature 98.6 °F``: converted with ``units.py`` (pint) to
  the kind's canonical unit; an unknown unit (``unknown_unit``) or an impossible value
  (``impossible_value``) is refused and nothing is written.
- ``vitals [kind]`` — the latest of each kind, or the last readings of one kind (ephemeral).
- ``meds add <name> <dose…> at 08:00,20:00`` (a quoted name may have spaces), ``meds``, ``meds
  stop <name or id>``. The times are local to the person's time zone when they add it
  (``ctx.time_zone``, stored with the medication). Adding one schedules the timer
  ``medication.dose`` (key ``dose:<med id>``) at its next dose; the doses themselves — the
  reminder with its **Taken** button, missed doses, the adherence log — are ``adherence.py``'s.
  Stopping one cancels that timer.
- ``allergies add <substance> [reaction…] [mild|moderate|severe]``, ``allergies``, ``allergies
  remove <substance or id>``.

Web view calls: ``records.summary``, ``vitals.series {kind, limit?}``, ``vitals.add {kind,
value, unit}``, ``meds.list``, ``meds.add {name, dose, times}``, ``meds.stop {med_id}``,
``allergies.list``, ``allergies.add {substance, reaction?, severity?}``, ``allergies.remove
{allergy_id}``. Errors: ``ViewError`` with the codes below.

Data: ``vitals`` key ``<owner>:<kind>:<at ms>:<rand>`` ``{owner, kind, value, unit, entered,
basis?, at, by}``; ``medications`` key ``med-<hex>`` ``{id, owner, name, dose, times, zone,
active, created_at, stopped_at?}``; ``allergies`` key ``al-<hex>`` ``{id, owner, substance,
reaction, severity, created_at}``.

This module also holds the helpers the other records modules (``adherence``, ``circle``,
``fhir_export``) share: ``HealthError``, ``private``/``answer``, the ``command``/``view``
wrappers, ``find_all``, ``change_doc``, ``when``, ``sibling``. It imports none of them (they
import it); it reaches ``adherence`` and ``circle`` through ``sibling`` when it runs.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import re
import secrets
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import clock
import units
from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from texts import DISCLAIMER

from sdk import (
    Button,
    Card,
    Conflict,
    Field,
    HostError,
    Reply,
    ViewError,
    documents,
)

log = logging.getLogger("app.health.records")

VITALS, MEDICATIONS, ALLERGIES = "vitals", "medications", "allergies"
DOSE_TIMER = "medication.dose"  # its handler is adherence.on_dose
MEDS_MAX, TIMES_MAX, ALLERGIES_MAX = 20, 6, 50
SERIES_MAX = 500  # readings of one kind a chart or a reader gets (the most recent)
SHOWN_MAX = 10  # readings listed on a card
NAME_MAX, DOSE_MAX, SUBSTANCE_MAX, REACTION_MAX = 60, 40, 60, 120
SEVERITIES = ("mild", "moderate", "severe")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MED_ID_RE = re.compile(r"^med-[0-9a-f]{12}$")
ALLERGY_ID_RE = re.compile(r"^al-[0-9a-f]{12}$")
GLUED_RE = re.compile(r"^([+-]?\d+(?:[.,]\d+)?(?:/\d+(?:[.,]\d+)?)?)([^\d/.,].*)$")
CAS_ATTEMPTS = 40
FIND_CAP = 5000
VITALS_USAGE = (
    "Usage: /health vitals add <kind> <value> <unit> (e.g. weight 70 kg · bp 120/80 mmHg · "
    "glucose 5.4 mmol/L) · /health vitals [kind]"
)
MEDS_USAGE = (
    "Usage: /health meds add <name> <dose> at 08:00,20:00 · /health meds · /health meds stop <name>"
)
ALLERGIES_USAGE = (
    "Usage: /health allergies add <substance> [reaction] [mild|moderate|severe] · "
    "/health allergies · /health allergies remove <substance>"
)
STATUS_MARK = {"taken": "✓", "missed": "✗", "pending": "⏳", "upcoming": "·"}


# --- shared helpers -----------------------------------------------------------------------


class HealthError(Exception):
    """A refusal with a stable ``code`` and a message for the person; nothing was written."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def private(content: str | Card) -> Reply:
    """An ephemeral reply (the invoker only), carrying the disclaimer."""
    if isinstance(content, Card):
        text = content.text or ""
        if DISCLAIMER not in text:
            content.text = f"{text} {DISCLAIMER}".strip()
        return Reply(ephemeral=content)
    return Reply(ephemeral=content if DISCLAIMER in content else f"{content} {DISCLAIMER}")


def answer(data: dict[str, Any]) -> dict[str, Any]:
    """A view's answer, carrying the disclaimer."""
    return {**data, "disclaimer": DISCLAIMER}


def command(handler: Callable) -> Callable:
    """A ``/health <sub>`` handler whose ``HealthError`` becomes a short ephemeral error."""

    @functools.wraps(handler)
    async def run(ctx, args: list[str]) -> Reply | None:
        try:
            return await handler(ctx, args)
        except HealthError as exc:
            return private(exc.message)

    return run


def view(handler: Callable) -> Callable:
    """A web view handler whose ``HealthError`` becomes a ``ViewError`` with its code."""

    @functools.wraps(handler)
    async def run(ctx) -> dict[str, Any]:
        try:
            return answer(await handler(ctx))
        except HealthError as exc:
            raise ViewError(exc.code, exc.message) from None

    return run


async def find_all(ctx, collection: str, filter: dict) -> list[dict]:
    """Every item matching ``filter`` (``sdk.documents.find_all``, at most ``FIND_CAP``)."""
    return await documents.find_all(ctx, collection, filter, cap=FIND_CAP)


async def change_doc(
    ctx,
    collection: str,
    key: str,
    edit: Callable[[dict], Any],
    create: Callable[[], tuple[Any, dict]] | None = None,
) -> tuple[Any, dict | None]:
    """``edit(doc)`` a copy of ``key`` and write it only if nobody wrote in between (else
    redo); with no document, ``create()`` → ``(outcome, new doc)`` is written create-only
    (someone else's creation wins and the edit is redone on theirs). Without ``create`` a
    missing document gives ``(None, None)``."""
    missing = object()
    for _ in range(CAS_ATTEMPTS):

        def step(doc: dict | None) -> Any:
            return missing if doc is None else edit(doc)

        outcome, doc = await documents.update_doc(ctx, collection, key, step, attempts=CAS_ATTEMPTS)
        if outcome is not missing:
            return outcome, doc
        if create is None:
            return None, None
        outcome, fresh = create()
        try:
            await ctx.storage_update(collection, key, set=fresh, expected_version=0, upsert=True)
        except Conflict:
            continue
        return outcome, fresh
    raise HostError("Busy: please try again.", code="busy")


def zone_of(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def babel_locale(name: str | None) -> Locale:
    text = (name or "").strip().replace("-", "_")
    if text:
        try:
            return Locale.parse(text)
        except (ValueError, TypeError, UnknownLocaleError):
            pass
    return Locale.parse("en")


def when(ctx, ms: int) -> str:
    """An instant in the reader's time zone and locale (babel), e.g. ``3/3/25, 12:00 PM``."""
    moment = datetime.fromtimestamp(ms / 1000, zone_of(ctx.time_zone))
    return format_datetime(moment, "short", locale=babel_locale(ctx.locale))


def local_clock(ms: int, zone_name: str) -> tuple[str, str]:
    """``("HH:MM", "YYYY-MM-DD")`` of an instant in a zone."""
    moment = datetime.fromtimestamp(ms / 1000, zone_of(zone_name))
    return moment.strftime("%H:%M"), moment.date().isoformat()


def token() -> str:
    return secrets.token_hex(6)


HERE = Path(__file__).resolve().parent


def sibling(name: str) -> ModuleType | None:
    """This app's module ``name``, looked up when needed: ``adherence``, ``circle`` and
    ``fhir_export`` import this module, so it cannot import them at its top (a cycle); and
    ``booking`` is another helper's. None when this app has no such module (the name may be
    another app's module in a process that loaded several, e.g. tests)."""

    def ours(module: ModuleType | None) -> bool:
        origin = getattr(module, "__file__", None)
        return bool(origin) and Path(origin).resolve().parent == HERE

    module = sys.modules.get(name)
    if ours(module):
        return module
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    return module if ours(module) else None


def sibling_function(module: str, name: str) -> Callable | None:
    found = getattr(sibling(module), name, None)
    return found if callable(found) else None


async def refresh_adherence(ctx, owner: str) -> None:
    """The owner's group adherence cards follow a change (``adherence.refresh``)."""
    refresh = sibling_function("adherence", "refresh")
    if refresh is not None:
        await refresh(ctx, owner)


async def today_doses(ctx, owner: str) -> list[dict[str, Any]]:
    """``adherence.today_doses``: the owner's doses of today."""
    found = sibling_function("adherence", "today_doses")
    return await found(ctx, owner) if found is not None else []


# --- vitals -------------------------------------------------------------------------------


def check_vital(kind: str, value: str, unit: str) -> dict[str, Any]:
    """The vital in its canonical unit, or ``HealthError`` (``units.VitalError``'s code)."""
    try:
        return units.parse_vital(str(kind or ""), str(value or ""), str(unit or ""))
    except units.VitalError as exc:
        raise HealthError(exc.code, exc.message) from None


async def do_add_vital(ctx, owner: str, vital: dict[str, Any]) -> dict[str, Any]:
    at = clock.now_ms()
    doc = {**vital, "owner": owner, "at": at, "by": ctx.user_id}
    key = f"{owner}:{vital['kind']}:{at}:{token()}"
    await ctx.storage_put(VITALS, key, doc)
    return {"key": key, **doc}


async def vitals_of(
    ctx, owner: str, kind: str | None = None, limit: int = SERIES_MAX
) -> list[dict[str, Any]]:
    """``owner``'s vitals (of ``kind``), oldest first, the ``limit`` most recent."""
    query: dict[str, Any] = {"owner": owner}
    if kind:
        query["kind"] = kind
    found = [{"key": i["key"], **i["value"]} for i in await find_all(ctx, VITALS, query)]
    found.sort(key=lambda v: (v.get("at", 0), v["key"]))
    return found[-limit:]


def latest_by_kind(vitals: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for vital in vitals:  # oldest first: the last one wins
        latest[vital["kind"]] = vital
    return latest


def point(vital: dict[str, Any]) -> dict[str, Any]:
    """A vital as a chart point."""
    return {"at": vital["at"], "value": vital["value"], "shown": units.shown(vital)}


def split_value_unit(args: list[str]) -> tuple[str, str]:
    """``["154", "lb"]`` or ``["154lb"]`` → ``("154", "lb")``."""
    if len(args) == 1:
        glued = GLUED_RE.match(args[0])
        return (glued.group(1), glued.group(2).strip()) if glued else (args[0], "")
    return (args[0], " ".join(args[1:])) if args else ("", "")


async def vitals_command(ctx, args: list[str]) -> Reply:
    """``/health vitals add <kind> <value> <unit>`` · ``/health vitals [kind]``."""
    if args and args[0].lower() == "add":
        if len(args) < 3:
            raise HealthError("usage", VITALS_USAGE)
        value, unit = split_value_unit(args[2:])
        if not unit:
            raise HealthError("unknown_unit", f"Give the unit too. {VITALS_USAGE}")
        vital = check_vital(args[1], value, unit)
        stored = await do_add_vital(ctx, ctx.user_id, vital)
        entered = f"{vital['entered']['value']} {vital['entered']['unit']}"
        label = units.KINDS[vital["kind"]]["label"]
        return private(f"Recorded: {label} {units.shown(stored)} (entered {entered}).")
    if len(args) > 1:
        raise HealthError("usage", VITALS_USAGE)
    if args:
        kind = check_kind(args[0])
        readings = await vitals_of(ctx, ctx.user_id, kind, limit=SHOWN_MAX)
        card = Card(f"{units.KINDS[kind]['label']}: your last readings")
        for vital in reversed(readings):
            card.fields.append(Field(when(ctx, vital["at"]), units.shown(vital)))
        card.text = "" if readings else "No readings yet."
    else:
        latest = latest_by_kind(await vitals_of(ctx, ctx.user_id))
        card = Card("Your vitals", text="" if latest else "No vitals yet. " + VITALS_USAGE)
        for kind, spec in units.KINDS.items():
            if kind in latest:
                vital = latest[kind]
                card.fields.append(
                    Field(spec["label"], f"{units.shown(vital)} · {when(ctx, vital['at'])}")
                )
    card.buttons.append(Button.webview("Charts", path="#records"))
    return private(card)


def check_kind(text: str) -> str:
    try:
        return units.kind_of(str(text or ""))
    except units.VitalError as exc:
        raise HealthError(exc.code, exc.message) from None


@view
async def view_vitals_add(ctx) -> dict:
    params = ctx.params
    vital = check_vital(params.get("kind"), str(params.get("value") or ""), params.get("unit"))
    stored = await do_add_vital(ctx, ctx.user_id, vital)
    return {"vital": {**point(stored), "kind": stored["kind"], "unit": stored["unit"]}}


@view
async def view_vitals_series(ctx) -> dict:
    kind = check_kind(ctx.params.get("kind"))
    limit = ctx.params.get("limit", SERIES_MAX)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= SERIES_MAX:
        raise HealthError("invalid_limit", f"limit is 1-{SERIES_MAX}.")
    readings = await vitals_of(ctx, ctx.user_id, kind, limit=limit)
    return series(kind, readings)


def series(kind: str, readings: list[dict[str, Any]]) -> dict[str, Any]:
    spec = units.KINDS[kind]
    return {
        "kind": kind,
        "label": spec["label"],
        "unit": spec["shown"],
        "points": [point(v) for v in readings],
    }


# --- medications and doses ----------------------------------------------------------------


def parse_times(text: str) -> list[str]:
    """``"08:00,20:00"`` (commas or spaces) → sorted distinct ``HH:MM``; ``HealthError``."""
    found = [t for t in re.split(r"[,\s]+", text.strip()) if t]
    if not found:
        raise HealthError("invalid_times", f"Give the dose times. {MEDS_USAGE}")
    for each in found:
        if not TIME_RE.match(each):
            raise HealthError("invalid_times", f"{each[:10]!r} is not a time like 08:00 (24 h).")
    times = sorted(set(found))
    if len(times) > TIMES_MAX:
        raise HealthError("invalid_times", f"At most {TIMES_MAX} dose times a day.")
    return times


def check_med(name: Any, dose: Any, times: Any) -> tuple[str, str, list[str]]:
    name = " ".join(str(name or "").split())
    dose = " ".join(str(dose or "").split())
    if not 1 <= len(name) <= NAME_MAX:
        raise HealthError("invalid_name", f"The medication's name is 1-{NAME_MAX} characters.")
    if not 1 <= len(dose) <= DOSE_MAX:
        raise HealthError("invalid_dose", f"The dose is 1-{DOSE_MAX} characters, e.g. 500 mg.")
    if isinstance(times, list) and all(isinstance(t, str) for t in times):
        times = ",".join(times)
    if not isinstance(times, str):
        raise HealthError("invalid_times", 'times: a list like ["08:00", "20:00"].')
    return name, dose, parse_times(times)


def next_dose(after_ms: int, times: list[str], zone_name: str) -> int:
    """The first dose instant strictly after ``after_ms``: each ``HH:MM`` on each local day in
    the medication's zone (a time in a DST gap is read with fold=0, so it fires an hour late
    that day; an ambiguous one fires once, at its first occurrence)."""
    zone = zone_of(zone_name)
    day: date = datetime.fromtimestamp(after_ms / 1000, zone).date()
    for offset in range(3):
        candidates = []
        for each in times:
            hour, minute = (int(x) for x in each.split(":"))
            local = datetime.combine(day + timedelta(days=offset), day_time(hour, minute), zone)
            at = int(local.timestamp() * 1000)
            if at > after_ms:
                candidates.append(at)
        if candidates:
            return min(candidates)
    raise AssertionError("a day always has its dose times")  # pragma: no cover


async def medications_of(ctx, owner: str, *, active_only: bool = False) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"owner": owner}
    if active_only:
        query["active"] = True
    meds = [i["value"] for i in await find_all(ctx, MEDICATIONS, query)]
    return sorted(meds, key=lambda m: (not m.get("active"), m.get("created_at", 0), m["id"]))


async def do_add_med(ctx, owner: str, name: str, dose: str, times: list[str]) -> dict:
    active = await medications_of(ctx, owner, active_only=True)
    if len(active) >= MEDS_MAX:
        raise HealthError("too_many_medications", f"At most {MEDS_MAX} active medications.")
    zone = ctx.time_zone if zone_of(ctx.time_zone).key == ctx.time_zone else "UTC"
    med = {
        "id": f"med-{token()}",
        "owner": owner,
        "name": name,
        "dose": dose,
        "times": times,
        "zone": zone,
        "active": True,
        "created_at": clock.now_ms(),
    }
    await ctx.storage_put(MEDICATIONS, med["id"], med)
    due = next_dose(clock.now_ms(), times, zone)
    await ctx.schedule(DOSE_TIMER, at=due, payload={"med_id": med["id"]}, key=f"dose:{med['id']}")
    with contextlib.suppress(HostError):  # dose reminders are service messages
        await ctx.request_subscription()
    return {**med, "next_dose": due}


async def find_med(ctx, owner: str, ref: str) -> dict[str, Any]:
    """An active medication of ``owner`` by id or name (case-insensitive)."""
    ref = " ".join(str(ref or "").split())
    meds = await medications_of(ctx, owner, active_only=True)
    found = [m for m in meds if m["id"] == ref or m["name"].lower() == ref.lower()]
    if not found:
        raise HealthError("unknown_medication", f"No active medication {ref[:60]!r} of yours.")
    if len(found) > 1:
        ids = ", ".join(m["id"] for m in found)
        raise HealthError("ambiguous_medication", f"Several are called that: use the id ({ids}).")
    return found[0]


async def do_stop_med(ctx, med: dict[str, Any]) -> None:
    def stop(doc: dict) -> bool:
        if not doc.get("active"):
            return False
        doc["active"] = False
        doc["stopped_at"] = clock.now_ms()
        return True

    await change_doc(ctx, MEDICATIONS, med["id"], stop)
    await ctx.cancel_schedule(f"dose:{med['id']}")
    await refresh_adherence(ctx, med["owner"])


def med_line(med: dict[str, Any], today: list[dict[str, Any]]) -> str:
    line = f"{med['dose']} at {', '.join(med['times'])}"
    mine = [d for d in today if d["med_id"] == med["id"]]
    if mine:
        line += " · today: " + " ".join(f"{d['time']} {STATUS_MARK[d['status']]}" for d in mine)
    return line


async def meds_command(ctx, args: list[str]) -> Reply:
    """``/health meds add …`` · ``/health meds`` · ``/health meds stop <name>``."""
    sub = args[0].lower() if args else ""
    if sub == "add":
        rest = args[1:]
        at = next((i for i, word in enumerate(rest) if word.lower() == "at"), None)
        if at is None or at < 2:
            raise HealthError("usage", MEDS_USAGE)
        name, dose, times = check_med(rest[0], " ".join(rest[1:at]), " ".join(rest[at + 1 :]))
        med = await do_add_med(ctx, ctx.user_id, name, dose, times)
        return private(
            f"Added {name} {dose} at {', '.join(times)} ({med['zone']}). "
            f"Next reminder: {when(ctx, med['next_dose'])}."
        )
    if sub == "stop":
        if len(args) < 2:
            raise HealthError("usage", MEDS_USAGE)
        med = await find_med(ctx, ctx.user_id, " ".join(args[1:]))
        await do_stop_med(ctx, med)
        return private(f"Stopped {med['name']}: no more reminders for it.")
    if args:
        raise HealthError("usage", MEDS_USAGE)
    meds = await medications_of(ctx, ctx.user_id, active_only=True)
    today = await today_doses(ctx, ctx.user_id)
    card = Card("Your medications", text="" if meds else "None yet. " + MEDS_USAGE)
    for med in meds[:20]:
        card.fields.append(Field(med["name"], med_line(med, today)))
    card.buttons.append(Button.webview("Open", path="#records"))
    return private(card)


@view
async def view_meds_list(ctx) -> dict:
    meds = await medications_of(ctx, ctx.user_id)
    today = await today_doses(ctx, ctx.user_id)
    return {"medications": meds, "today": today}


@view
async def view_meds_add(ctx) -> dict:
    params = ctx.params
    name, dose, times = check_med(params.get("name"), params.get("dose"), params.get("times"))
    return {"medication": await do_add_med(ctx, ctx.user_id, name, dose, times)}


@view
async def view_meds_stop(ctx) -> dict:
    med_id = str(ctx.params.get("med_id") or "")
    if not MED_ID_RE.match(med_id):
        raise HealthError("unknown_medication", "No such medication of yours.")
    med = await find_med(ctx, ctx.user_id, med_id)
    await do_stop_med(ctx, med)
    return {"stopped": med_id}


# --- allergies ----------------------------------------------------------------------------


def check_allergy(substance: Any, reaction: Any, severity: Any) -> tuple[str, str, str | None]:
    substance = " ".join(str(substance or "").split())
    reaction = " ".join(str(reaction or "").split())
    severity = str(severity or "").strip().lower() or None
    if not 1 <= len(substance) <= SUBSTANCE_MAX:
        raise HealthError("invalid_substance", f"The substance is 1-{SUBSTANCE_MAX} characters.")
    if len(reaction) > REACTION_MAX:
        raise HealthError("invalid_reaction", f"The reaction is at most {REACTION_MAX} characters.")
    if severity is not None and severity not in SEVERITIES:
        raise HealthError("invalid_severity", f"Severity is {', '.join(SEVERITIES)}.")
    return substance, reaction, severity


async def allergies_of(ctx, owner: str) -> list[dict[str, Any]]:
    found = [i["value"] for i in await find_all(ctx, ALLERGIES, {"owner": owner})]
    return sorted(found, key=lambda a: (a.get("created_at", 0), a["id"]))


async def do_add_allergy(
    ctx, owner: str, substance: str, reaction: str, severity: str | None
) -> dict:
    existing = await allergies_of(ctx, owner)
    if any(a["substance"].lower() == substance.lower() for a in existing):
        raise HealthError("duplicate_allergy", f"{substance} is already on your list.")
    if len(existing) >= ALLERGIES_MAX:
        raise HealthError("too_many_allergies", f"At most {ALLERGIES_MAX} allergies.")
    allergy = {
        "id": f"al-{token()}",
        "owner": owner,
        "substance": substance,
        "reaction": reaction,
        "severity": severity,
        "created_at": clock.now_ms(),
    }
    await ctx.storage_put(ALLERGIES, allergy["id"], allergy)
    return allergy


async def find_allergy(ctx, owner: str, ref: str) -> dict[str, Any]:
    ref = " ".join(str(ref or "").split())
    for allergy in await allergies_of(ctx, owner):
        if allergy["id"] == ref or allergy["substance"].lower() == ref.lower():
            return allergy
    raise HealthError("unknown_allergy", f"No allergy {ref[:60]!r} on your list.")


def allergy_line(allergy: dict[str, Any]) -> str:
    parts = [allergy.get("reaction") or "reaction not given"]
    if allergy.get("severity"):
        parts.append(allergy["severity"])
    return " · ".join(parts)


async def allergies_command(ctx, args: list[str]) -> Reply:
    """``/health allergies add …`` · ``/health allergies`` · ``… remove <substance>``."""
    sub = args[0].lower() if args else ""
    if sub == "add":
        rest = args[1:]
        if not rest:
            raise HealthError("usage", ALLERGIES_USAGE)
        severity = rest[-1] if len(rest) > 1 and rest[-1].lower() in SEVERITIES else None
        middle = rest[1:-1] if severity else rest[1:]
        substance, reaction, severity = check_allergy(rest[0], " ".join(middle), severity)
        allergy = await do_add_allergy(ctx, ctx.user_id, substance, reaction, severity)
        return private(f"Added allergy: {allergy['substance']} ({allergy_line(allergy)}).")
    if sub == "remove":
        if len(args) < 2:
            raise HealthError("usage", ALLERGIES_USAGE)
        allergy = await find_allergy(ctx, ctx.user_id, " ".join(args[1:]))
        await ctx.storage_delete(ALLERGIES, allergy["id"])
        return private(f"Removed allergy: {allergy['substance']}.")
    if args:
        raise HealthError("usage", ALLERGIES_USAGE)
    found = await allergies_of(ctx, ctx.user_id)
    card = Card("Your allergies", text="" if found else "None recorded. " + ALLERGIES_USAGE)
    for allergy in found[:20]:
        card.fields.append(Field(allergy["substance"], allergy_line(allergy)))
    return private(card)


@view
async def view_allergies_list(ctx) -> dict:
    return {"allergies": await allergies_of(ctx, ctx.user_id)}


@view
async def view_allergies_add(ctx) -> dict:
    params = ctx.params
    substance, reaction, severity = check_allergy(
        params.get("substance"), params.get("reaction"), params.get("severity")
    )
    return {"allergy": await do_add_allergy(ctx, ctx.user_id, substance, reaction, severity)}


@view
async def view_allergies_remove(ctx) -> dict:
    allergy_id = str(ctx.params.get("allergy_id") or "")
    if not ALLERGY_ID_RE.match(allergy_id):
        raise HealthError("unknown_allergy", "No such allergy on your list.")
    allergy = await find_allergy(ctx, ctx.user_id, allergy_id)
    await ctx.storage_delete(ALLERGIES, allergy["id"])
    return {"removed": allergy_id}


# --- the summary --------------------------------------------------------------------------


@view
async def view_summary(ctx) -> dict:
    """``records.summary``: the latest vital of each kind, medications, allergies."""
    latest = latest_by_kind(await vitals_of(ctx, ctx.user_id))
    return {
        "kinds": [
            {"kind": kind, "label": spec["label"], "unit": spec["shown"]}
            for kind, spec in units.KINDS.items()
        ],
        "latest": {kind: point(vital) for kind, vital in latest.items()},
        "medications": await medications_of(ctx, ctx.user_id, active_only=True),
        "allergies": await allergies_of(ctx, ctx.user_id),
    }


SUBCOMMANDS = {
    "vitals": command(vitals_command),
    "meds": command(meds_command),
    "medications": command(meds_command),
    "allergies": command(allergies_command),
}
VIEWS = {
    "records.summary": view_summary,
    "vitals.add": view_vitals_add,
    "vitals.series": view_vitals_series,
    "meds.list": view_meds_list,
    "meds.add": view_meds_add,
    "meds.stop": view_meds_stop,
    "allergies.list": view_allergies_list,
    "allergies.add": view_allergies_add,
    "allergies.remove": view_allergies_remove,
}
