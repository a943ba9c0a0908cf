"""The ``notifications`` collection: one document per notification in a user's feed.

``source`` names what the notification is about (``msg:<id>``, ``call:<id>``, …) and is unique
per user, so deriving the same notification twice (a retried hook, a replayed event) stores it
once. Unread is never a stored counter: it is the number of the user's documents with
``read: false``, counted through the (user_id, read) index, so concurrent notifications and
marks can never leave it wrong.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from storage.mongo import count_up_to

COLLECTION = "notifications"
DUPLICATE_KEY = 11000
# The feed pages by (user_id, _id); no compound index names ``_id``: the embedded server fails
# every insert into a collection with one ("JSON path error near '_id'"). The ``since`` index
# narrows the feed to the user, and ids order it.
UNREAD_COUNT_MAX = 999  # unread counts stop here: on every new notification, cheap (count_up_to)
INDEXES = [
    IndexModel([("user_id", ASCENDING), ("read", ASCENDING)], name="unread"),
    IndexModel([("user_id", ASCENDING), ("created_at", ASCENDING)], name="since"),
    IndexModel([("user_id", ASCENDING), ("source", ASCENDING)], name="source", unique=True),
]


class Notifications:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_notifications(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert; ones whose (user, source) is already stored are skipped. Returns the added."""
        if not docs:
            return []
        try:
            await self.collection.insert_many(docs, ordered=False)
            return docs
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            failed = {error["index"] for error in errors}
            return [d for i, d in enumerate(docs) if i not in failed]

    async def get_notification(self, notification_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": notification_id})

    async def get_page(
        self, user_id: str, *, before: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first; ``before``: only ids below it (the previous page's last id)."""
        query: dict[str, Any] = {"user_id": user_id}
        if before is not None:
            query["_id"] = {"$lt": before}
        cursor = self.collection.find(query).sort("_id", DESCENDING)
        return await cursor.limit(limit).to_list(length=limit)

    async def get_since(self, user_id: str, since: int, limit: int) -> list[dict[str, Any]]:
        """Created at or after ``since`` (ms), newest first, at most ``limit``."""
        cursor = self.collection.find({"user_id": user_id, "created_at": {"$gte": since}})
        cursor = cursor.sort([("created_at", DESCENDING), ("_id", DESCENDING)])
        return await cursor.limit(limit).to_list(length=limit)

    async def count_unread(self, user_id: str) -> int:
        """Unread notifications, counted up to ``UNREAD_COUNT_MAX`` (a badge shows "999+")."""
        query = {"user_id": user_id, "read": False}
        return await count_up_to(self.collection, query, UNREAD_COUNT_MAX)

    async def mark_read(self, user_id: str, notification_ids: list[str], now: int) -> int:
        """Mark some of the user's notifications read; returns how many changed."""
        result = await self.collection.update_many(
            {"user_id": user_id, "_id": {"$in": notification_ids}, "read": False},
            {"$set": {"read": True, "read_at": now}},
        )
        return result.modified_count

    async def mark_all_read(self, user_id: str, now: int) -> int:
        result = await self.collection.update_many(
            {"user_id": user_id, "read": False}, {"$set": {"read": True, "read_at": now}}
        )
        return result.modified_count

    async def delete_user_notifications(self, user_id: str) -> int:
        result = await self.collection.delete_many({"user_id": user_id})
        return result.deleted_count
