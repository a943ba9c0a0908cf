"""Access tokens (short-lived HS256 JWTs) and opaque refresh tokens (stored only as hashes)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import jwt

from storage.errors import AppError

ISSUER = "aetherial"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str
    expires_at: int


class TokenService:
    def __init__(self, secret: str, access_ttl: int) -> None:
        self._secret = secret
        self.access_ttl = access_ttl

    def issue_access_token(self, user_id: str, session_id: str) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user_id,
            "sid": session_id,
            "typ": "access",
            "iat": now,
            "exp": now + self.access_ttl,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def decode_access_token(self, token: object) -> AccessClaims:
        """Verify signature, expiry and shape; raise ``token_expired`` or ``invalid_token``."""
        if not isinstance(token, str) or not token:
            raise AppError("missing_token", "an access token is required", status=401)
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "sid", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise AppError(
                "token_expired", "the access token has expired; refresh it", status=401
            ) from None
        except jwt.PyJWTError:
            raise AppError("invalid_token", "the access token is not valid", status=401) from None
        if claims.get("typ") != "access" or not all(
            isinstance(claims.get(k), str) for k in ("sub", "sid")
        ):
            raise AppError("invalid_token", "the access token is not valid", status=401)
        return AccessClaims(claims["sub"], claims["sid"], int(claims["exp"]))


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
