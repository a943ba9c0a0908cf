"""REST routes: Web Push subscriptions (VAPID)."""

from __future__ import annotations

from aiohttp import web

from gateway.api import AUTH, BODY, Api
from gateway.keys import MESSAGING
from gateway.schemas import TIMESTAMP, obj, string
from messaging.actions import push

api = Api("push", "Web Push subscriptions (VAPID)")

ENDPOINT = string(push.ENDPOINT_MAX, 1, description="the push service URL the browser gave")
EXPIRATION = {
    "type": ["integer", "null"],
    "minimum": 0,
    "maximum": 2**53,
    "description": "epoch milliseconds, as PushSubscription.expirationTime (null: none)",
}
SUBSCRIPTION = obj(
    {"id": {"type": "string"}, "endpoint": {"type": "string"}, "created_at": TIMESTAMP},
    ["id", "endpoint", "created_at"],
)


@api.get(
    "/api/v1/push/vapid-public-key",
    auth=False,
    summary="The server's VAPID public key",
    response=obj(
        {
            "public_key": {
                "type": "string",
                "description": "base64url uncompressed P-256 point: PushManager.subscribe's "
                "applicationServerKey",
            }
        },
        ["public_key"],
    ),
    errors=("push_disabled",),
)
async def get_vapid_public_key(request: web.Request) -> dict:
    """Pass it to ``PushManager.subscribe({userVisibleOnly: true, applicationServerKey})``.
    503 ``push_disabled`` when the server has no VAPID key (production without one)."""
    return {"public_key": push.vapid_public_key(request.app[MESSAGING])}


@api.post(
    "/api/v1/push/subscriptions",
    status=201,
    summary="Subscribe this browser to Web Push",
    body=obj(
        {
            "endpoint": ENDPOINT,
            "keys": obj({"p256dh": string(200, 1), "auth": string(100, 1)}, ["p256dh", "auth"]),
            "expiration_time": EXPIRATION,
            "expirationTime": {**EXPIRATION, "description": "the same, as toJSON() names it"},
        },
        ["endpoint", "keys"],
    ),
    response=obj({"subscription": SUBSCRIPTION}, ["subscription"]),
    errors=("invalid_endpoint", "invalid_keys", "invalid_field", "push_disabled"),
)
async def push_subscribe(request: web.Request) -> dict:
    """The body is the browser's ``PushSubscription.toJSON()`` (``expirationTime`` may be sent as
    ``expiration_time``). Subscribing an endpoint again refreshes it; an endpoint another account
    had subscribed becomes yours. The notifications you are not muting then reach this browser
    even with the tab closed."""
    body = request[BODY]
    subscription = await push.do_subscribe(
        request.app[MESSAGING],
        request[AUTH].user_id,
        body["endpoint"],
        body["keys"],
        body.get("expiration_time", body.get("expirationTime")),
    )
    return {"subscription": subscription}


@api.delete(
    "/api/v1/push/subscriptions",
    status=204,
    summary="Unsubscribe this browser from Web Push",
    body=obj({"endpoint": ENDPOINT}, ["endpoint"]),
)
async def push_unsubscribe(request: web.Request) -> None:
    """Idempotent: 204 whether or not the endpoint was subscribed (only your own is removed)."""
    await push.do_unsubscribe(
        request.app[MESSAGING], request[AUTH].user_id, request[BODY]["endpoint"]
    )
