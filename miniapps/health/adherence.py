"""Doses and adherence: each dose of a medication (``records.py``) reminded, taken or missed, the
adherence log, and family group adherence cards.

- Timer ``medication.dose`` (key ``dose:<med id>``, scheduled by ``records.do_add_med``) at each
  dose: the dose is logged (``pending``, once per dose however often the timer fires), the owner
  gets a service message with a **Taken** button, ``medication.missed`` is set
  ``MISSED_AFTER_MS`` later (key ``missed:<med id>:<due>``), and the timer moves to the next
  dose (in the medication's own zone). A stopped medication ends the chain.
- **Taken** (action ``dose.taken``, view ``dose.take {dose}``): the owner only; one conditional
  write, so concurrent presses record the dose once (a missed dose taken later is ``late``).
- ``medication.missed``: a dose still pending is ``missed``; the owner is told, and the care-circle
  members the owner shares ``reminders`` with (``circle.notify_missed``, each logged).
- ``meds.adherence {days?}``: the doses of the last days and the share taken.
- **Group cards**: ``/health adherence share`` (in a group) posts the owner's adherence card —
  today's doses of each active medication, taken ✓ / missed ✗ / due ⏳ (reminded, not yet taken)
  / later — kept updated as doses are reminded, taken or missed (``refresh``). Sharing again in
  the same group only refreshes the card. Only the owner shares, only by running this in that
  group (that is the consent); without it nothing is ever posted to a group.
- ``/health adherence stop`` (in that group): the card says sharing stopped and shows no dose.
- ``/health adherence``: your own doses today (ephemeral).

"Today" is the local day in each medication's own time zone (the zone it was added in).

Data: ``adherence`` (one per dose) key ``<med id>:<due ms>`` ``{owner, med_id, name, dose, due,
time, day, zone, status: pending|taken|missed, taken_at?, late?, notified, missed_notified}``;
``adherence_shares`` key ``<owner>:<conversation id>``: ``{owner, owner_name, conversation_id,
message_id, active, since, stopped_at?}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from datetime import datetime
from datetime import time as day_time
from typing import Any

import clock
import records
from texts import DISCLAIMER

from sdk import Button, Card, Field, HostError, NotFound, Reply, ScopeDenied

log = logging.getLogger("app.health.adherence")

DOSES, SHARES = "adherence", "adherence_shares"
MISSED_TIMER = "medication.missed"
MISSED_AFTER_MS = 60 * 60_000  # a dose not taken within an hour is missed
DOSE_KEY_RE = re.compile(r"^(med-[0-9a-f]{12}):(\d{10,15})$")
USAGE = "Usage: /health adherence share · /health adherence stop (in a group) · /health adherence"
STATUS_WORD = {"taken": "taken", "missed": "missed", "pending": "due", "upcoming": "later"}
FIELDS_MAX = 20


# --- doses -------------------------------------------------------------------------------


async def doses_of(ctx, owner: str, since_ms: int = 0) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"owner": owner, "due": {"$gte": since_ms}}
    doses = [{"key": i["key"], **i["value"]} for i in await records.find_all(ctx, DOSES, query)]
    return sorted(doses, key=lambda d: (d["due"], d["key"]))


async def today_doses(ctx, owner: str) -> list[dict[str, Any]]:
    """``owner``'s doses of today (each medication's local day), soonest first: ``{med_id,
    name, time, due, status}``; a dose not yet reminded is ``upcoming`` (or left out when its
    time passed before it was ever due — a medication added later that day). Each dose is read
    by its key (a handful of reads), not found in the whole log."""
    now = clock.now_ms()
    expected = []
    for med in await records.medications_of(ctx, owner, active_only=True):
        zone = records.zone_of(med["zone"])
        today = datetime.fromtimestamp(now / 1000, zone).date()
        for each in med["times"]:
            hour, minute = (int(x) for x in each.split(":"))
            due = int(datetime.combine(today, day_time(hour, minute), zone).timestamp() * 1000)
            expected.append((med, each, due))
    logged = await asyncio.gather(
        *(ctx.storage_get(DOSES, f"{med['id']}:{due}") for med, _, due in expected)
    )
    doses = []
    for (med, each, due), found in zip(expected, logged, strict=True):
        if isinstance(found, dict):
            status = found["status"]
        elif due > now:
            status = "upcoming"
        else:
            continue
        doses.append(
            {"med_id": med["id"], "name": med["name"], "time": each, "due": due, "status": status}
        )
    return sorted(doses, key=lambda d: (d["due"], d["name"]))


def dose_card(dose: dict[str, Any], *, missed: bool = False) -> Card:
    status = dose.get("status", "pending")
    title = f"💊 {'Missed' if missed else 'Time for'}: {dose['name']}"
    text = f"{dose['dose']} · {dose['time']} ({dose['zone']})."
    buttons = []
    if status == "taken":
        text += " ✓ Taken."
    else:
        if missed or status == "missed":
            text += " Not marked as taken within the hour."
        buttons.append(Button("dose.taken", "Taken", value=dose["key"], style="primary"))
    return Card(title[:100], text=f"{text} {DISCLAIMER}", buttons=buttons)


async def on_dose(ctx) -> None:
    """``medication.dose``: record the dose (pending, once per dose), remind the owner with a
    Taken button, set the missed check, then schedule the next dose."""
    med_id = str(ctx.payload.get("med_id", ""))
    med = None
    if records.MED_ID_RE.match(med_id):
        med = await ctx.storage_get(records.MEDICATIONS, med_id)
    if not isinstance(med, dict) or not med.get("active"):
        return  # stopped: the chain ends
    due = int(ctx.due_at)
    key = f"{med_id}:{due}"
    time_text, day = records.local_clock(due, med["zone"])

    def create() -> tuple[str, dict]:
        return "created", {
            "owner": med["owner"],
            "med_id": med_id,
            "name": med["name"],
            "dose": med["dose"],
            "due": due,
            "time": time_text,
            "day": day,
            "zone": med["zone"],
            "status": "pending",
            "notified": False,
            "missed_notified": False,
        }

    created, dose = await records.change_doc(ctx, DOSES, key, lambda doc: "exists", create)
    assert dose is not None
    # The firing that created the dose reminds; a retry (attempt > 1) of one that failed before
    # the reminder was noted reminds again. Two copies of one firing at once remind once.
    if created == "created" or (ctx.attempt > 1 and not dose.get("notified")):
        try:
            await ctx.send_service_message(med["owner"], card=dose_card({"key": key, **dose}))
        except (ScopeDenied, NotFound) as exc:  # not opted in: the dose is still logged
            log.info("dose reminder %s not sent: %s", key, exc.code)
        await records.change_doc(ctx, DOSES, key, lambda doc: doc.update(notified=True))
    await ctx.schedule(
        MISSED_TIMER,
        at=max(due + MISSED_AFTER_MS, clock.now_ms() + 1000),
        payload={"dose": key},
        key=f"missed:{key}",
    )
    await refresh(ctx, med["owner"])
    following = records.next_dose(max(due, clock.now_ms()), med["times"], med["zone"])
    await ctx.schedule(
        records.DOSE_TIMER, at=following, payload={"med_id": med_id}, key=f"dose:{med_id}"
    )


async def on_missed(ctx) -> None:
    """``medication.missed``: a dose still pending is missed — the owner is told, and the
    circle members they share ``reminders`` with (each read logged)."""
    key = str(ctx.payload.get("dose", ""))
    match = DOSE_KEY_RE.match(key)
    if not match:
        return
    med = await ctx.storage_get(records.MEDICATIONS, match.group(1))
    if not isinstance(med, dict) or not med.get("active"):
        return

    def miss(doc: dict) -> bool:
        if doc.get("status") != "pending":
            return False
        doc["status"] = "missed"
        return True

    missed, dose = await records.change_doc(ctx, DOSES, key, miss)
    if dose is None or dose.get("status") != "missed":
        return
    if not missed and (ctx.attempt == 1 or dose.get("missed_notified")):
        return  # another copy of this firing marked it (and tells), or it was told already
    card = dose_card({"key": key, **dose}, missed=True)
    with contextlib.suppress(ScopeDenied, NotFound):  # not opted in
        await ctx.send_service_message(dose["owner"], card=card)
    notify_circle = records.sibling_function("circle", "notify_missed")
    if notify_circle is not None:
        await notify_circle(ctx, dose["owner"], dose)
    await records.change_doc(ctx, DOSES, key, lambda doc: doc.update(missed_notified=True))
    if missed:
        await refresh(ctx, dose["owner"])


async def do_take(ctx, key: str) -> tuple[str, dict | None]:
    """The owner marks a dose taken: ``("taken" | "already", dose)``; exactly one of several
    concurrent presses records it. ``HealthError`` for someone else's or an unknown dose."""
    if not DOSE_KEY_RE.match(key or ""):
        raise records.HealthError("unknown_dose", "No such dose of yours.")
    now = clock.now_ms()

    def take(doc: dict) -> str:
        if doc.get("owner") != ctx.user_id:
            return "not_yours"
        if doc.get("status") == "taken":
            return "already"
        doc["late"] = doc.get("status") == "missed"
        doc["status"] = "taken"
        doc["taken_at"] = now
        return "taken"

    outcome, dose = await records.change_doc(ctx, DOSES, key, take)
    if outcome in (None, "not_yours"):
        raise records.HealthError("unknown_dose", "No such dose of yours.")
    if outcome == "taken":
        await refresh(ctx, ctx.user_id)
    return outcome, dose


