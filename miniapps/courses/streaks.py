"""Daily streaks in the learner's own time zone, and streak freezes bought with XP.

A **day is a calendar date in the learner's time zone at the moment of the activity**:
``ctx.time_zone`` (the invoker's IANA zone from their profile, "UTC" when unset) turns the
activity's instant into a local date with ``zoneinfo``. So:

- **DST**: a 23-hour or a 25-hour day (America/New_York in March or November) is one date and
  counts once, like any other; nothing is counted in hours.
- **Travel**: the date is taken in the zone the learner has *at the time of the activity* (their
  profile's zone then). Flying Tokyo → Los Angeles can give the same date twice (Tokyo's 10 March
  morning, then Los Angeles' 9-10 March again): a date already counted, or one *before* the last
  counted date (crossing the date line westwards), changes nothing — a streak never goes back
  and never counts a date twice. Flying eastwards can skip a local date (LA 9 March evening →
  Tokyo 11 March morning): that is a missed day, which a freeze covers like any other.
- ``streaks.on_activity(ctx, learner)`` (called by ``xp.award`` after each real award): the same
  local date as the last counted one → nothing; the next date → streak + 1; one or more missed
  dates and at least as many freezes held → the freezes are used (one per missed date) and the
  streak goes on (+ 1 for today; the frozen dates themselves add nothing); otherwise the streak
  restarts at 1. ``best`` keeps the longest.
- **Freezes**: ``/course freeze`` buys one for ``FREEZE_COST`` XP (``xp.spend``), at most
  ``FREEZES_MAX`` held. The slot is taken first (``storage_incr(..., max=FREEZES_MAX)``: two
  purchases at once never hold three), then the XP is spent; not enough XP gives the slot back.
- ``/course streak``: the invoker's streak card (privately; an ephemeral card has no buttons
  that work, so it names ``/course freeze``).

**The clock**: a command or a press does not carry the host's time (only a timer has
``ctx.due_at``), so "now" is ``now_ms()`` — ``time.time()`` — a module function that tests
replace (``monkeypatch.setattr(streaks, "now_ms", lambda: sim.now)``) to walk the simulator's
clock through a DST change or a flight. ``leagues`` reads it through this module too.

Data: ``streaks`` key ``<learner>``: ``{count, best, last_date ("YYYY-MM-DD", local), zone (of the
last counted activity), freezes (held), freezes_used, frozen_dates, updated_at}``. Every change
is a conditional write (``expected_version``; re-read and redo on ``Conflict``), so concurrent
activities of one learner count a date once.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
import secrets
import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sdk import Card, Conflict, Field, HostError, Reply

log = logging.getLogger("app.courses.streaks")

STREAKS = "streaks"
FREEZE_COST = 50  # XP
FREEZES_MAX = 2  # held at once
CAS_ATTEMPTS = 20
FROZEN_KEPT = 10  # frozen dates remembered on the document (for the card)


def now_ms() -> int:
    """The time, epoch milliseconds (``time.time()``): tests replace this function to play the
    simulator's clock (``sim.now``)."""
    return int(time.time() * 1000)


