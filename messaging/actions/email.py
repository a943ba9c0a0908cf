"""Email verification: the mailed link that confirms an account's address (at sign-up, on request)
or a change of address (``email_change.py`` asks for it), and the single-use link tokens that
password reset (``password_reset.py``) shares.

The account works at once; ``email_verified_at`` is set when the link is followed. A link carries
a random token, of which only the SHA-256 is stored (``messaging/store/email_tokens.py``); using
it is one conditional update, so of concurrent uses exactly one wins. Unknown (forged) tokens are
``link_invalid``, used or voided ones ``link_used``, old ones ``link_expired``: each changes
nothing.

This module does not import ``accounts`` (``accounts.do_register`` calls it).
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.errors import DuplicateKeyError

from messaging.actions.limits import check_limit
from messaging.actions.mail import do_queue_mail
from messaging.context import Messaging
from messaging.store.email_tokens import (
    ADDRESS,
    CHANGE,
    RESET_PASSWORD,
    VERIFY_EMAIL,
    hash_token,
    new_token,
)
from storage.errors import AppError
from storage.mongo import now_ms

log = logging.getLogger(__name__)

VERIFY_TTL = 48 * 3600  # seconds a verification link works
RESEND_MAX = 5  # verification mails a person may ask for...
RESEND_WINDOW = 3600  # ...per this many seconds
TOKEN_MIN, TOKEN_MAX = 16, 128  # what a link's token may look like before we look it up
# How the web client routes (gateway/web/src/account-email.js): the token stays in the fragment,
# which browsers never send to a server (no access log, no Referer holds it).
VERIFY_PAGE = "verify-email"
RESET_PAGE = "reset-password"


def link(ctx: Messaging, page: str, token: str) -> str:
    return f"{ctx.config.public_base_url}/#{page}/{token}"


def link_error(code: str, message: str) -> AppError:
    return AppError(code, message, status=400, details={"field": "token"})


# --- tokens (shared with password_reset.py) ----------------------------------------------------


async def issue_token(
    ctx: Messaging,
    user: dict[str, Any],
    *,
    purpose: str,
    kind: str,
    email: str,
    ttl: int,
    change_from: str | None = None,
) -> tuple[str, str]:
    """Store a new link token for ``user``; returns ``(token, its hash)``. The token itself goes
    only into the mail."""
    token = new_token()
    token_hash = hash_token(token)
    now = now_ms()
    await ctx.email_tokens.add_token(
        {
            "_id": token_hash,
            "purpose": purpose,
            "kind": kind,
            "user_id": user["_id"],
            "email": email,
            "email_lower": email.lower(),
            "change_from": change_from,
            "created_at": now,
            "expires_at": now + ttl * 1000,
        }
    )
    return token, token_hash


async def check_link_token(ctx: Messaging, token: str, purpose: str) -> dict[str, Any]:
    """The stored token a link carried, if it is one of ``purpose``, unused and unexpired."""
    if not TOKEN_MIN <= len(token) <= TOKEN_MAX:
        raise link_error("link_invalid", "this link is not valid: ask for a new one")
    stored = await ctx.email_tokens.get_token(hash_token(token))
    if stored is None or stored["purpose"] != purpose:
        raise link_error("link_invalid", "this link is not valid: ask for a new one")
    _check_unused(stored)
    return stored


def _check_unused(stored: dict[str, Any]) -> None:
    if stored.get("revoked"):
        raise link_error(
            "link_used", "this link no longer works: a newer one was sent, or the account changed"
        )
    if stored["used_at"] is not None:
        raise link_error("link_used", "this link was already used")
    if stored["expires_at"] <= now_ms():
        raise link_error("link_expired", "this link has expired: ask for a new one")


async def use_link_token(ctx: Messaging, stored: dict[str, Any]) -> int:
    """Use the token once (a conditional update): the loser of a race, or a token that expired
    meanwhile, gets the error it would get now. Returns the time it was used."""
    now = now_ms()
    if await ctx.email_tokens.use_token(stored["_id"], stored["purpose"], now):
        return now
    _check_unused(await ctx.email_tokens.get_token(stored["_id"]) or stored)
    raise link_error("link_used", "this link was already used")  # pragma: no cover - a race


# --- asking for verification -------------------------------------------------------------------


async def do_queue_verification(
    ctx: Messaging,
    user: dict[str, Any],
    *,
    email: str | None = None,
    change_from: str | None = None,
) -> None:
    """Mail a verification link for ``email`` (default: the account's address; with
    ``change_from``, a change of address to ``email``)."""
    email = email or user["email"]
    token, token_hash = await issue_token(
        ctx,
        user,
        purpose=VERIFY_EMAIL,
        kind=CHANGE if change_from is not None else ADDRESS,
        email=email,
        ttl=VERIFY_TTL,
        change_from=change_from,
    )
    await do_queue_mail(
        ctx,
        user,
        "verify_email",
        {"url": link(ctx, VERIFY_PAGE, token), "email": email, "hours": VERIFY_TTL // 3600},
        key=f"verify_email:{token_hash[:32]}",
        to=email,
    )


async def do_send_signup_verification(ctx: Messaging, user: dict[str, Any]) -> None:
    """At sign-up (``accounts.do_register``, the account is stored): the account works at once,
    so a failure to queue the mail is logged, never the sign-up's failure (the person can ask
    again from their profile)."""
    try:
        await do_queue_verification(ctx, user)
    except Exception:
        log.exception("queuing the verification mail of new account %s failed", user["_id"])


def check_needs_verification(user: dict[str, Any]) -> None:
    if user.get("email_verified_at") is not None:
        raise AppError("already_verified", "your email address is already verified", status=409)


async def do_resend_verification(ctx: Messaging, user: dict[str, Any]) -> str:
    """Mail the account's address a new verification link (``RESEND_MAX`` per hour); returns
    the address."""
    check_needs_verification(user)
    await check_limit(
        ctx, f"mail:verify:{user['_id']}", RESEND_MAX, RESEND_WINDOW, "verification emails"
    )
    await do_queue_verification(ctx, user)
    return user["email"]


# --- following the link ------------------------------------------------------------------------


async def do_verify_email(ctx: Messaging, token: str) -> dict[str, Any]:
    """Follow a verification link: the account's address is verified, or, for a change, the
    account's address becomes the new one (verified), the old address is told, and links mailed
    to the old one stop working. ``email_taken`` when someone else registered that address
    meanwhile (the link then still works, should they let it go)."""
    stored = await check_link_token(ctx, token, VERIFY_EMAIL)
    user = await ctx.users.get_user(stored["user_id"])
    if user is None or user.get("deleted_at"):
        raise link_error("link_invalid", "this link is not valid: the account no longer exists")
    if stored["kind"] == CHANGE:
        return await _change_address(ctx, user, stored)
    if stored["email_lower"] != user["email_lower"]:
        raise link_error(
            "link_used", "this link no longer works: the account has another address now"
        )
    now = await use_link_token(ctx, stored)
    if user.get("email_verified_at") is None:
        await ctx.users.update_user(user["_id"], {"email_verified_at": now, "updated_at": now})
    return {"email": user["email"], "email_verified": True, "changed": False}


def _email_taken() -> AppError:
    return AppError(
        "email_taken",
        "that email address now belongs to another account",
        status=409,
        details={"field": "email"},
    )


async def _change_address(
    ctx: Messaging, user: dict[str, Any], stored: dict[str, Any]
) -> dict[str, Any]:
    new_email = stored["email"]
    other = await ctx.users.get_user_by_login(stored["email_lower"])
    if other is not None and other["_id"] != user["_id"]:
        raise _email_taken()  # checked before the token is used, so it still works later
    now = await use_link_token(ctx, stored)
    changes = {
        "email": new_email,
        "email_lower": stored["email_lower"],
        "email_verified_at": now,
        "updated_at": now,
    }
    try:
        updated = await ctx.users.update_user(user["_id"], changes)
    except DuplicateKeyError:
        updated = None
    if updated is None:
        # Registered by someone else between the check and now: the unique index decided
        # (nx-27017's find_one_and_update then writes nothing and returns None instead of
        # raising). Give the token back: it did nothing.
        await ctx.email_tokens.give_back(stored["_id"], now)
        if await ctx.users.get_user(user["_id"]) is None:
            raise link_error("link_invalid", "this link is not valid: the account no longer exists")
        raise _email_taken()
    # Links mailed to the old address (a reset, other changes) must not outlive it.
    await ctx.email_tokens.revoke_user_tokens(user["_id"], RESET_PASSWORD, now)
    await ctx.email_tokens.revoke_user_tokens(user["_id"], VERIFY_EMAIL, now)
    old_email = user["email"]
    await do_queue_mail(
        ctx,
        updated,
        "email_changed",
        {"old_email": old_email, "new_email": new_email},
        key=f"email_changed:{stored['_id'][:32]}",
        to=old_email,
    )
    return {"email": new_email, "email_verified": True, "changed": True}