async def on_taken(ctx) -> Reply:
    """**Taken** on a dose reminder (value: the dose key)."""
    key = ctx.value or ""
    try:
        outcome, dose = await do_take(ctx, key)
    except records.HealthError as exc:
        return records.private(exc.message)
    assert dose is not None
    if outcome == "already":
        return records.private(f"{dose['name']} at {dose['time']} was already marked taken.")
    reply = records.private(f"Marked taken: {dose['name']} {dose['dose']} at {dose['time']}.")
    reply.update_card = {"message_id": ctx.message_id, "card": dose_card({"key": key, **dose})}
    return reply


@records.view
async def view_meds_adherence(ctx) -> dict:
    days = ctx.params.get("days", 7)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 90:
        raise records.HealthError("invalid_days", "days is 1-90.")
    doses = await doses_of(ctx, ctx.user_id, clock.now_ms() - days * 86_400_000)
    return {"days": days, "doses": [public_dose(d) for d in doses], **rates(doses)}


def public_dose(dose: dict[str, Any]) -> dict[str, Any]:
    keep = ("key", "med_id", "name", "dose", "due", "time", "day", "status", "taken_at", "late")
    return {k: dose[k] for k in keep if k in dose}


def rates(doses: list[dict[str, Any]]) -> dict[str, Any]:
    taken = sum(1 for d in doses if d["status"] == "taken")
    missed = sum(1 for d in doses if d["status"] == "missed")
    counted = taken + missed
    return {
        "taken": taken,
        "missed": missed,
        "adherence": round(100 * taken / counted) if counted else None,
    }


