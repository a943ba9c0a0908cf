"""Logging for every process (``run.py``, the Celery worker): ``configure_logging(config)``.

- ``LOG_FORMAT=text`` (default): one human line per record; ``json``: one JSON object per line
  with ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, and ``request_id`` /
  ``socket_id`` / ``user_id`` when known, ``exc_info`` as a string — for log shippers.
- Who a record is about comes from context variables the transports set (``request_context``
  in the HTTP middleware, ``bind_user`` once a request is authenticated, ``bind_socket`` around each
  Socket.IO event): records written anywhere below carry them, with no logger passing them on.
- ``Redactor``, applied by a filter on the handler (both formats): secrets never reach the
  output, whatever a message or a traceback holds — JWTs, ``Bearer``/``Basic`` credentials,
  the values of ``password``/``token``/``secret``/``code``-like keys (``key=value``, JSON, dict
  reprs, query strings), the password of ``scheme://user:password@`` URLs, and the literal values
  of the configured secrets (``JWT_SECRET``, ``METRICS_TOKEN``, API keys...).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import fields
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from storage.config import Config

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
SOCKET_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("socket_id", default=None)
USER_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("user_id", default=None)
CONTEXT = (("request_id", REQUEST_ID), ("socket_id", SOCKET_ID), ("user_id", USER_ID))

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"

# Their DEBUG output is not ours to ship: PyMongo's command log holds every document read or
# written (messages, keys), aioice/aiortc log every packet of a call. They stay at INFO or above
# whatever LOG_LEVEL says.
QUIET_LOGGERS = ("pymongo", "aioice", "aiortc", "asyncio", "charset_normalizer", "urllib3")

# Settings whose value is a secret: their literal values are masked wherever they appear.
_SECRET_SETTING = re.compile(r"SECRET|TOKEN|PASSWORD|_KEY$")
_URL_SETTING = re.compile(r"_URL$")
MIN_LITERAL = 8  # shorter configured values would mask ordinary words

_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
_SCHEME_CREDENTIALS = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+")
# An Authorization header of any scheme: the scheme stays, the credentials go.
_AUTHORIZATION = re.compile(
    r"(?i)(\bauthorization\\?[\"']?\s*[:=]\s*\\?[\"']?[A-Za-z-]+\s+)[^\s\"'\\,;&]+"
)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/?#@\"']*:)[^\s@/\"']+@")
# A key that names a secret (password, new_password, access_token, totp_secret, recovery_code,
# api_key, sig...), quoted or not, then ':' or '=', then its value: quoted (JSON, a repr, possibly
# JSON inside JSON with escaped quotes) or bare up to a separator (query strings, key=value).
_SECRET_KEY = (
    r"[A-Za-z0-9_.-]*?"
    r"(?:password|passwd|pwd|passphrase|token|secret|code|api[_-]?key|credentials?|"
    r"cookie|sig|signature|otp)s?(?:[_-]?hash)?"
)
_KEY_VALUE = re.compile(
    r"(?i)(?<![A-Za-z0-9_])"
    r"(\\?[\"']?" + _SECRET_KEY + r"\\?[\"']?\s*[:=]\s*)"
    r"(\\\"(?:[^\"\\]|\\[^\"])*\\\"|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s,;&)}\]'\"<>]+)"
)
# Keys ending like a secret's that hold nothing secret.
_HARMLESS_KEYS = re.compile(
    r"(?i)^\\?[\"']?(?:status|exit|error|return|http|country|currency|language|lang|zip|"
    r"postal|area|response|reason|error_code|err)[_-]?code\\?[\"']?\s*[:=]\s*$|^\\?[\"']?"
    r"returncode\\?[\"']?\s*[:=]\s*$"
)


class Redactor:
    """Masks secrets in a text; ``secrets`` are literal values masked wherever they appear."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literals = sorted(
            {s for s in secrets if s and len(s) >= MIN_LITERAL}, key=len, reverse=True
        )
        self._literals = re.compile("|".join(re.escape(s) for s in literals)) if literals else None

    def __call__(self, text: str) -> str:
        if self._literals is not None:
            text = self._literals.sub(MASK, text)
        text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + MASK + "@", text)
        text = _JWT.sub(MASK, text)
        text = _SCHEME_CREDENTIALS.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
        text = _AUTHORIZATION.sub(lambda m: m.group(1) + MASK, text)
        return _KEY_VALUE.sub(_mask_value, text)


