"""Inbound webhooks for mini-programs: a provider (Duffel, Stripe, GitHub …) posts to the URL an
app got from ``webhooks.url``. No login: the signed token in the path is the credential
(``sdk.webhooks``); the delivery is ``miniapps.host.capabilities.webhooks.do_deliver``."""

from __future__ import annotations

from aiohttp import web

from gateway.api import Api
from gateway.keys import MINIAPPS
from gateway.schemas import obj
from miniapps.host.capabilities import webhooks
from sdk.webhooks import WEBHOOK_BODY_MAX_BYTES

api = Api("hooks", "Inbound webhooks for mini-programs (URLs from the webhooks.url capability)")

READ_CHUNK = 64 * 1024


async def read_capped(request: web.Request, limit: int) -> bytes:
    """The body, but never more than ``limit + 1`` bytes of it (one past the limit says it is
    too large; the rest is not read). Not ``request.read()``, whose bound is the much larger
    MAX_BODY_BYTES."""
    body = bytearray()
    while len(body) <= limit:
        chunk = await request.content.read(min(READ_CHUNK, limit + 1 - len(body)))
        if not chunk:
            break
        body += chunk
    return bytes(body)


@api.post(
    "/api/v1/hooks/{token}",
    auth=False,
    summary="A provider's webhook for a mini-program (the signed URL from webhooks.url): "
    "delivered to the app at once; 200 when it handled it, 5xx to retry later",
    response=obj({"ok": {"const": True}}, ["ok"]),
    errors=(
        "not_found",
        "gone",
        "payload_too_large",
        "invalid_body",
        "rate_limited",
        "app_disabled",
        "app_unavailable",
        "app_failed",
    ),
)
async def post_hook(request: web.Request) -> dict:
    """Any body of UTF-8 text up to 256 KiB (JSON, form data …), any content type. The app's
    `webhook.received` handler gets it as `{name, body, headers, received_at, signature}` in the
    chat the URL was made for, as the person who made it; `headers` are `content-type`,
    `user-agent` and those named `x-…` or `…-signature` (lower-cased, at most 20). Answers: 200
    `{"ok": true}` once the app handled it; 404 `not_found` (not a genuine URL); 410 `gone` (the
    app left that chat or no longer declares the webhook: stop sending); 413
    `payload_too_large`; 400 `invalid_body` (not UTF-8); 429 `rate_limited` (per app, with
    Retry-After); 503 `app_disabled` / `app_unavailable` (switched off by an admin, or it cannot
    run here now); 502 `app_failed` (the app failed or timed out: send it again later).
    Deliveries are at least once."""
    raw = await read_capped(request, WEBHOOK_BODY_MAX_BYTES)
    await webhooks.do_deliver(
        request.app[MINIAPPS], request.match_info["token"], raw, request.headers.items()
    )
    return {"ok": True}
