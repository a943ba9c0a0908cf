"""Inbound webhooks: a provider (Duffel, Stripe, GitHub …) calls a mini-program back.

An app declares its webhooks by name in its manifest (``"webhooks": ["duffel"]``, with the
``webhooks.url`` permission and ``webhook.received`` in ``events.accepts``) and asks for the
address to give the provider with ``ctx.webhook_url("duffel")`` (``webhooks.url``). The address
is ``<PUBLIC_URL>/api/v1/hooks/<token>``; the token binds the app, the name, and the
conversation and (per-app) user of the invocation that asked, signed by the host:

    token = base64url(JSON [app_id, name, conversation_id, user_id]) "." base64url(HMAC-SHA256(
            host key, "aetherial-webhook\\0" + that JSON))

It is **stateless** (nothing is stored: the same inputs give the same URL, on every node) and
cannot be forged or altered (another chat, another name) without the host's key, which no app
ever gets. It never expires: an app stops a webhook by no longer declaring the name, and it
stops for a chat when the app is removed from that chat. Its parts are readable — they name the
app, the chat and a per-app user id, never a platform user id.

A ``POST`` to the address is delivered **synchronously**, the same way by the host
(``POST /api/v1/hooks/{token}``) and the simulator (``sim.post_webhook``), with these answers:

- a token that is malformed or does not verify: 404 ``not_found``;
- the app is gone from the server or that chat, or no longer declares the name: 410 ``gone``;
- a body over ``WEBHOOK_BODY_MAX_BYTES`` (256 KiB), or an event over ``WEBHOOK_EVENT_MAX_BYTES``
  once encoded: 413 ``payload_too_large``; a body that is not UTF-8: 400 ``invalid_body``;
- otherwise the app's ``@app.event("webhook.received")`` handler runs in the bound chat, as the
  bound user, with ``ctx.payload`` = ``{name, body, headers, received_at, signature}``
  (``webhook_payload``): the sender gets 200 ``{"ok": true}`` once the handler returned, 502
  ``app_failed`` when it raised, timed out or the app was down — so a provider retries later.

Deliveries are therefore at least once (a provider retries on a 5xx or a lost answer, and may
send the same event twice anyway): make the handler idempotent by the provider's own event id.
Anyone who learns the URL can post to it: check the provider's own signature header
(``headers["x-…-signature"]``) with the secret it gave you (an app setting) before trusting the
body. ``signature`` is the host's, as on every host event (``sdk.signing.verify_event`` with the
app's secret): it proves the host delivered the payload, not who sent it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from sdk._capability_services import (
    WEBHOOK_EVENT,
    WEBHOOK_NAME_PATTERN,
    WEBHOOK_PERMISSION,
    WEBHOOKS_MAX,
)
from sdk.errors import HostError
from sdk.signing import sign_event

__all__ = [
    "WEBHOOKS_MAX",
    "WEBHOOK_BODY_MAX_BYTES",
    "WEBHOOK_EVENT",
    "WEBHOOK_EVENT_MAX_BYTES",
    "WEBHOOK_HEADERS_MAX",
    "WEBHOOK_NAME_PATTERN",
    "WEBHOOK_PATH_PREFIX",
    "WEBHOOK_PERMISSION",
    "WebhookRefused",
    "WebhookTarget",
    "check_body",
    "check_webhook_name",
    "declared",
    "make_token",
    "pick_headers",
    "read_token",
    "token_of",
    "webhook_path",
    "webhook_payload",
]

WEBHOOK_PATH_PREFIX = "/api/v1/hooks/"
WEBHOOK_BODY_MAX_BYTES = 256 * 1024  # the raw body a provider may post
WEBHOOK_HEADERS_MAX = 20  # headers handed to the app, the first ones kept
# The event as it travels to the app (compact JSON): a body of control characters grows six-fold
# when escaped, and a host → app request must fit one protocol line (1 MiB) with its context.
WEBHOOK_EVENT_MAX_BYTES = 768 * 1024
WEBHOOK_TOKEN_MAX = 1024  # characters; a genuine token is far shorter
_KEPT_HEADERS = frozenset({"content-type", "user-agent"})
_MAC_CONTEXT = b"aetherial-webhook\0"


class WebhookTarget(NamedTuple):
    """What a webhook token binds: the app, the webhook's name, the conversation and the
    per-app id of the user of the invocation that asked for it."""

    app_id: str
    name: str
    conversation_id: str
    user_id: str


class WebhookRefused(Exception):
    """A delivery refused or failed: the HTTP ``status`` and ``code`` the sender gets."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found() -> WebhookRefused:
    # One answer for every bad token: no hint of which part was wrong.
    return WebhookRefused(404, "not_found", "no such webhook")


def gone(why: str) -> WebhookRefused:
    return WebhookRefused(410, "gone", f"this webhook is gone: {why}")