def _mask_value(match: re.Match[str]) -> str:
    key, value = match.group(1), match.group(2)
    if _HARMLESS_KEYS.match(key):
        return match.group(0)
    if value.startswith('\\"'):
        return f'{key}\\"{MASK}\\"'
    if value[:1] in "\"'":
        return f"{key}{value[0]}{MASK}{value[0]}"
    return key + MASK


def secret_values(config: Config) -> list[str]:
    """The configured values that are secrets: secret settings' values, and the passwords of
    the configured URLs (MONGODB_URL, REDIS_URL, SMTP_URL...)."""
    found: list[str] = []
    for spec in fields(config):
        env, value = spec.metadata.get("env", ""), getattr(config, spec.name)
        if not isinstance(value, str) or not value:
            continue
        if _SECRET_SETTING.search(env):
            found.append(value)
            found.extend(line.strip() for line in value.splitlines() if line.strip())
        elif _URL_SETTING.search(env):
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                found.extend({password, unquote(password)})
    return found


class RedactingFilter(logging.Filter):
    """On the handler: renders each record's message (and traceback) once, masked, and notes
    the request/socket/user context it was written in."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redact = redactor
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what there is rather than lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name, var in CONTEXT:
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


def _iso(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line (newlines inside a message or traceback are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, var in CONTEXT:
            value = getattr(record, name, None) or var.get()
            if value:
                data[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc_info"] = record.exc_text
        if record.stack_info:
            data["stack_info"] = record.stack_info
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with the request/socket/user it was written for appended when known."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        context = [
            f"{name}={value}"
            for name, var in CONTEXT
            if (value := getattr(record, name, None) or var.get())
        ]
        return f"{line} [{' '.join(context)}]" if context else line


def make_handler(config: Config, stream: IO[str] | None = None) -> logging.Handler:
    """The handler ``configure_logging`` installs: ``LOG_FORMAT``'s formatter, redaction."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if config.log_format == "json" else TextFormatter())
    handler.addFilter(RedactingFilter(Redactor(secret_values(config))))
    handler._aetherial = True  # type: ignore[attr-defined]  # ours, replaced on reconfiguring
    return handler


def configure_logging(config: Config, stream: IO[str] | None = None) -> logging.Handler:
    """Send every record of the process (warnings included) through one handler on the root
    logger, at ``LOG_LEVEL``; returns the handler. Configuring again replaces our handler and
    leaves anyone else's alone."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_aetherial", False):
            root.removeHandler(handler)
    handler = make_handler(config, stream)
    root.addHandler(handler)
    level = logging.getLevelName(config.log_level.upper())
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.INFO))
    logging.captureWarnings(True)  # warnings.warn goes through the handler (JSON, redacted)
    return handler


# -- context ---------------------------------------------------------------------------------


@contextlib.contextmanager
def request_context(request_id: str) -> Iterator[None]:
    """Records written inside (in this task and the tasks it starts) carry ``request_id``; the
    request has no user yet (``bind_user``) and no socket. Everything is as before afterwards
    (a keep-alive connection serves its next request in the same task)."""
    tokens = [(REQUEST_ID, REQUEST_ID.set(request_id)), (SOCKET_ID, SOCKET_ID.set(None))]
    tokens.append((USER_ID, USER_ID.set(None)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def bind_user(user_id: str | None) -> None:
    """The caller is now known (set inside ``request_context``, undone when it ends)."""
    USER_ID.set(user_id)


def bind_socket(socket_id: str | None, user_id: str | None) -> None:
    """At the start of one Socket.IO event: its socket and user. python-socketio runs each
    event in a task of its own, so these end with it; the HTTP request that opened the
    connection is not this event's, so its id is dropped."""
    REQUEST_ID.set(None)
    SOCKET_ID.set(socket_id)
    USER_ID.set(user_id)
