"""Presence: online / offline / last seen, shown to friends only, correct with many devices.

A person is online while any of their devices has a socket open; going offline records
``last_seen_at``. Friends get a ``presence`` event on each change; nobody else does, and a
blocked user never sees it (blocking ends the friendship).
"""

from __future__ import annotations

from messaging.actions.contacts import get_friend_ids
from messaging.context import Messaging
from messaging.events import event
from storage.mongo import iso, now_ms


async def _announce(ctx: Messaging, user_id: str, online: bool, last_seen: int | None) -> None:
    friends = await get_friend_ids(ctx, user_id)
    if friends:
        payload = {"user_id": user_id, "online": online, "last_seen_at": iso(last_seen)}
        await ctx.events.emit(event("presence", {"users": friends}, payload))


async def do_device_connected(ctx: Messaging, user_id: str) -> None:
    if await ctx.presence.connected(user_id):
        await _announce(ctx, user_id, True, None)


async def do_device_disconnected(ctx: Messaging, user_id: str) -> None:
    if await ctx.presence.disconnected(user_id):
        now = now_ms()
        await ctx.users.update_user(user_id, {"last_seen_at": now})
        await _announce(ctx, user_id, False, now)


async def get_presence(ctx: Messaging, viewer_id: str, user_ids: list[str]) -> list[dict]:
    """Presence of those of ``user_ids`` who are the viewer's friends (others are left out)."""
    friends = set(await get_friend_ids(ctx, viewer_id))
    visible = [u for u in dict.fromkeys(user_ids) if u in friends]
    online = await ctx.presence.online(visible)
    users = {u["_id"]: u for u in await ctx.users.get_users(visible)}
    return [
        {
            "user_id": u,
            "online": u in online,
            "last_seen_at": None if u in online else iso(users[u].get("last_seen_at")),
        }
        for u in visible
        if u in users
    ]