def zone_of(name: str | None) -> ZoneInfo:
    """The ``ZoneInfo`` of an IANA name; UTC for none or an unknown one (the host checks the
    profile's zone, so an unknown one is only an old or a foreign name)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_date(ms: int, zone: ZoneInfo) -> datetime.date:
    """The calendar date of the instant ``ms`` (epoch milliseconds) in ``zone``."""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).astimezone(zone).date()


def advance(doc: dict | None, today: datetime.date, zone_name: str, at: int) -> dict | None:
    """The streak after an activity on the local date ``today``: a new document, or None when
    nothing changes (the date is already counted, or lies before the last counted one)."""
    if doc is None:
        return {
            "count": 1,
            "best": 1,
            "last_date": today.isoformat(),
            "zone": zone_name,
            "freezes": 0,
            "freezes_used": 0,
            "frozen_dates": [],
            "updated_at": at,
        }
    last = datetime.date.fromisoformat(doc["last_date"])
    if today <= last:
        return None
    new = dict(doc)
    missed = (today - last).days - 1
    held = int(doc.get("freezes") or 0)
    if missed == 0:
        new["count"] = int(doc["count"]) + 1
    elif missed <= held:
        frozen = [(last + datetime.timedelta(days=n)).isoformat() for n in range(1, missed + 1)]
        new["freezes"] = held - missed
        new["freezes_used"] = int(doc.get("freezes_used") or 0) + missed
        new["frozen_dates"] = (list(doc.get("frozen_dates") or []) + frozen)[-FROZEN_KEPT:]
        new["count"] = int(doc["count"]) + 1
    else:
        new["count"] = 1
    new["best"] = max(int(doc.get("best") or 0), new["count"])
    new["last_date"] = today.isoformat()
    new["zone"] = zone_name
    new["updated_at"] = at
    return new


async def on_activity(ctx, learner: str) -> dict | None:
    """Count today (the local date of ``now_ms()`` in ``ctx.time_zone``) in ``learner``'s
    streak; returns the streak as written, or None when today was already counted."""
    zone_name = getattr(ctx, "time_zone", None) or "UTC"
    zone = zone_of(zone_name)
    at = now_ms()
    today = local_date(at, zone)
    for attempt in range(CAS_ATTEMPTS):
        doc, version = await ctx.storage_get_versioned(STREAKS, learner)
        new = advance(doc, today, zone.key, at)
        if new is None:
            return None
        changed = {k: v for k, v in new.items() if doc is None or doc.get(k) != v}
        try:
            await ctx.storage_update(
                STREAKS, learner, changed, expected_version=version, upsert=doc is None
            )
        except Conflict:
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
            continue
        return new
    raise Conflict("the streak kept changing; try again")


def shown_count(doc: dict | None, today: datetime.date) -> int:
    """The streak as it stands today: alive while the last counted date is today or yesterday,
    or the missed dates since are no more than the freezes held (used at the next activity)."""
    if not doc:
        return 0
    missed = (today - datetime.date.fromisoformat(doc["last_date"])).days - 1
    if missed <= int(doc.get("freezes") or 0):
        return int(doc["count"])
    return 0


def streak_card(doc: dict | None, today: datetime.date, zone_name: str) -> Card:
    """The learner's streak: days, best, freezes held, and whether today is done yet."""
    count = shown_count(doc, today)
    held = int((doc or {}).get("freezes") or 0)
    done_today = bool(doc) and doc["last_date"] == today.isoformat()
    if count == 0:
        text = "No streak yet — finish a lesson or pass a quiz to start one."
        if doc:
            text = f"Your {doc['count']}-day streak ended. Learn something today to start again."
    elif done_today:
        text = "Today is done ✓ Come back tomorrow to keep it going."
    else:
        text = "Learn something today to keep your streak."
    fields = [
        Field("Streak", f"{count} day{'s' if count != 1 else ''}"),
        Field("Best", f"{int((doc or {}).get('best') or 0)} days"),
        Field("Freezes", f"{held} / {FREEZES_MAX}"),
        Field("Days are counted in", zone_name),
    ]
    if held < FREEZES_MAX:
        text += f"\nA missed day uses a freeze: /course freeze buys one for {FREEZE_COST} XP."
    return Card(title=f"🔥 {count}-day streak", text=text, fields=fields)


async def streak_command(ctx, args: list[str]) -> Reply:
    """``/course streak``: the invoker's streak card, privately."""
    if args:
        return Reply(ephemeral="Usage: /course streak — your daily streak")
    zone = zone_of(getattr(ctx, "time_zone", None))
    doc = await ctx.storage_get(STREAKS, ctx.user_id)
    return Reply(ephemeral=streak_card(doc, local_date(now_ms(), zone), zone.key))


async def buy_freeze(ctx) -> str:
    """Buy one streak freeze for the invoker: the answer to show them."""
    import xp  # here: xp imports this module

    learner = ctx.user_id
    try:
        held = await ctx.storage_incr(STREAKS, learner, "freezes", 1, max=FREEZES_MAX)
    except HostError as exc:
        if exc.code != "limit_reached":
            raise
        return f"You already hold {FREEZES_MAX} freezes, the most you can hold."
    try:
        # A new reason key per purchase: False could only mean a key already paid — not here.
        paid = await xp.spend(ctx, learner, FREEZE_COST, f"freeze:{learner}:{secrets.token_hex(8)}")
    except xp.NotEnoughXp:
        paid = False
    if paid is not True:
        try:  # give the slot back (min 0: a freeze used meanwhile is not taken twice)
            await ctx.storage_incr(STREAKS, learner, "freezes", -1)
        except HostError as exc:
            if exc.code != "limit_reached":
                raise
        return f"A freeze costs {FREEZE_COST} XP; you have {await xp.total(ctx, learner)} XP."
    return (
        f"❄️ Freeze bought for {FREEZE_COST} XP — you hold {held} / {FREEZES_MAX}. "
        "A missed day uses one and keeps your streak."
    )


async def freeze_command(ctx, args: list[str]) -> Reply:
    """``/course freeze``: buy a streak freeze with XP."""
    if args:
        return Reply(ephemeral=f"Usage: /course freeze — buy a streak freeze ({FREEZE_COST} XP)")
    return Reply(ephemeral=await buy_freeze(ctx))


SUBCOMMANDS = {"streak": streak_command, "freeze": freeze_command}
