"""REST routes: Search: messages, people, conversations and apps."""

from __future__ import annotations

from aiohttp import web

from gateway.api import AUTH, QUERY, Api
from gateway.keys import MESSAGING, MINIAPPS
from gateway.schemas import obj, string
from messaging.actions import search
from storage.errors import AppError

api = Api("search", "Search: messages, people, conversations and apps")

RESULT = obj(
    {
        "type": {"enum": ["message", "person", "conversation", "app"]},
        "conversation_id": {"type": "string", "description": "message: where to jump"},
        "seq": {"type": "integer", "description": "message: its seq in that conversation"},
        "message": {"type": "object", "description": "message: the message object"},
        "snippet": {"type": "string", "description": "message: the text around the match"},
        "highlights": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
            "description": "message: [start, end) of each match in snippet, in UTF-16 code "
            "units (JavaScript string offsets)",
        },
        "user": {"type": "object", "description": "person"},
        "conversation": {"type": "object", "description": "conversation: as in my list"},
        "app": obj(
            {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "description": {"type": "string"},
            },
            ["id", "name", "description"],
        ),
    },
    ["type"],
)


@api.get(
    "/api/v1/search",
    summary="Search messages, people, conversations or apps",
    query={
        "q": string(search.Q_MAX, description="what to find (required, not blank)"),
        "type": {"enum": list(search.TYPES), "default": "messages"},
        "conversation_id": string(64, 1, description="messages: only in this conversation"),
        "before": string(256, 1, description="next_before of the previous page"),
        "limit": {
            "type": "integer",
            "minimum": 1,
            "maximum": search.LIMIT_MAX,
            "default": search.LIMIT_DEFAULT,
        },
    },
    response=obj(
        {
            "results": {"type": "array", "items": RESULT},
            "next_before": {"type": ["string", "null"], "description": "null on the last page"},
        },
        ["results", "next_before"],
    ),
    errors=(
        "missing_field",
        "invalid_field",
        "wrong_type",
        "unknown_field",
        "not_a_member",
    ),
)
async def search_anything(request: web.Request) -> dict:
    """Messages (in conversations I belong to, from when I joined; newest first; with a
    snippet and highlights), people (my contacts first, then usernames), my conversations by
    title, or mini-programs by name and description. Words match as prefixes (``hel`` finds
    "Hello"), letter case and accents do not matter, Chinese, Japanese and Korean text and emoji
    are found as written. Pass ``next_before`` back as ``before`` for the next page."""
    query = request[QUERY]
    kind = query.get("type", "messages")
    parsed = search.check_query(query.get("q"))
    limit = search.check_limit(query.get("limit"))
    before = query.get("before")
    ctx, user_id = request.app[MESSAGING], request[AUTH].user_id
    if "conversation_id" in query and kind != "messages":
        raise AppError(
            "invalid_field",
            "query.conversation_id only goes with type=messages",
            details={"field": "query.conversation_id"},
        )
    if kind == "messages":
        return await search.search_messages(
            ctx,
            user_id,
            parsed,
            conversation_id=query.get("conversation_id"),
            before=before,
            limit=limit,
        )
    if kind == "people":
        return await search.search_people(ctx, user_id, parsed, before=before, limit=limit)
    if kind == "conversations":
        return await search.search_conversations(ctx, user_id, parsed, before=before, limit=limit)
    catalogue = request.app[MINIAPPS].catalogue()
    return search.search_apps(catalogue, parsed, before=before, limit=limit)
