"""The ``refresh_tokens`` collection: hashes of issued refresh tokens, rotated on every use.

A token is stored only as its SHA-256. Using one flips ``rotated`` with a conditional update, so
of two concurrent uses exactly one wins; a rotated token presented again is evidence of theft.
"""

from __future__ import annotations

from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "refresh_tokens"
INDEXES = [
    IndexModel("session_id", name="session"),
]


class RefreshTokens:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_refresh_token(self, token: dict[str, Any]) -> None:
        await self.collection.insert_one(token)

    async def get_refresh_token(self, token_hash: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": token_hash})

    async def delete_expired(self, now: int) -> int:
        result = await self.collection.delete_many({"expires_at": {"$lt": now}})
        return result.deleted_count

    async def rotate_refresh_token(self, token_hash: str, now: int) -> dict[str, Any] | None:
        """Mark the token used; returns it, or None if unknown or already used."""
        return await self.collection.find_one_and_update(
            {"_id": token_hash, "rotated": False},
            {"$set": {"rotated": True, "rotated_at": now}},
        )

    async def delete_for_sessions(self, session_ids: list[str]) -> int:
        if not session_ids:
            return 0
        result = await self.collection.delete_many({"session_id": {"$in": session_ids}})
        return result.deleted_count
