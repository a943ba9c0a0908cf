"""Weekly leagues per group: a leaderboard card, a weekly cutover at Monday 00:00 in the group's
time zone, and tiers (Bronze → Silver → Gold) that the week's top 3 climb and its bottom 3 leave.

- ``/course league start [IANA zone]`` (a group only): the group's league, in that zone (default
  the starter's ``ctx.time_zone``), once per group (a create-only document); posts the
  leaderboard card and schedules the timer ``league.cutover`` at the next Monday 00:00 in the
  zone (``zoneinfo``; a Monday whose midnight falls in a DST gap starts at its first instant).
- ``/course league``: posts the leaderboard card again (the newest one is the one kept up to
  date).
- ``leagues.on_xp(ctx, learner, amount)`` (called by ``xp.award``): **XP counts in a league when
  it is earned in that group's invocations** — a lesson or quiz opened from the group's web view
  (``ctx.conversation_id`` is the group). XP earned elsewhere (a direct chat, another group)
  counts in no league. The learner joins the league (Bronze) with their first XP there. The
  week is the ISO week of the activity's local date in the group's zone, so XP earned after
  Monday 00:00 counts for the new week even if the cutover timer fires late.
- **Cutover** (timer ``league.cutover``, payload ``{week}``): exactly once per group and week,
  however many firings race (two gateway nodes, a retried firing): (1) the week document goes
  ``open → closed`` with the ranking and the new tiers stored in the same conditional write
  (``expected_version``; the loser of the race re-reads it closed and uses those results); (2)
  the tiers are applied to the league document under the condition ``applied_week < week``
  (conditional write again); (3) only the firing that applied them posts the results card and
  refreshes the leaderboard; (4) every firing schedules the next cutover under the group's one
  timer key (scheduling a key again moves it, so two firings leave one timer).
- **Promotion**: ranked by the week's XP (ties: who joined first). The top 3 with some XP move up a
  tier (Gold stays Gold); the bottom 3 — ranks below the top 3 — move down (Bronze stays).

Data: ``leagues`` key ``<conversation id>``: ``{conversation_id, zone, started_by, started_at,
message_id, applied_week, members: {learner: {name, tier, joined}}}``; ``league_weeks`` key
``<conversation id>:<ISO week, e.g. 2026-W10>``: one integer field per learner
(``xp_<hash of the per-app id>``, ``storage_incr``: concurrent XP never lost) and, once closed,
``{state: "closed", closed_at, results: [{learner, name, xp, rank, tier_before, tier_after}]}``.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import hashlib
import logging
import random
import zoneinfo

import streaks

from sdk import Card, Conflict, Field, HostError, Reply, ScopeDenied

log = logging.getLogger("app.courses.leagues")

LEAGUES, WEEKS = "leagues", "league_weeks"
CUTOVER_TIMER = "league.cutover"
TIERS = ("Bronze", "Silver", "Gold")
TIER_ICONS = {"Bronze": "🥉", "Silver": "🥈", "Gold": "🥇"}
MOVES = 3  # promoted at the top, demoted at the bottom
ROWS_SHOWN = 25
CAS_ATTEMPTS = 20
USAGE = (
    "Usage: /course league — the leaderboard · /course league start [time zone, e.g. Europe/Berlin]"
)
NOT_IN_GROUP = "Leagues run in groups: use /course league in a group chat."


def week_label(day: datetime.date) -> str:
    """The ISO week of a date, ``2026-W10`` (labels sort in time order)."""
    iso = day.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def next_cutover(ms: int, zone: zoneinfo.ZoneInfo) -> int:
    """Epoch ms of the first Monday 00:00 in ``zone`` after the instant ``ms``."""
    today = streaks.local_date(ms, zone)
    monday = today + datetime.timedelta(days=7 - today.weekday())
    return int(datetime.datetime.combine(monday, datetime.time(0), tzinfo=zone).timestamp() * 1000)


def xp_field(learner: str) -> str:
    """The week document's counter field of a learner (field names are ``[A-Za-z0-9_]``)."""
    return "xp_" + hashlib.sha256(learner.encode()).hexdigest()[:24]


def timer_key(conversation_id: str) -> str:
    """The group's one cutover timer key (1-64 characters of ``[A-Za-z0-9_.:-]``)."""
    return "league:" + hashlib.sha256(conversation_id.encode()).hexdigest()[:32]


def ranking(members: dict, week_doc: dict | None) -> list[dict]:
    """The week's results: each member's XP, rank and tier before and after the cutover."""
    week_doc = week_doc or {}
    rows = sorted(
        (
            {
                "learner": learner,
                "name": m["name"],
                "xp": int(week_doc.get(xp_field(learner)) or 0),
                "joined": m.get("joined", 0),
                "tier_before": m.get("tier", TIERS[0]),
            }
            for learner, m in members.items()
        ),
        key=lambda r: (-r["xp"], r["joined"], r["learner"]),
    )
    for index, row in enumerate(rows):
        tier = TIERS.index(row["tier_before"]) if row["tier_before"] in TIERS else 0
        if index < MOVES and row["xp"] > 0:
            tier = min(tier + 1, len(TIERS) - 1)
        elif index >= max(MOVES, len(rows) - MOVES):
            tier = max(tier - 1, 0)
        row["rank"], row["tier_after"] = index + 1, TIERS[tier]
        del row["joined"]
    return rows


