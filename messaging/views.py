"""The JSON shapes of messages and conversations, shared by REST, Socket.IO events and sync."""

from __future__ import annotations

from typing import Any

from storage.mongo import iso

# Messages the wallet posts on a user's behalf: a card to draw, and what it refers to.
WALLET_TYPES = ("transfer", "red_packet")
# Messages carrying media (``media_ids``; the caption is their ``text``).
MEDIA_TYPES = ("image", "file", "voice")


def message_view(
    message: dict[str, Any],
    reactions: list[dict[str, Any]] | None = None,
    media: dict[str, dict[str, Any]] | None = None,
) -> dict:
    """``media``: signed MEDIA views by id (``messaging.actions.media.media_views``) for a
    message with media; without it the message lists only their ids. A card whose ``image``
    is a media id (an app's upload) shows a signed URL there, and the MEDIA as
    ``image_media``; without its signed view the image is left out (an id is no URL)."""
    view = {
        "id": message["_id"],
        "conversation_id": message["conversation_id"],
        "seq": message["seq"],
        "sender_id": message["sender_id"],
        "client_msg_id": message["client_msg_id"],
        "type": message["type"],
        "text": message.get("text", ""),
        "reply_to": message.get("reply_to"),
        "mentions": message.get("mentions", []),
        "mention_all": bool(message.get("mention_all")),
        "created_at": iso(message["created_at"]),
        "edited_at": iso(message.get("edited_at")),
        "recalled": bool(message.get("recalled")),
        "version": message.get("version", 1),
        "reactions": reactions or [],
    }
    if message.get("system"):
        view["system"] = message["system"]
    if message.get("moderated"):  # hidden by an administrator (text blanked, like a recall)
        view["moderated"] = True
    if "streaming" in message:  # an app's streamed text: true while it is being written
        view["streaming"] = bool(message["streaming"])
    if message["type"] == "card":
        # A recalled or hidden card is blanked like text: its content (and buttons) go too.
        card = None if message.get("recalled") else message.get("card")
        view["card"] = _card_with_media(card, message.get("media_ids") or (), media or {})
        view["app_id"] = message.get("app_id")
    elif message["type"] in WALLET_TYPES:
        view["card"] = message.get("card")
        view["wallet"] = message.get("wallet")
    elif message["type"] == "call":
        view["call"] = message.get("call")
    elif message["type"] in MEDIA_TYPES:
        # A recalled or hidden message loses its media, like its text.
        ids = [] if message.get("recalled") or message.get("moderated") else message["media_ids"]
        view["media"] = [(media or {}).get(i) or {"id": i} for i in ids]
    return view


def _card_with_media(
    card: dict[str, Any] | None, media_ids: Any, media: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    image = card.get("image") if card else None
    if card is None or image not in media_ids:
        return card  # no image, or an https URL the app gave
    card = dict(card)
    signed = media.get(image)
    if signed is None:
        del card["image"]
    else:
        card["image"] = signed["url"]
        card["image_media"] = signed
    return card


def preview_view(preview: dict[str, Any] | None) -> dict[str, Any] | None:
    if not preview:
        return None
    return {**preview, "created_at": iso(preview["created_at"])}


def conversation_view(
    conversation: dict[str, Any], member: dict[str, Any], *, peer: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A conversation as one member sees it: their role, unread count and read position."""
    last_seq = conversation.get("last_seq", 0)
    last_read = max(member.get("last_read_seq", 0), member.get("joined_seq", 0))
    view = {
        "id": conversation["_id"],
        "type": conversation["type"],
        "title": conversation.get("title") or (peer or {}).get("display_name", ""),
        "created_at": iso(conversation["created_at"]),
        "updated_at": iso(conversation["updated_at"]),
        "last_seq": last_seq,
        "last_message": preview_view(conversation.get("last_message")),
        "member_count": conversation.get("member_count", 0),
        "my_role": member["role"],
        "last_read_seq": last_read,
        "joined_seq": member.get("joined_seq", 0),
        "unread_count": max(0, last_seq - last_read),
        "muted": bool(member.get("muted")),
    }
    if conversation.get("avatar_url"):  # a group's picture (direct chats show the peer's)
        view["avatar_url"] = conversation["avatar_url"]
    if peer is not None:
        view["peer"] = peer
    return view
