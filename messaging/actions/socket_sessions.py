"""A socket's session over its lifetime: it is checked at connect like any request, and again
each time the access token it connected with would have expired.

Revocation normally reaches open sockets at once (``session.revoked`` and a pub/sub message to
every node); the re-check is what still closes a socket when that message was lost, when the
session simply ran out, or when the account went away.
"""

from __future__ import annotations

from dataclasses import dataclass

from messaging.actions.auth import Auth, authenticate, check_user_may_sign_in
from messaging.context import Messaging
from storage.errors import AppError
from storage.mongo import now_ms


@dataclass(frozen=True)
class SocketAuth:
    auth: Auth
    # When the access token the socket connected with expires (epoch seconds): its first re-check.
    token_expires_at: int


async def authenticate_socket(ctx: Messaging, access_token: object) -> SocketAuth:
    """``authenticate``, plus when this socket's session must next be checked."""
    claims = ctx.tokens.decode_access_token(access_token)
    return SocketAuth(await authenticate(ctx, access_token), claims.expires_at)


async def check_session_alive(ctx: Messaging, user_id: str, session_id: str) -> None:
    """Raise the reason a socket of this session may no longer stay open, as ``authenticate``
    would refuse a new request: ``session_revoked`` (logged out, revoked, the account deleted;
    ``details.reason`` says why when the session was revoked), ``session_expired`` (the session
    reached the end of its lifetime unused) or ``account_suspended``."""
    session = await ctx.sessions.get_session(session_id)
    if session is None or session["user_id"] != user_id:
        raise AppError("session_revoked", "this session has ended; sign in again", status=401)
    if session["revoked"]:
        raise AppError(
            "session_revoked",
            "this session has ended; sign in again",
            status=401,
            details={"reason": session.get("revoke_reason") or "revoked"},
        )
    if session["expires_at"] <= now_ms():
        raise AppError("session_expired", "this session has expired; sign in again", status=401)
    check_user_may_sign_in(await ctx.users.get_user(user_id))
