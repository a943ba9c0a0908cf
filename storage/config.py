"""Typed configuration, read only from environment variables.

Every setting is declared once in ``SETTINGS`` with its variable name, parser, default and a
sentence of documentation; the README's configuration table and the docker-compose check are
tested against this list, so it is the single source of truth.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from storage.errors import ConfigError


def _parse_number(kind: type, what: str, low: float, high: float) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        try:
            value = kind(raw.strip())
        except ValueError:
            raise ValueError(f"expected {what}, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a number from {low} to {high}, got {value}")
        return value

    return parse


def _parse_int(low: int, high: int) -> Callable[[str], int]:
    return _parse_number(int, "a whole number", low, high)


def _parse_float(low: float, high: float) -> Callable[[str], float]:
    return _parse_number(float, "a number", low, high)


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected 1/0, true/false, yes/no or on/off, got {raw!r}")


def _parse_url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in schemes:
            raise ValueError(
                f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}"
            )
        return value

    return parse


def _parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


def _parse_name(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,63}", value):
        raise ValueError("expected 1-63 letters, digits, '_' or '-'")
    return value


def _parse_secret(raw: str) -> str:
    if len(raw) < 32:
        raise ValueError("must be at least 32 characters long")
    return raw


def _parse_path(raw: str) -> Path:
    if not raw.strip():
        raise ValueError("must not be empty")
    return Path(raw.strip())


def _parse_ice_servers(raw: str) -> tuple:
    """A JSON list of ``{"urls": str | [str], "username"?: str, "credential"?: str}``."""
    if not raw.strip():
        return ()
    try:
        servers = json.loads(raw)
    except ValueError:
        raise ValueError("expected a JSON list of {urls, username?, credential?}") from None
    if not isinstance(servers, list):
        raise ValueError("expected a JSON list of {urls, username?, credential?}")
    cleaned = []
    for server in servers:
        urls = server.get("urls") if isinstance(server, dict) else None
        urls = [urls] if isinstance(urls, str) else urls
        if not urls or not all(
            isinstance(u, str) and u.split(":", 1)[0] in {"stun", "stuns", "turn", "turns"}
            for u in urls
        ):
            raise ValueError("each server needs urls starting with stun:, stuns:, turn: or turns:")
        extra = {k: server[k] for k in ("username", "credential") if k in server}
        if not all(isinstance(v, str) for v in extra.values()):
            raise ValueError("username and credential must be strings")
        cleaned.append({"urls": list(urls), **extra})
    return tuple(cleaned)


def _parse_vapid_key(raw: str) -> str:
    """A P-256 private key: PEM (``\\n`` escapes allowed, for one-line env files) or the
    base64url raw 32-byte scalar most Web Push tools print. Checked by loading it."""
    value = raw.strip().replace("\\n", "\n")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        if value.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(value.encode(), password=None)
        else:
            scalar = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            if len(scalar) != 32:
                raise ValueError
            key = ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())
    except (ValueError, TypeError):
        raise ValueError("expected a P-256 private key as PEM or base64url raw 32 bytes") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("expected a P-256 (prime256v1) private key")
    return value


def _parse_ed25519_key(raw: str) -> str:
    """An Ed25519 private key as PEM (PKCS#8; ``\\n`` escapes allowed, for one-line env files).
    Checked by loading it."""
    value = raw.strip().replace("\\n", "\n")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(value.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("expected an Ed25519 private key in PEM form") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("expected an Ed25519 private key in PEM form")
    return value


def _parse_vapid_subject(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"mailto:[^@\s]+@[^@\s]+|https://[^\s/]+(/\S*)?", value):
        raise ValueError("expected mailto:<address> or an https:// URL")
    return value


def _parse_public_url(raw: str) -> str:
    """The platform's public address: an http(s) URL with a host, no query nor fragment,
    kept without its trailing slash (paths are appended to it)."""
    value = _parse_url("http", "https")(raw).rstrip("/")
    parts = urlsplit(value)
    if not parts.hostname or parts.query or parts.fragment:
        raise ValueError("expected http(s)://host[:port][/path], without a query or fragment")
    return value


def _setting(env: str, parse: Callable[[str], Any], default: Any, doc: str, *, production=False):
    return field(
        default=default,
        metadata={"env": env, "parse": parse, "doc": doc, "production": production},
    )


@dataclass(frozen=True)
class Config:
    """Everything Aetherial reads from its environment."""

    environment: str | None = _setting(
        "AETHERIAL_ENV",
        _parse_choice("development", "production"),
        None,
        "`development` turns on the dev conveniences (dev top-up, internal `http.fetch` targets, "
        "`http://` remote apps; `make run` sets it); `production` requires MONGODB_URL, "
        "REDIS_URL, JWT_SECRET and METRICS_TOKEN or METRICS_PORT. Unset: conveniences off, and "
        "only a loopback bind is allowed.",
    )
    host: str = _setting("AETHERIAL_HOST", str.strip, "127.0.0.1", "Address the gateway binds to.")
    port: int = _setting(
        "AETHERIAL_PORT", _parse_int(1, 65535), 8080, "Port the gateway listens on."
    )
    public_url: str | None = _setting(
        "PUBLIC_URL",
        _parse_public_url,
        None,
        "The address people and providers reach the platform at (e.g. https://chat.example.com): "
        "mini-programs' webhook URLs start with it. Unset: http://AETHERIAL_HOST:AETHERIAL_PORT.",
    )
    data_dir: Path = _setting(
        "AETHERIAL_DATA_DIR",
        _parse_path,
        Path("var"),
        "Folder for local state: embedded MongoDB files, generated JWT key, uploads.",
    )
    mongodb_url: str | None = _setting(
        "MONGODB_URL",
        _parse_url("mongodb", "mongodb+srv"),
        None,
        "MongoDB connection string. Unset: the embedded nx-27017 server is started on loopback.",
        production=True,
    )
    mongodb_db: str = _setting("MONGODB_DB", _parse_name, "aetherial", "Database name.")
    redis_url: str | None = _setting(
        "REDIS_URL",
        _parse_url("redis", "rediss", "unix"),
        None,
        "Redis for Socket.IO fan-out, pub/sub and rate limits. Unset: in-process equivalents.",
        production=True,
    )
    jwt_secret: str | None = _setting(
        "JWT_SECRET",
        _parse_secret,
        None,
        "HS256 key for access tokens (>= 32 chars). Unset: generated once into DATA_DIR/jwt.key.",
        production=True,
    )
    access_token_ttl: int = _setting(
        "ACCESS_TOKEN_TTL", _parse_int(2, 86400), 900, "Access token lifetime, seconds."
    )
    refresh_token_ttl: int = _setting(
        "REFRESH_TOKEN_TTL",
        _parse_int(300, 365 * 86400),
        30 * 86400,
        "Refresh token (session) lifetime without use, seconds.",
    )
    max_body_bytes: int = _setting(
        "MAX_BODY_BYTES", _parse_int(1024, 64 * 2**20), 2**20, "Largest accepted JSON request body."
    )
    login_max_failures: int = _setting(
        "LOGIN_MAX_FAILURES",
        _parse_int(1, 10000),
        10,
        "Failed logins allowed per account per LOGIN_WINDOW before answering 429.",
    )
    login_max_attempts_per_address: int = _setting(
        "LOGIN_MAX_ATTEMPTS_PER_ADDRESS",
        _parse_int(1, 100000),
        50,
        "Login attempts allowed per client address per LOGIN_WINDOW.",
    )
    login_window: int = _setting(
        "LOGIN_WINDOW", _parse_int(1, 86400), 900, "Login rate-limit window, seconds."
    )
    password_hash_memory_kib: int = _setting(
        "PASSWORD_HASH_MEMORY_KIB",
        _parse_int(1024, 2**21),
        65536,
        "argon2id memory cost (KiB). Lower only for tests.",
    )
    password_hash_time_cost: int = _setting(
        "PASSWORD_HASH_TIME_COST", _parse_int(1, 20), 3, "argon2id iterations."
    )
    message_max_chars: int = _setting(
        "MESSAGE_MAX_CHARS", _parse_int(1, 65536), 4000, "Longest text message, in characters."
    )
    group_max_members: int = _setting(
        "GROUP_MAX_MEMBERS", _parse_int(2, 100000), 500, "Most members a group may have."
    )
    send_rate_max: int = _setting(
        "SEND_RATE_MAX",
        _parse_int(1, 100000),
        60,
        "Messages (and other chat writes) one user may send per SEND_RATE_WINDOW.",
    )
    send_rate_window: int = _setting(
        "SEND_RATE_WINDOW", _parse_int(1, 3600), 10, "Send rate-limit window, seconds."
    )
    edit_window: int = _setting(
        "EDIT_WINDOW", _parse_int(0, 365 * 86400), 48 * 3600, "How long a sender may edit, seconds."
    )
    recall_window: int = _setting(
        "RECALL_WINDOW", _parse_int(0, 86400), 120, "How long a sender may recall, seconds."
    )
    read_receipts_max_members: int = _setting(
        "READ_RECEIPTS_MAX_MEMBERS",
        _parse_int(2, 100000),
        100,
        "Largest group that shares per-member read state (who has read).",
    )
    sync_max_messages: int = _setting(
        "SYNC_MAX_MESSAGES",
        _parse_int(1, 10000),
        200,
        "Most messages per conversation one sync returns; past it: too_long.",
    )
    trusted_proxies: int = _setting(
        "TRUSTED_PROXIES",
        _parse_int(0, 16),
        0,
        "How many proxies of yours stand in front of the gateway: the client address is that many "
        "entries from the right of X-Forwarded-For. 0: X-Forwarded-For is ignored.",
    )
    register_max_per_address: int = _setting(
        "REGISTER_MAX_PER_ADDRESS",
        _parse_int(1, 1_000_000),
        20,
        "Sign-ups allowed per client address per REGISTER_WINDOW.",
    )
    register_max_global: int = _setting(
        "REGISTER_MAX_GLOBAL",
        _parse_int(1, 10_000_000),
        1000,
        "Sign-ups allowed in all per REGISTER_WINDOW (each costs an argon2id hash).",
    )
    register_window: int = _setting(
        "REGISTER_WINDOW", _parse_int(1, 86400), 3600, "Sign-up rate-limit window, seconds."
    )
    sockets_per_user: int = _setting(
        "SOCKETS_PER_USER",
        _parse_int(1, 1000),
        10,
        "Most Socket.IO connections one account may hold open; the oldest is told and closed.",
    )
    cors_origins: str = _setting(
        "CORS_ORIGINS",
        str.strip,
        "",
        "Comma-separated origins allowed to open Socket.IO ('*': any).",
    )
    dev_topup: bool | None = _setting(
        "AETHERIAL_DEV_TOPUP",
        _parse_bool,
        None,
        "Allow `POST /api/v1/wallet/dev-topup` (money from nowhere, labelled in the ledger). "
        "Unset: on in development, off in production.",
    )
    stripe_secret_key: str | None = _setting(
        "STRIPE_SECRET_KEY", str.strip, None, "Stripe API key; enables card top-ups."
    )
    stripe_webhook_secret: str | None = _setting(
        "STRIPE_WEBHOOK_SECRET",
        str.strip,
        None,
        "Signing secret of the Stripe webhook endpoint `/api/v1/wallet/stripe/webhook`.",
    )
    stripe_api_base: str | None = _setting(
        "STRIPE_API_BASE",
        _parse_url("http", "https"),
        None,
        "Stripe API address (default https://api.stripe.com; for a local test server).",
    )
    wallet_max_amount: int = _setting(
        "WALLET_MAX_AMOUNT",
        _parse_int(1, 10**15),
        100_000_000,
        "Largest amount one transfer, red packet, payment or top-up moves, in minor units.",
    )
    transfer_expiry: int = _setting(
        "TRANSFER_EXPIRY",
        _parse_int(1, 30 * 86400),
        86400,
        "Seconds before an unaccepted transfer returns to its sender.",
    )
    red_packet_expiry: int = _setting(
        "RED_PACKET_EXPIRY",
        _parse_int(1, 30 * 86400),
        86400,
        "Seconds before a red packet's unclaimed remainder is refunded.",
    )
    payment_expiry: int = _setting(
        "PAYMENT_EXPIRY",
        _parse_int(1, 86400),
        900,
        "Seconds a mini-program's payment request waits for the user's confirmation.",
    )
    red_packet_max_count: int = _setting(
        "RED_PACKET_MAX_COUNT", _parse_int(1, 10000), 200, "Most shares in one red packet."
    )
    jobs_interval: float = _setting(
        "JOBS_INTERVAL",
        _parse_float(0.05, 3600),
        5.0,
        "Seconds between scans for due jobs (expiries, refunds, recovery of interrupted work).",
    )
    tasks_backend: str = _setting(
        "TASKS_BACKEND",
        _parse_choice("inprocess", "celery"),
        "inprocess",
        "Where due jobs run: in the gateway, or on Celery workers (broker: REDIS_URL).",
    )
    call_ring_timeout: float = _setting(
        "CALL_RING_TIMEOUT",
        _parse_float(0.1, 600),
        45.0,
        "Seconds a call rings before it ends as missed.",
    )
    call_max_participants: int = _setting(
        "CALL_MAX_PARTICIPANTS",
        _parse_int(2, 64),
        8,
        "Most people in one call (the media relay's measured capacity; see bench/calls_load.py).",
    )
    call_grace_period: float = _setting(
        "CALL_GRACE_PERIOD",
        _parse_float(0.1, 600),
        10.0,
        "Seconds a participant whose connection dropped stays in a call before being removed.",
    )
    ice_servers: tuple = _setting(
        "ICE_SERVERS",
        _parse_ice_servers,
        (),
        "JSON list of STUN/TURN servers for calls ({urls, username?, credential?}).",
    )
    call_media_host: str = _setting(
        "CALL_MEDIA_HOST",
        str.strip,
        "",
        "Comma-separated local addresses the media relay offers as ICE host candidates.",
    )
    miniapps_allow_unsandboxed: bool = _setting(
        "MINIAPPS_ALLOW_UNSANDBOXED",
        _parse_bool,
        False,
        "With AETHERIAL_ENV=production, start even when the mini-program sandbox is degraded "
        "(no usable bubblewrap): apps then run without namespaces. Unset: production refuses.",
    )
    media_max_bytes: int = _setting(
        "MEDIA_MAX_BYTES",
        _parse_int(1024, 2**32),
        25 * 1024 * 1024,
        "Largest media upload (photo, file, voice note), bytes; past it: 413 media_too_large.",
    )
    media_url_ttl: int = _setting(
        "MEDIA_URL_TTL",
        _parse_int(10, 7 * 86400),
        3600,
        "How long a signed media URL (/media/{id}?exp=&sig=) stays valid, seconds.",
    )
    media_backend: str = _setting(
        "MEDIA_BACKEND",
        _parse_choice("local", "gridfs"),
        "local",
        "Where media bytes live: local (content-addressed files under DATA_DIR/media, one node) "
        "or gridfs (the same MongoDB, shared by every node: use it with several nodes).",
    )
    vapid_private_key: str | None = _setting(
        "VAPID_PRIVATE_KEY",
        _parse_vapid_key,
        None,
        "Web Push (VAPID) signing key: a P-256 private key as PEM or base64url raw 32 bytes. "
        "Unset: generated once into DATA_DIR/vapid_private.pem, except in production, where "
        "Web Push is then off (a warning at start). Every node and worker needs the same key.",
    )
    credentials_private_key: str | None = _setting(
        "CREDENTIALS_PRIVATE_KEY",
        _parse_ed25519_key,
        None,
        "Signing key of the verifiable credentials apps issue (Open Badges): an Ed25519 private "
        "key as PEM. Unset: generated once into DATA_DIR/credentials_ed25519.pem. Every node "
        "needs the same key, or a badge signed by one fails verification on another.",
    )
    vapid_subject: str = _setting(
        "VAPID_SUBJECT",
        _parse_vapid_subject,
        "mailto:admin@localhost",
        "Contact the push services may use about our pushes (a mailto: or https: URL).",
    )
    # -- email (issue 21: verification, password reset, export ready) --
    smtp_url: str | None = _setting(
        "SMTP_URL",
        _parse_url("smtp", "smtps"),
        None,
        "Where mail goes: smtp://[user:pass@]host[:port][?starttls=1] or smtps://... "
        "(percent-encode an @ in the password; it never reaches the logs). Unset: each message "
        "is written to DATA_DIR/outbox/ as a .eml file, and the log says so at start.",
    )
    mail_from: str = _setting(
        "MAIL_FROM",
        str.strip,
        "Aetherial <no-reply@localhost>",
        "The sender of the mail we send (verification, password reset, export ready).",
    )
    password_reset_ttl: int = _setting(
        "PASSWORD_RESET_TTL",
        _parse_int(300, 86400),
        1800,
        "Seconds a mailed password-reset link stays valid (single use).",
    )
    hold_expiry: int = _setting(
        "HOLD_EXPIRY",
        _parse_int(60, 30 * 86400),
        7 * 86400,
        "Seconds an authorized payment hold (payments.request with capture=false) waits for the "
        "app to capture it; then it is voided and the money goes back to the user.",
    )
    ai_base_url: str | None = _setting(
        "AI_BASE_URL",
        _parse_url("http", "https"),
        None,
        "The OpenAI-compatible server the `ai` capability asks (with AI_MODEL): "
        "https://api.openai.com/v1, Ollama's http://127.0.0.1:11434/v1, vLLM, llama.cpp's "
        "server. Unset: apps' `ai.chat` answers `ai_not_configured`.",
    )
    ai_api_key: str | None = _setting(
        "AI_API_KEY",
        str.strip,
        None,
        "The model server's API key (a bearer token; unset: 'unused' is sent, as local servers "
        "want none). Never reaches apps, clients or logs.",
    )
    ai_model: str | None = _setting(
        "AI_MODEL",
        str.strip,
        None,
        "The model the `ai` capability asks for (e.g. llama3.1, gpt-4o-mini). Unset: "
        "`ai_not_configured`.",
    )
    ai_timeout: float = _setting(
        "AI_TIMEOUT",
        _parse_float(1, 600),
        60.0,
        "Seconds the host waits for the model server at each step (connecting, each chunk of "
        "the answer); past it the answer fails (`model_timeout`).",
    )
    ai_vision: bool = _setting(
        "AI_VISION",
        _parse_bool,
        False,
        "Whether the model takes images: image parts of `ai.chat` are then sent to it as data "
        "URLs; off: refused with `vision_unsupported`.",
    )
    ai_app_tokens_per_day: int = _setting(
        "AI_APP_TOKENS_PER_DAY",
        _parse_int(0, 10**12),
        200_000,
        "Model tokens one mini-program may use per UTC day, all chats together (0: no limit); "
        "past it `ai.chat` answers `ai_quota_exceeded`.",
    )
    ai_conversation_tokens_per_day: int = _setting(
        "AI_CONVERSATION_TOKENS_PER_DAY",
        _parse_int(0, 10**12),
        50_000,
        "Model tokens the apps of one conversation may use per UTC day (0: no limit).",
    )
    ai_user_tokens_per_hour: int = _setting(
        "AI_USER_TOKENS_PER_HOUR",
        _parse_int(0, 10**12),
        20_000,
        "Model tokens the requests made on one person's behalf may use per UTC hour (0: no limit).",
    )
    log_level: str = _setting(
        "LOG_LEVEL", _parse_choice("debug", "info", "warning", "error"), "info", "Log verbosity."
    )
    # -- logs and metrics (issue 21): storage/logs.py, storage/metrics.py -----------------------
    log_format: str = _setting(
        "LOG_FORMAT",
        _parse_choice("text", "json"),
        "text",
        "`text`: one readable line per record; `json`: one JSON object per line (time, level, "
        "logger, message, request_id/socket_id/user_id when known, exc_info). Secrets are masked "
        "in both.",
    )
    # -- event loop (issue 22): run.py main ---------------------------------------------------
    event_loop: str = _setting(
        "EVENT_LOOP",
        _parse_choice("uvloop", "asyncio"),
        "uvloop",
        "`uvloop` (when installed; it is a dependency): libuv's event loop, which makes the "
        "gateway's per-packet work (tasks, timers, socket writes) cheaper; `asyncio`: the "
        "standard library's.",
    )
    metrics_token: str | None = _setting(
        "METRICS_TOKEN",
        _parse_secret,
        None,
        "Bearer token (>= 32 chars) `GET /metrics` then requires (`Authorization: Bearer ...`). "
        "Production needs this or METRICS_PORT.",
    )
    metrics_port: int | None = _setting(
        "METRICS_PORT",
        _parse_int(1, 65535),
        None,
        "Serve `GET /metrics` only on this port (a second listener on AETHERIAL_HOST), not on "
        "AETHERIAL_PORT. Production needs this or METRICS_TOKEN.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Build a config from ``environ`` (default ``os.environ``); keyword overrides win.

        A malformed value raises ``ConfigError`` naming the variable.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            env = spec.metadata["env"]
            raw = environ.get(env)
            if raw is None or (raw == "" and spec.default is None):
                continue
            try:
                values[spec.name] = spec.metadata["parse"](raw)
            except ValueError as exc:
                raise ConfigError(f"{env}: {exc}") from None
        values.update(overrides)
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        if self.production:
            missing = [
                spec.metadata["env"]
                for spec in fields(self)
                if spec.metadata["production"] and getattr(self, spec.name) is None
            ]
            if missing:
                raise ConfigError(f"{', '.join(missing)}: required when AETHERIAL_ENV=production")
        if self.environment is None and not is_loopback(self.host):
            raise ConfigError(
                f"AETHERIAL_HOST={self.host} is not a loopback address: say what this is with "
                "AETHERIAL_ENV=production (a real deployment: needs MONGODB_URL, REDIS_URL and "
                "JWT_SECRET) or AETHERIAL_ENV=development (dev conveniences on, reachable from "
                "the network)"
            )
        if self.tasks_backend == "celery" and not self.redis_url:
            raise ConfigError("TASKS_BACKEND=celery: REDIS_URL is required (the Celery broker)")
        if self.production and not (self.metrics_token or self.metrics_port):
            raise ConfigError(
                "METRICS_TOKEN or METRICS_PORT: one is required when AETHERIAL_ENV=production "
                "(GET /metrics must not be open to anyone who reaches the gateway)"
            )
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ConfigError(
                f"METRICS_PORT={self.metrics_port} is AETHERIAL_PORT: choose another port"
            )

    @property
    def dev_topup_enabled(self) -> bool:
        if self.dev_topup is None:
            return self.development
        return self.dev_topup

    @property
    def development(self) -> bool:
        """Only an explicit ``AETHERIAL_ENV=development`` turns on the dev conveniences."""
        return self.environment == "development"

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def public_base_url(self) -> str:
        """``PUBLIC_URL``, else the gateway's own address (``http://<host>:<port>``)."""
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def stripe_enabled(self) -> bool:
        return bool(self.stripe_secret_key and self.stripe_webhook_secret)

    @property
    def embedded_mongo(self) -> bool:
        return self.mongodb_url is None

    @property
    def cors_allowed(self) -> list[str] | str:
        if self.cors_origins == "*":
            return "*"
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


def is_loopback(host: str) -> bool:
    """``localhost`` or an address in 127.0.0.0/8 or ::1 (what only this machine can reach)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def settings() -> list[dict[str, Any]]:
    """Every setting with its variable, default and documentation (for docs and checks)."""
    return [
        {
            "name": spec.name,
            "env": spec.metadata["env"],
            "default": spec.default,
            "doc": spec.metadata["doc"],
            "production": spec.metadata["production"],
        }
        for spec in fields(Config)
    ]
