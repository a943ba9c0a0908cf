"""Web Push: the VAPID key (RFC 8292), payload encryption (RFC 8291, ``aes128gcm``) and the HTTP
request to a browser's push service (RFC 8030).

pywebpush encrypts (``WebPusher.encode``) and py-vapid signs; the request itself goes out on our
own aiohttp session, so sending is async and never blocks the event loop on a thread.

``WebPush`` is what a process that sends pushes attaches to the messaging context
(``Messaging.web_push``): the sender, and how to have the due pushes sent now (the task queue:
in the gateway by default, on a Celery worker with ``TASKS_BACKEND=celery``).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPusher

from storage.config import Config
from storage.errors import ConfigError
from storage.tasks import Kick

log = logging.getLogger(__name__)

KEY_FILE = "vapid_private.pem"
SEND_TIMEOUT = 10.0  # seconds for one push service request
# The VAPID JWT lives 12 h (RFC 8292 allows up to 24 h); one is reused per push service origin
# until an hour before it expires.
JWT_LIFETIME = 12 * 3600
JWT_RENEW_BEFORE = 3600


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _load_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A key as VAPID_PRIVATE_KEY takes it (already checked by ``storage.config``)."""
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
    else:
        scalar = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        key = ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def load_or_create_pem(path: Path) -> ec.EllipticCurvePrivateKey:
    """Read a PEM key file, creating it (mode 0600, a new P-256 key) when absent; the same
    pattern as ``storage.secrets.load_or_create_key``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            return _load_key(path.read_text().strip())
        except (ValueError, TypeError, AssertionError):
            raise ConfigError(f"{path}: not a P-256 private key in PEM form") from None
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    log.info("generated a Web Push (VAPID) key in %s", path)
    return key


def load_vapid_key(config: Config) -> ec.EllipticCurvePrivateKey | None:
    """VAPID_PRIVATE_KEY when set; else, outside production, the key generated once into
    DATA_DIR. In production without it, None: Web Push is off (a generated key per node would
    make each node's pushes fail at the push service for the others' subscriptions)."""
    if config.vapid_private_key:
        return _load_key(config.vapid_private_key)
    if config.production:
        return None
    return load_or_create_pem(config.data_dir / KEY_FILE)


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The browser's ``applicationServerKey``: the uncompressed P-256 point, base64url."""
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(point)


@dataclass
class PushResult:
    """What the push service said: ``status`` None when it could not be reached."""

    status: int | None
    retry_after: float | None = None
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        """The subscription no longer exists (unsubscribed, expired): forget it."""
        return self.status in (404, 410)

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500


def _retry_after(raw: str | None) -> float | None:
    if not raw:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(raw))
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    return None


class WebPushSender:
    """Encrypts and posts pushes, signed with the VAPID key."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, subject: str) -> None:
        # no-strict: any mailto:/https: subject the config accepted (py-vapid's own check
        # refuses https: URLs with a path).
        self._vapid = Vapid02(key, conf={"no-strict": True})
        self.subject = subject
        self.public_key = public_key_b64(key)
        self._tokens: dict[str, tuple[str, float]] = {}
        self._session: aiohttp.ClientSession | None = None

    def authorization(self, endpoint: str) -> str:
        """``vapid t=<JWT>, k=<public key>`` for the endpoint's origin (the JWT's ``aud``)."""
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        cached = self._tokens.get(audience)
        if cached is not None and cached[1] - JWT_RENEW_BEFORE > now:
            return cached[0]
        expires = int(now) + JWT_LIFETIME
        claims = {"aud": audience, "exp": expires, "sub": self.subject}
        header = self._vapid.sign(claims)["Authorization"]
        if len(self._tokens) > 1000:  # a bounded cache: there are only a few push services
            self._tokens.clear()
        self._tokens[audience] = (header, expires)
        return header

    async def send(
        self,
        endpoint: str,
        p256dh: str,
        auth: str,
        payload: bytes,
        *,
        ttl: int,
        urgency: str = "normal",
        topic: str | None = None,
    ) -> PushResult:
        """Encrypt ``payload`` for the subscription's keys and post it. Never raises for the
        push service's answer or for a network failure: the result says what happened."""
        pusher = WebPusher({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}})
        body = pusher.encode(payload, "aes128gcm")["body"]
        headers = {
            "Authorization": self.authorization(endpoint),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(ttl),
            "Urgency": urgency,
        }
        if topic:
            headers["Topic"] = topic
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT))
        try:
            async with self._session.post(
                endpoint, data=body, headers=headers, allow_redirects=False
            ) as response:
                text = (await response.text(errors="replace"))[:200]
                return PushResult(
                    response.status,
                    _retry_after(response.headers.get("Retry-After")),
                    "" if response.status < 300 else f"{response.status} {text}".strip(),
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return PushResult(None, None, f"{type(exc).__name__}: {exc}"[:200])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class WebPush(Kick):
    """Web Push in a process that sends pushes: ``sender``, and ``request_send`` — how to have
    the due pushes sent now (enqueue the task). ``kick()`` asks for that in the background,
    coalescing a burst of notifications into one run more."""

    def __init__(self, sender: WebPushSender, request_send: Callable[[], Awaitable[Any]]) -> None:
        super().__init__(request_send, "sending Web Pushes")
        self.sender = sender

    @property
    def public_key(self) -> str:
        return self.sender.public_key

    async def close(self) -> None:
        await super().close()
        await self.sender.close()
