"""The ``mail_outbox`` collection: mail to send, one row per message, written before anything is
sent (DESIGN.md §3: durable jobs are rows first; the task queue only executes them).

``_id`` is the caller's idempotency key (``verify:<token id>``, ``export_ready:<export id>``…):
queuing the same key again finds the row and sends nothing more, while the row is kept — sent rows
for ``KEEP_SENT`` (then ``delete_old`` removes them), failed ones for ``KEEP_FAILED``.

``state`` is ``queued``, ``sent`` or ``failed``. While queued, ``due_at`` is both the schedule and
the lease: a sender claims a due row by moving ``due_at`` into the future with a conditional
update (only one sender wins), and afterwards marks it sent or failed, or sets the next attempt's
time. A sender that dies mid-send leaves a row that falls due again when the lease ends (that
message may then go out twice; its ``Message-ID`` is the same both times).

The rendered texts hold live links (a password reset): they are dropped (``$unset``) as soon as
the row is sent or has failed, so only mail still waiting has them.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "mail_outbox"
INDEXES = [
    IndexModel([("state", ASCENDING), ("due_at", ASCENDING)], name="state_due"),
    IndexModel([("state", ASCENDING), ("done_at", ASCENDING)], name="state_done"),
    IndexModel([("user_id", ASCENDING)], name="user"),
]
QUEUED, SENT, FAILED = "queued", "sent", "failed"
_BODIES = {"text": "", "html": ""}


class MailOutbox:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_mail(self, row: dict[str, Any]) -> bool:
        """Insert a queued row; False when a row with its ``_id`` (the key) exists already."""
        try:
            await self.collection.insert_one({**row, "state": QUEUED, "attempts": 0})
        except DuplicateKeyError:
            return False
        return True

    async def get_mail(self, key: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": key})

    async def get_due(self, now: int, limit: int) -> list[dict[str, Any]]:
        cursor = self.collection.find({"state": QUEUED, "due_at": {"$lte": now}})
        return await cursor.sort("due_at", ASCENDING).to_list(length=limit)

    async def claim(self, key: str, due_at: int, lease_until: int) -> bool:
        """Take a due row for one attempt (counted); False when another sender has it."""
        result = await self.collection.update_one(
            {"_id": key, "state": QUEUED, "due_at": due_at},
            {"$set": {"due_at": lease_until}, "$inc": {"attempts": 1}},
        )
        return result.modified_count == 1

    async def mark_sent(self, key: str, now: int) -> None:
        await self.collection.update_one(
            {"_id": key}, {"$set": {"state": SENT, "done_at": now}, "$unset": _BODIES}
        )

    async def mark_failed(self, key: str, now: int, error: str) -> None:
        await self.collection.update_one(
            {"_id": key},
            {"$set": {"state": FAILED, "done_at": now, "last_error": error}, "$unset": _BODIES},
        )

    async def reschedule(self, key: str, due_at: int, error: str) -> None:
        await self.collection.update_one(
            {"_id": key, "state": QUEUED}, {"$set": {"due_at": due_at, "last_error": error}}
        )

    async def delete_old(self, sent_before: int, failed_before: int) -> int:
        removed = 0
        for state, before in ((SENT, sent_before), (FAILED, failed_before)):
            result = await self.collection.delete_many({"state": state, "done_at": {"$lt": before}})
            removed += result.deleted_count
        return removed

    async def count(self, state: str | None = None) -> int:
        return await self.collection.count_documents({} if state is None else {"state": state})

    async def delete_for_user(self, user_id: str) -> int:
        """Forget every mail to a deleted account: its address and what we wrote to it. A mail
        being sent at that moment may still leave (its row was claimed)."""
        result = await self.collection.delete_many({"user_id": user_id})
        return result.deleted_count
