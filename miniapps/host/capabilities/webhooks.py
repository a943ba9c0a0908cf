"""Inbound webhooks: ``webhooks.url`` (the effect) and ``do_deliver`` (a provider's POST to
``/api/v1/hooks/{token}``, gateway/routes/hooks.py).

The URL is stateless (``sdk.webhooks``): its token binds the app, the webhook's name and the
invocation's conversation and per-app user, signed with a platform key every node shares
(``platform_keys`` ``webhook_urls``, made once like the media-URL key), so any node checks any
URL and nothing is stored. A delivery is synchronous: the app's ``webhook.received`` handler
runs in the bound chat, as the bound user, through the invoker's per-app gate (its cap on
concurrent calls, the same as every invocation), and its outcome is the HTTP answer — 200 when
it handled it, 502 ``app_failed`` when it failed, so the provider retries later (deliveries
are at least once). Each app also has a rate of deliveries (``WEBHOOK_RATE_MAX`` per
``WEBHOOK_RATE_WINDOW``, on the platform's rate limiter: shared by the nodes with Redis).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from miniapps.host.sandbox import SandboxError
from sdk.capabilities import expand_reply
from sdk.errors import HostError
from sdk.webhooks import (
    WEBHOOK_EVENT,
    WebhookRefused,
    WebhookTarget,
    app_failed,
    check_body,
    check_webhook_name,
    declared,
    gone,
    make_token,
    pick_headers,
    read_token,
    webhook_path,
    webhook_payload,
)
from storage.errors import AppError
from storage.mongo import now_ms
from storage.secrets import shared_key

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost
    from miniapps.host.registry import AppEntry

log = logging.getLogger(__name__)

WEBHOOK_KEY_NAME = "webhook_urls"  # the platform key (``platform_keys``) that signs the tokens
WEBHOOK_RATE_MAX = 600  # deliveries per app...
WEBHOOK_RATE_WINDOW = 60  # ...per this many seconds; past it 429 (the provider retries)


class WebhookUrls:
    """The key that signs webhook tokens, loaded once from ``platform_keys``, and the
    platform's public address the URLs start with (``PUBLIC_URL``)."""

    def __init__(self, db: Any, public_url: str = "") -> None:
        self._db = db
        self._key: bytes | None = None
        self.public_url = public_url.rstrip("/")

    async def key(self) -> bytes:
        if self._key is None:
            self._key = await shared_key(self._db, WEBHOOK_KEY_NAME)
        return self._key


async def url(host: MiniappHost, call: Call, params: dict) -> dict:
    """``webhooks.url``: the app's URL for the declared webhook ``name``, bound to this
    invocation's conversation and user → ``{url, path}``."""
    manifest = host.apps_catalogue.apps[call.app_id].manifest
    check_webhook_name(manifest, params["name"])
    target = WebhookTarget(call.app_id, params["name"], call.conversation_id, call.app_user_id)
    path = webhook_path(make_token(await host.webhooks.key(), target))
    return {"url": host.webhooks.public_url + path, "path": path}


def _refused(exc: WebhookRefused) -> AppError:
    return AppError(exc.code, exc.message, status=exc.status)


async def check_delivery(host: MiniappHost, token: str) -> tuple[WebhookTarget, AppEntry, str]:
    """The target of a genuine token, its app and the bound person's platform id — when the
    app may still hear it: 404 ``not_found`` (not a genuine token), 410 ``gone`` (the app left
    the server or that chat, or no longer declares the name), 503 ``app_disabled`` (an admin
    switched the app off: the provider retries, and it works again once switched on) or
    ``app_unavailable`` (it cannot run on this server now: a missing requirement)."""
    try:
        target = read_token(await host.webhooks.key(), token)
        entry = host.apps.get(target.app_id)
        if entry is None:
            raise gone("the mini-program is no longer on this server")
        if target.name not in declared(entry.manifest):
            raise gone(f"the mini-program no longer declares {target.name!r}")
    except WebhookRefused as exc:
        raise _refused(exc) from None
    try:
        await host.apps_catalogue.check_active(target.app_id, target.conversation_id)
    except AppError as exc:
        if exc.code in ("app_disabled", "app_unavailable"):  # for now: the provider retries
            raise AppError(exc.code, exc.message, status=503) from None
        raise _refused(gone("the mini-program is no longer in that conversation")) from None
    user_id = await host.identity.app_users.get_user_id(target.app_id, target.user_id)
    if user_id is None:  # a genuine token names a person the app met: never, short of data loss
        raise _refused(gone("the person it was made for is unknown"))
    return target, entry, user_id


