"""The notification center: a persistent feed per user (mentions, replies, friend requests,
missed calls, money, payment results, service messages), its unread count and read marks.

Every source calls ``do_notify_many``/``do_notify``: the notifications are written first, then
``notification.new`` goes to the user's devices and the ``notification_hooks`` (Web Push) run.
Unread is counted from the documents (see ``messaging.store.notifications``), never kept as a
counter, so it stays right whatever runs concurrently.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from messaging.context import Messaging
from messaging.events import event
from storage.errors import AppError
from storage.mongo import iso, new_id, now_ms

log = logging.getLogger(__name__)

KINDS = (
    "mention",
    "reply",
    "friend_request",
    "missed_call",
    "money_received",
    "payment_result",
    "service",
)
LIST_LIMIT_DEFAULT = 20
LIST_LIMIT_MAX = 100
READ_IDS_MAX = 100
SYNC_NOTIFICATIONS_MAX = 100
# Notification ids are ObjectIds made on any node: two made in the same second on different
# nodes are not ordered by time. Sync therefore looks back this far before the device's newest
# notification and lets the client drop the ones it has (by id).
SYNC_MARGIN_MS = 5_000
TITLE_MAX = 120
BODY_MAX = 280
_ID = re.compile(r"^[0-9a-f]{24}$")


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def notification_view(doc: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": doc["_id"],
        "kind": doc["kind"],
        "title": doc["title"],
        "body": doc["body"],
        "created_at": iso(doc["created_at"]),
        "read": bool(doc.get("read")),
        "silent": bool(doc.get("silent")),
    }
    for name in ("conversation_id", "seq", "app_id", "actor_id", "card"):
        if doc.get(name) is not None:
            view[name] = doc[name]
    return view


def draft(
    user_id: str,
    kind: str,
    *,
    title: str,
    body: str = "",
    source: str | None = None,
    silent: bool = False,
    **refs: Any,
) -> dict[str, Any]:
    """A notification document to store; ``refs``: conversation_id, seq, app_id, actor_id,
    card. ``source`` makes it idempotent: one notification per (user, source)."""
    assert kind in KINDS, kind
    notification_id = new_id()
    doc = {
        "_id": notification_id,
        "user_id": user_id,
        "kind": kind,
        "title": clip(title, TITLE_MAX),
        "body": clip(body, BODY_MAX),
        "source": source or notification_id,
        "created_at": now_ms(),
        "read": False,
        "silent": silent,
    }
    doc.update({k: v for k, v in refs.items() if v is not None})
    return doc


async def muted_in(ctx: Messaging, conversation_id: str) -> set[str]:
    """Who muted the conversation (their notifications from it are silent: no push)."""
    return {m["user_id"] for m in await ctx.members.get_members(conversation_id) if m.get("muted")}


async def do_notify_many(ctx: Messaging, drafts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store the drafts (those already stored for their source are skipped), then tell each
    user's devices and run the hooks. Returns the stored ones' views."""
    added = await ctx.notifications.add_notifications(drafts)
    views = []
    for doc in added:
        view = notification_view(doc)
        views.append(view)
        unread = await ctx.notifications.count_unread(doc["user_id"])
        payload = {"notification": view, "unread": unread}
        await ctx.events.emit(event("notification.new", {"user": doc["user_id"]}, payload))
        for hook in list(ctx.notification_hooks):
            try:
                await hook({**view, "user_id": doc["user_id"]})
            except Exception:
                log.exception("a notification hook failed (notification %s)", doc["_id"])
    return views


async def do_notify(ctx: Messaging, user_id: str, kind: str, **fields: Any) -> dict | None:
    """One notification (see ``draft``); None when that source was already notified."""
    views = await do_notify_many(ctx, [draft(user_id, kind, **fields)])
    return views[0] if views else None


# --- the feed ---------------------------------------------------------------------------------


