"""Forgotten passwords: a single-use link mailed to the account's verified address.

``do_forgot_password`` answers the same whether or not the address belongs to an account (the
route always says 202), and mails a link only to an account that exists, is not suspended and
has verified that address. It is limited per client address (past it: 429) and per email
address (past it: still 202, and no more mail — so nobody can fill a person's mailbox, and the
answer says nothing about the address). The link's token lives ``PASSWORD_RESET_TTL`` seconds.

``do_reset_password`` checks the new password like sign-up, uses the token once (of concurrent
uses exactly one wins), sets the password, voids the account's other reset links, forgives its
failed sign-ins and ends every session; the client then signs in with the new password (which
goes through two-factor when that is on).
"""

from __future__ import annotations

import hashlib
from typing import Any

from messaging.actions.accounts import EMAIL_RE
from messaging.actions.auth import check_user_may_sign_in, do_revoke_all_sessions
from messaging.actions.email import (
    RESET_PAGE,
    check_link_token,
    issue_token,
    link,
    link_error,
    use_link_token,
)
from messaging.actions.limits import address_bucket, check_limit
from messaging.actions.mail import do_queue_mail
from messaging.context import Messaging
from messaging.passwords import check_password_strength
from messaging.store.email_tokens import RESET, RESET_PASSWORD
from storage.errors import AppError
from storage.mongo import now_ms

FORGOT_MAX_PER_ADDRESS = 10  # requests from one client address (IPv4, or IPv6 /64)...
FORGOT_MAX_PER_EMAIL = 3  # ...and mails to one email address...
FORGOT_WINDOW = 3600  # ...per this many seconds


async def do_forgot_password(ctx: Messaging, email: str, *, address: str) -> None:
    """Mail a reset link if ``email`` is the verified address of an account that may sign in;
    otherwise do nothing, visibly the same."""
    await check_limit(
        ctx,
        f"pwreset:addr:{address_bucket(address)}",
        FORGOT_MAX_PER_ADDRESS,
        FORGOT_WINDOW,
        "password reset requests from your address",
    )
    email = email.strip()
    if len(email) > 254 or not EMAIL_RE.fullmatch(email):
        raise AppError("invalid_field", "email is not a valid address", details={"field": "email"})
    email_lower = email.lower()
    # Keyed by a digest: the limiter (Redis, in production) need not hold people's addresses.
    digest = hashlib.sha256(email_lower.encode()).hexdigest()[:32]
    verdict = await ctx.limiter.hit(f"pwreset:email:{digest}", FORGOT_MAX_PER_EMAIL, FORGOT_WINDOW)
    if not verdict.allowed:
        return
    user = await ctx.users.get_user_by_login(email_lower)
    if (
        user is None
        or user.get("suspended")
        or user.get("deleted_at")
        or user.get("email_verified_at") is None
    ):
        return
    ttl = ctx.config.password_reset_ttl
    token, token_hash = await issue_token(
        ctx, user, purpose=RESET_PASSWORD, kind=RESET, email=user["email"], ttl=ttl
    )
    await do_queue_mail(
        ctx,
        user,
        "reset_password",
        {"url": link(ctx, RESET_PAGE, token), "minutes": max(1, ttl // 60)},
        key=f"reset_password:{token_hash[:32]}",
    )


async def check_reset(ctx: Messaging, token: str, new_password: str) -> tuple[dict, dict]:
    """The stored token and its account, once the token is usable and the password strong."""
    stored = await check_link_token(ctx, token, RESET_PASSWORD)
    user = await ctx.users.get_user(stored["user_id"])
    if user is None or user.get("deleted_at"):
        raise link_error("link_invalid", "this link is not valid: the account no longer exists")
    if stored["email_lower"] != user["email_lower"]:
        raise link_error(
            "link_used", "this link no longer works: the account has another address now"
        )
    check_user_may_sign_in(user)  # a suspended account stays suspended
    check_password_strength(new_password, username=user["username"], email=user["email"])
    return stored, user


async def do_reset_password(ctx: Messaging, token: str, new_password: str) -> dict[str, Any]:
    """Set a new password from a reset link; returns the account (its username is what to sign
    in with). Nothing changes unless this call is the one that used the token."""
    stored, user = await check_reset(ctx, token, new_password)
    password_hash = await ctx.passwords.hash(new_password)
    now = await use_link_token(ctx, stored)
    updated = await ctx.users.update_user(
        user["_id"], {"password_hash": password_hash, "password_changed_at": now, "updated_at": now}
    )
    await ctx.email_tokens.revoke_user_tokens(user["_id"], RESET_PASSWORD, now_ms())
    await ctx.limiter.reset(f"login:acct:{user['_id']}")
    await do_revoke_all_sessions(ctx, user["_id"], "password_reset")
    return updated or user
