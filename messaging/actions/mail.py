"""Sending mail: queue a templated message (a durable row first), send the due ones.

Flow: an action calls ``do_queue_mail`` → one ``mail_outbox`` row, rendered in the reader's
language, keyed by the caller's idempotency key (the same key twice sends once) → it asks for the
due mail to be sent now (``MailQueue.kick``: the task ``MAIL_SEND_DUE``, in the gateway or on a
Celery worker; never on the request path) → ``do_send_due`` claims each due row with a
conditional update, hands it to the ``Mailer`` (``storage.mail``: SMTP or the outbox folder) and
marks it sent. A temporary failure (4xx, server unreachable) is retried with back-off
(``RETRY_FIRST`` doubled per attempt up to ``RETRY_MAX``); a permanent one (5xx about the message)
or the ``MAX_ATTEMPTS``-th failure marks the row failed, kept and logged. A periodic tick sends
what kicks missed (retries, rows a crashed process left, rows queued by a process without a
mailer).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from messaging import mail_templates
from messaging.context import Messaging
from storage.mail import Mailer, MailError, check_mail_from
from storage.mongo import now_ms

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
RETRY_FIRST = 30.0  # seconds; then 1, 2, 4 … minutes
RETRY_MAX = 3600.0
LEASE = 120.0  # seconds a sender holds a claimed row (well over one SMTP conversation)
SEND_BATCH = 50
SEND_BATCHES_MAX = 20  # rows left after this many batches wait for the next run
SEND_CONCURRENCY = 4  # SMTP conversations at once
KEEP_SENT = 7 * 86400  # seconds a sent row is kept: queuing its key again within this sends nothing
KEEP_FAILED = 30 * 86400
KEEP_EXPIRED_TOKENS = 7 * 86400  # an expired link still says "expired" (not "unknown") this long


async def do_queue_mail(
    ctx: Messaging,
    user: dict,
    template: str,
    params: dict,
    *,
    key: str,
    to: str | None = None,
) -> bool:
    """Queue mail ``template`` (``messaging/mail_templates``) with ``params`` for ``user`` (in
    their locale's language), to ``to`` or else their address. ``key`` is the idempotency key:
    queuing it again sends nothing more. Returns whether the row is new. The row is durable when
    this returns; sending happens in the background."""
    rendered = mail_templates.render(
        template,
        user.get("locale"),
        {
            "name": user.get("display_name") or user["username"],
            "username": user["username"],
            **params,
        },
    )
    now = now_ms()
    row: dict[str, Any] = {
        "_id": key,
        "user_id": user["_id"],
        "to": to or user["email"],
        "template": template,
        "language": rendered.language,
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "created_at": now,
        "due_at": now,
    }
    added = await ctx.mail_outbox.add_mail(row)
    if added and ctx.mail is not None:
        ctx.mail.kick()
    return added


def build_message(ctx: Messaging, row: dict[str, Any]) -> EmailMessage:
    """The MIME message of an outbox row: text and HTML alternatives. Its Message-ID comes from
    the row's key, so a message sent twice (a sender died after the server took it) is
    recognisably the same one."""
    sender = check_mail_from(ctx.config.mail_from)
    digest = hashlib.sha256(row["_id"].encode()).hexdigest()[:32]
    message = EmailMessage()
    message["From"] = ctx.config.mail_from
    message["To"] = row["to"]
    message["Subject"] = row["subject"]
    message["Date"] = formatdate(row["created_at"] / 1000, usegmt=True)
    message["Message-ID"] = f"<{digest}.{row['created_at']}@{sender.domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    message.set_content(row["text"])
    message.add_alternative(row["html"], subtype="html")
    message["Content-Language"] = row.get("language", "en")  # after: set_content clears Content-*
    return message


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: 30 s, 1, 2, 4 … min."""
    return min(RETRY_MAX, RETRY_FIRST * 2 ** max(0, attempts - 1))


def _domain(address: str) -> str:
    """For logs: where a mail went, not to whom."""
    return address.rsplit("@", 1)[-1]


async def do_send_due(ctx: Messaging, mailer: Mailer) -> dict[str, int]:
    """Send every due mail (the task ``MAIL_SEND_DUE``); safe to run on any number of nodes and
    workers at once, since each row is claimed by a conditional update."""
    done = {"sent": 0, "retried": 0, "failed": 0}
    limit = asyncio.Semaphore(SEND_CONCURRENCY)

    async def one(row: dict[str, Any]) -> None:
        async with limit:
            done[await _send_one(ctx, mailer, row)] += 1

    for _ in range(SEND_BATCHES_MAX):
        now = now_ms()
        due = await ctx.mail_outbox.get_due(now, SEND_BATCH)
        if not due:
            break
        lease_until = now + int(LEASE * 1000)
        claimed = [
            row
            for row in due
            if await ctx.mail_outbox.claim(row["_id"], row["due_at"], lease_until)
        ]
        if claimed:
            await asyncio.gather(*[one(row) for row in claimed])
    if any(done.values()):
        log.info("mail: %s", {k: v for k, v in done.items() if v})
    return done


async def _send_one(ctx: Messaging, mailer: Mailer, row: dict[str, Any]) -> str:
    attempts = row.get("attempts", 0) + 1  # counted by the claim
    try:
        await mailer.send(build_message(ctx, row))
    except MailError as exc:
        error, permanent = str(exc), exc.permanent
    except Exception as exc:  # a bug, not the server: retried like a temporary failure
        log.exception("mail %s: sending raised", row["_id"])
        error, permanent = f"{type(exc).__name__}: {exc}"[:300], False
    else:
        await ctx.mail_outbox.mark_sent(row["_id"], now_ms())
        return "sent"
    if not permanent and attempts < MAX_ATTEMPTS:
        due_at = now_ms() + int(retry_delay(attempts) * 1000)
        await ctx.mail_outbox.reschedule(row["_id"], due_at, error)
        log.info(
            "mail %s to %s: attempt %d failed (%s); next in %.0f s",
            row["_id"],
            _domain(row["to"]),
            attempts,
            error,
            retry_delay(attempts),
        )
        return "retried"
    log.warning(
        "mail %s to %s failed after %d attempt(s), given up: %s",
        row["_id"],
        _domain(row["to"]),
        attempts,
        error,
    )
    await ctx.mail_outbox.mark_failed(row["_id"], now_ms(), error)
    return "failed"


async def do_sweep(ctx: Messaging) -> int:
    """Forget sent and failed mail past their keeping time and link tokens long expired; safe on
    every node at once."""
    now = now_ms()
    removed = await ctx.mail_outbox.delete_old(now - KEEP_SENT * 1000, now - KEEP_FAILED * 1000)
    return removed + await ctx.email_tokens.delete_expired(now - KEEP_EXPIRED_TOKENS * 1000)