def check_cursor(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _ID.match(value):
        raise AppError(
            "invalid_field",
            f"{field} must be the id of a notification (24 hex digits)",
            details={"field": field},
        )
    return value


def check_limit(value: object) -> int:
    if value is None:
        return LIST_LIMIT_DEFAULT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= LIST_LIMIT_MAX:
        raise AppError(
            "invalid_field",
            f"limit must be an integer from 1 to {LIST_LIMIT_MAX}",
            details={"field": "limit"},
        )
    return value


async def get_notifications(
    ctx: Messaging, user_id: str, *, before: object = None, limit: object = None
) -> dict[str, Any]:
    """A page of my notifications, newest first, with my unread count."""
    cursor = check_cursor(before, "before")
    size = check_limit(limit)
    page = await ctx.notifications.get_page(user_id, before=cursor, limit=size + 1)
    more = len(page) > size
    page = page[:size]
    return {
        "notifications": [notification_view(d) for d in page],
        "unread": await ctx.notifications.count_unread(user_id),
        "next_before": page[-1]["_id"] if more and page else None,
    }


async def get_sync(ctx: Messaging, user_id: str, after: object) -> dict[str, Any]:
    """For ``sync``: notifications newer than the device's newest (``after``), newest first,
    bounded; all of the newest when it names none. May repeat ones the device has (the margin
    above); ``notifications_too_long``: more exist than were returned (page over REST)."""
    cursor = check_cursor(after, "notifications_after")
    if cursor is None:
        page = await ctx.notifications.get_page(
            user_id, before=None, limit=SYNC_NOTIFICATIONS_MAX + 1
        )
    else:
        newest = await ctx.notifications.get_notification(cursor)
        if newest is None or newest["user_id"] != user_id:
            raise notification_not_found("notifications_after")
        since = newest["created_at"] - SYNC_MARGIN_MS
        page = await ctx.notifications.get_since(user_id, since, SYNC_NOTIFICATIONS_MAX + 1)
        page = [d for d in page if d["_id"] != cursor]
    return {
        "notifications": [notification_view(d) for d in page[:SYNC_NOTIFICATIONS_MAX]],
        "notifications_unread": await ctx.notifications.count_unread(user_id),
        "notifications_too_long": len(page) > SYNC_NOTIFICATIONS_MAX,
    }


def notification_not_found(field: str = "id") -> AppError:
    # The same answer for an unknown id and somebody else's: nobody learns another's ids.
    return AppError(
        "notification_not_found", "no such notification", status=404, details={"field": field}
    )


async def check_mark_read(ctx: Messaging, user_id: str, notification_id: object) -> str:
    if not isinstance(notification_id, str) or not _ID.match(notification_id):
        raise notification_not_found()
    doc = await ctx.notifications.get_notification(notification_id)
    if doc is None or doc["user_id"] != user_id:
        raise notification_not_found()
    return notification_id


async def do_mark_read(
    ctx: Messaging, user_id: str, notification_id: object, *, session_id: str | None = None
) -> dict[str, int]:
    """Mark one of my notifications read (again: no change); my other devices are told."""
    checked = await check_mark_read(ctx, user_id, notification_id)
    changed = await ctx.notifications.mark_read(user_id, [checked], now_ms())
    unread = await ctx.notifications.count_unread(user_id)
    if changed:
        await _tell_read(ctx, user_id, {"ids": [checked], "unread": unread}, session_id)
    return {"unread": unread}


async def do_mark_all_read(
    ctx: Messaging, user_id: str, *, session_id: str | None = None
) -> dict[str, int]:
    changed = await ctx.notifications.mark_all_read(user_id, now_ms())
    unread = await ctx.notifications.count_unread(user_id)
    if changed:
        await _tell_read(ctx, user_id, {"all": True, "unread": unread}, session_id)
    return {"unread": unread}


async def _tell_read(
    ctx: Messaging, user_id: str, payload: dict[str, Any], session_id: str | None
) -> None:
    # To every device of the user; ``session_id`` lets the device that asked ignore its echo.
    await ctx.events.emit(
        event("notification.read", {"user": user_id}, {**payload, "session_id": session_id})
    )
