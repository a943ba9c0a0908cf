"""The ``email_tokens`` collection: the single-use tokens of mailed links (verify an address,
confirm an email change, reset a password).

Only a token's SHA-256 is stored, as ``_id``: the database never holds a usable link, and a token
is found by hashing what the link carried. Fields: ``purpose`` (``verify_email`` |
``reset_password``), ``kind`` (``address``: confirm the account's address; ``change``: confirm a
change to ``email``; ``reset``), ``user_id``, ``email`` (the address the link was mailed to),
``change_from`` (for a change, the account's address when it was asked for),
``created_at``, ``expires_at``, ``used_at`` (None until used; ``revoked`` when a newer event voided
it). A token is used by one conditional update (``used_at: None`` → now), so of concurrent uses
exactly one wins.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "email_tokens"
INDEXES = [
    IndexModel([("user_id", ASCENDING), ("purpose", ASCENDING)], name="user_purpose"),
    IndexModel([("expires_at", ASCENDING)], name="expires"),
]
VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"
# kinds
ADDRESS, CHANGE, RESET = "address", "change", "reset"


def new_token() -> str:
    """32 random bytes, URL-safe (43 characters): what the link carries."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class EmailTokens:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_token(self, token: dict[str, Any]) -> None:
        await self.collection.insert_one({"used_at": None, "revoked": False, **token})

    async def get_token(self, token_hash: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": token_hash})

    async def use_token(self, token_hash: str, purpose: str, now: int) -> bool:
        """Mark an unused, unexpired token of ``purpose`` used; False if it was not (another use
        won, it expired, or it was never one)."""
        result = await self.collection.update_one(
            {"_id": token_hash, "purpose": purpose, "used_at": None, "expires_at": {"$gt": now}},
            {"$set": {"used_at": now}},
        )
        return result.modified_count == 1

    async def give_back(self, token_hash: str, used_at: int) -> None:
        """Undo ``use_token`` (what the token was for could not be done after all)."""
        await self.collection.update_one(
            {"_id": token_hash, "used_at": used_at}, {"$set": {"used_at": None}}
        )

    async def revoke_user_tokens(
        self, user_id: str, purpose: str, now: int, *, kind: str | None = None
    ) -> int:
        """Void the user's unused tokens of ``purpose`` (all, or those of one ``kind``)."""
        query: dict[str, Any] = {"user_id": user_id, "purpose": purpose, "used_at": None}
        if kind is not None:
            query["kind"] = kind
        result = await self.collection.update_many(
            query, {"$set": {"used_at": now, "revoked": True}}
        )
        return result.modified_count

    async def delete_expired(self, before: int) -> int:
        result = await self.collection.delete_many({"expires_at": {"$lt": before}})
        return result.deleted_count
