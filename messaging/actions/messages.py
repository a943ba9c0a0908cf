"""Messages: send (through the group-commit writer), edit, recall, delete for me, history."""

from __future__ import annotations

from typing import Any

from messaging.actions import media as media_actions
from messaging.actions.conversations import check_member
from messaging.actions.stats import note_messages
from messaging.context import Messaging
from messaging.events import event
from messaging.membership import Membership
from messaging.views import MEDIA_TYPES, message_view
from storage.errors import AppError
from storage.mongo import new_id, now_ms

CLIENT_MSG_ID_MAX = 64
MENTIONS_MAX = 50
HISTORY_LIMIT_MAX = 100


async def check_rate(ctx: Messaging, user_id: str) -> None:
    """Chat writes (send, edit, recall, react) share one per-user budget."""
    verdict = await ctx.limiter.hit(
        f"send:{user_id}", ctx.config.send_rate_max, ctx.config.send_rate_window
    )
    if not verdict.allowed:
        raise AppError(
            "rate_limited",
            f"you are sending too fast; try again in {verdict.retry_after} seconds",
            status=429,
            details={"retry_after": verdict.retry_after},
            headers={"Retry-After": str(verdict.retry_after)},
        )


def check_text(ctx: Messaging, text: str) -> str:
    if not text.strip():
        raise AppError("empty_message", "a message needs some text", details={"field": "text"})
    if len(text) > ctx.config.message_max_chars:
        raise AppError(
            "message_too_long",
            f"a message has at most {ctx.config.message_max_chars} characters",
            details={"field": "text", "limit": ctx.config.message_max_chars},
        )
    return text


def check_mentions(membership: Membership, user_id: str, mentions: list[str]) -> tuple[list, bool]:
    """Mentions are member ids, or "all" (owner and admins of groups only)."""
    if len(mentions) > MENTIONS_MAX:
        raise AppError(
            "invalid_field", f"at most {MENTIONS_MAX} mentions", details={"field": "mentions"}
        )
    mention_all = "all" in mentions
    if mention_all and not (membership.type == "group" and membership.is_admin(user_id)):
        raise AppError("not_allowed", "only the owner and admins can mention @all", status=403)
    ids = [m for m in dict.fromkeys(mentions) if m != "all"]
    strangers = [m for m in ids if membership.role_of(m) is None]
    if strangers:
        raise AppError(
            "invalid_field",
            "you can only mention members of this conversation",
            details={"field": "mentions", "user_ids": strangers},
        )
    return ids, mention_all


async def check_send(
    ctx: Messaging, user_id: str, payload: dict[str, Any], *, service_open: bool = False
) -> dict[str, Any]:
    """Validate a send and build the draft the writer stores. ``service_open``: the caller
    found that this service chat's app takes its person's messages (the gateway asks the
    mini-program host), so its person may write in it."""
    membership = await check_member(ctx, payload["conversation_id"], user_id)
    if membership.type == "service" and not service_open:
        raise AppError(
            "not_allowed", "a service chat is read-only: only its app posts here", status=403
        )
    kind = payload.get("type") or "text"
    media_ids: list[str] = []
    if kind in MEDIA_TYPES:
        # The caption is optional and kept as the message's text (search finds it).
        text = check_text(ctx, payload["text"]) if (payload.get("text") or "").strip() else ""
        media_ids = await media_actions.check_media_for_message(
            ctx, user_id, kind, payload.get("media_ids") or []
        )
    elif kind == "text":
        if payload.get("media_ids"):
            raise AppError(
                "invalid_field",
                "media_ids go with type image, file or voice",
                details={"field": "media_ids"},
            )
        text = check_text(ctx, payload.get("text") or "")
    else:
        raise AppError(
            "invalid_field", "type must be text, image, file or voice", details={"field": "type"}
        )
    mentions, mention_all = check_mentions(membership, user_id, payload.get("mentions") or [])
    if membership.type == "direct":
        peer = next((u for u in membership.member_ids if u != user_id), None)
        if peer and await ctx.blocks.is_blocked_either_way(user_id, peer):
            raise AppError("blocked", "you cannot message this user", status=403)
    reply_to = None
    if payload.get("reply_to"):
        target = await ctx.messages.get_message(membership.conversation_id, payload["reply_to"])
        if target is None or target["seq"] <= membership.joined_seq.get(user_id, 0):
            raise AppError(
                "message_not_found",
                "the message you reply to is not in this chat",
                status=404,
                details={"field": "reply_to"},
            )
        reply_to = {"id": target["_id"], "seq": target["seq"], "sender_id": target["sender_id"]}
    draft = {
        "_id": new_id(),
        "conversation_id": membership.conversation_id,
        "sender_id": user_id,
        "client_msg_id": payload["client_msg_id"],
        "type": kind,
        "text": text,
        "reply_to": reply_to,
        "mentions": mentions,
        "mention_all": mention_all,
    }
    if media_ids:
        draft["media_ids"] = media_ids  # an array of scalars: safe on nx-27017 (DESIGN §3)
    return draft