def clip_lines(lines: list[str], limit: int = 2000) -> str:
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def leaderboard_card(league: dict, week: str, week_doc: dict | None) -> Card:
    """The group's leaderboard for ``week``: rank, name, tier and XP of each member."""
    rows = ranking(league["members"], week_doc)
    lines = [
        f"{r['rank']}. {r['name']} · {TIER_ICONS[r['tier_before']]} {r['tier_before']}"
        f" · {r['xp']} XP"
        for r in rows[:ROWS_SHOWN]
    ]
    if len(rows) > ROWS_SHOWN:
        lines.append(f"… and {len(rows) - ROWS_SHOWN} more")
    if not rows:
        lines = ["Nobody has earned XP here yet: lessons and quizzes opened from this chat count."]
    return Card(
        title=f"🏆 Weekly league · {week}",
        text=clip_lines(lines),
        fields=[
            Field("Week ends", f"Monday 00:00 · {league['zone']}"),
            Field("Moves", f"Top {MOVES} move up a tier, bottom {MOVES} move down"),
        ],
    )


def results_card(week: str, results: list[dict], new_week: str) -> Card:
    """The week's final ranking, with each member's move."""
    lines = []
    for r in results[:ROWS_SHOWN]:
        move = ""
        if r["tier_after"] != r["tier_before"]:
            up = TIERS.index(r["tier_after"]) > TIERS.index(r["tier_before"])
            move = f" · {r['tier_before']} → {r['tier_after']} {'⬆' if up else '⬇'}"
        lines.append(f"{r['rank']}. {r['name']} · {r['xp']} XP{move}")
    if not results:
        lines.append("Nobody earned XP this week.")
    lines.append(f"Week {new_week} has begun: XP from now on counts for it.")
    return Card(title=f"🏁 League results · {week}", text=clip_lines(lines))


async def member_name(ctx, learner: str) -> str:
    """The learner's display name for the card (theirs when they are the invoker and shared
    it), else a short stand-in."""
    fallback = f"Learner {learner[-4:]}"
    if learner != ctx.user_id:
        return fallback
    try:
        profile = await ctx.get_profile()
    except (ScopeDenied, HostError):
        return fallback
    return str(profile.get("display_name") or fallback)[:40]


async def refresh_card(ctx, league: dict, at: int) -> None:
    """Update the group's leaderboard card in place (a card that is gone is no failure)."""
    if not league.get("message_id"):
        return
    week = week_label(streaks.local_date(at, streaks.zone_of(league["zone"])))
    week_doc = await ctx.storage_get(WEEKS, f"{league['conversation_id']}:{week}")
    try:
        await ctx.update_card(
            league["message_id"],
            leaderboard_card(league, week, week_doc),
            conversation_id=league["conversation_id"],
        )
    except HostError as exc:
        log.warning("leaderboard card not updated (%s)", exc.code)


async def update_league(ctx, conversation_id: str, edit):
    """Conditional write of the league document: ``edit(doc)`` changes a copy and returns an
    outcome; written only if nobody wrote in between, else re-read and redone. Returns
    ``(outcome, doc)``; nothing is written when the copy is unchanged."""
    for attempt in range(CAS_ATTEMPTS):
        current, version = await ctx.storage_get_versioned(LEAGUES, conversation_id)
        if current is None:
            return None, None
        doc = copy.deepcopy(current)
        outcome = edit(doc)
        if doc == current:
            return outcome, current
        changed = {k: v for k, v in doc.items() if current.get(k) != v}
        try:
            await ctx.storage_update(LEAGUES, conversation_id, changed, expected_version=version)
        except Conflict:
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
            continue
        return outcome, doc
    raise Conflict("the league kept changing; try again")


async def on_xp(ctx, learner: str, amount: int) -> None:
    """Count ``amount`` XP for ``learner`` in this group's league, if this invocation is in a
    group that has one; the learner joins it with their first XP."""
    if ctx.conversation_type != "group" or not ctx.conversation_id or amount <= 0:
        return
    league = await ctx.storage_get(LEAGUES, ctx.conversation_id)
    if league is None:
        return
    at = streaks.now_ms()
    week = week_label(streaks.local_date(at, streaks.zone_of(league["zone"])))
    await ctx.storage_incr(WEEKS, f"{ctx.conversation_id}:{week}", xp_field(learner), amount)
    if learner not in league["members"]:
        name = await member_name(ctx, learner)

        def join(doc: dict) -> None:
            doc["members"].setdefault(learner, {"name": name, "tier": TIERS[0], "joined": at})

        _, league = await update_league(ctx, ctx.conversation_id, join)
    await refresh_card(ctx, league, at)


def valid_zone(name: str) -> bool:
    """An IANA time zone name of the tz database (``Europe/Berlin``)."""
    return name in zoneinfo.available_timezones()