@records.view
async def view_dose_take(ctx) -> dict:
    outcome, dose = await do_take(ctx, str(ctx.params.get("dose") or ""))
    return {"outcome": outcome, "dose": public_dose(dose or {})}


# --- group cards -------------------------------------------------------------------------


def share_card(owner_name: str, doses: list[dict[str, Any]]) -> Card:
    by_med: dict[str, list[dict[str, Any]]] = {}
    for dose in doses:
        by_med.setdefault(dose["name"], []).append(dose)
    card = Card(
        f"💊 {owner_name}: medicines today"[:100],
        text=(
            f"Shared by {owner_name} with this group (/health adherence stop ends it). "
            + ("" if doses else "No doses today. ")
            + DISCLAIMER
        ),
    )
    for name, mine in list(by_med.items())[:FIELDS_MAX]:
        line = " · ".join(
            f"{d['time']} {records.STATUS_MARK[d['status']]} {STATUS_WORD[d['status']]}"
            for d in mine
        )
        card.fields.append(Field(name[:100], line))
    return card


def stopped_card(owner_name: str) -> Card:
    return Card(
        f"💊 {owner_name}: medicines"[:100],
        text=f"{owner_name} stopped sharing their doses with this group.",
    )


async def owner_name(ctx, fallback: str = "Someone") -> str:
    try:
        profile = await ctx.get_profile()
    except (ScopeDenied, HostError):
        return fallback
    return str(profile.get("display_name") or fallback)[:40]


