"""Daily counters for the admin charts: messages, new users and active users per UTC day.

Counted as things happen, with one ``$inc`` per commit batch (messages) or signup, and one insert
per user per day for activity — at most once per node, thanks to an in-memory set of the
(day, user) pairs already written. A failure to count is logged, never shown to the user.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from messaging.context import Messaging
from storage.mongo import now_ms

log = logging.getLogger(__name__)

# Messages a person wrote (system messages, app cards and call records are not counted).
NOT_USER_MESSAGES = ("system", "card", "call")


def day_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


async def note_active(ctx: Messaging, user_id: str) -> None:
    day = day_of(now_ms())
    key = (day, user_id)
    if key in ctx.active_seen:
        return
    try:
        if await ctx.daily_active.add_active(day, user_id):
            await ctx.daily_stats.add(day, "active_users")
    except Exception:
        log.warning("counting an active user failed", exc_info=True)
        return
    if any(seen_day != day for seen_day, _ in ctx.active_seen):
        # A new day: forget yesterday's pairs so the set stays one day's users.
        ctx.active_seen = {k for k in ctx.active_seen if k[0] == day}
    ctx.active_seen.add(key)


async def note_messages(ctx: Messaging, messages: list[dict]) -> None:
    """Count a commit's messages. Called on the delivery path, so it only adds to in-memory
    counts; a background task writes them once a second (a crash can lose that second's
    counts)."""
    written = [m for m in messages if m["type"] not in NOT_USER_MESSAGES]
    if not written:
        return
    day = day_of(now_ms())
    ctx.messages_to_count[day] = ctx.messages_to_count.get(day, 0) + len(written)
    ctx.senders_to_count.update(m["sender_id"] for m in written)
    if ctx.stats_flush is None or ctx.stats_flush.done():
        ctx.stats_flush = asyncio.create_task(_flush_later(ctx))


FLUSH_EVERY = 1.0  # seconds of counts gathered into one write


async def _flush_later(ctx: Messaging) -> None:
    await asyncio.sleep(FLUSH_EVERY)
    await flush_counts(ctx)


async def flush_counts(ctx: Messaging) -> None:
    """Write the counts gathered so far (also at shutdown)."""
    while ctx.messages_to_count or ctx.senders_to_count:
        counts, ctx.messages_to_count = ctx.messages_to_count, {}
        senders, ctx.senders_to_count = ctx.senders_to_count, set()
        for day, count in counts.items():
            try:
                await ctx.daily_stats.add(day, "messages", count)
            except Exception:
                log.warning("counting messages failed", exc_info=True)
        for sender in senders:
            await note_active(ctx, sender)


async def note_signup(ctx: Messaging) -> None:
    try:
        await ctx.daily_stats.add(day_of(now_ms()), "new_users")
    except Exception:
        log.warning("counting a signup failed", exc_info=True)


async def get_daily(ctx: Messaging, days: int) -> list[dict]:
    """The last ``days`` UTC days, oldest first, zeros where nothing happened."""
    today = now_ms() // 86_400_000
    names = [day_of((today - back) * 86_400_000) for back in range(days - 1, -1, -1)]
    found = await ctx.daily_stats.get_days(names)
    return [
        {
            "date": name,
            "active_users": int(found.get(name, {}).get("active_users", 0)),
            "messages": int(found.get(name, {}).get("messages", 0)),
            "new_users": int(found.get(name, {}).get("new_users", 0)),
        }
        for name in names
    ]
