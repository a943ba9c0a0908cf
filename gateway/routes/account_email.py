"""Email verification, changing the email address, and resetting a forgotten password."""

from __future__ import annotations

from aiohttp import web

from gateway.api import AUTH, BODY, Api
from gateway.keys import MESSAGING
from gateway.routes.auth import client_address
from gateway.schemas import obj, string
from messaging.actions import email, email_change, password_reset

api = Api("account-email", "Email verification and password reset")

LINK_TOKEN = string(512, 1, description="the token from the mailed link (after #…/ in it)")
LINK_ERRORS = ("link_invalid", "link_used", "link_expired")
FORGOT_ANSWER = (
    "If an account with that verified email address exists, a link to choose a new password is "
    "on its way. It works once, for a limited time."
)


@api.post(
    "/api/v1/auth/email/verify",
    auth=False,
    summary="Follow an email verification link",
    body=obj({"token": LINK_TOKEN}, ["token"]),
    response=obj(
        {
            "email": {"type": "string", "description": "the account's (now verified) address"},
            "email_verified": {"const": True},
            "changed": {"type": "boolean", "description": "the link confirmed a new address"},
        },
        ["email", "email_verified", "changed"],
    ),
    errors=(*LINK_ERRORS, "email_taken"),
)
async def verify_email(request: web.Request) -> dict:
    """The link mailed at sign-up or by ``POST /api/v1/me/email/verification`` marks the
    address verified; the one mailed by ``POST /api/v1/me/email`` switches the account to the new
    address (``changed: true``; 409 ``email_taken`` when another account took it meanwhile). A
    link works once: unknown ``link_invalid``, used ``link_used``, old ``link_expired`` (400)."""
    return await email.do_verify_email(request.app[MESSAGING], request[BODY]["token"])


@api.post(
    "/api/v1/me/email/verification",
    status=202,
    summary="Mail me a new verification link",
    response=obj({"sent_to": {"type": "string"}}, ["sent_to"]),
    errors=("already_verified", "rate_limited"),
)
async def resend_verification(request: web.Request) -> dict:
    """409 ``already_verified`` when it is; at most 5 an hour (then 429 ``rate_limited``)."""
    sent_to = await email.do_resend_verification(request.app[MESSAGING], request[AUTH].user)
    return {"sent_to": sent_to}


@api.post(
    "/api/v1/me/email",
    status=202,
    summary="Change my email address",
    body=obj({"email": string(254), "password": string(256)}, ["email", "password"]),
    response=obj(
        {"pending_email": {"type": "string", "description": "changes once confirmed"}},
        ["pending_email"],
    ),
    errors=("same_email", "email_taken", "wrong_password", "rate_limited"),
)
async def change_email(request: web.Request) -> dict:
    """Needs your password (403 ``wrong_password``; failures count like failed sign-ins). A link
    goes to the new address; the address changes only when it is followed, and the old address
    is then told. A newer request voids an older one's link."""
    body = request[BODY]
    pending = await email_change.do_request_email_change(
        request.app[MESSAGING], request[AUTH].user, body["email"], body["password"]
    )
    return {"pending_email": pending}


@api.post(
    "/api/v1/auth/password/forgot",
    auth=False,
    status=202,
    summary="Mail me a link to reset my password",
    body=obj({"email": string(254)}, ["email"]),
    response=obj({"message": {"type": "string"}}, ["message"]),
    errors=("rate_limited",),
)
async def forgot_password(request: web.Request) -> dict:
    """Always the same 202 answer, whether or not an account has that address: the link is
    mailed only to an account that exists, is not suspended and has verified that address. At
    most 10 requests an hour per client address (then 429) and 3 mails an hour per email address
    (then still 202, without mail)."""
    await password_reset.do_forgot_password(
        request.app[MESSAGING], request[BODY]["email"], address=client_address(request)
    )
    return {"message": FORGOT_ANSWER}


@api.post(
    "/api/v1/auth/password/reset",
    auth=False,
    summary="Choose a new password with a mailed link",
    body=obj({"token": LINK_TOKEN, "new_password": string(256)}, ["token", "new_password"]),
    response=obj(
        {"login": {"type": "string", "description": "sign in with it and the new password"}},
        ["login"],
    ),
    errors=(*LINK_ERRORS, "weak_password", "account_suspended"),
)
async def reset_password(request: web.Request) -> dict:
    """The new password follows the sign-up rules (400 ``weak_password``, and the link still
    works). The link works once (``link_used`` after; ``link_expired`` after 30 minutes by
    default); every session of the account ends and its other reset links stop working. Sign in
    next with ``login`` and the new password."""
    body = request[BODY]
    user = await password_reset.do_reset_password(
        request.app[MESSAGING], body["token"], body["new_password"]
    )
    return {"login": user["username"]}
