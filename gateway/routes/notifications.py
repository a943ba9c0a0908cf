"""REST routes: the notification center (mentions, replies, requests, calls, money, services)."""

from __future__ import annotations

from aiohttp import web

from gateway.api import AUTH, QUERY, Api
from gateway.keys import MESSAGING, MINIAPPS
from gateway.schemas import obj
from messaging.actions import notifications

api = Api("notifications", "The notification center: what concerns you, in one feed")

NOTIFICATION = obj(
    {
        "id": {"type": "string"},
        "kind": {"enum": list(notifications.KINDS)},
        "title": {"type": "string"},
        "body": {"type": "string"},
        "conversation_id": {"type": "string"},
        "seq": {"type": "integer"},
        "app_id": {"type": "string"},
        "actor_id": {"type": "string"},
        "card": {"type": "object"},
        "created_at": {"type": "string"},
        "read": {"type": "boolean"},
        "silent": {"type": "boolean", "description": "muted conversation or app: no push"},
    },
    ["id", "kind", "title", "body", "created_at", "read", "silent"],
)
UNREAD = obj({"unread": {"type": "integer", "minimum": 0}}, ["unread"])
ERRORS = ("invalid_field", "wrong_type", "unknown_field")


@api.get(
    "/api/v1/notifications",
    summary="My notifications, newest first, and my unread count",
    query={
        "before": {
            "type": "string",
            "maxLength": 64,
            "description": "next_before of the previous page",
        },
        "limit": {
            "type": "integer",
            "minimum": 1,
            "maximum": notifications.LIST_LIMIT_MAX,
            "default": notifications.LIST_LIMIT_DEFAULT,
        },
    },
    response=obj(
        {
            "notifications": {"type": "array", "items": NOTIFICATION},
            "unread": {"type": "integer", "minimum": 0},
            "next_before": {"type": ["string", "null"], "description": "null on the last page"},
        },
        ["notifications", "unread", "next_before"],
    ),
    errors=ERRORS,
)
async def list_notifications(request: web.Request) -> dict:
    """Pass ``next_before`` back as ``before`` for the next (older) page."""
    query = request[QUERY]
    return await notifications.get_notifications(
        request.app[MESSAGING],
        request[AUTH].user_id,
        before=query.get("before"),
        limit=query.get("limit", notifications.LIST_LIMIT_DEFAULT),
    )


@api.post(
    "/api/v1/notifications/read-all",
    summary="Mark all my notifications read",
    response=UNREAD,
)
async def read_all(request: web.Request) -> dict:
    """My devices get ``notification.read`` ``{all: true, unread}`` when something changed."""
    auth = request[AUTH]
    return await notifications.do_mark_all_read(
        request.app[MESSAGING], auth.user_id, session_id=auth.session_id
    )


@api.post(
    "/api/v1/notifications/{notification_id}/read",
    summary="Mark one of my notifications read",
    response=UNREAD,
    errors=("notification_not_found",),
)
async def read_one(request: web.Request) -> dict:
    """Idempotent. My devices get ``notification.read`` ``{ids, unread}`` when it changed."""
    auth = request[AUTH]
    return await notifications.do_mark_read(
        request.app[MESSAGING],
        auth.user_id,
        request.match_info["notification_id"],
        session_id=auth.session_id,
    )


@api.post(
    "/api/v1/notifications/apps/{app_id}/unsubscribe",
    status=204,
    summary="Stop an app's service messages (revokes its notifications consent)",
    errors=("app_not_found",),
)
async def unsubscribe(request: web.Request) -> None:
    """The app's ``notifications.send`` to me answers ``scope_denied`` from now on; my service
    chat with it stays, readable. Subscribing again is granting the ``notifications`` scope
    (``miniapp.consent``)."""
    await request.app[MINIAPPS].do_consent(
        request[AUTH].user_id, request.match_info["app_id"], "notifications", False
    )
