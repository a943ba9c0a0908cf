"""Privacy mode, REST side: what a chat lets an app read (its grants, made and taken back by the
group's admins) and a person's service chat with an app that takes messages.

An app hears only what is addressed to it; reading a chat's history takes the chat's grant
``messages.read_history`` (``miniapps.host.grants``). Each change is announced to every member.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api import AUTH, Api
from gateway.keys import MINIAPPS
from gateway.schemas import CONVERSATION, TIMESTAMP, obj

api = Api("app_grants", "What a chat lets an app read (privacy mode)")

GRANT = obj(
    {
        "conversation_id": {"type": "string"},
        "app_id": {"type": "string"},
        "grant": {"enum": ["messages.read_history"]},
        "granted_by": {"type": "string"},
        "granted_at": TIMESTAMP,
    }
)
GRANT_PATH = "/api/v1/conversations/{conversation_id}/apps/{app_id}/grants/{grant}"


def _where(request: web.Request) -> tuple[str, str, str]:
    return (
        request[AUTH].user_id,
        request.match_info["conversation_id"],
        request.match_info["app_id"],
    )


@api.get(
    "/api/v1/conversations/{conversation_id}/apps/{app_id}/grants",
    summary="What this chat lets an app read beyond what is addressed to it",
    response=obj({"grants": {"type": "array", "items": GRANT}}),
    errors=("not_a_member", "app_not_found"),
)
async def list_grants(request: web.Request) -> dict:
    return {"grants": await request.app[MINIAPPS].grants.get_grants(*_where(request))}


@api.route(
    "PUT",
    GRANT_PATH,
    summary="Let an app read this chat's history (group owner/admins; either person of a "
    "direct chat); every member is told",
    response=obj({"grant": GRANT}),
    errors=(
        "invalid_field",
        "not_a_member",
        "not_allowed",
        "app_not_found",
        "app_disabled",
        "app_not_installed",
        "not_requested",
    ),
)
async def grant(request: web.Request) -> dict:
    """Idempotent: granting again keeps the first grant (and announces nothing)."""
    made = await request.app[MINIAPPS].grants.do_grant(
        *_where(request), request.match_info["grant"]
    )
    return {"grant": made}


@api.delete(
    GRANT_PATH,
    status=204,
    summary="Stop an app reading this chat's history; every member is told",
    errors=("invalid_field", "not_a_member", "not_allowed", "app_not_found", "grant_not_found"),
)
async def revoke(request: web.Request) -> None:
    await request.app[MINIAPPS].grants.do_revoke(*_where(request), request.match_info["grant"])


@api.post(
    "/api/v1/miniapps/{app_id}/chat",
    summary="Open my service chat with an app that takes messages (to write to it directly)",
    response=obj({"conversation": CONVERSATION, "created": {"type": "boolean"}}),
    errors=("app_not_found", "app_disabled", "app_unavailable", "no_direct_messages"),
)
async def open_chat(request: web.Request) -> dict:
    """Everything I write there reaches the app (``message.received``, reason ``direct``)."""
    conversation, created = await request.app[MINIAPPS].router.do_open_service_chat(
        request[AUTH].user_id, request.match_info["app_id"]
    )
    return {"conversation": conversation, "created": created}