async def start_league(ctx, args: list[str]) -> Reply | None:
    """``/course league start [zone]``: this group's league, once."""
    if ctx.conversation_type != "group":
        return Reply(ephemeral=NOT_IN_GROUP)
    if len(args) > 1:
        return Reply(ephemeral=USAGE)
    zone_name = args[0] if args else getattr(ctx, "time_zone", None) or "UTC"
    if not valid_zone(zone_name):
        return Reply(
            ephemeral=f"Unknown time zone {zone_name[:64]!r}: "
            "use an IANA name such as Europe/Berlin."
        )
    zone = zoneinfo.ZoneInfo(zone_name)
    at = streaks.now_ms()
    league = {
        "conversation_id": ctx.conversation_id,
        "zone": zone_name,
        "started_by": ctx.user_id,
        "started_at": at,
        "message_id": None,
        "applied_week": None,
        "members": {},
    }
    try:
        await ctx.storage_update(
            LEAGUES, ctx.conversation_id, league, expected_version=0, upsert=True
        )
    except Conflict:
        return Reply(ephemeral="This chat already has a league: /course league shows it.")
    week = week_label(streaks.local_date(at, zone))
    try:
        await ctx.schedule(
            CUTOVER_TIMER,
            at=next_cutover(at, zone),
            key=timer_key(ctx.conversation_id),
            payload={"week": week},
        )
    except HostError as exc:  # e.g. too_many_timers: no league without its cutover
        await ctx.storage_delete(LEAGUES, ctx.conversation_id)
        return Reply(ephemeral=f"The league could not start ({exc.code}); try again later.")
    message_id = await ctx.send_card(leaderboard_card(league, week, None))
    await ctx.storage_update(LEAGUES, ctx.conversation_id, {"message_id": message_id})
    return None


async def league_command(ctx, args: list[str]) -> Reply | None:
    """``/course league`` (the leaderboard card) and ``/course league start [zone]``."""
    if args and args[0].lower() == "start":
        return await start_league(ctx, args[1:])
    if args:
        return Reply(ephemeral=USAGE)
    if ctx.conversation_type != "group":
        return Reply(ephemeral=NOT_IN_GROUP)
    league = await ctx.storage_get(LEAGUES, ctx.conversation_id)
    if league is None:
        return Reply(
            ephemeral="No league in this chat yet. Start one: /course league start [time zone]"
        )
    at = streaks.now_ms()
    week = week_label(streaks.local_date(at, streaks.zone_of(league["zone"])))
    week_doc = await ctx.storage_get(WEEKS, f"{ctx.conversation_id}:{week}")
    message_id = await ctx.send_card(leaderboard_card(league, week, week_doc))
    await ctx.storage_update(LEAGUES, ctx.conversation_id, {"message_id": message_id})
    return None


async def close_week(ctx, conversation_id: str, week: str, members: dict, at: int) -> list[dict]:
    """``open → closed`` for the group's week, with its results, once: the results as stored by
    whichever firing closed it."""
    key = f"{conversation_id}:{week}"
    for attempt in range(CAS_ATTEMPTS):
        doc, version = await ctx.storage_get_versioned(WEEKS, key)
        if doc is not None and doc.get("state") == "closed":
            return doc["results"]
        results = ranking(members, doc)
        try:
            await ctx.storage_update(
                WEEKS,
                key,
                {"state": "closed", "closed_at": at, "results": results},
                expected_version=version,
                upsert=doc is None,
            )
        except Conflict:
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
            continue
        return results
    raise Conflict("the week kept changing; the firing will be tried again")


async def on_cutover(ctx) -> None:
    """The timer ``league.cutover``: close the week, apply the moves, announce them — once."""
    conversation_id, week = ctx.conversation_id, (ctx.payload or {}).get("week")
    league = await ctx.storage_get(LEAGUES, conversation_id) if conversation_id else None
    if league is None or not isinstance(week, str):
        return
    at = ctx.due_at if isinstance(ctx.due_at, int) else streaks.now_ms()
    results = await close_week(ctx, conversation_id, week, league["members"], at)

    def apply(doc: dict) -> bool:
        if doc.get("applied_week") and doc["applied_week"] >= week:
            return False
        for row in results:
            if row["learner"] in doc["members"]:
                doc["members"][row["learner"]]["tier"] = row["tier_after"]
        doc["applied_week"] = week
        return True

    applied, league = await update_league(ctx, conversation_id, apply)
    if league is None:  # the league document is gone
        return
    zone = streaks.zone_of(league["zone"])
    base = max(at, streaks.now_ms())
    new_week = week_label(streaks.local_date(base, zone))
    # Every firing (re)sets the group's one timer to the same time: two firings leave one.
    await ctx.schedule(
        CUTOVER_TIMER,
        at=next_cutover(base, zone),
        key=timer_key(conversation_id),
        payload={"week": new_week},
    )
    if applied:
        await ctx.send_card(results_card(week, results, new_week))
        await refresh_card(ctx, league, base)


SUBCOMMANDS = {"league": league_command}
TIMERS = {CUTOVER_TIMER: on_cutover}
