"""Read state and typing: how far each member has read, who has read a message, who is typing."""

from __future__ import annotations

import time

from messaging.actions.conversations import check_member
from messaging.actions.limits import TYPING_RATE_MAX, TYPING_RATE_WINDOW, check_limit
from messaging.context import Messaging
from messaging.events import event
from storage.errors import AppError

TYPING_INTERVAL = 3.0  # seconds between two "typing" events from one user in one chat


async def do_mark_read(ctx: Messaging, user_id: str, conversation_id: str, seq: int) -> dict:
    """Move my read position forward to ``seq`` (never back, never past the last message)."""
    membership = await check_member(ctx, conversation_id, user_id)
    conversation = await ctx.conversations.get_conversation(conversation_id)
    last_seq = conversation["last_seq"] if conversation else 0
    seq = min(seq, last_seq)
    await ctx.members.mark_read([(conversation_id, user_id, seq)])
    member = await ctx.members.get_member(conversation_id, user_id)
    read = max(member.get("last_read_seq", 0), member.get("joined_seq", 0)) if member else seq
    state = {
        "conversation_id": conversation_id,
        "last_read_seq": read,
        "unread_count": max(0, last_seq - read),
    }
    # My other devices clear their badge.
    await ctx.events.emit(event("conversation.read", {"user": user_id}, state))
    if len(membership.roles) <= ctx.config.read_receipts_max_members:
        others = [u for u in membership.member_ids if u != user_id]
        await ctx.events.emit(
            event(
                "message.read",
                {"users": others},
                {"conversation_id": conversation_id, "user_id": user_id, "seq": read},
            )
        )
    return state


async def get_readers(ctx: Messaging, user_id: str, conversation_id: str, seq: int) -> list[dict]:
    """Who has read up to ``seq`` (not counting the sender), for chats up to the receipt limit."""
    membership = await check_member(ctx, conversation_id, user_id)
    if len(membership.roles) > ctx.config.read_receipts_max_members:
        raise AppError(
            "group_too_large",
            f"read receipts are shown for chats of up to {ctx.config.read_receipts_max_members}",
            status=403,
        )
    message = await ctx.messages.get_page(conversation_id, after=seq - 1, limit=1)
    if not message or message[0]["seq"] != seq:
        raise AppError("message_not_found", "no such message in this chat", status=404)
    sender = message[0]["sender_id"]
    return [
        {"user_id": m["user_id"], "last_read_seq": m.get("last_read_seq", 0)}
        for m in await ctx.members.get_members(conversation_id)
        if m["user_id"] != sender and m.get("last_read_seq", 0) >= seq
    ]


async def do_typing(ctx: Messaging, user_id: str, conversation_id: str, typing: bool) -> bool:
    """Tell the other members; "typing" is throttled per user and chat, "stopped" never is.
    Returns whether an event went out. Every call, ``true`` or ``false``, counts against the
    person's typing budget: alternating the two would otherwise fan out without bound."""
    await check_limit(
        ctx, f"typing:{user_id}", TYPING_RATE_MAX, TYPING_RATE_WINDOW, "typing updates"
    )
    membership = await check_member(ctx, conversation_id, user_id)
    key = (user_id, conversation_id)
    now = time.monotonic()
    if typing:
        if now - ctx.typing_sent.get(key, 0.0) < TYPING_INTERVAL:
            return False
        ctx.typing_sent[key] = now
        if len(ctx.typing_sent) > 100_000:
            ctx.typing_sent.clear()
    else:
        ctx.typing_sent.pop(key, None)
    others = [u for u in membership.member_ids if u != user_id]
    await ctx.events.emit(
        event(
            "typing",
            {"users": others},
            {"conversation_id": conversation_id, "user_id": user_id, "typing": typing},
        )
    )
    return True
