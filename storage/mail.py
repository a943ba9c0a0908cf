"""Sending email: a small pluggable backend behind a default (DESIGN.md §2), like ``make_pubsub``.

``Mailer`` is one coroutine, ``send(message)``. ``SmtpMailer`` hands the message to an SMTP server
(aiosmtplib) named by ``SMTP_URL``; without it, ``OutboxDirMailer`` writes each message as a
``.eml`` file under ``DATA_DIR/outbox/`` so ``make run`` needs no mail server (open the files with
any mail program). ``make_mailer(config)`` chooses.

A failure is a ``MailError`` that says whether trying again can help: a 5xx answer about the
message or its recipient is permanent; a 4xx answer, an unreachable or disconnecting server, a
refused login or a TLS problem are temporary (the operator can fix the last two; the message
itself is fine). The sender (``messaging.actions.mail``) retries the temporary ones with back-off.

``MailQueue`` is what a process that sends mail attaches to the messaging context: the mailer, and
how to have the due mail sent now (the task ``MAIL_SEND_DUE``, in the gateway or on a Celery
worker), asked for in the background by ``kick()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from storage.config import Config
from storage.errors import ConfigError
from storage.tasks import Kick

log = logging.getLogger(__name__)

SEND_TIMEOUT = 30.0  # seconds for one SMTP conversation (connect, TLS, login, one message)
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
SUBMISSION_PORT = 587  # smtp:// with starttls=1 and no port: the usual mail submission port


class MailError(Exception):
    """Sending failed. ``permanent``: this message can never be delivered as it is (a 5xx answer
    about it or its recipient), so it is not retried. The text never holds a password."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer(Protocol):
    """Where mail goes. ``description`` says it for the log, without secrets."""

    description: str

    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` (From, To, Subject set) or raise ``MailError``."""
        ...

    async def close(self) -> None: ...


# --- SMTP --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpSettings:
    """An ``SMTP_URL`` taken apart. ``tls``: "implicit" (smtps://), "starttls" (required),
    "none" (plain), or "auto" (STARTTLS when the server offers it: aiosmtplib's default)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: str = "auto"

    @property
    def safe_url(self) -> str:
        """For logs: the URL without the password."""
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = {"starttls": "?starttls=1", "none": "?starttls=0"}.get(self.tls, "")
        return f"{scheme}://{user}{host}:{self.port}{query}"


def parse_smtp_url(url: str) -> SmtpSettings:
    """``smtp://[user:pass@]host[:port][?starttls=1|0]`` or ``smtps://[user:pass@]host[:port]``.
    User and password are percent-decoded (an ``@`` in a password is written ``%40``). Raises
    ``ValueError`` saying what is wrong, never repeating the password."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("SMTP_URL is not a valid URL (is the port a number?)") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError("SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("SMTP_URL names no host: smtp://host[:port]")
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError("SMTP_URL takes no path or fragment: smtp://[user:pass@]host[:port]")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"starttls"}
    if unknown:
        raise ValueError(f"SMTP_URL: unknown parameter(s) {', '.join(sorted(unknown))}")
    tls = "implicit" if scheme == "smtps" else "auto"
    if "starttls" in query:
        value = query["starttls"][-1].strip().lower()
        if scheme == "smtps":
            raise ValueError("SMTP_URL: starttls is for smtp://; smtps:// is TLS from the start")
        if value in {"1", "true", "yes", "on"}:
            tls = "starttls"
        elif value in {"0", "false", "no", "off"}:
            tls = "none"
        else:
            raise ValueError("SMTP_URL: starttls must be 1 or 0")
    if port is None:
        port = SUBMISSION_PORT if tls == "starttls" else DEFAULT_PORTS[scheme]
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise ValueError("SMTP_URL has a password but no user name")
    return SmtpSettings(parts.hostname, port, username, password, tls)


def _refusal(code: int, text: str, what: str) -> MailError:
    return MailError(f"{what}: {code} {text}".strip()[:300], permanent=500 <= code < 600)


class SmtpMailer:
    """One SMTP conversation per message (mail here is rare: verification, resets, exports)."""

    def __init__(self, settings: SmtpSettings, timeout: float = SEND_TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout
        self.description = f"SMTP server {settings.safe_url}"

    async def send(self, message: EmailMessage) -> None:
        s = self.settings
        try:
            await aiosmtplib.send(
                message,
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=s.password,
                use_tls=s.tls == "implicit",
                start_tls={"starttls": True, "none": False}.get(s.tls),
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusals = exc.recipients or []
            permanent = bool(refusals) and all(500 <= r.code < 600 for r in refusals)
            detail = "; ".join(f"{r.code} {r.message}" for r in refusals)[:300]
            raise MailError(f"recipient refused: {detail}", permanent=permanent) from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            # The account or its password is wrong: the operator's to fix, not the message's.
            raise MailError(
                f"the SMTP server refused our login: {exc.code} {exc.message}"[:300],
                permanent=False,
            ) from None
        except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPDataError) as exc:
            raise _refusal(exc.code, exc.message, "message refused") from None
        except aiosmtplib.SMTPResponseException as exc:
            # Greeting, HELO or another command refused: the server, not this message.
            raise MailError(
                f"SMTP server said {exc.code} {exc.message}"[:300], permanent=False
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Unreachable, disconnected, timed out, TLS failed, STARTTLS not offered...
            raise MailError(f"{type(exc).__name__}: {exc}"[:300], permanent=False) from None

    async def close(self) -> None:
        pass


# --- the embedded default: files --------------------------------------------------------------


class OutboxDirMailer:
    """Writes each message to ``<dir>/<UTC time>-<random>.eml`` (mode 0600: a message may hold a
    password-reset link). Atomic: written to a hidden temporary name, then renamed, so a reader
    of the folder never sees half a message."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.description = f"the folder {directory} (one .eml file per message; no SMTP_URL)"

    def _write(self, data: bytes) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"{stamp}-{secrets.token_hex(8)}.eml"
        temporary = self.directory / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            final = self.directory / name
            os.replace(temporary, final)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        return final

    async def send(self, message: EmailMessage) -> None:
        data = message.as_bytes(policy=SMTP)  # CRLF line ends, as a mail server would store it
        try:
            await asyncio.to_thread(self._write, data)
        except OSError as exc:  # disk full, permissions: may pass, so try again later
            raise MailError(f"writing to {self.directory} failed: {exc}", permanent=False) from None

    async def close(self) -> None:
        pass


def check_mail_from(value: str) -> Address:
    """``MAIL_FROM`` as an address: ``Name <user@host>`` or ``user@host``."""
    from email.headerregistry import HeaderRegistry

    try:
        header = HeaderRegistry()("From", value)
        addresses = header.addresses  # type: ignore[attr-defined]
    except (ValueError, IndexError, TypeError):
        addresses = ()
    if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise ConfigError(
            f"MAIL_FROM: expected one address like 'Aetherial <no-reply@example.com>', "
            f"got {value!r}"
        )
    return addresses[0]


def make_mailer(config: Config) -> Mailer:
    """SMTP when ``SMTP_URL`` is set, else the outbox folder under ``DATA_DIR``. A malformed
    ``SMTP_URL`` or ``MAIL_FROM`` is a ``ConfigError`` naming the variable."""
    check_mail_from(config.mail_from)
    if config.smtp_url:
        try:
            return SmtpMailer(parse_smtp_url(config.smtp_url))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return OutboxDirMailer(config.data_dir / "outbox")


# --- asking for the due mail to be sent --------------------------------------------------------


class MailQueue(Kick):
    """Mail in a process that sends it: ``mailer``, and ``request_send`` — how to have the due
    mail sent now (enqueue the task). ``kick()`` asks for that in the background, coalescing a
    burst into one more run, so a request never waits for a mail server."""

    def __init__(self, mailer: Mailer, request_send: Callable[[], Awaitable[Any]]) -> None:
        super().__init__(request_send, "sending mail")
        self.mailer = mailer

    async def close(self) -> None:
        await super().close()
        await self.mailer.close()
