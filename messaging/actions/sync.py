"""Sync: what a (re)connecting device missed, from its last seen seq per conversation.

For each conversation the client names, the answer has the messages after its cursor and the
messages at or before it that changed since (edits, recalls, reactions) as full snapshots, plus
the ids it deleted for itself on another device. Conversations it did not name but belongs to are
new to it and come with their messages since joining; ones it named but no longer belongs to (or
that do not exist — non-members learn nothing) are listed as ``removed``.

Past ``SYNC_MAX_MESSAGES`` new messages in one conversation the answer holds the newest ones and
``too_long: true``: the client pages the gap over REST (``before=<first returned seq>``).
Membership changes are system messages, so they arrive as messages. The notification center
rides along: ``notifications`` newer than the device's ``notifications_after`` (bounded,
``notifications_too_long`` past the bound) and ``notifications_unread``.
"""

from __future__ import annotations

from typing import Any

from messaging.actions import notifications
from messaging.actions.conversations import views_for
from messaging.actions.limits import SYNC_RATE_MAX, SYNC_RATE_WINDOW, check_limit
from messaging.actions.messages import views_for_user
from messaging.context import Messaging

# Edits are stamped with the conversation's last seq *before* they were delivered; a few messages
# can be committed in between, so changes are looked up from a little before the cursor. Sending a
# change twice is harmless: it is a full snapshot with a version.
CHANGE_MARGIN = 100


async def do_sync(
    ctx: Messaging, user_id: str, cursors: dict[str, int], *, notifications_after: object = None
) -> dict[str, Any]:
    """``notifications_after``: the id of the newest notification the device has; the answer
    also carries the newer ones (``notifications.get_sync``) and the unread count."""
    # A bad notification cursor is refused before anything is counted against the person.
    notifications.check_cursor(notifications_after, "notifications_after")
    # A sync reads every conversation of the person: bounded per person, over all devices.
    await check_limit(ctx, f"sync:{user_id}", SYNC_RATE_MAX, SYNC_RATE_WINDOW, "sync requests")
    feed = await notifications.get_sync(ctx, user_id, notifications_after)
    limit = ctx.config.sync_max_messages
    memberships = {m["conversation_id"]: m for m in await ctx.members.get_memberships(user_id)}
    conversations = await ctx.conversations.get_conversations(list(memberships))
    views = {v["id"]: v for v in await views_for(ctx, user_id, conversations)}
    result: dict[str, Any] = {}
    for conversation in conversations:
        conversation_id = conversation["_id"]
        member = memberships[conversation_id]
        floor = member.get("joined_seq", 0)
        cursor = max(cursors.get(conversation_id, floor), floor)
        entry: dict[str, Any] = {
            "conversation": views[conversation_id],
            "messages": [],
            "updated": [],
            "deleted": [],
            "too_long": False,
        }
        last_seq = conversation.get("last_seq", 0)
        if last_seq > cursor:
            page = await ctx.messages.get_page(conversation_id, after=cursor, limit=limit + 1)
            if len(page) > limit:
                newest = await ctx.messages.get_page(
                    conversation_id, after=cursor, limit=limit, newest_first=True
                )
                page, entry["too_long"] = list(reversed(newest)), True
            entry["messages"] = await views_for_user(ctx, user_id, conversation_id, page)
        # Unchanged messages carry updated_at_seq 0, so ``since`` starts at 1.
        since = max(1, cursor - CHANGE_MARGIN)
        if conversation_id in cursors and conversation.get("last_change_seq", 0) >= since:
            changed = await ctx.messages.get_changed_since(
                conversation_id, since, up_to=cursor, visible_after=floor, limit=limit
            )
            entry["updated"] = await views_for_user(ctx, user_id, conversation_id, changed)
            # More changes than one answer holds: the client refetches by paging history.
            entry["too_long"] = entry["too_long"] or len(changed) >= limit
        if conversation_id in cursors and member.get("last_hidden_at_seq", -1) >= since:
            entry["deleted"] = await ctx.hidden.get_hidden_since(user_id, conversation_id, since)
        result[conversation_id] = entry
    return {
        "conversations": result,
        "new_conversation_ids": [c for c in memberships if c not in cursors],
        "removed": [c for c in cursors if c not in memberships],
        **feed,
    }
