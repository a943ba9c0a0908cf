"""The signed-in user's own profile and sessions."""

from __future__ import annotations

from aiohttp import web

from gateway.api import AUTH, BODY, Api
from gateway.keys import MESSAGING
from gateway.schemas import SESSION, USER, obj, string
from messaging.actions import accounts, auth

api = Api("me", "Your profile and signed-in devices")


@api.get("/api/v1/me", summary="My profile", response=obj({"user": USER}, ["user"]))
async def get_me(request: web.Request) -> dict:
    return {"user": accounts.user_view(request[AUTH].user, private=True)}


@api.patch(
    "/api/v1/me",
    summary="Edit my profile",
    body=obj(
        {
            "display_name": string(accounts.DISPLAY_NAME_MAX),
            "bio": string(accounts.BIO_MAX),
            "avatar_url": {"type": ["string", "null"], "maxLength": accounts.AVATAR_URL_MAX},
            "avatar_media_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 64},
            "locale": {
                "type": ["string", "null"],
                "maxLength": accounts.LOCALE_MAX,
                "pattern": "^" + accounts.LOCALE_RE.pattern + "$",
                "description": "BCP 47 tag (en, en-GB, zh-Hans-CN); null: none (apps get en)",
            },
            "time_zone": {
                "type": ["string", "null"],
                "maxLength": accounts.TIME_ZONE_MAX,
                "description": "IANA time zone name (Europe/Berlin); null: none (apps get UTC)",
            },
        }
    ),
    response=obj({"user": USER}, ["user"]),
    errors=("empty_update", "media_not_found"),
)
async def patch_me(request: web.Request) -> dict:
    """Any of display_name (1-64), bio (<= 280), avatar_media_id (an image you uploaded, or
    null; ``avatar_url`` then serves its thumbnail), avatar_url (http(s) URL or null) or
    locale (a BCP 47 tag such as en-GB, or null: mini-programs format prices and dates in it)
    or time_zone (an IANA name such as Europe/Berlin, or null: mini-programs show times and
    set deadlines in it; anything else is ``invalid_field`` with field time_zone)."""
    user = await accounts.do_update_profile(
        request.app[MESSAGING], request[AUTH].user_id, request[BODY]
    )
    return {"user": accounts.user_view(user, private=True)}


@api.get(
    "/api/v1/me/sessions",
    summary="My signed-in devices",
    response=obj({"sessions": {"type": "array", "items": SESSION}}, ["sessions"]),
)
async def list_sessions(request: web.Request) -> dict:
    return {"sessions": await auth.get_sessions(request.app[MESSAGING], request[AUTH])}


@api.delete(
    "/api/v1/me/sessions/{session_id}",
    status=204,
    summary="Sign a device out",
    errors=("session_not_found",),
)
async def revoke_session(request: web.Request) -> None:
    """Its tokens stop working at once and its open sockets are disconnected."""
    await auth.do_revoke_session(
        request.app[MESSAGING],
        request[AUTH].user_id,
        request.match_info["session_id"],
        "revoked_by_user",
    )
