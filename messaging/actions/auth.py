"""Signing in and out: login, refresh-token rotation with reuse detection, sessions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from messaging.actions import mfa
from messaging.actions.limits import address_bucket, check_limit
from messaging.actions.stats import note_active
from messaging.context import Messaging
from messaging.events import event
from messaging.tokens import hash_refresh_token, new_refresh_token
from storage.errors import AppError
from storage.mongo import iso, new_id, now_ms

USER_AGENT_MAX = 256


@dataclass(frozen=True)
class Auth:
    """Who is calling: the user and the session (device) their token belongs to."""

    user_id: str
    session_id: str
    user: dict[str, Any]


async def _issue_tokens(ctx: Messaging, user: dict, session_id: str, now: int) -> dict:
    """Store a fresh refresh token for the session and return the token pair."""
    refresh_token = new_refresh_token()
    await ctx.refresh_tokens.add_refresh_token(
        {
            "_id": hash_refresh_token(refresh_token),
            "session_id": session_id,
            "user_id": user["_id"],
            "rotated": False,
            "created_at": now,
            "expires_at": now + ctx.config.refresh_token_ttl * 1000,
        }
    )
    return {
        "access_token": ctx.tokens.issue_access_token(user["_id"], session_id),
        "refresh_token": refresh_token,
        "token_type": "Bearer",
        "expires_in": ctx.tokens.access_ttl,
        "session_id": session_id,
    }


def check_user_may_sign_in(user: dict | None) -> dict:
    if user is None:
        raise AppError("session_revoked", "this account no longer exists", status=401)
    if user.get("suspended"):
        raise AppError("account_suspended", "this account is suspended", status=403)
    return user


async def do_login(
    ctx: Messaging, *, login: str, password: str, address: str, user_agent: str
) -> tuple[dict, dict]:
    """Check credentials (rate-limited per account and per address) and open a session."""
    cfg = ctx.config
    login_lower = login.strip().lower()
    await check_limit(
        ctx,
        f"login:addr:{address_bucket(address)}",
        cfg.login_max_attempts_per_address,
        cfg.login_window,
        "login attempts",
    )
    user = await ctx.users.get_user_by_login(login_lower) if login_lower else None
    # Failures count per account, whether its username or its email was typed (unknown logins
    # per typed text). Each attempt is counted *before* the password is checked and the count
    # is forgotten on success: counting only after a failed check would let a concurrent burst
    # all pass the check before any of them is counted.
    account_key = f"login:acct:{user['_id']}" if user else f"login:unknown:{login_lower}"
    await check_limit(
        ctx, account_key, cfg.login_max_failures, cfg.login_window, "failed login attempts"
    )
    # Verify even for unknown accounts so timing does not reveal which logins exist.
    if not await ctx.passwords.verify(user and user["password_hash"], password):
        raise AppError("invalid_credentials", "wrong login or password", status=401)
    user = check_user_may_sign_in(user)
    await ctx.limiter.reset(account_key)
    if ctx.passwords.needs_rehash(user["password_hash"]):
        user = (
            await ctx.users.update_user(
                user["_id"], {"password_hash": await ctx.passwords.hash(password)}
            )
            or user
        )
    if user.get("mfa_enabled"):
        # The password is only half the proof: no session until a code completes the sign-in
        # (``do_login_second_factor``); the error carries the short-lived ``mfa_token``.
        raise mfa.mfa_required(ctx, user)
    return user, await do_open_session(ctx, user, address=address, user_agent=user_agent)


async def do_login_second_factor(
    ctx: Messaging, *, mfa_token: str, code: str, address: str, user_agent: str
) -> tuple[dict, dict]:
    """Finish a login that answered ``mfa_required``: the token it carried and a code from the
    authenticator (or a recovery code) open the session."""
    user = await mfa.check_login_code(ctx, mfa_token, code)
    return user, await do_open_session(ctx, user, address=address, user_agent=user_agent)


async def do_open_session(ctx: Messaging, user: dict, *, address: str, user_agent: str) -> dict:
    """A new session (device) for ``user``, whose credentials were checked, and its token pair."""
    now = now_ms()
    session_id = new_id()
    await ctx.sessions.add_session(
        {
            "_id": session_id,
            "user_id": user["_id"],
            "created_at": now,
            "last_used_at": now,
            "expires_at": now + ctx.config.refresh_token_ttl * 1000,
            "user_agent": user_agent[:USER_AGENT_MAX],
            "ip": address,
            "revoked": False,
        }
    )
    return await _issue_tokens(ctx, user, session_id, now)


async def do_refresh(ctx: Messaging, refresh_token: str) -> tuple[dict, dict]:
    """Rotate a refresh token. A token used twice revokes its whole session (likely theft)."""
    now = now_ms()
    token_hash = hash_refresh_token(refresh_token)
    token = await ctx.refresh_tokens.rotate_refresh_token(token_hash, now)
    if token is None:
        known = await ctx.refresh_tokens.get_refresh_token(token_hash)
        if known is None:
            raise AppError("invalid_refresh_token", "unknown refresh token", status=401)
        await _revoke(ctx, known["session_id"], "refresh_token_reused")
        raise AppError(
            "refresh_token_reused",
            "this refresh token was already used; the session is revoked, sign in again",
            status=401,
        )
    session = await ctx.sessions.get_session(token["session_id"])
    if session is None or session["revoked"] or session["expires_at"] <= now:
        raise AppError("session_revoked", "this session has ended; sign in again", status=401)
    user = check_user_may_sign_in(await ctx.users.get_user(token["user_id"]))
    await ctx.sessions.touch_session(session["_id"], now, now + ctx.config.refresh_token_ttl * 1000)
    return user, await _issue_tokens(ctx, user, session["_id"], now)


async def do_sweep_expired(ctx: Messaging) -> int:
    """Delete sessions and refresh tokens past their lifetime; they are already refused, this
    only keeps the collections from growing. Safe to run on every node at once."""
    now = now_ms()
    return await ctx.sessions.delete_expired(now) + await ctx.refresh_tokens.delete_expired(now)


async def authenticate(ctx: Messaging, access_token: object) -> Auth:
    """Resolve an access token to a live session of an active user, or raise 401/403."""
    claims = ctx.tokens.decode_access_token(access_token)
    session = await ctx.sessions.get_session(claims.session_id)
    if (
        session is None
        or session["revoked"]
        or session["user_id"] != claims.user_id
        or session["expires_at"] <= now_ms()
    ):
        raise AppError("session_revoked", "this session has ended; sign in again", status=401)
    user = check_user_may_sign_in(await ctx.users.get_user(claims.user_id))
    await note_active(ctx, user["_id"])
    return Auth(user_id=user["_id"], session_id=session["_id"], user=user)


def session_view(session: dict, current_session_id: str) -> dict:
    return {
        "id": session["_id"],
        "created_at": iso(session["created_at"]),
        "last_used_at": iso(session["last_used_at"]),
        "user_agent": session.get("user_agent", ""),
        "ip": session.get("ip", ""),
        "current": session["_id"] == current_session_id,
    }


async def get_sessions(ctx: Messaging, auth: Auth) -> list[dict]:
    return [
        session_view(s, auth.session_id)
        for s in await ctx.sessions.get_active_sessions(auth.user_id)
    ]


async def do_revoke_session(ctx: Messaging, user_id: str, session_id: str, reason: str) -> None:
    """End a session of ``user_id``: its tokens stop working and its sockets are disconnected."""
    session = await ctx.sessions.get_session(session_id)
    if session is None or session["user_id"] != user_id or session["revoked"]:
        raise AppError("session_not_found", "no such active session", status=404)
    await _revoke(ctx, session_id, reason)


async def _revoke(ctx: Messaging, session_id: str, reason: str) -> bool:
    if not await ctx.sessions.revoke_session(session_id, now_ms(), reason):
        return False  # already revoked (by a concurrent call): its event went out then
    payload = {"session_id": session_id, "reason": reason}
    await ctx.events.emit(event("session.revoked", {"session": session_id}, payload))
    return True


async def do_revoke_all_sessions(
    ctx: Messaging, user_id: str, reason: str, *, keep: str | None = None
) -> int:
    """End every active session of ``user_id`` but ``keep`` (a password changed, the account
    deleted): their tokens stop working and their sockets are disconnected. Returns how many."""
    ended = 0
    for session in await ctx.sessions.get_active_sessions(user_id):
        if session["_id"] != keep and await _revoke(ctx, session["_id"], reason):
            ended += 1
    return ended
