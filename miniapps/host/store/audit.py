"""The ``miniapp_audit`` collection: every capability call a mini-program made, for admins."""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from storage.mongo import new_id

COLLECTION = "miniapp_audit"
INDEXES = [IndexModel([("app_id", 1), ("at", DESCENDING)], name="app_recent")]


class Audit:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def record(self, entry: dict[str, Any]) -> None:
        await self.collection.insert_one({"_id": new_id(), **entry})

    async def get_entries(self, app_id: str | None, *, before: int | None, limit: int) -> list:
        query: dict[str, Any] = {}
        if app_id:
            query["app_id"] = app_id
        if before is not None:
            query["at"] = {"$lt": before}
        cursor = self.collection.find(query).sort("at", DESCENDING).limit(limit)
        return await cursor.to_list(length=limit)
