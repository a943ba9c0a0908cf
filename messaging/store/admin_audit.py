"""The ``admin_audit`` collection: every action an administrator took (suspensions, session
revocations, moderation, mini-program switches, reading a conversation), newest first."""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from storage.mongo import new_id

COLLECTION = "admin_audit"
INDEXES = [
    IndexModel([("at", DESCENDING)], name="recent"),
    IndexModel([("action", 1), ("at", DESCENDING)], name="action_recent"),
]


class AdminAudit:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        doc = {"_id": new_id(), **entry}
        await self.collection.insert_one(doc)
        return doc

    async def get_entries(
        self, action: str | None, *, before: int | None, limit: int
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if action:
            query["action"] = action
        if before is not None:
            query["at"] = {"$lt": before}
        cursor = self.collection.find(query).sort([("at", DESCENDING), ("_id", DESCENDING)])
        return await cursor.limit(limit).to_list(length=limit)