async def do_send(
    ctx: Messaging, user_id: str, payload: dict[str, Any], *, service_open: bool = False
) -> dict[str, Any]:
    """Store and deliver a message; the ack's fields: ``message`` and ``duplicate`` (a retry
    returns the original)."""
    draft = await check_send(ctx, user_id, payload, service_open=service_open)
    await check_rate(ctx, user_id)
    return await do_send_draft(ctx, draft)


async def do_send_draft(ctx: Messaging, draft: dict[str, Any]) -> dict[str, Any]:
    """The write half of ``do_send``, for a draft that passed ``check_send`` and ``check_rate``
    (the gateway checks a slash command first, then offers it to the mini-programs)."""
    if draft.get("media_ids"):
        # Before the commit, so every member who gets the message may also fetch its media.
        await media_actions.do_note_shared(ctx, draft["conversation_id"], draft["media_ids"])
    message, created = await ctx.writer.submit(draft)
    media = await media_for(ctx, [message])
    return {"message": message_view(message, media=media), "duplicate": not created}


async def media_for(ctx: Messaging, messages: list[dict]) -> dict[str, dict]:
    """Signed MEDIA views for the media of these messages (none: no database read)."""
    ids = [i for m in messages if not m.get("recalled") for i in m.get("media_ids") or ()]
    return await media_actions.media_views(ctx, ids) if ids else {}


async def deliver_committed(
    ctx: Messaging, conversation_id: str, messages: list[dict], membership: Membership
) -> None:
    """Called by the writer, in commit order: tell every member's devices."""
    audience = {"users": membership.member_ids}
    media = await media_for(ctx, messages)
    for message in messages:
        view = message_view(message, media=media)
        await ctx.events.emit(event("message.new", audience, {"message": view}))
    await note_messages(ctx, messages)


async def _get_visible(ctx: Messaging, membership: Membership, user_id: str, message_id: object):
    if not isinstance(message_id, str):
        raise AppError("message_not_found", "no such message in this chat", status=404)
    message = await ctx.messages.get_message(membership.conversation_id, message_id)
    if message is None or message["seq"] <= membership.joined_seq.get(user_id, 0):
        raise AppError("message_not_found", "no such message in this chat", status=404)
    return message


async def broadcast_update(ctx: Messaging, membership: Membership, message: dict) -> dict:
    summaries = await ctx.reactions.get_summaries([message["_id"]])
    view = message_view(message, summaries.get(message["_id"]), await media_for(ctx, [message]))
    await ctx.events.emit(
        event("message.updated", {"users": membership.member_ids}, {"message": view})
    )
    return view


async def do_edit(
    ctx: Messaging, user_id: str, conversation_id: str, message_id: str, text: str
) -> dict:
    membership = await check_member(ctx, conversation_id, user_id)
    message = await _get_visible(ctx, membership, user_id, message_id)
    if message["sender_id"] != user_id or message["type"] not in ("text", *MEDIA_TYPES):
        raise AppError(
            "not_allowed", "you can only edit your own messages' text or caption", status=403
        )
    if message.get("recalled"):
        raise AppError("message_recalled", "a recalled message cannot be edited", status=409)
    now = now_ms()
    if now - message["created_at"] > ctx.config.edit_window * 1000:
        raise AppError("edit_window_passed", "this message is too old to edit", status=403)
    text = check_text(ctx, text)
    await check_rate(ctx, user_id)
    stamp = await ctx.conversations.note_change(conversation_id)
    updated = await ctx.messages.update_message(
        conversation_id,
        message_id,
        {"recalled": False},
        {"text": text, "edited_at": now, "updated_at_seq": stamp},
    )
    if updated is None:
        raise AppError("message_recalled", "a recalled message cannot be edited", status=409)
    return await broadcast_update(ctx, membership, updated)


