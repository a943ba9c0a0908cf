"""Friends, friend requests, blocks and user search."""

from __future__ import annotations

from aiohttp import web

from gateway.api import AUTH, BODY, QUERY, Api
from gateway.keys import MESSAGING
from gateway.schemas import TIMESTAMP, USER, obj, string
from messaging.actions import contacts, presence
from messaging.context import Messaging
from storage.errors import AppError

api = Api("contacts", "Friends, friend requests, blocks and user search")

USER_ID = string(64, 1)
FRIEND = obj({"user": USER, "since": TIMESTAMP}, ["user", "since"])
REQUEST = obj(
    {"from": USER, "to": USER, "message": {"type": "string"}, "created_at": TIMESTAMP},
    ["from", "to", "message", "created_at"],
)
BLOCK = obj({"user": USER, "created_at": TIMESTAMP}, ["user", "created_at"])
REQUEST_OR_FRIEND = {
    **obj({"request": REQUEST, "friend": FRIEND}),
    "oneOf": [{"required": ["request"]}, {"required": ["friend"]}],
}


def _ids(request: web.Request) -> tuple[Messaging, str, str]:
    """The context, the caller and the ``{user_id}`` of the path."""
    return request.app[MESSAGING], request[AUTH].user_id, request.match_info["user_id"]


# --- friends --------------------------------------------------------------------------------


@api.get(
    "/api/v1/contacts",
    summary="My friends",
    query={
        "limit": {
            "type": "integer",
            "minimum": 1,
            "maximum": contacts.FRIENDS_PAGE_MAX,
            "default": contacts.FRIENDS_PAGE_DEFAULT,
        },
        "before": {"type": "string", "maxLength": 128, "description": "next_before of a page"},
    },
    response=obj(
        {
            "friends": {"type": "array", "items": FRIEND},
            "next_before": {"type": ["string", "null"], "description": "null on the last page"},
        },
        ["friends", "next_before"],
    ),
    errors=("invalid_field", "wrong_type", "unknown_field"),
)
async def list_friends(request: web.Request) -> dict:
    """Most recent friendships first. Pass ``next_before`` back as ``before`` for the next page."""
    query = request[QUERY]
    friends, next_before = await contacts.get_friends(
        request.app[MESSAGING],
        request[AUTH].user_id,
        limit=query.get("limit", contacts.FRIENDS_PAGE_DEFAULT),
        before=query.get("before"),
    )
    return {"friends": friends, "next_before": next_before}


@api.delete(
    "/api/v1/contacts/{user_id}",
    status=204,
    summary="Remove a friend",
    errors=("not_friends",),
)
async def remove_friend(request: web.Request) -> None:
    """Both people stop being friends; each gets ``contact.removed``."""
    await contacts.do_remove_friend(*_ids(request))


# --- friend requests ------------------------------------------------------------------------


@api.post(
    "/api/v1/contacts/requests",
    status=201,
    summary="Send a friend request",
    body=obj(
        {"user_id": USER_ID, "message": string(contacts.REQUEST_MESSAGE_MAX)},
        ["user_id"],
    ),
    response=REQUEST_OR_FRIEND,
    errors=("cannot_add_self", "user_not_found", "blocked", "already_friends", "conflict"),
)
async def send_request(request: web.Request) -> dict | web.Response:
    """201 ``{request}``: a new pending request (the addressee gets ``contact.request``).
    200 ``{request}``: the same request was already pending (sending is idempotent; the first
    message is kept). 200 ``{friend}``: they had already asked you, so this accepted it."""
    body = request[BODY]
    result = await contacts.do_send_request(
        request.app[MESSAGING], request[AUTH].user_id, body["user_id"], body.get("message", "")
    )
    if result.created:
        return {"request": result.request}
    reply = {"friend": result.friend} if result.friend else {"request": result.request}
    return web.json_response(reply, status=200)


@api.get(
    "/api/v1/contacts/requests",
    summary="My pending friend requests",
    response=obj(
        {
            "incoming": {"type": "array", "items": REQUEST},
            "outgoing": {"type": "array", "items": REQUEST},
        },
        ["incoming", "outgoing"],
    ),
)
async def list_requests(request: web.Request) -> dict:
    """Newest first, each list bounded at 500."""
    return await contacts.get_requests(request.app[MESSAGING], request[AUTH].user_id)


@api.post(
    "/api/v1/contacts/requests/{user_id}/accept",
    summary="Accept a friend request",
    response=obj({"friend": FRIEND}, ["friend"]),
    errors=("request_not_found", "already_friends"),
)
async def accept_request(request: web.Request) -> dict:
    """``{user_id}`` is who sent the request. They get ``contact.accepted``; your devices get
    ``contact.added``."""
    return {"friend": await contacts.do_accept_request(*_ids(request))}