async def refresh(ctx, owner: str) -> int:
    """Update every adherence card ``owner`` shares (in its own group); how many."""
    shares = [
        i["value"] for i in await records.find_all(ctx, SHARES, {"owner": owner, "active": True})
    ]
    shares = [s for s in shares if s.get("message_id")]
    if not shares:
        return 0
    doses = await today_doses(ctx, owner)
    for share in shares:
        try:
            await ctx.update_card(
                share["message_id"],
                share_card(share["owner_name"], doses),
                conversation_id=share["conversation_id"],
            )
        except HostError as exc:  # the group or the app is gone: the share stays recorded
            log.info("adherence card in %s not updated: %s", share["conversation_id"], exc.code)
    return len(shares)


async def do_share(ctx) -> Reply:
    owner = ctx.user_id
    key = f"{owner}:{ctx.conversation_id}"
    name = await owner_name(ctx)
    now = clock.now_ms()

    def reactivate(doc: dict) -> str:
        if doc.get("active") and doc.get("message_id"):
            return "already"
        doc.update(active=True, owner_name=name, since=now, message_id=None)
        doc.pop("stopped_at", None)
        return "shared"

    def create() -> tuple[str, dict]:
        return "shared", {
            "owner": owner,
            "owner_name": name,
            "conversation_id": ctx.conversation_id,
            "message_id": None,
            "active": True,
            "since": now,
        }

    outcome, _ = await records.change_doc(ctx, SHARES, key, reactivate, create)
    if outcome == "already":
        await refresh(ctx, owner)
        return records.private("You already share your doses here; the card is up to date.")
    doses = await today_doses(ctx, owner)
    message_id = await ctx.send_card(share_card(name, doses))
    await records.change_doc(ctx, SHARES, key, lambda doc: doc.update(message_id=message_id))
    return records.private("Your doses today are shared with this group; the card follows them.")


async def do_stop(ctx) -> Reply:
    key = f"{ctx.user_id}:{ctx.conversation_id}"

    def stop(doc: dict) -> bool:
        if not doc.get("active"):
            return False
        doc.update(active=False, stopped_at=clock.now_ms())
        return True

    stopped, share = await records.change_doc(ctx, SHARES, key, stop)
    if not stopped or share is None:
        return records.private("You are not sharing your doses with this group.")
    if share.get("message_id"):
        try:
            await ctx.update_card(share["message_id"], stopped_card(share["owner_name"]))
        except HostError as exc:
            log.info("adherence card not updated on stop: %s", exc.code)
    return records.private("Stopped: this group no longer sees your doses.")


async def adherence_command(ctx, args: list[str]) -> Reply:
    """``/health adherence share|stop`` (in a group) · ``/health adherence``."""
    sub = args[0].lower() if args else ""
    if len(args) > 1 or sub not in ("", "share", "stop"):
        return records.private(USAGE)
    if not sub:
        doses = await today_doses(ctx, ctx.user_id)
        card = Card("Your doses today", text="" if doses else "No doses today.")
        for dose in doses[:FIELDS_MAX]:
            card.fields.append(
                Field(f"{dose['time']} {dose['name']}"[:100], STATUS_WORD[dose["status"]])
            )
        return records.private(card)
    if ctx.conversation_type != "group":
        return records.private("Adherence cards are shared in a group chat: run this in a group.")
    return await (do_share(ctx) if sub == "share" else do_stop(ctx))


SUBCOMMANDS = {"adherence": adherence_command}
ACTIONS = {"dose.taken": on_taken}
TIMERS = {records.DOSE_TIMER: on_dose, MISSED_TIMER: on_missed}
VIEWS = {"meds.adherence": view_meds_adherence, "dose.take": view_dose_take}