def app_failed(why: str) -> WebhookRefused:
    return WebhookRefused(502, "app_failed", f"the mini-program did not handle it ({why}); retry")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, raw: bytes) -> bytes:
    if not key:
        raise ValueError("the webhook key must not be empty")
    return hmac.new(key, _MAC_CONTEXT + raw, hashlib.sha256).digest()


def make_token(key: bytes, target: WebhookTarget) -> str:
    """The token of ``target`` under the host's ``key``: deterministic (same inputs, same
    token), ``[A-Za-z0-9_-]`` and one ``.``."""
    raw = json.dumps(list(target), separators=(",", ":"), ensure_ascii=False).encode()
    return f"{_b64encode(raw)}.{_b64encode(_mac(key, raw))}"


def read_token(key: bytes, token: object) -> WebhookTarget:
    """What a genuine token binds; ``WebhookRefused`` 404 ``not_found`` for anything else
    (malformed, not base64url, a signature that does not verify, not four strings)."""
    if not isinstance(token, str) or len(token) > WEBHOOK_TOKEN_MAX or token.count(".") != 1:
        raise not_found()
    payload_part, mac_part = token.split(".")
    try:
        raw, mac = _b64decode(payload_part), _b64decode(mac_part)
    except (binascii.Error, ValueError):
        raise not_found() from None
    if not hmac.compare_digest(_mac(key, raw), mac):
        raise not_found()
    try:
        parts = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise not_found() from None
    if not isinstance(parts, list) or len(parts) != 4 or not all(isinstance(p, str) for p in parts):
        raise not_found()
    return WebhookTarget(*parts)


def webhook_path(token: str) -> str:
    """The path a token is posted to: ``/api/v1/hooks/<token>``."""
    return WEBHOOK_PATH_PREFIX + token


def token_of(url_or_path: str) -> str | None:
    """The token of a webhook URL or path (``https://chat.example.com/api/v1/hooks/<token>``
    or ``/api/v1/hooks/<token>``), None when it is not one."""
    path = urlsplit(url_or_path).path if "://" in url_or_path else url_or_path.split("?")[0]
    if not path.startswith(WEBHOOK_PATH_PREFIX):
        return None
    token = path[len(WEBHOOK_PATH_PREFIX) :]
    return token if token and "/" not in token else None


def declared(manifest: dict[str, Any]) -> list[str]:
    """The webhook names the manifest declares (``webhooks``)."""
    return list(manifest.get("webhooks") or [])


def check_webhook_name(manifest: dict[str, Any], name: str) -> None:
    """``webhooks.url``'s check beyond its params schema: ``name`` is declared in the
    manifest's ``webhooks``, else ``HostError`` ``unknown_webhook``."""
    if name not in declared(manifest):
        raise HostError(
            f"{name!r} is not declared in this app's manifest webhooks", code="unknown_webhook"
        )


def check_body(raw: bytes) -> str:
    """The posted body as text: 413 ``payload_too_large`` past ``WEBHOOK_BODY_MAX_BYTES``, 400
    ``invalid_body`` when it is not UTF-8 (``WebhookRefused``)."""
    if len(raw) > WEBHOOK_BODY_MAX_BYTES:
        raise WebhookRefused(
            413, "payload_too_large", f"a webhook body is at most {WEBHOOK_BODY_MAX_BYTES} bytes"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRefused(400, "invalid_body", "a webhook body must be UTF-8 text") from None


def pick_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The request headers the app gets: ``content-type``, ``user-agent`` and those whose name
    starts with ``x-`` or ends with ``-signature`` (a provider's signature and event ids), names
    lower-cased, repeats joined with ``", "``, the first ``WEBHOOK_HEADERS_MAX`` names kept."""
    picked: dict[str, str] = {}
    for name, value in headers:
        lowered = name.lower()
        kept = lowered in _KEPT_HEADERS or lowered.startswith("x-")
        if not (kept or lowered.endswith("-signature")):
            continue
        if lowered in picked:
            picked[lowered] += ", " + value
        elif len(picked) < WEBHOOK_HEADERS_MAX:
            picked[lowered] = value
    return picked


def webhook_payload(
    secret: str | bytes, name: str, body: str, headers: dict[str, str], received_at: int
) -> dict[str, Any]:
    """The ``webhook.received`` payload, signed with the app's ``secret`` like every host
    event (``sdk.signing.sign_event``): ``{name, body, headers, received_at (epoch ms),
    signature}``. 413 ``payload_too_large`` (``WebhookRefused``) when it would exceed
    ``WEBHOOK_EVENT_MAX_BYTES`` as compact JSON."""
    payload: dict[str, Any] = {
        "name": name,
        "body": body,
        "headers": headers,
        "received_at": received_at,
    }
    size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
    if size > WEBHOOK_EVENT_MAX_BYTES:
        raise WebhookRefused(
            413,
            "payload_too_large",
            f"the webhook's body and headers are more than {WEBHOOK_EVENT_MAX_BYTES} bytes "
            "once encoded",
        )
    payload["signature"] = sign_event(secret, payload)
    return payload