@api.post(
    "/api/v1/contacts/requests/{user_id}/decline",
    status=204,
    summary="Decline a friend request",
    errors=("request_not_found",),
)
async def decline_request(request: web.Request) -> None:
    """``{user_id}`` is who sent the request; they get ``contact.request_declined``."""
    await contacts.do_decline_request(*_ids(request))


@api.delete(
    "/api/v1/contacts/requests/{user_id}",
    status=204,
    summary="Cancel my friend request",
    errors=("request_not_found",),
)
async def cancel_request(request: web.Request) -> None:
    """``{user_id}`` is who you asked; they get ``contact.request_cancelled``."""
    await contacts.do_cancel_request(*_ids(request))


# --- blocks ---------------------------------------------------------------------------------


@api.get(
    "/api/v1/contacts/blocks",
    summary="Users I blocked",
    response=obj({"blocks": {"type": "array", "items": BLOCK}}, ["blocks"]),
)
async def list_blocks(request: web.Request) -> dict:
    """Most recent first."""
    return {"blocks": await contacts.get_blocks(request.app[MESSAGING], request[AUTH].user_id)}


@api.route(
    "PUT",
    "/api/v1/contacts/blocks/{user_id}",
    status=204,
    summary="Block a user",
    errors=("cannot_block_self", "user_not_found"),
)
async def block_user(request: web.Request) -> None:
    """Idempotent. Ends a friendship or pending request between you. They can no longer send
    you requests, and you disappear from their search results and profile lookups."""
    await contacts.do_block(*_ids(request))


@api.delete(
    "/api/v1/contacts/blocks/{user_id}",
    status=204,
    summary="Unblock a user",
)
async def unblock_user(request: web.Request) -> None:
    """Idempotent: unblocking someone you have not blocked changes nothing."""
    await contacts.do_unblock(*_ids(request))


# --- finding people -------------------------------------------------------------------------


@api.get(
    "/api/v1/users/search",
    summary="Find users by username prefix",
    query={
        "q": string(contacts.SEARCH_QUERY_MAX, 1),
        "limit": {
            "type": "integer",
            "minimum": 1,
            "maximum": contacts.SEARCH_LIMIT_MAX,
            "default": contacts.SEARCH_LIMIT_DEFAULT,
        },
    },
    response=obj({"users": {"type": "array", "items": USER}}, ["users"]),
    errors=("missing_field", "invalid_field", "wrong_type", "unknown_field"),
)
async def search_users(request: web.Request) -> dict:
    """Case-insensitive prefix match on usernames, in username order; excludes you and anyone
    who blocked you."""
    query = request[QUERY]
    if "q" not in query:
        raise AppError("missing_field", "query.q is required", details={"field": "query.q"})
    users = await contacts.search_users(
        request.app[MESSAGING],
        request[AUTH].user_id,
        query["q"],
        query.get("limit", contacts.SEARCH_LIMIT_DEFAULT),
    )
    return {"users": users}


@api.get(
    "/api/v1/users/{user_id}",
    summary="A user's public profile",
    response=obj(
        {
            "user": USER,
            "relationship": {
                "enum": ["self", "friend", "request_sent", "request_received", "blocked", "none"],
                "description": "blocked: you blocked them",
            },
        },
        ["user", "relationship"],
    ),
    errors=("user_not_found",),
)
async def get_user(request: web.Request) -> dict:
    """Someone who blocked you is reported as not found."""
    return await contacts.get_profile(*_ids(request))


@api.get(
    "/api/v1/presence",
    summary="Online state and last seen of friends",
    # User ids are 24 hex digits. The bound keeps the whole request line under the HTTP
    # parser's 8190 bytes (aiohttp answers longer ones itself, as text, before any route runs).
    query={
        "user_ids": string(
            24 * 200 + 199,
            1,
            pattern="^[0-9A-Fa-f,]+$",
            description="comma-separated user ids, at most 200",
        )
    },
    response=obj(
        {
            "presence": {
                "type": "array",
                "items": obj(
                    {
                        "user_id": {"type": "string"},
                        "online": {"type": "boolean"},
                        "last_seen_at": {"type": ["string", "null"], "format": "date-time"},
                    }
                ),
            }
        }
    ),
)
async def get_presence(request: web.Request) -> dict:
    """Users who are not your friends are left out of the answer (presence is for contacts)."""
    ids = [u for u in request[QUERY].get("user_ids", "").split(",") if u][:200]
    found = await presence.get_presence(request.app[MESSAGING], request[AUTH].user_id, ids)
    return {"presence": found}
