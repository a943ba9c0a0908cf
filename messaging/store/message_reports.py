"""The ``message_reports`` collection: a user's report of a message, for the moderators.

Unique (message_id, reporter_id): a user reports a message once. ``status`` is ``open`` until an
admin hides the message (``resolved``) or dismisses the report (``dismissed``); both are
conditional updates on ``status: "open"``, so a report is closed once.
"""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "message_reports"
INDEXES = [
    IndexModel([("message_id", 1), ("reporter_id", 1)], unique=True, name="once_per_reporter"),
    IndexModel([("status", 1), ("created_at", DESCENDING)], name="status_recent"),
]


class MessageReports:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_report(self, report: dict[str, Any]) -> None:
        """Insert; raises ``DuplicateKeyError`` when this user already reported the message."""
        await self.collection.insert_one(report)

    async def get_report(self, report_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": report_id})

    async def get_reports(
        self, status: str | None, *, before: int | None, limit: int
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if status:
            query["status"] = status
        if before is not None:
            query["created_at"] = {"$lt": before}
        cursor = self.collection.find(query).sort("created_at", DESCENDING).limit(limit)
        return await cursor.to_list(length=limit)

    async def close_report(self, report_id: str, status: str, by: str, now: int) -> dict | None:
        """Close an open report; None when it was not open (or does not exist)."""
        return await self.collection.find_one_and_update(
            {"_id": report_id, "status": "open"},
            {"$set": {"status": status, "closed_by": by, "closed_at": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def resolve_for_message(self, message_id: str, by: str, now: int) -> int:
        result = await self.collection.update_many(
            {"message_id": message_id, "status": "open"},
            {"$set": {"status": "resolved", "closed_by": by, "closed_at": now}},
        )
        return result.modified_count
