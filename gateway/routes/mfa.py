"""Two-factor sign-in: the authenticator (TOTP) and recovery codes, and the login's second half."""

from __future__ import annotations

from aiohttp import web

from gateway.api import AUTH, BODY, Api
from gateway.keys import MESSAGING
from gateway.routes.auth import client_address
from gateway.schemas import TOKENS, USER, obj, string
from messaging.actions import accounts, auth, mfa

api = Api("mfa", "Two-factor sign-in")

PASSWORD = string(256, 1)
# Six digits, or a recovery code (``abcde-fghjk``); spaces and dashes are ignored.
CODE = string(32, 1, description="a 6-digit authenticator code or a recovery code")
RECOVERY_CODES = {
    "type": "array",
    "items": {"type": "string"},
    "description": "ten one-time codes, shown only now: each signs in once without the app",
}
CODE_ERRORS = ("invalid_code", "wrong_code", "code_already_used", "rate_limited")


@api.get(
    "/api/v1/me/mfa",
    summary="My two-factor sign-in",
    response=obj(
        {
            "enabled": {"type": "boolean"},
            "enrolling": {
                "type": "boolean",
                "description": "a set-up was started and awaits its confirming code",
            },
            "methods": {"type": "array", "items": {"enum": mfa.METHODS}},
            "recovery_codes_left": {"type": "integer"},
        },
        ["enabled", "enrolling", "methods", "recovery_codes_left"],
    ),
)
async def get_mfa(request: web.Request) -> dict:
    return await mfa.get_status(request.app[MESSAGING], request[AUTH].user)


@api.post(
    "/api/v1/me/mfa/totp",
    summary="Start setting up an authenticator app",
    body=obj({"password": PASSWORD}, ["password"]),
    response=obj(
        {
            "secret": {"type": "string", "description": "base32, to type into the app"},
            "otpauth_uri": {"type": "string", "description": "otpauth://totp/…"},
            "qr_svg": {"type": "string", "description": "the URI as a QR code, inline SVG"},
            "qr_data_uri": {"type": "string", "description": "the same as a data: URI"},
            "digits": {"type": "integer"},
            "period": {"type": "integer", "description": "seconds per code"},
        },
        ["secret", "otpauth_uri", "qr_svg", "qr_data_uri", "digits", "period"],
    ),
    errors=("wrong_password", "mfa_already_enabled", "rate_limited"),
)
async def start_totp(request: web.Request) -> dict:
    """Needs your password. Makes a new secret (30-second, 6-digit codes, RFC 6238) that does
    nothing until a code from the app confirms it; starting again replaces an unconfirmed one.
    Already on: 409 ``mfa_already_enabled``."""
    return await mfa.do_start_totp(
        request.app[MESSAGING], request[AUTH].user, request[BODY]["password"]
    )


@api.post(
    "/api/v1/me/mfa/totp/confirm",
    summary="Turn two-factor sign-in on with a code from the app",
    body=obj({"code": CODE}, ["code"]),
    response=obj({"user": USER, "recovery_codes": RECOVERY_CODES}, ["user", "recovery_codes"]),
    errors=("mfa_not_enrolling", "mfa_already_enabled", *CODE_ERRORS),
)
async def confirm_totp(request: web.Request) -> dict:
    """From now on signing in needs a code after the password. Answers ten recovery codes,
    shown this once (only their hashes are kept)."""
    user, codes = await mfa.do_confirm_totp(
        request.app[MESSAGING], request[AUTH].user, request[BODY]["code"]
    )
    return {"user": accounts.user_view(user, private=True), "recovery_codes": codes}


@api.delete(
    "/api/v1/me/mfa/totp",
    summary="Turn two-factor sign-in off",
    body=obj({"password": PASSWORD, "code": CODE}, ["password", "code"]),
    response=obj({"user": USER}, ["user"]),
    errors=("wrong_password", "mfa_not_enabled", *CODE_ERRORS),
)
async def disable_totp(request: web.Request) -> dict:
    """Needs your password and a code (from the app, or a recovery code). The secret and the
    recovery codes are deleted."""
    body = request[BODY]
    user = await mfa.do_disable(
        request.app[MESSAGING], request[AUTH].user, body["password"], body["code"]
    )
    return {"user": accounts.user_view(user, private=True)}


@api.post(
    "/api/v1/me/mfa/recovery-codes",
    summary="Make new recovery codes",
    body=obj({"password": PASSWORD, "code": CODE}, ["password", "code"]),
    response=obj({"recovery_codes": RECOVERY_CODES}, ["recovery_codes"]),
    errors=("wrong_password", "mfa_not_enabled", "recovery_codes_changed", *CODE_ERRORS),
)
async def new_recovery_codes(request: web.Request) -> dict:
    """Needs your password and a code. The old codes stop working at once."""
    body = request[BODY]
    codes = await mfa.do_new_recovery_codes(
        request.app[MESSAGING], request[AUTH].user, body["password"], body["code"]
    )
    return {"recovery_codes": codes}


@api.post(
    "/api/v1/auth/login/mfa",
    auth=False,
    summary="Finish signing in with a code",
    body=obj(
        {
            "mfa_token": string(2048, 1, description="from the login's mfa_required error"),
            "code": CODE,
        },
        ["mfa_token", "code"],
    ),
    response=TOKENS,
    errors=("invalid_mfa_token", "account_suspended", *CODE_ERRORS),
)
async def login_mfa(request: web.Request) -> dict:
    """When two-factor sign-in is on, ``POST /api/v1/auth/login`` answers 401 ``mfa_required``
    with ``details.mfa_token`` (valid 5 minutes) and ``details.methods``. Send it here with a
    6-digit code from the authenticator app or a recovery code to open the session (answered
    like login). Each code works once (a replayed one: 403 ``code_already_used``); five wrong
    codes end the token (401 ``invalid_mfa_token``) and, per account, answer 429
    ``rate_limited`` for the rest of ``LOGIN_WINDOW``."""
    body = request[BODY]
    user, tokens = await auth.do_login_second_factor(
        request.app[MESSAGING],
        mfa_token=body["mfa_token"],
        code=body["code"],
        address=client_address(request),
        user_agent=request.headers.get("User-Agent", ""),
    )
    return {**tokens, "user": accounts.user_view(user, private=True)}
