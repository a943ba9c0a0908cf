"""Password policy and argon2id hashing (run off the event loop: hashing is deliberately slow)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from storage.errors import AppError

MIN_LENGTH = 8
MAX_LENGTH = 256
# The most common passwords that still pass the length and character-class rules.
COMMON = {
    "password1",
    "password123",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword1",
    "qwerty123",
    "qwertyuiop1",
    "iloveyou1",
    "welcome1",
    "welcome123",
    "letmein1",
    "admin123",
    "abc12345",
    "abcd1234",
    "1q2w3e4r",
    "1qaz2wsx",
    "zaq12wsx",
    "trustno1",
    "sunshine1",
    "football1",
    "baseball1",
    "monkey123",
    "dragon123",
    "princess1",
    "changeme1",
    "aetherial1",
}


def check_password_strength(password: str, *, username: str, email: str) -> None:
    """Raise ``weak_password`` with the reason when the password is too easy to guess."""
    problem = None
    lowered = password.lower()
    personal = (username.lower(), email.split("@", 1)[0].lower())
    classes = sum(
        [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if len(password) < MIN_LENGTH:
        problem = f"must be at least {MIN_LENGTH} characters long"
    elif len(password) > MAX_LENGTH:
        problem = f"must be at most {MAX_LENGTH} characters long"
    elif classes < 2 and len(password) < 16:
        problem = "needs two kinds of characters (letters, digits, symbols) or 16+ characters"
    elif lowered in COMMON or len(set(password)) < 4:
        problem = "is too common"
    elif any(len(part) >= 3 and part in lowered for part in personal):
        problem = "must not contain your username or email"
    if problem:
        raise AppError(
            "weak_password", f"password {problem}", status=400, details={"field": "password"}
        )


class Passwords:
    """argon2id hashing with configurable cost."""

    def __init__(self, *, memory_kib: int, time_cost: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID
        )
        # Verified against when the account does not exist, so both paths cost the same.
        self._dummy_hash = self._hasher.hash("not a real password")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        def verify() -> bool:
            try:
                return self._hasher.verify(password_hash or self._dummy_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        ok = await asyncio.to_thread(verify)
        return ok and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
