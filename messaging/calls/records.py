"""Call records: a call is a message (``type: "call"``) in its conversation.

Posted when the call starts (``outcome: "ringing"``), redrawn when it is answered (``ongoing``)
and when it ends (``completed`` with its duration, ``missed``, ``declined``, ``cancelled``), like
WeChat's one line per call. It goes through the same ordered, exactly-once writer as text, as the
caller's message with the ``client_msg_id`` ``call:<call id>``, so posting it again (a retry, a
recovery after a crash) finds the message already there; the updates are ``message.updated``.
"""

from __future__ import annotations

from typing import Any

from messaging.actions.messages import broadcast_update
from messaging.context import Messaging
from messaging.views import message_view
from storage.mongo import new_id

OUTCOMES = ("ringing", "ongoing", "completed", "missed", "declined", "cancelled")


def duration_seconds(call: dict[str, Any]) -> int:
    if not call.get("answered_at") or not call.get("ended_at"):
        return 0
    return max(0, (call["ended_at"] - call["answered_at"]) // 1000)


def call_summary(call: dict[str, Any]) -> dict[str, Any]:
    """The ``call`` field of a record message."""
    return {
        "call_id": call["_id"],
        "media": call["media"],
        "outcome": call.get("outcome") or ("ongoing" if call.get("answered_at") else "ringing"),
        "duration_seconds": duration_seconds(call),
    }


def record_text(summary: dict[str, Any]) -> str:
    kind = "Video call" if summary["media"] == "video" else "Voice call"
    outcome = summary["outcome"]
    if outcome == "ringing":
        return f"{kind} started"
    if outcome == "ongoing":
        return f"{kind} in progress"
    if outcome == "completed":
        minutes, seconds = divmod(summary["duration_seconds"], 60)
        hours, minutes = divmod(minutes, 60)
        length = f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"
        return f"{kind}, {length}"
    return f"{outcome.capitalize()} {kind[0].lower()}{kind[1:]}"


async def do_record(ctx: Messaging, call: dict[str, Any]) -> dict:
    """Post the call's record, or redraw it with the call's state now (idempotent)."""
    summary = call_summary(call)
    message, created = await ctx.writer.submit(
        {
            "_id": new_id(),
            "conversation_id": call["conversation_id"],
            "sender_id": call["caller_id"],
            "client_msg_id": f"call:{call['_id']}",
            "type": "call",
            "text": record_text(summary),
            "call": summary,
        }
    )
    if created or message.get("call") == summary:
        return message_view(message)
    membership = await ctx.membership.get(call["conversation_id"])
    stamp = await ctx.conversations.note_change(call["conversation_id"])
    updated = await ctx.messages.update_message(
        call["conversation_id"],
        message["_id"],
        {"type": "call"},
        {"call": summary, "text": record_text(summary), "updated_at_seq": stamp},
    )
    if updated is None or membership is None:
        return message_view(updated or message)
    return await broadcast_update(ctx, membership, updated)
