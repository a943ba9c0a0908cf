"""Signatures for remote mini-programs, launch tokens for web views and payment events
(PROTOCOL.md).

A request to or from a remote app carries ``X-Aetherial-Timestamp``, ``X-Aetherial-Nonce`` and
``X-Aetherial-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<nonce>.<raw body>")>``.
``verify_request`` rejects a bad signature, a timestamp more than 5 minutes from the clock and a
nonce seen within that window. A payment event's payload carries its own ``signature``
(``sign_event``/``verify_event``). Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from sdk.errors import SignatureError

WINDOW_SECONDS = 300
HEADER_APP = "X-Aetherial-App"
HEADER_TIMESTAMP = "X-Aetherial-Timestamp"
HEADER_NONCE = "X-Aetherial-Nonce"
HEADER_SIGNATURE = "X-Aetherial-Signature"
# Nonces never contain "." so "<timestamp>.<nonce>.<body>" splits one way only.
NONCE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
TIMESTAMP_PATTERN = re.compile(r"^[0-9]{1,12}$")
LAUNCH_TOKEN_FIELDS = ("app_id", "user_id", "conversation_id", "exp", "nonce")
# The environment variable ``Context.verify_payment_event`` falls back to for the app's secret
# when neither an argument nor the runtime (``initialize``'s ``secret``) provides one.
APP_SECRET_ENV = "AETHERIAL_APP_SECRET"
EVENT_SIGNATURE_FIELD = "signature"


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, str):
        secret = secret.encode()
    if not secret:
        raise ValueError("the secret must not be empty")
    return secret


def new_nonce() -> str:
    """A fresh random nonce (22 URL-safe characters)."""
    return secrets.token_urlsafe(16)


def compute_signature(secret: str | bytes, timestamp: str, nonce: str, body: bytes) -> str:
    """The ``X-Aetherial-Signature`` value ``v1=<hex>`` for these parts."""
    message = timestamp.encode() + b"." + nonce.encode() + b"." + body
    return "v1=" + hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def sign_request(
    secret: str | bytes,
    body: bytes,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
    app_id: str | None = None,
) -> dict[str, str]:
    """The headers that sign ``body`` (the raw bytes sent): timestamp (now unless given), a fresh
    nonce (unless given), the signature, and ``X-Aetherial-App`` when ``app_id`` is given."""
    timestamp_text = str(int(time.time()) if timestamp is None else int(timestamp))
    nonce = new_nonce() if nonce is None else nonce
    if not NONCE_PATTERN.match(nonce):
        raise ValueError("a nonce is 16-128 characters of [A-Za-z0-9_-]")
    headers = {
        HEADER_TIMESTAMP: timestamp_text,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: compute_signature(secret, timestamp_text, nonce, body),
    }
    if app_id is not None:
        headers[HEADER_APP] = app_id
    return headers


class NonceCache:
    """Nonces seen recently, each kept until its timestamp leaves the window (so a replay is
    refused for as long as its timestamp would be accepted). Bounded: past ``max_entries`` the
    oldest are dropped — size it above the requests you expect in one window."""

    def __init__(self, *, window: int = WINDOW_SECONDS, max_entries: int = 100_000) -> None:
        self.window = window
        self.max_entries = max_entries
        self._expiries: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiries)

    def _purge(self, now: float) -> None:
        expired = [nonce for nonce, expiry in self._expiries.items() if expiry < now]
        for nonce in expired:
            del self._expiries[nonce]
        while len(self._expiries) >= self.max_entries:
            self._expiries.popitem(last=False)

    def check_and_add(self, nonce: str, timestamp: float, *, now: float | None = None) -> bool:
        """Record ``nonce``; False when it was already seen (a replay), True when new."""
        now = time.time() if now is None else now
        expiry = self._expiries.get(nonce)
        if expiry is not None and expiry >= now:
            return False
        self._purge(now)
        self._expiries[nonce] = max(timestamp, now) + self.window
        return True


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify_request(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    nonce_cache: NonceCache,
    window: int = WINDOW_SECONDS,
) -> None:
    """Check a signed request; return None when it is genuine and fresh.

    Raises ``SignatureError`` with ``.code`` ``bad_signature`` (missing or malformed headers, or
    a signature that does not verify), ``expired`` (timestamp more than ``window`` seconds from
    ``now``) or ``replayed`` (nonce already seen in the window). The nonce is recorded only once
    everything else verified, so forged requests cannot fill the cache.
    """
    timestamp = _header(headers, HEADER_TIMESTAMP)
    nonce = _header(headers, HEADER_NONCE)
    signature = _header(headers, HEADER_SIGNATURE)
    if timestamp is None or nonce is None or signature is None:
        raise SignatureError("bad_signature", "missing X-Aetherial-Timestamp, Nonce or Signature")
    if not TIMESTAMP_PATTERN.match(timestamp) or not NONCE_PATTERN.match(nonce):
        raise SignatureError("bad_signature", "malformed timestamp or nonce")
    expected = compute_signature(secret, timestamp, nonce, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise SignatureError("bad_signature", "the signature does not match the body")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > window:
        raise SignatureError("expired", f"the timestamp is more than {window} s from our clock")
    if not nonce_cache.check_and_add(nonce, int(timestamp), now=now):
        raise SignatureError("replayed", "this nonce was already used")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_launch_token(
    secret: str | bytes,
    payload: Mapping[str, Any],
    *,
    ttl: int = WINDOW_SECONDS,
    now: float | None = None,
) -> str:
    """A web-view launch token ``<base64url(JSON payload)>.<base64url(HMAC-SHA256(secret,
    JSON payload))>``. ``payload`` holds ``app_id``, ``user_id`` (per-app) and
    ``conversation_id``; ``exp`` (now + ``ttl``) and a random ``nonce`` are added when absent."""
    body = dict(payload)
    now = time.time() if now is None else now
    body.setdefault("exp", int(now) + ttl)
    body.setdefault("nonce", new_nonce())
    missing = [name for name in LAUNCH_TOKEN_FIELDS if name not in body]
    if missing:
        raise ValueError(f"a launch token payload needs {missing}")
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(_key(secret), raw, hashlib.sha256).digest()
    return f"{_b64encode(raw)}.{_b64encode(mac)}"


def verify_launch_token(
    token: str,
    secret: str | bytes,
    *,
    now: float | None = None,
    nonce_cache: NonceCache | None = None,
) -> dict[str, Any]:
    """The payload of a genuine, unexpired launch token. Raises ``SignatureError``:
    ``bad_signature`` (malformed or forged), ``expired`` (``exp`` passed), ``replayed`` (its
    nonce is in ``nonce_cache``, when you pass one to make tokens single-use)."""
    if not isinstance(token, str) or token.count(".") != 1:
        raise SignatureError("bad_signature", "a launch token is <payload>.<signature>")
    payload_part, mac_part = token.split(".")
    try:
        raw = _b64decode(payload_part)
        mac = _b64decode(mac_part)
    except (binascii.Error, ValueError):
        raise SignatureError("bad_signature", "the launch token is not base64url") from None
    expected = hmac.new(_key(secret), raw, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise SignatureError("bad_signature", "the launch token's signature does not match")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SignatureError("bad_signature", "the launch token's payload is not JSON") from None
    if not isinstance(payload, dict) or any(f not in payload for f in LAUNCH_TOKEN_FIELDS):
        raise SignatureError("bad_signature", f"a launch token payload has {LAUNCH_TOKEN_FIELDS}")
    exp = payload["exp"]
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise SignatureError("bad_signature", "exp must be a number")
    now = time.time() if now is None else now
    if now >= exp:
        raise SignatureError("expired", "the launch token has expired")
    if nonce_cache is not None and not nonce_cache.check_and_add(
        str(payload["nonce"]), exp, now=now
    ):
        raise SignatureError("replayed", "this launch token was already used")
    return payload


def canonical_event(payload: Mapping[str, Any]) -> bytes:
    """The bytes a payment event's signature covers: ``payload`` without its ``signature``, as
    ``json.dumps(…, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` in UTF-8."""
    unsigned = {key: value for key, value in payload.items() if key != EVENT_SIGNATURE_FIELD}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_event(secret: str | bytes, payload: Mapping[str, Any]) -> str:
    """The ``signature`` of a payment event payload: ``"v1=" + hex(HMAC-SHA256(secret,
    canonical_event(payload)))``. A ``signature`` already in ``payload`` is left out of what is
    signed, so signing a signed payload gives the same value. The host signs
    ``payment.succeeded``/``payment.failed`` this way with the app's own secret; raises
    ``ValueError`` for an empty secret, ``TypeError`` for a payload JSON cannot encode."""
    return "v1=" + hmac.new(_key(secret), canonical_event(payload), hashlib.sha256).hexdigest()


def verify_event(secret: str | bytes, payload: Mapping[str, Any]) -> bool:
    """True when ``payload`` carries a ``signature`` that ``sign_event(secret, payload)``
    reproduces (constant-time comparison); False when the signature is missing, not a string,
    or does not match — a forged or altered event — and for anything that is not a JSON
    object. Raises ``ValueError`` for an empty secret only."""
    key = _key(secret)
    if not isinstance(payload, Mapping):
        return False
    signature = payload.get(EVENT_SIGNATURE_FIELD)
    if not isinstance(signature, str):
        return False
    try:
        expected = sign_event(key, payload).encode()
        given = signature.encode()
    except (TypeError, ValueError):  # not JSON-encodable, or a lone surrogate in the signature
        return False
    return hmac.compare_digest(expected, given)
