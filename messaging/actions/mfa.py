"""Two-factor sign-in: an authenticator app (TOTP, RFC 6238) and ten one-time recovery codes.

Enrolment is two steps, so a factor the person cannot actually produce codes for never locks
them out: ``do_start_totp`` (password) makes a pending factor with a new secret and shows it as a
QR code; ``do_confirm_totp`` (a code from the app) confirms it, sets ``users.mfa_enabled`` and
answers the recovery codes, once. From then on a right password alone opens no session:
``do_login`` raises ``mfa_required`` with a short-lived ``mfa_token`` (``issue_login_token``)
and ``auth.do_login_second_factor`` finishes the sign-in with a code.

Every code is single use. A TOTP code is accepted by moving the factor's ``last_step`` forward
with a conditional update, so a replay inside the code's window (or the same code sent twice at
once) is refused; a recovery code by the conditional ``used_at: None → now``. Wrong codes are
counted per person *before* each check (``MFA_MAX_FAILURES`` per ``LOGIN_WINDOW``: a burst cannot
slip between a check and its count), and per ``mfa_token``, which dies after as many.

Order of writes where two documents change (no transactions: DESIGN.md §3): recovery codes are
written before the factor names their batch, and the factor is confirmed before the account's
flag is set, so a crash leaves at most unused rows or a confirmed factor on an account whose flag
is off — which still signs in with the password alone, and is replaced by the next enrolment.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
import pyotp
import segno

from messaging.actions.accounts import check_password
from messaging.actions.limits import check_limit
from messaging.context import Messaging
from storage.errors import AppError
from storage.mongo import new_id, now_ms

TOTP_PERIOD = 30  # seconds per time step (RFC 6238's default; what authenticator apps assume)
TOTP_DIGITS = 6
VALID_WINDOW = 1  # steps either side of now that are accepted: clocks drift, people type slowly
ISSUER_NAME = "Aetherial"  # shown in the authenticator app beside the account name
RECOVERY_CODES = 10
# Crockford's base32 (no i, l, o, u): ten characters are 50 bits, and nothing reads ambiguously.
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
RECOVERY_LENGTH = 10
MFA_MAX_FAILURES = 5  # wrong codes per person per LOGIN_WINDOW, and per mfa_token
MFA_TOKEN_TTL = 300  # seconds between a right password and the code that completes the login
MFA_TOKEN_AUDIENCE = "aetherial:mfa"
METHODS = ["totp", "recovery_code"]

_TOTP_CODE = re.compile(r"\d{6}")
_RECOVERY_CODE = re.compile(f"[{RECOVERY_ALPHABET}]{{{RECOVERY_LENGTH}}}")
# What people type for the letters Crockford's alphabet leaves out.
_CROCKFORD_FIX = str.maketrans({"o": "0", "i": "1", "l": "1"})


# --- codes ----------------------------------------------------------------------------------


def _parse_code(code: str) -> tuple[str, str]:
    """``("totp", six digits)`` or ``("recovery_code", ten letters)``, spaces and dashes
    ignored; anything else is ``invalid_code`` (a typo, not a guess: it is not counted)."""
    compact = re.sub(r"[\s-]", "", code).lower()
    if _TOTP_CODE.fullmatch(compact):
        return "totp", compact
    recovery = compact.translate(_CROCKFORD_FIX)
    if _RECOVERY_CODE.fullmatch(recovery):
        return "recovery_code", recovery
    raise AppError(
        "invalid_code",
        "enter the 6-digit code from your authenticator app, or one of your recovery codes",
        details={"field": "code"},
    )


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step (within ``VALID_WINDOW`` of now) whose code this is, or None. pyotp's own
    ``verify(valid_window=1)`` does the same but does not say which step matched, and the step
    is what makes a code single use."""
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD)
    current = int(now // TOTP_PERIOD)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _recovery_hash(user_id: str, code: str) -> str:
    return hashlib.sha256(f"{user_id}:{code}".encode()).hexdigest()


def _new_recovery_codes() -> list[str]:
    """Ten distinct codes, normalised (``_parse_code`` form)."""
    codes: set[str] = set()
    while len(codes) < RECOVERY_CODES:
        codes.add("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH)))
    return sorted(codes)


def _shown(code: str) -> str:
    """How a recovery code is shown: ``abcde-fghjk`` (the dash is ignored when typed back)."""
    half = RECOVERY_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


async def _new_recovery_batch(ctx: Messaging, user_id: str) -> tuple[str, list[str]]:
    """Store a set of codes (hashed) that is dead until the factor names its batch."""
    batch, codes = new_id(), _new_recovery_codes()
    hashes = [_recovery_hash(user_id, c) for c in codes]
    await ctx.mfa_recovery_codes.add_batch(user_id, batch, hashes, now_ms())
    return batch, [_shown(c) for c in codes]


# --- checks -----------------------------------------------------------------------------------


async def _confirmed_factor(ctx: Messaging, user: dict) -> dict:
    factor = await ctx.mfa_factors.get_factor(user["_id"])
    if not user.get("mfa_enabled") or factor is None or factor.get("confirmed_at") is None:
        raise AppError(
            "mfa_not_enabled", "two-factor sign-in is not turned on for this account", status=409
        )
    return factor


async def check_second_factor(ctx: Messaging, user: dict, code: str) -> None:
    """Prove the second factor of ``user`` (whose two-factor sign-in is on) with ``code``: a
    6-digit code from the authenticator or an unused recovery code. The code is spent (its time
    step, or the recovery code), so it works once. Raises ``invalid_code`` (not a code's shape),
    ``rate_limited`` (``MFA_MAX_FAILURES`` tries per ``LOGIN_WINDOW``), ``wrong_code``,
    ``code_already_used`` or ``mfa_not_enabled``."""
    kind, normalised = _parse_code(code)
    factor = await _confirmed_factor(ctx, user)
    user_id = user["_id"]
    key = f"mfa:fail:{user_id}"
    await check_limit(ctx, key, MFA_MAX_FAILURES, ctx.config.login_window, "wrong codes")
    if kind == "totp":
        step = _matching_step(factor["secret"], normalised, time.time())
        if step is None:
            raise AppError("wrong_code", "that code is not right; try the current one", status=403)
        if not await ctx.mfa_factors.use_step(user_id, step):
            raise AppError(
                "code_already_used",
                "that code was already used; wait for the next one in your authenticator app",
                status=403,
            )
    else:
        code_hash = _recovery_hash(user_id, normalised)
        batch = factor.get("recovery_batch")
        if batch is None or not await ctx.mfa_recovery_codes.use_code(
            user_id, batch, code_hash, now_ms()
        ):
            row = await ctx.mfa_recovery_codes.get_code(code_hash)
            if row is not None and row["batch"] == batch and row["used_at"] is not None:
                raise AppError(
                    "code_already_used", "that recovery code was already used", status=403
                )
            raise AppError("wrong_code", "that is not one of your recovery codes", status=403)
    await ctx.limiter.reset(key)


# --- the login's second half ------------------------------------------------------------------


@dataclass(frozen=True)
class LoginToken:
    user_id: str
    token_id: str
    password_mark: str


def _token_key(ctx: Messaging) -> bytes:
    """A key of its own for mfa tokens, derived from the access tokens' secret: whatever an mfa
    token carries, it can never pass as an access token (nor the reverse)."""
    secret = ctx.tokens._secret  # the one JWT secret (generated or JWT_SECRET), never stored here
    return hmac.new(secret.encode(), b"aetherial mfa token", hashlib.sha256).digest()


def _password_mark(user: dict) -> str:
    """Changes when the password does, so a password change kills a pending mfa token."""
    return hashlib.sha256(user["password_hash"].encode()).hexdigest()[:16]


def issue_login_token(ctx: Messaging, user: dict) -> str:
    """What a right password earns when two-factor sign-in is on: proof of the password for
    ``MFA_TOKEN_TTL`` seconds, for this account, good for one completed sign-in."""
    now = int(time.time())
    claims = {
        "iss": "aetherial",
        "aud": MFA_TOKEN_AUDIENCE,
        "typ": "mfa",
        "sub": user["_id"],
        "jti": secrets.token_urlsafe(12),
        "pwd": _password_mark(user),
        "iat": now,
        "exp": now + MFA_TOKEN_TTL,
    }
    return jwt.encode(claims, _token_key(ctx), algorithm="HS256")


def mfa_required(ctx: Messaging, user: dict) -> AppError:
    """The answer to a right password of an account with two-factor sign-in."""
    return AppError(
        "mfa_required",
        "enter the code from your authenticator app (or a recovery code) to finish signing in",
        status=401,
        details={
            "mfa_token": issue_login_token(ctx, user),
            "methods": METHODS,
            "expires_in": MFA_TOKEN_TTL,
        },
    )


def _invalid_token(message: str = "this sign-in has expired or is not valid; sign in again"):
    return AppError("invalid_mfa_token", message, status=401)


def _decode_login_token(ctx: Messaging, token: str) -> LoginToken:
    try:
        claims = jwt.decode(
            token,
            _token_key(ctx),
            algorithms=["HS256"],
            audience=MFA_TOKEN_AUDIENCE,
            issuer="aetherial",
            options={"require": ["exp", "iat", "sub", "jti", "aud", "iss"]},
        )
    except jwt.PyJWTError:
        raise _invalid_token() from None
    fields = (claims.get("sub"), claims.get("jti"), claims.get("pwd"))
    if claims.get("typ") != "mfa" or not all(isinstance(f, str) for f in fields):
        raise _invalid_token()
    return LoginToken(*fields)


async def check_login_code(ctx: Messaging, mfa_token: str, code: str) -> dict:
    """The second half of a login: the ``mfa_token`` of a right password and a right code →
    the user, whose session the caller opens. The code is spent (``check_second_factor``) and
    so is the token (one sign-in each); the token also dies after ``MFA_MAX_FAILURES`` wrong
    codes, at its expiry, when the password changes or two-factor sign-in is turned off."""
    _parse_code(code)  # a malformed code is refused before anything is counted
    token = _decode_login_token(ctx, mfa_token)
    user = await ctx.users.get_user(token.user_id)
    if (
        user is None
        or not user.get("mfa_enabled")
        or not hmac.compare_digest(_password_mark(user), token.password_mark)
    ):
        raise _invalid_token()
    if user.get("suspended"):
        raise AppError("account_suspended", "this account is suspended", status=403)
    # Counted before the code is checked, like every limit here (limits.check_limit).
    tries = await ctx.limiter.hit(f"mfa:token:{token.token_id}", MFA_MAX_FAILURES, MFA_TOKEN_TTL)
    if not tries.allowed:
        raise _invalid_token("too many wrong codes for this sign-in; sign in again")
    # One sign-in per token (the limiter is shared by the nodes). Looked at before the code, so
    # a spent token spends no code; marked after it, so the first right code takes the token.
    used_key = f"mfa:used:{token.token_id}"
    if not (await ctx.limiter.peek(used_key, 1, MFA_TOKEN_TTL)).allowed:
        raise _invalid_token("this sign-in was already completed; sign in again")
    await check_second_factor(ctx, user, code)
    if not (await ctx.limiter.hit(used_key, 1, MFA_TOKEN_TTL)).allowed:
        raise _invalid_token("this sign-in was already completed; sign in again")
    return user


# --- enrolment and management -----------------------------------------------------------------


async def do_start_totp(ctx: Messaging, user: dict, password: str) -> dict[str, Any]:
    """Start (or restart) enrolling an authenticator: a new secret, pending until confirmed.
    Answers the secret (to type in), its ``otpauth://`` URI and that URI as a QR code (an SVG
    document, and the same as a ``data:`` URI for an ``<img>``)."""
    if user.get("mfa_enabled"):
        raise AppError("mfa_already_enabled", "two-factor sign-in is already turned on", status=409)
    await check_password(ctx, user, password)
    user_id, secret = user["_id"], pyotp.random_base32()
    if not await ctx.mfa_factors.put_pending(user_id, secret, now_ms()):
        # A confirmed factor on an account whose flag is off: a confirmation that is finishing
        # now (then the flag is on when we look again), or one a crash cut short (replace it).
        fresh = await ctx.users.get_user(user_id)
        factor = await ctx.mfa_factors.get_factor(user_id)
        if (fresh and fresh.get("mfa_enabled")) or factor is None:
            raise AppError(
                "mfa_already_enabled", "two-factor sign-in is already turned on", status=409
            )
        await ctx.mfa_factors.replace_stale(user_id, factor["confirmed_at"])
        if not await ctx.mfa_factors.put_pending(user_id, secret, now_ms()):
            raise AppError(
                "mfa_already_enabled", "two-factor sign-in is already turned on", status=409
            )
    uri = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).provisioning_uri(
        name=user["username"], issuer_name=ISSUER_NAME
    )
    qr = segno.make(uri, error="m")
    return {
        "secret": secret,
        "otpauth_uri": uri,
        "qr_svg": qr.svg_inline(scale=4, border=2),
        "qr_data_uri": qr.svg_data_uri(scale=4, border=2),
        "digits": TOTP_DIGITS,
        "period": TOTP_PERIOD,
    }


async def do_confirm_totp(ctx: Messaging, user: dict, code: str) -> tuple[dict, list[str]]:
    """Confirm the pending factor with a code from the authenticator: two-factor sign-in is on.
    Answers the updated user and the recovery codes — the only time they are shown."""
    kind, normalised = _parse_code(code)
    if kind != "totp":
        raise AppError(
            "invalid_code",
            "enter the 6-digit code your authenticator app shows",
            details={"field": "code"},
        )
    if user.get("mfa_enabled"):
        raise AppError("mfa_already_enabled", "two-factor sign-in is already turned on", status=409)
    user_id = user["_id"]
    factor = await ctx.mfa_factors.get_factor(user_id)
    if factor is None or factor.get("confirmed_at") is not None:
        raise AppError(
            "mfa_not_enrolling",
            "start setting up two-factor sign-in first (the QR code step)",
            status=409,
        )
    key = f"mfa:fail:{user_id}"
    await check_limit(ctx, key, MFA_MAX_FAILURES, ctx.config.login_window, "wrong codes")
    step = _matching_step(factor["secret"], normalised, time.time())
    if step is None:
        raise AppError(
            "wrong_code",
            "that code is not right: check the app shows this account, and the current code",
            status=403,
        )
    batch, codes = await _new_recovery_batch(ctx, user_id)
    if not await ctx.mfa_factors.confirm(user_id, factor["secret"], step, now_ms(), batch):
        await ctx.mfa_recovery_codes.delete_batch(user_id, batch)
        raise AppError(
            "mfa_not_enrolling",
            "this set-up was replaced or finished meanwhile; start again",
            status=409,
        )
    await ctx.mfa_recovery_codes.delete_other_batches(user_id, batch)
    await ctx.limiter.reset(key)
    updated = await ctx.users.update_user(user_id, {"mfa_enabled": True}) or user
    return updated, codes


async def do_disable(ctx: Messaging, user: dict, password: str, code: str) -> dict:
    """Turn two-factor sign-in off (password and a code, either kind): the flag first, so the
    login stops asking, then the secret and the recovery codes are deleted."""
    _parse_code(code)
    await _confirmed_factor(ctx, user)
    await check_password(ctx, user, password)
    await check_second_factor(ctx, user, code)
    user_id = user["_id"]
    updated = await ctx.users.update_user(user_id, {"mfa_enabled": False}) or user
    await do_forget(ctx, user_id)
    return updated


async def do_new_recovery_codes(ctx: Messaging, user: dict, password: str, code: str) -> list:
    """A fresh set of ten recovery codes (password and a code); the old set dies at once."""
    _parse_code(code)
    factor = await _confirmed_factor(ctx, user)
    await check_password(ctx, user, password)
    await check_second_factor(ctx, user, code)
    user_id = user["_id"]
    batch, codes = await _new_recovery_batch(ctx, user_id)
    if not await ctx.mfa_factors.swap_recovery_batch(user_id, factor.get("recovery_batch"), batch):
        await ctx.mfa_recovery_codes.delete_batch(user_id, batch)
        raise AppError(
            "recovery_codes_changed",
            "your recovery codes were changed meanwhile (on another device); try again",
            status=409,
        )
    await ctx.mfa_recovery_codes.delete_other_batches(user_id, batch)
    return codes


async def get_status(ctx: Messaging, user: dict) -> dict[str, Any]:
    """Whether two-factor sign-in is on, an enrolment is pending, and how many recovery codes
    are left (a person down to a few should make new ones)."""
    factor = await ctx.mfa_factors.get_factor(user["_id"])
    enabled = bool(user.get("mfa_enabled")) and bool(factor and factor.get("confirmed_at"))
    left = 0
    if enabled and factor and factor.get("recovery_batch"):
        left = await ctx.mfa_recovery_codes.count_unused(user["_id"], factor["recovery_batch"])
    return {
        "enabled": enabled,
        "enrolling": bool(factor) and factor.get("confirmed_at") is None,
        "methods": METHODS if enabled else [],
        "recovery_codes_left": left,
    }


async def do_forget(ctx: Messaging, user_id: str) -> None:
    """Delete the account's factor and recovery codes (two-factor sign-in turned off, or the
    account deleted). Does not touch ``users.mfa_enabled``: the caller decides that."""
    await ctx.mfa_factors.delete_factor(user_id)
    await ctx.mfa_recovery_codes.delete_for_user(user_id)
