"""Reactions: one per (message, user, emoji); every member sees the new per-emoji counts."""

from __future__ import annotations

from messaging.actions.conversations import check_member
from messaging.actions.messages import _get_visible, broadcast_update, check_rate, media_for
from messaging.context import Messaging
from messaging.views import message_view
from storage.errors import AppError
from storage.mongo import now_ms

EMOJI_MAX_CHARS = 16
REACTIONS_PER_USER_MAX = 20


def check_emoji(emoji: str) -> str:
    if (
        not emoji
        or len(emoji) > EMOJI_MAX_CHARS
        or any(c.isspace() for c in emoji)
        or (emoji.isascii() and emoji.isalnum())
    ):
        raise AppError(
            "invalid_emoji",
            "a reaction is one emoji (or a :shortcode:)",
            details={"field": "emoji"},
        )
    return emoji


async def do_react(
    ctx: Messaging, user_id: str, conversation_id: str, message_id: str, emoji: str, *, add: bool
) -> dict:
    membership = await check_member(ctx, conversation_id, user_id)
    message = await _get_visible(ctx, membership, user_id, message_id)
    emoji = check_emoji(emoji)
    if message.get("recalled") or message["type"] == "system":
        raise AppError("not_allowed", "you cannot react to this message", status=403)
    await check_rate(ctx, user_id)
    if add:
        mine = await ctx.reactions.count_user_reactions(message_id, user_id, REACTIONS_PER_USER_MAX)
        if mine >= REACTIONS_PER_USER_MAX:
            raise AppError(
                "too_many_reactions", f"at most {REACTIONS_PER_USER_MAX} reactions per message"
            )
        changed = await ctx.reactions.add_reaction(
            message_id, conversation_id, user_id, emoji, now_ms()
        )
    else:
        changed = await ctx.reactions.remove_reaction(message_id, user_id, emoji)
    if not changed:  # already so: nothing to tell anyone
        summaries = await ctx.reactions.get_summaries([message_id])
        return message_view(message, summaries.get(message_id), await media_for(ctx, [message]))
    stamp = await ctx.conversations.note_change(conversation_id)
    message = (
        await ctx.messages.update_message(
            conversation_id, message_id, {}, {"updated_at_seq": stamp}
        )
        or message
    )
    return await broadcast_update(ctx, membership, message)