async def do_recall(ctx: Messaging, user_id: str, conversation_id: str, message_id: str) -> dict:
    """Senders recall within RECALL_WINDOW, owners and admins any time: text erased, seq kept."""
    membership = await check_member(ctx, conversation_id, user_id)
    message = await _get_visible(ctx, membership, user_id, message_id)
    if message["type"] == "system":
        raise AppError("not_allowed", "system messages cannot be recalled", status=403)
    now = now_ms()
    own = message["sender_id"] == user_id
    admin = membership.type == "group" and membership.is_admin(user_id)
    if not own and not admin:
        raise AppError("not_allowed", "you can only recall your own messages", status=403)
    if own and not admin and now - message["created_at"] > ctx.config.recall_window * 1000:
        raise AppError(
            "recall_window_passed",
            f"messages can be recalled within {ctx.config.recall_window} seconds",
            status=403,
        )
    if message.get("recalled"):
        return await broadcast_update(ctx, membership, message)
    await check_rate(ctx, user_id)
    stamp = await ctx.conversations.note_change(conversation_id)
    updated = await ctx.messages.update_message(
        conversation_id,
        message_id,
        {},
        {
            "text": "",
            "mentions": [],
            "mention_all": False,
            "reply_to": None,
            "recalled": True,
            "recalled_at": now,
            "recalled_by": user_id,
            "updated_at_seq": stamp,
        },
    )
    return await broadcast_update(ctx, membership, updated)


async def do_delete_for_me(
    ctx: Messaging, user_id: str, conversation_id: str, message_id: str
) -> None:
    membership = await check_member(ctx, conversation_id, user_id)
    message = await _get_visible(ctx, membership, user_id, message_id)
    conversation = await ctx.conversations.get_conversation(conversation_id)
    at_seq = conversation["last_seq"] if conversation else message["seq"]
    if await ctx.hidden.hide(user_id, message, at_seq, now_ms()):
        await ctx.members.note_hidden(conversation_id, user_id, at_seq)
        await ctx.events.emit(
            event(
                "message.deleted",
                {"user": user_id},
                {"conversation_id": conversation_id, "message_id": message_id},
            )
        )


async def views_for_user(
    ctx: Messaging, user_id: str, conversation_id: str, messages: list[dict]
) -> list[dict]:
    """Message views without the ones this user deleted for themself, with reactions."""
    if not messages:
        return []
    hidden = await ctx.hidden.get_hidden_seqs(
        user_id, conversation_id, messages[0]["seq"], messages[-1]["seq"]
    )
    visible = [m for m in messages if m["seq"] not in hidden]
    summaries = await ctx.reactions.get_summaries([m["_id"] for m in visible])
    media = await media_for(ctx, visible)
    return [message_view(m, summaries.get(m["_id"]), media) for m in visible]


async def get_history(
    ctx: Messaging,
    user_id: str,
    conversation_id: str,
    *,
    before: int | None,
    after: int | None,
    limit: int,
) -> dict[str, Any]:
    """A page of history, oldest first. ``before``: the page ending just before that seq;
    ``after``: the page starting just after it; neither: the newest page."""
    membership = await check_member(ctx, conversation_id, user_id)
    limit = max(1, min(limit, HISTORY_LIMIT_MAX))
    floor = membership.joined_seq.get(user_id, 0)
    if after is not None:
        page = await ctx.messages.get_page(
            conversation_id, after=max(after, floor), before=before, limit=limit + 1
        )
        has_more = len(page) > limit
        page = page[:limit]
    else:
        page = await ctx.messages.get_page(
            conversation_id, after=floor, before=before, limit=limit + 1, newest_first=True
        )
        has_more = len(page) > limit
        page = list(reversed(page[:limit]))
    return {
        "messages": await views_for_user(ctx, user_id, conversation_id, page),
        "has_more": has_more,
    }
