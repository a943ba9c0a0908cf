"""Changing the account's email address: confirmed from the new address before it takes effect.

``POST /api/v1/me/email {email, password}`` checks the password (failures share the account's
login budget, so this is no side door for guessing it), refuses an address another account has,
voids earlier unconfirmed changes and mails a verification link to the new address
(``email.do_queue_verification``). The address changes only when that link is followed
(``email.do_verify_email``), which also tells the old address.
"""

from __future__ import annotations

from typing import Any

from messaging.actions.accounts import EMAIL_RE, check_password
from messaging.actions.email import do_queue_verification
from messaging.actions.limits import check_limit
from messaging.context import Messaging
from messaging.store.email_tokens import CHANGE, VERIFY_EMAIL
from storage.errors import AppError
from storage.mongo import now_ms

CHANGE_MAX = 5  # changes of address a person may ask for...
CHANGE_WINDOW = 3600  # ...per this many seconds


async def check_email_change(
    ctx: Messaging, user: dict[str, Any], email: str, password: str
) -> str:
    """The new address, normalised, once it is valid, not the current one, not another
    account's, and the password is right."""
    new_email = email.strip()
    if len(new_email) > 254 or not EMAIL_RE.fullmatch(new_email):
        raise AppError("invalid_field", "email is not a valid address", details={"field": "email"})
    if new_email.lower() == user["email_lower"]:
        raise AppError(
            "same_email", "that is already your email address", details={"field": "email"}
        )
    await check_password(ctx, user, password)
    other = await ctx.users.get_user_by_login(new_email.lower())
    if other is not None and other["_id"] != user["_id"]:
        raise AppError(
            "email_taken",
            "that email address belongs to another account",
            status=409,
            details={"field": "email"},
        )
    await check_limit(
        ctx, f"mail:change:{user['_id']}", CHANGE_MAX, CHANGE_WINDOW, "email address changes"
    )
    return new_email


async def do_request_email_change(
    ctx: Messaging, user: dict[str, Any], email: str, password: str
) -> str:
    """Mail a confirmation link to the new address; returns it. Earlier unconfirmed changes stop
    working (only the latest request can take effect)."""
    new_email = await check_email_change(ctx, user, email, password)
    await ctx.email_tokens.revoke_user_tokens(user["_id"], VERIFY_EMAIL, now_ms(), kind=CHANGE)
    await do_queue_verification(ctx, user, email=new_email, change_from=user["email"])
    return new_email
