"""The ``sessions`` collection: one document per signed-in device (a refresh-token family)."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "sessions"
INDEXES = [
    IndexModel([("user_id", ASCENDING), ("last_used_at", DESCENDING)], name="user_recent"),
]
# Timestamps are integer epoch milliseconds (see storage.mongo.now_ms), so expiry is checked in
# code rather than by a TTL index, which needs BSON dates.


class Sessions:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_session(self, session: dict[str, Any]) -> None:
        await self.collection.insert_one(session)

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": session_id})

    async def get_active_sessions(self, user_id: str) -> list[dict[str, Any]]:
        cursor = self.collection.find({"user_id": user_id, "revoked": False}).sort(
            "last_used_at", DESCENDING
        )
        return await cursor.to_list(length=1000)

    async def touch_session(self, session_id: str, now: int, expires_at: int) -> None:
        await self.collection.update_one(
            {"_id": session_id}, {"$set": {"last_used_at": now, "expires_at": expires_at}}
        )

    async def delete_expired(self, now: int) -> int:
        """Remove sessions whose lifetime ended (no TTL index: timestamps are integer ms)."""
        result = await self.collection.delete_many({"expires_at": {"$lt": now}})
        return result.deleted_count

    async def revoke_session(self, session_id: str, now: int, reason: str) -> bool:
        """Mark revoked; False when it was already revoked (or does not exist)."""
        result = await self.collection.update_one(
            {"_id": session_id, "revoked": False},
            {"$set": {"revoked": True, "revoked_at": now, "revoke_reason": reason}},
        )
        return result.modified_count == 1

    async def get_user_session_ids(self, user_id: str) -> list[str]:
        """Every session of ``user_id``, revoked and expired ones too."""
        cursor = self.collection.find({"user_id": user_id}, {"_id": 1})
        return [doc["_id"] async for doc in cursor]

    async def delete_sessions(self, session_ids: list[str]) -> int:
        if not session_ids:
            return 0
        result = await self.collection.delete_many({"_id": {"$in": session_ids}})
        return result.deleted_count
