"""Card messages: structured messages with buttons, posted by a mini-program's bot identity.

A card goes through the same ordered, exactly-once path as text; its sender is ``app:<app id>``.
Only the app that posted a card may update it; every member then gets ``message.updated``.

A card's ``image`` is an https URL or the id of an image the app uploaded (``media.upload``):
such an id is kept on the message as its ``media_ids`` and shared with the conversation
(``media_refs``) before the write, so every member who gets the card may fetch it; views give
members a signed URL in its place (``messaging.views.message_view``).
"""

from __future__ import annotations

from typing import Any

from messaging.actions import media as media_actions
from messaging.actions.messages import broadcast_update, media_for
from messaging.context import Messaging
from messaging.views import WALLET_TYPES, message_view
from storage.errors import AppError
from storage.mongo import new_id


def bot_id(app_id: str) -> str:
    return f"app:{app_id}"


def card_text(card: dict[str, Any]) -> str:
    """A plain-text rendering for previews, notifications and clients that cannot draw cards."""
    lines = [card.get("title", "")]
    if card.get("text"):
        lines.append(card["text"])
    return "\n".join(line for line in lines if line)


async def do_post_card(
    ctx: Messaging,
    conversation_id: str,
    app_id: str,
    card: dict[str, Any],
    *,
    client_msg_id: str | None = None,
) -> dict:
    media_ids = await media_actions.check_card_image(ctx, app_id, card)
    draft = {
        "_id": new_id(),
        "conversation_id": conversation_id,
        "sender_id": bot_id(app_id),
        "client_msg_id": client_msg_id or f"card:{new_id()}",
        "type": "card",
        "text": card_text(card),
        "card": card,
        "app_id": app_id,
    }
    if media_ids:
        # Before the commit, so every member who gets the card may also fetch its image.
        await media_actions.do_note_shared(ctx, conversation_id, media_ids)
        draft["media_ids"] = media_ids  # an array of scalars: safe on nx-27017 (DESIGN §3)
    message, _ = await ctx.writer.submit(draft)
    return message_view(message, media=await media_for(ctx, [message]))


async def do_post_app_text(ctx: Messaging, conversation_id: str, app_id: str, text: str) -> dict:
    message, _ = await ctx.writer.submit(
        {
            "_id": new_id(),
            "conversation_id": conversation_id,
            "sender_id": bot_id(app_id),
            "client_msg_id": f"text:{new_id()}",
            "type": "text",
            "text": text,
            "app_id": app_id,
        }
    )
    return message_view(message)


async def do_post_wallet_message(
    ctx: Messaging, conversation_id: str, sender_id: str, kind: str, ref_id: str, card: dict
) -> dict:
    """A transfer or red packet, posted as its sender's message; once per ``ref_id`` (a retry
    returns the message already posted)."""
    assert kind in WALLET_TYPES
    message, _ = await ctx.writer.submit(
        {
            "_id": new_id(),
            "conversation_id": conversation_id,
            "sender_id": sender_id,
            "client_msg_id": f"wallet:{kind}:{ref_id}",
            "type": kind,
            "text": card_text(card),
            "card": card,
            "wallet": {"kind": kind, "id": ref_id},
        }
    )
    return message_view(message)


async def do_update_wallet_message(
    ctx: Messaging, conversation_id: str, message_id: str, card: dict
) -> dict | None:
    """Redraw a transfer or red packet card for every member (accepted, grabbed, refunded)."""
    membership = await ctx.membership.get(conversation_id)
    if membership is None:
        return None
    stamp = await ctx.conversations.note_change(conversation_id)
    updated = await ctx.messages.update_message(
        conversation_id,
        message_id,
        {"type": {"$in": list(WALLET_TYPES)}},
        {"card": card, "text": card_text(card), "updated_at_seq": stamp},
    )
    if updated is None:
        return None
    return await broadcast_update(ctx, membership, updated)


async def get_card(ctx: Messaging, conversation_id: str, message_id: str) -> dict | None:
    message = await ctx.messages.get_message(conversation_id, message_id)
    if message is None or message["type"] != "card":
        return None
    return message


async def do_update_card(
    ctx: Messaging, conversation_id: str, app_id: str, message_id: str, card: dict[str, Any]
) -> dict:
    message = await get_card(ctx, conversation_id, message_id)
    if message is None or message.get("app_id") != app_id:
        raise AppError("not_found", "this app posted no such card in this conversation", status=404)
    if message.get("recalled"):  # recalled by a member or hidden by an admin: it stays blank
        raise AppError("message_recalled", "this card was recalled or hidden", status=409)
    media_ids = await media_actions.check_card_image(ctx, app_id, card)
    membership = await ctx.membership.get(conversation_id)
    if membership is None:
        raise AppError("not_found", "no such conversation", status=404)
    if media_ids:
        await media_actions.do_note_shared(ctx, conversation_id, media_ids)
    stamp = await ctx.conversations.note_change(conversation_id)
    updated = await ctx.messages.update_message(
        conversation_id,
        message_id,
        # Not recalled *now*: a recall landing between the read above and this write wins.
        {"app_id": app_id, "recalled": False},
        {"card": card, "text": card_text(card), "media_ids": media_ids, "updated_at_seq": stamp},
    )
    if updated is None:
        raise AppError("message_recalled", "this card was recalled or hidden", status=409)
    return await broadcast_update(ctx, membership, updated)
