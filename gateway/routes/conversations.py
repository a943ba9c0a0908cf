"""Conversations, members and message history over REST (live traffic goes over Socket.IO)."""

from __future__ import annotations

from aiohttp import web

from gateway.api import AUTH, BODY, QUERY, Api
from gateway.commands import send_message as send_or_route
from gateway.keys import MESSAGING, MINIAPPS
from gateway.schemas import CONVERSATION, MESSAGE, obj, string
from gateway.validation import INT64_MAX
from messaging.actions import conversations, members, messages, read_state
from storage.errors import AppError

api = Api("conversations", "Direct chats and groups, their members and history")

ID = string(64, 1)
CONVERSATION_REPLY = obj({"conversation": CONVERSATION}, ["conversation"])
NOT_MEMBER = ("not_a_member",)
ADMIN_ERRORS = ("not_a_member", "not_a_group", "not_allowed", "member_not_found")


def _cid(request: web.Request) -> str:
    return request.match_info["conversation_id"]


@api.post(
    "/api/v1/conversations",
    status=201,
    summary="Open a direct chat or create a group",
    body=obj(
        {
            "type": {"enum": ["direct", "group"]},
            "user_id": ID,
            "title": string(256),
            "member_ids": {"type": "array", "items": ID, "maxItems": 10000},
        },
        ["type"],
    ),
    response=CONVERSATION_REPLY,
    errors=("user_not_found", "blocked", "cannot_chat_with_self", "group_full"),
)
async def create_conversation(request: web.Request):
    """Direct: ``{"type": "direct", "user_id"}`` — one per pair; asking again answers 200 with the
    same conversation. Group: ``{"type": "group", "title", "member_ids"}`` — you are the owner."""
    body, ctx, me = request[BODY], request.app[MESSAGING], request[AUTH].user_id
    if body["type"] == "direct":
        if "user_id" not in body:
            raise AppError("missing_field", "user_id is required", details={"field": "user_id"})
        conversation, created = await conversations.do_open_direct(ctx, me, body["user_id"])
        view = await conversations.view_for(ctx, me, conversation)
        return web.json_response({"conversation": view}, status=201 if created else 200)
    for field in ("title", "member_ids"):
        if field not in body:
            raise AppError("missing_field", f"{field} is required", details={"field": field})
    conversation = await conversations.do_create_group(ctx, me, body["title"], body["member_ids"])
    return {"conversation": await conversations.view_for(ctx, me, conversation)}


@api.get(
    "/api/v1/conversations",
    summary="My conversations, most recently active first",
    query={
        "before": {"type": "integer", "minimum": 0},
        "limit": {"type": "integer", "minimum": 1, "maximum": 100},
    },
    response=obj(
        {
            "conversations": {"type": "array", "items": CONVERSATION},
            "next_before": {"type": ["integer", "null"]},
        }
    ),
)
async def list_conversations(request: web.Request) -> dict:
    """Each with its last message preview and my unread count. Page with
    ``before=<next_before>``."""
    query = request[QUERY]
    views, next_before = await conversations.get_conversation_list(
        request.app[MESSAGING],
        request[AUTH].user_id,
        before=query.get("before"),
        limit=query.get("limit", 50),
    )
    return {"conversations": views, "next_before": next_before}


@api.get(
    "/api/v1/conversations/{conversation_id}",
    summary="One conversation with its members",
    response=CONVERSATION_REPLY,
    errors=NOT_MEMBER,
)
async def get_conversation(request: web.Request) -> dict:
    view = await conversations.get_conversation_detail(
        request.app[MESSAGING], request[AUTH].user_id, _cid(request)
    )
    return {"conversation": view}


@api.patch(
    "/api/v1/conversations/{conversation_id}",
    summary="Rename a group or change its picture (owner and admins)",
    body=obj(
        {
            "title": string(256),
            "avatar_media_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 64},
        }
    ),
    response=CONVERSATION_REPLY,
    errors=("not_a_member", "not_a_group", "not_allowed", "empty_update", "media_not_found"),
)
async def rename(request: web.Request) -> dict:
    """``title`` and/or ``avatar_media_id`` (an image you uploaded, or null to remove it)."""
    view = await conversations.do_update_group(
        request.app[MESSAGING], request[AUTH].user_id, _cid(request), request[BODY]
    )
    return {"conversation": view}


@api.patch(
    "/api/v1/conversations/{conversation_id}/settings",
    summary="My settings for a conversation (mute)",
    body=obj({"muted": {"type": "boolean"}}, ["muted"]),
    response=CONVERSATION_REPLY,
    errors=NOT_MEMBER,
)
async def settings(request: web.Request) -> dict:
    view = await conversations.do_set_muted(
        request.app[MESSAGING], request[AUTH].user_id, _cid(request), request[BODY]["muted"]
    )
    return {"conversation": view}


@api.post(
    "/api/v1/conversations/{conversation_id}/members",
    summary="Add members to a group (owner and admins)",
    body=obj(
        {"user_ids": {"type": "array", "items": ID, "minItems": 1, "maxItems": 1000}}, ["user_ids"]
    ),
    response=obj({"added": {"type": "array", "items": {"type": "string"}}}, ["added"]),
    errors=(*ADMIN_ERRORS, "user_not_found", "blocked", "group_full"),
)
async def add_members(request: web.Request) -> dict:
    added = await members.do_add_members(
        request.app[MESSAGING], request[AUTH].user_id, _cid(request), request[BODY]["user_ids"]
    )
    return {"added": added}


