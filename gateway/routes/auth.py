"""Registration, login, token refresh and logout."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from gateway.api import AUTH, BODY, Api
from gateway.keys import CONFIG, MESSAGING
from gateway.schemas import TOKENS, USER, obj, string
from messaging.actions import accounts, auth

api = Api("auth", "Accounts and tokens")


def _hop_address(hop: str) -> str:
    """One X-Forwarded-For entry as a plain IP address: some proxies add the port
    (``203.0.113.7:4711``, ``[2001:db8::1]:4711``). Anything else is kept as written, bounded."""
    hop = hop.strip()
    candidates = [hop]
    if hop.startswith("[") and "]" in hop:
        candidates.append(hop[1 : hop.index("]")])
    elif hop.count(":") == 1:
        candidates.append(hop.split(":", 1)[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return hop[:64]


def client_address(request: web.Request) -> str:
    """The caller's address. Behind ``TRUSTED_PROXIES`` proxies of ours, each appended the address
    it saw to X-Forwarded-For, so the client is that many entries from the right; what is further
    left was written by the client and proves nothing. Without trusted proxies the header is
    ignored."""
    trusted = request.app[CONFIG].trusted_proxies
    if trusted:
        hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")]
        hops = [hop for hop in hops if hop]
        if len(hops) >= trusted:
            return _hop_address(hops[-trusted])
        if hops:  # a proxy was skipped: the leftmost was written by the first one it passed
            return _hop_address(hops[0])
    return request.remote or "unknown"


@api.post(
    "/api/v1/auth/register",
    auth=False,
    status=201,
    summary="Create an account",
    body=obj(
        {"username": string(32), "email": string(254), "password": string(256)},
        ["username", "email", "password"],
    ),
    response=obj({"user": USER}, ["user"]),
    errors=("username_taken", "email_taken", "weak_password", "invalid_field", "rate_limited"),
)
async def register(request: web.Request) -> dict:
    """Usernames and emails are unique regardless of letter case. Passwords: 8+ characters of two
    kinds (or 16+), not common, not containing the username or email. Sign-ups are limited per
    client address and in all (``REGISTER_MAX_PER_ADDRESS``, ``REGISTER_MAX_GLOBAL`` per
    ``REGISTER_WINDOW``), refused attempts included; past a limit the answer is 429
    ``rate_limited`` with ``Retry-After``."""
    user = await accounts.do_register(
        request.app[MESSAGING], **request[BODY], address=client_address(request)
    )
    return {"user": accounts.user_view(user, private=True)}


@api.post(
    "/api/v1/auth/login",
    auth=False,
    summary="Sign in with username or email",
    body=obj({"login": string(254), "password": string(256)}, ["login", "password"]),
    response=TOKENS,
    errors=("invalid_credentials", "rate_limited", "account_suspended", "mfa_required"),
)
async def login(request: web.Request) -> dict:
    """Opens a session (one per device). Failed attempts are limited per account and per address;
    past the limit the answer is 429 ``rate_limited`` with ``Retry-After``."""
    body = request[BODY]
    user, tokens = await auth.do_login(
        request.app[MESSAGING],
        login=body["login"],
        password=body["password"],
        address=client_address(request),
        user_agent=request.headers.get("User-Agent", ""),
    )
    return {**tokens, "user": accounts.user_view(user, private=True)}


@api.post(
    "/api/v1/auth/refresh",
    auth=False,
    summary="Exchange a refresh token for a new token pair",
    body=obj({"refresh_token": string(512, 1)}, ["refresh_token"]),
    response=TOKENS,
    errors=("invalid_refresh_token", "refresh_token_reused", "session_revoked"),
)
async def refresh(request: web.Request) -> dict:
    """Each refresh token works once. Presenting a used one again revokes the whole session."""
    user, tokens = await auth.do_refresh(request.app[MESSAGING], request[BODY]["refresh_token"])
    return {**tokens, "user": accounts.user_view(user, private=True)}


@api.post(
    "/api/v1/auth/logout",
    status=204,
    summary="End the current session",
    errors=("session_revoked",),
)
async def logout(request: web.Request) -> None:
    """Revokes this device's session: its tokens stop working and its sockets disconnect."""
    who = request[AUTH]
    await auth.do_revoke_session(request.app[MESSAGING], who.user_id, who.session_id, "logout")
