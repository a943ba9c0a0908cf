"""Web Push subscriptions, and pushing notifications to browsers whose tab is closed.

Flow: a notification becomes durable → ``do_enqueue_push`` (a ``Messaging.notification_hooks``
hook) writes one ``push_outbox`` row per browser of the user, unless the notification is silent
(a muted conversation or app) → it asks for the due pushes to be sent now
(``WebPush.kick``: the task ``PUSH_SEND_DUE``, run in the gateway or on a Celery worker) →
``do_send_due`` claims each due row, encrypts and posts it (``messaging.webpush``), and deletes
it once the push service took it. 404/410 from the push service: the browser unsubscribed, so
the subscription and its pending pushes go. 429/5xx/unreachable: retried with back-off (the
push service's Retry-After when it gives one), ``MAX_ATTEMPTS`` in all.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from messaging.context import Messaging
from messaging.store.push_outbox import outbox_id
from messaging.store.push_subscriptions import subscription_id
from messaging.webpush import PushResult, WebPushSender
from storage.errors import AppError
from storage.mongo import iso, now_ms

log = logging.getLogger(__name__)

ENDPOINT_MAX = 2048
SUBSCRIPTIONS_PER_USER = 20  # past it, the least recently subscribed browser is dropped
PUSH_TTL = 24 * 3600  # seconds a push service keeps a push for a browser that is offline
MAX_ATTEMPTS = 6
RETRY_FIRST = 5.0  # seconds; doubled after each failed attempt
RETRY_MAX = 3600.0
LEASE = 60.0  # seconds a sender holds a claimed row (well over one request's timeout)
SEND_BATCH = 100
SEND_BATCHES_MAX = 20  # rows left after this many batches wait for the next tick
SEND_CONCURRENCY = 16
# The payload must fit one aes128gcm record (4096 bytes less overhead, RFC 8291 §4): the body
# is shortened until the JSON is at most this long.
PAYLOAD_MAX_BYTES = 3000
TITLE_MAX = 120
BODY_MAX = 500
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _error(code: str, message: str, field: str) -> AppError:
    return AppError(code, message, details={"field": field})


# --- views ----------------------------------------------------------------------------------


def subscription_view(subscription: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": subscription["_id"],
        "endpoint": subscription["endpoint"],
        "created_at": iso(subscription["created_at"]),
    }


def vapid_public_key(ctx: Messaging) -> str:
    return check_push_enabled(ctx).public_key


# --- checks ---------------------------------------------------------------------------------


def check_push_enabled(ctx: Messaging) -> Any:
    if ctx.web_push is None:
        raise AppError(
            "push_disabled",
            "Web Push is not configured on this server (VAPID_PRIVATE_KEY is unset)",
            status=503,
        )
    return ctx.web_push


def _b64url_bytes(value: str, length: int, field: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise _error("invalid_keys", f"{field} must be base64url", field) from None
    if len(raw) != length:
        raise _error("invalid_keys", f"{field} must be {length} bytes (got {len(raw)})", field)
    return value.rstrip("=")


def check_endpoint(ctx: Messaging, endpoint: str) -> str:
    """An https:// URL of a push service. http:// only to loopback and only in development
    (a local push service stub); no addresses of our own network in any case."""
    endpoint = endpoint.strip()
    if len(endpoint) > ENDPOINT_MAX:
        raise _error("invalid_endpoint", f"endpoint is over {ENDPOINT_MAX} characters", "endpoint")
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 -- raises ValueError for a malformed port
    except ValueError:
        raise _error("invalid_endpoint", "endpoint is not a valid URL", "endpoint") from None
    if not host or parts.username or parts.password or parts.fragment:
        raise _error(
            "invalid_endpoint", "endpoint must be a push service URL (https://host/...)", "endpoint"
        )
    loopback = host in _LOOPBACK_HOSTS
    if parts.scheme == "http" and loopback and ctx.config.development:
        return endpoint
    if parts.scheme != "https":
        raise _error(
            "invalid_endpoint",
            "endpoint must start with https:// (http:// to a loopback address only in development)",
            "endpoint",
        )
    if loopback and not ctx.config.development:
        raise _error("invalid_endpoint", "endpoint must be a public push service", "endpoint")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return endpoint
    if not address.is_global and not (loopback and ctx.config.development):
        raise _error("invalid_endpoint", "endpoint must be a public push service", "endpoint")
    return endpoint


def check_subscription(
    ctx: Messaging, endpoint: str, keys: dict[str, str], expiration_time: int | None
) -> tuple[str, str, str, int | None]:
    """Validate what ``PushManager.subscribe()`` gave the browser (``subscription.toJSON()``)."""
    check_push_enabled(ctx)
    endpoint = check_endpoint(ctx, endpoint)
    p256dh = _b64url_bytes(keys["p256dh"], 65, "keys.p256dh")
    if not base64.urlsafe_b64decode(p256dh + "=" * (-len(p256dh) % 4)).startswith(b"\x04"):
        raise _error(
            "invalid_keys", "keys.p256dh must be an uncompressed P-256 point", "keys.p256dh"
        )
    auth = _b64url_bytes(keys["auth"], 16, "keys.auth")
    if expiration_time is not None and expiration_time <= now_ms():
        raise _error(
            "invalid_field",
            "expiration_time is in the past (epoch milliseconds)",
            "expiration_time",
        )
    return endpoint, p256dh, auth, expiration_time


# --- subscribe / unsubscribe ----------------------------------------------------------------


async def do_subscribe(
    ctx: Messaging,
    user_id: str,
    endpoint: str,
    keys: dict[str, str],
    expiration_time: int | None = None,
) -> dict[str, Any]:
    """Save (or refresh) this browser's subscription for ``user_id``. A browser that was
    subscribed for another account is moved to this one, and that account's pushes still
    waiting for it are dropped: they must not show on a browser someone else now uses."""
    endpoint, p256dh, auth, expires_at = check_subscription(ctx, endpoint, keys, expiration_time)
    now = now_ms()
    saved, previous_user = await ctx.push_subscriptions.put_subscription(
        user_id, endpoint, p256dh, auth, expires_at, now
    )
    if previous_user is not None:
        await ctx.push_outbox.delete_for_subscription(saved["_id"], except_user=user_id)
    # Bounded per user: the least recently subscribed browsers go first.
    kept = await ctx.push_subscriptions.get_user_subscriptions(user_id, SUBSCRIPTIONS_PER_USER + 50)
    for extra in kept[SUBSCRIPTIONS_PER_USER:]:
        await _forget(ctx, extra["_id"])
    return subscription_view(saved)


async def do_unsubscribe(ctx: Messaging, user_id: str, endpoint: str) -> None:
    """Forget this browser's subscription, if it is the caller's (idempotent: nothing to forget
    is not an error, so a retried request or a logout on a browser never subscribed works)."""
    sub_id = subscription_id(endpoint.strip())
    if await ctx.push_subscriptions.delete_subscription(sub_id, user_id):
        await ctx.push_outbox.delete_for_subscription(sub_id)


async def _forget(ctx: Messaging, sub_id: str) -> None:
    await ctx.push_subscriptions.delete_subscription(sub_id)
    await ctx.push_outbox.delete_for_subscription(sub_id)


# --- enqueue --------------------------------------------------------------------------------


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def push_payload(notification: dict[str, Any]) -> bytes:
    """What the service worker receives: small JSON for ``showNotification``."""
    conversation_id = notification.get("conversation_id")
    payload = {
        "notification_id": notification["id"],
        "kind": notification.get("kind"),
        "title": _cut(str(notification.get("title") or "Aetherial"), TITLE_MAX),
        "body": _cut(str(notification.get("body") or ""), BODY_MAX),
        # The web client opens a conversation at #c/<id>.
        "url": f"/#c/{conversation_id}" if conversation_id else "/",
    }
    if conversation_id:
        payload["conversation_id"] = conversation_id
    encoded = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    while len(encoded) > PAYLOAD_MAX_BYTES and payload["body"]:
        payload["body"] = _cut(payload["body"], max(1, len(payload["body"]) // 2))
        encoded = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return encoded


async def do_enqueue_push(ctx: Messaging, notification: dict[str, Any]) -> int:
    """The notification hook: one outbox row per browser the user subscribed, then ask for
    them to be sent. Silent notifications (muted conversation or app) are not pushed. Returns
    how many pushes were queued."""
    if notification.get("silent"):
        return 0
    user_id = notification["user_id"]
    now = now_ms()
    subscriptions = await ctx.push_subscriptions.get_user_subscriptions(
        user_id, SUBSCRIPTIONS_PER_USER
    )
    payload = push_payload(notification).decode()
    urgency = "high" if notification.get("kind") in ("missed_call", "mention") else "normal"
    rows = [
        {
            "_id": outbox_id(notification["id"], sub["_id"]),
            "subscription_id": sub["_id"],
            "user_id": user_id,
            "notification_id": notification["id"],
            "payload": payload,
            "urgency": urgency,
            "attempts": 0,
            "due_at": now,
            "created_at": now,
        }
        for sub in subscriptions
        if sub.get("expires_at") is None or sub["expires_at"] > now
    ]
    added = await ctx.push_outbox.add_pushes(rows)
    if added and ctx.web_push is not None:
        ctx.web_push.kick()
    return added


# --- send -----------------------------------------------------------------------------------


def retry_delay(attempts: int, result: PushResult) -> float:
    """Seconds before the next attempt: the push service's Retry-After when it gave one, else
    exponential back-off."""
    delay = result.retry_after
    if delay is None:
        delay = RETRY_FIRST * 2 ** max(0, attempts - 1)
    return min(RETRY_MAX, max(1.0, delay))


async def do_send_due(ctx: Messaging, sender: WebPushSender) -> dict[str, int]:
    """Send every due push (the task ``PUSH_SEND_DUE``); safe to run on any number of nodes
    and workers at once, since each row is claimed by a conditional update."""
    done = {"sent": 0, "gone": 0, "retried": 0, "dropped": 0}
    limit = asyncio.Semaphore(SEND_CONCURRENCY)

    async def one(row: dict[str, Any], subscription: dict[str, Any] | None) -> None:
        async with limit:
            done[await _send_one(ctx, sender, row, subscription)] += 1

    for _ in range(SEND_BATCHES_MAX):
        now = now_ms()
        due = await ctx.push_outbox.get_due(now, SEND_BATCH)
        if not due:
            break
        claimed = [
            row
            for row in due
            if await ctx.push_outbox.claim(row["_id"], row["due_at"], now + int(LEASE * 1000))
        ]
        if not claimed:
            continue  # another sender took this batch; look for more
        subscriptions = {
            sub["_id"]: sub
            for sub in await ctx.push_subscriptions.get_subscriptions(
                list({row["subscription_id"] for row in claimed})
            )
        }
        await asyncio.gather(
            *[one(row, subscriptions.get(row["subscription_id"])) for row in claimed]
        )
    if any(done.values()):
        log.info("web push: %s", {k: v for k, v in done.items() if v})
    return done


async def _send_one(
    ctx: Messaging,
    sender: WebPushSender,
    row: dict[str, Any],
    subscription: dict[str, Any] | None,
) -> str:
    now = now_ms()
    # attempts was counted by the claim
    attempts = row.get("attempts", 0) + 1
    if subscription is None or subscription["user_id"] != row["user_id"]:
        await ctx.push_outbox.delete_push(row["_id"])  # unsubscribed, or now another account's
        return "dropped"
    expires_at = subscription.get("expires_at")
    if expires_at is not None and expires_at <= now:
        await _forget(ctx, subscription["_id"])
        return "gone"
    ttl = PUSH_TTL - (now - row["created_at"]) // 1000
    if ttl <= 0:
        await ctx.push_outbox.delete_push(row["_id"])  # the push service would drop it anyway
        return "dropped"
    result = await sender.send(
        subscription["endpoint"],
        subscription["p256dh"],
        subscription["auth"],
        row["payload"].encode(),
        ttl=int(ttl),
        urgency=row.get("urgency", "normal"),
    )
    if result.delivered:
        await ctx.push_outbox.delete_push(row["_id"])
        return "sent"
    if result.gone:
        await _forget(ctx, subscription["_id"])
        return "gone"
    if result.retryable and attempts < MAX_ATTEMPTS:
        due_at = now_ms() + int(retry_delay(attempts, result) * 1000)
        await ctx.push_outbox.reschedule(row["_id"], due_at, result.error)
        return "retried"
    # 400 (malformed), 403 (VAPID key refused), 413 (too large), or out of attempts.
    log.warning(
        "web push to %s dropped after %d attempt(s): %s",
        _origin(subscription["endpoint"]),
        attempts,
        result.error,
    )
    await ctx.push_outbox.delete_push(row["_id"])
    return "dropped"


def _origin(endpoint: str) -> str:
    """For logs: the push service, not the subscription's secret path."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"