@api.delete(
    "/api/v1/conversations/{conversation_id}/members/{user_id}",
    status=204,
    summary="Remove a member (or yourself: leave)",
    errors=(*ADMIN_ERRORS, "cannot_leave_direct"),
)
async def remove_member(request: web.Request) -> None:
    """Owners remove anyone, admins remove members. The removed member's devices get
    ``conversation.removed`` and nothing more from this conversation."""
    await members.do_remove_member(
        request.app[MESSAGING], request[AUTH].user_id, _cid(request), request.match_info["user_id"]
    )


@api.post(
    "/api/v1/conversations/{conversation_id}/leave",
    status=204,
    summary="Leave a group (an owner hands it to the longest-standing admin, else member)",
    errors=("not_a_member", "cannot_leave_direct"),
)
async def leave(request: web.Request) -> None:
    await members.do_leave(request.app[MESSAGING], request[AUTH].user_id, _cid(request))


@api.route(
    "PUT",
    "/api/v1/conversations/{conversation_id}/members/{user_id}/role",
    status=204,
    summary="Make a member admin, or an admin member (owner only)",
    body=obj({"role": {"enum": ["admin", "member"]}}, ["role"]),
    errors=ADMIN_ERRORS,
)
async def set_role(request: web.Request) -> None:
    await members.do_set_role(
        request.app[MESSAGING],
        request[AUTH].user_id,
        _cid(request),
        request.match_info["user_id"],
        request[BODY]["role"],
    )


@api.post(
    "/api/v1/conversations/{conversation_id}/owner",
    status=204,
    summary="Transfer ownership (owner only; you become an admin)",
    body=obj({"user_id": ID}, ["user_id"]),
    errors=ADMIN_ERRORS,
)
async def transfer_ownership(request: web.Request) -> None:
    await members.do_transfer_ownership(
        request.app[MESSAGING], request[AUTH].user_id, _cid(request), request[BODY]["user_id"]
    )


@api.get(
    "/api/v1/conversations/{conversation_id}/messages",
    summary="History, oldest first (N <= 100)",
    query={
        "before": {"type": "integer", "minimum": 1},
        "after": {"type": "integer", "minimum": 0},
        "limit": {"type": "integer", "minimum": 1, "maximum": 100},
    },
    response=obj(
        {"messages": {"type": "array", "items": MESSAGE}, "has_more": {"type": "boolean"}}
    ),
    errors=NOT_MEMBER,
)
async def history(request: web.Request) -> dict:
    """``before=SEQ``: the page just before it; ``after=SEQ``: the page just after it; neither:
    the newest page. ``has_more`` says whether the page was cut by ``limit``."""
    query = request[QUERY]
    return await messages.get_history(
        request.app[MESSAGING],
        request[AUTH].user_id,
        _cid(request),
        before=query.get("before"),
        after=query.get("after"),
        limit=query.get("limit", 50),
    )


@api.post(
    "/api/v1/conversations/{conversation_id}/messages",
    summary="Send a text message (same as the Socket.IO event message.send)",
    body=obj(
        {
            "client_msg_id": ID,
            "type": {"const": "text"},
            "text": string(1 << 20),
            "reply_to": ID,
            "mentions": {"type": "array", "items": ID, "maxItems": 100},
            "catch_up_from": {
                "type": "integer",
                "minimum": 0,
                "maximum": INT64_MAX,
                "description": "with a slash command: the seq you had read up to when you "
                "opened this chat; the app catches you up from there (ctx.catch_up_from)",
            },
        },
        ["client_msg_id", "text"],
    ),
    response=obj(
        {"message": MESSAGE, "duplicate": {"type": "boolean"}, "routed_to": {"type": "object"}}
    ),
    errors=("not_a_member", "message_too_long", "empty_message", "rate_limited", "blocked"),
)
async def send_message(request: web.Request) -> dict:
    """Retrying with the same ``client_msg_id`` returns the original (``duplicate: true``). A
    slash command of one of the conversation's apps goes to that app (``routed_to``)."""
    payload = {**request[BODY], "conversation_id": _cid(request)}
    return await send_or_route(
        request.app[MESSAGING], request.app[MINIAPPS], request[AUTH].user_id, payload
    )


@api.get(
    "/api/v1/conversations/{conversation_id}/messages/{seq}/reads",
    summary="Who has read up to this message (chats up to READ_RECEIPTS_MAX_MEMBERS)",
    response=obj({"readers": {"type": "array"}}),
    errors=("not_a_member", "message_not_found", "group_too_large"),
)
async def readers(request: web.Request) -> dict:
    try:
        seq = int(request.match_info["seq"])
    except ValueError:
        raise AppError("wrong_type", "seq must be an integer", details={"field": "seq"}) from None
    if not 1 <= seq <= INT64_MAX:
        raise AppError("invalid_field", "seq is out of range", details={"field": "seq"})
    found = await read_state.get_readers(
        request.app[MESSAGING], request[AUTH].user_id, _cid(request), seq
    )
    return {"readers": found}
