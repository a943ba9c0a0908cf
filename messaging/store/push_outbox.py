"""The ``push_outbox`` collection: Web Pushes still to send, one row per (notification, browser).

A row is written before anything is sent (DESIGN.md §3: durable jobs are rows first, the task
queue only executes them), so a crash, a restart or a push service that is down loses no push.
The id ``"<notification id>|<subscription id>"`` keeps a push queued at most once while it waits.

``due_at`` is both the schedule and the lease: a sender claims a due row by moving ``due_at``
into the future with a conditional update (only one sender wins), deletes it once the push
service took the push, or sets the next attempt's time after a failure. A sender that dies
mid-push leaves a row that falls due again when the lease ends.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

COLLECTION = "push_outbox"
INDEXES = [
    IndexModel([("due_at", ASCENDING)], name="due"),
    IndexModel([("subscription_id", ASCENDING)], name="subscription"),
]


def outbox_id(notification_id: str, sub_id: str) -> str:
    return f"{notification_id}|{sub_id}"


class PushOutbox:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_pushes(self, rows: list[dict[str, Any]]) -> int:
        """Insert rows; those already there (the same notification enqueued twice) are kept
        as they are. Returns how many were new."""
        if not rows:
            return 0
        try:
            result = await self.collection.insert_many(rows, ordered=False)
        except BulkWriteError as exc:
            duplicates = [e for e in exc.details.get("writeErrors", []) if e.get("code") == 11000]
            if len(duplicates) != len(exc.details.get("writeErrors", [])):
                raise
            return exc.details.get("nInserted", 0)
        return len(result.inserted_ids)

    async def get_due(self, now: int, limit: int) -> list[dict[str, Any]]:
        cursor = self.collection.find({"due_at": {"$lte": now}}).sort("due_at", ASCENDING)
        return await cursor.to_list(length=limit)

    async def claim(self, row_id: str, due_at: int, lease_until: int) -> bool:
        """Take a due row for one attempt (counted); False when another sender has it."""
        result = await self.collection.update_one(
            {"_id": row_id, "due_at": due_at},
            {"$set": {"due_at": lease_until}, "$inc": {"attempts": 1}},
        )
        return result.modified_count == 1

    async def reschedule(self, row_id: str, due_at: int, error: str) -> None:
        await self.collection.update_one(
            {"_id": row_id}, {"$set": {"due_at": due_at, "last_error": error}}
        )

    async def delete_push(self, row_id: str) -> None:
        await self.collection.delete_one({"_id": row_id})

    async def delete_for_subscription(self, sub_id: str, except_user: str | None = None) -> int:
        """Drop a subscription's pending pushes (all, or those for users other than
        ``except_user``: the browser now belongs to that account)."""
        query: dict[str, Any] = {"subscription_id": sub_id}
        if except_user is not None:
            query["user_id"] = {"$ne": except_user}
        result = await self.collection.delete_many(query)
        return result.deleted_count

    async def count(self) -> int:
        return await self.collection.count_documents({})