async def check_rate(host: MiniappHost, app_id: str) -> None:
    verdict = await host.messaging.limiter.hit(
        f"webhook:{app_id}", WEBHOOK_RATE_MAX, WEBHOOK_RATE_WINDOW
    )
    if not verdict.allowed:
        raise AppError(
            "rate_limited",
            f"too many webhooks for this mini-program; try again in {verdict.retry_after} s",
            status=429,
            details={"retry_after": verdict.retry_after},
            headers={"Retry-After": str(verdict.retry_after)},
        )


async def do_deliver(
    host: MiniappHost, token: str, raw: bytes, headers: Iterable[tuple[str, str]]
) -> None:
    """A provider's POST of ``raw`` (the body, read up to one byte past the limit) with
    ``headers`` to the webhook ``token``: checked (``check_delivery``, the rate, then the body:
    413 ``payload_too_large``, 400 ``invalid_body``), then delivered to the app as the event
    ``webhook.received`` and waited for; returns once the app handled it, else 502
    ``app_failed``."""
    target, entry, user_id = await check_delivery(host, token)
    await check_rate(host, entry.app_id)
    try:
        payload = webhook_payload(
            await host.remote.launch_secret(entry.app_id),
            target.name,
            check_body(raw),
            pick_headers(headers),
            now_ms(),
        )
    except WebhookRefused as exc:
        raise _refused(exc) from None
    try:
        await _invoke(host, entry, target, user_id, payload)
    except WebhookRefused as exc:
        raise _refused(exc) from None


async def _invoke(
    host: MiniappHost, entry: AppEntry, target: WebhookTarget, user_id: str, payload: dict
) -> None:
    """The ``webhook.received`` event, as an invocation by ``user_id`` in the bound chat (a
    call id binds the handler's capability calls to them), waited for like a web view's call;
    any failure of the app is ``app_failed``."""
    remote = entry.kind == "remote"
    call_id = await host.calls.open(
        entry.app_id, user_id, target.user_id, target.conversation_id, 0, remote=remote
    )
    params = {"name": WEBHOOK_EVENT, "payload": payload}
    try:
        # The invoker's context (locale, time zone, settings, roles) and its per-app gate;
        # its ``invoke`` would swallow the outcome, which here is the sender's answer.
        context = await host.invoker._context(
            entry, call_id, user_id, target.user_id, target.conversation_id
        )
        reply = await host.invoker._gated(entry, "event", {**params, "context": context})
        if reply:  # an event answers {}; a remote app's Reply is still applied, as invoke does
            for capability, part in expand_reply(reply):
                await host.serve(entry.app_id, capability, {**part, "call_id": call_id})
    except (SandboxError, HostError, AppError) as exc:
        code = getattr(exc, "app_code", None) or getattr(exc, "code", "app_error")
        log.warning("webhook %s of %s failed (%s): %s", target.name, entry.app_id, code, exc)
        raise app_failed(code) from None
    except Exception:
        log.exception("webhook %s of %s failed", target.name, entry.app_id)
        raise app_failed("internal_error") from None
    finally:
        await host.calls.close(call_id, remote=remote)


EFFECTS = {"webhooks.url": url}
