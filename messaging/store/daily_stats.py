"""The ``daily_stats`` collection: one document per UTC day, ``_id`` ``"2026-11-26"``, with
counters bumped by ``$inc`` (``messages``, ``new_users``, ``active_users``), so the admin charts
read a handful of small documents instead of scanning messages."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "daily_stats"
INDEXES: list = []  # looked up by _id only
COUNTERS = ("messages", "new_users", "active_users")


class DailyStats:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add(self, day: str, counter: str, amount: int = 1) -> None:
        assert counter in COUNTERS
        await self.collection.update_one({"_id": day}, {"$inc": {counter: amount}}, upsert=True)

    async def get_days(self, days: list[str]) -> dict[str, dict[str, Any]]:
        found = await self.collection.find({"_id": {"$in": days}}).to_list(length=len(days) or 1)
        return {doc["_id"]: doc for doc in found}
