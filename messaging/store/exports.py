"""The ``exports`` collection: one document per requested export of a person's data (a ZIP).

::

    {_id, user_id, status, created_at, due_at, attempts,
     active_user,                 # user_id while pending/building, else the export's own _id
     blob, size, ready_at, expires_at, token_hash, notified, downloaded_at, error}

``status``: ``pending`` → ``building`` → ``ready`` → ``downloaded`` | ``expired``; or ``failed``.

``active_user`` carries a unique index: it is the user id while the export is pending or
building and the export's own id afterwards, so the index — not a prior read — keeps a person
to one export in progress (a second request loses on the index: ``export_in_progress``). Never
null: a unique index counts nulls too.

``due_at`` is the row's next job and its lease at once (the claim pattern of ``push_outbox``):
build it (pending/building), tell the person it is ready (ready, not yet ``notified``), expire it
(ready: its ``expires_at``), drop the blob a download left behind (downloaded), or delete the row
(expired/downloaded/failed, a week on: kept that long so the daily limit can count it). A worker
claims a due row by moving ``due_at`` forward with a conditional update — only one wins — and a
worker that dies mid-job leaves a row that falls due again when the lease ends.

The download link's token is stored hashed (SHA-256): the raw token only ever goes to the person.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "exports"
INDEXES = [
    IndexModel([("due_at", ASCENDING)], name="due"),
    IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_recent"),
    IndexModel([("active_user", ASCENDING)], unique=True, name="one_active_per_user"),
]

PENDING, BUILDING, READY = "pending", "building", "ready"
DOWNLOADED, EXPIRED, FAILED = "downloaded", "expired", "failed"
IN_PROGRESS = (PENDING, BUILDING)


class Exports:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_export(self, doc: dict[str, Any]) -> bool:
        """Insert a pending export; False when the person already has one in progress."""
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get_export(self, export_id: str) -> dict[str, Any] | None:
        if not isinstance(export_id, str):
            return None
        return await self.collection.find_one({"_id": export_id})

    async def get_user_exports(self, user_id: str, limit: int) -> list[dict[str, Any]]:
        cursor = self.collection.find({"user_id": user_id}).sort("created_at", DESCENDING)
        return await cursor.limit(limit).to_list(length=limit)

    async def count_since(self, user_id: str, since: int) -> int:
        return await self.collection.count_documents(
            {"user_id": user_id, "created_at": {"$gte": since}}
        )

    async def oldest_since(self, user_id: str, since: int) -> int | None:
        """When the oldest export requested at or after ``since`` was requested."""
        found = (
            await self.collection.find(
                {"user_id": user_id, "created_at": {"$gte": since}}, {"created_at": 1}
            )
            .sort("created_at", ASCENDING)
            .limit(1)
            .to_list(length=1)
        )
        return found[0]["created_at"] if found else None

    async def get_due(self, now: int, limit: int) -> list[dict[str, Any]]:
        cursor = self.collection.find({"due_at": {"$lte": now}}).sort("due_at", ASCENDING)
        return await cursor.limit(limit).to_list(length=limit)

    async def claim(self, row: dict[str, Any], lease_until: int) -> bool:
        """Take a due row for one job (counted in ``attempts``); False when another worker has
        it, or it moved on (its status or schedule changed since it was read)."""
        result = await self.collection.update_one(
            {"_id": row["_id"], "due_at": row["due_at"], "status": row["status"]},
            {"$set": {"due_at": lease_until}, "$inc": {"attempts": 1}},
        )
        return result.modified_count == 1

    async def finish_job(
        self, export_id: str, lease_until: int, status: str, changes: dict[str, Any]
    ) -> bool:
        """Record a claimed job's outcome, only while the claim is still ours (``due_at`` is
        our lease): a worker that overran its lease writes nothing."""
        result = await self.collection.update_one(
            {"_id": export_id, "due_at": lease_until},
            {"$set": {"status": status, **changes}},
        )
        return result.modified_count == 1

    async def set_token(self, export_id: str, status: str, token_hash: str) -> bool:
        """A new download link for a ready export (the previous one stops working)."""
        result = await self.collection.update_one(
            {"_id": export_id, "status": status}, {"$set": {"token_hash": token_hash}}
        )
        return result.modified_count == 1

    async def take_download(
        self, export_id: str, token_hash: str, now: int, lease_until: int
    ) -> dict[str, Any] | None:
        """ready → downloaded, once (the token must match and the link be unexpired): the
        document, or None when the link was used, expired or replaced meanwhile. ``due_at``
        becomes the lease after which a download that never finished has its blob dropped."""
        return await self.collection.find_one_and_update(
            {
                "_id": export_id,
                "status": READY,
                "token_hash": token_hash,
                "expires_at": {"$gt": now},
            },
            {"$set": {"status": DOWNLOADED, "downloaded_at": now, "due_at": lease_until}},
            return_document=ReturnDocument.AFTER,
        )

    async def give_back(self, export_id: str, downloaded_at: int, due_at: int) -> bool:
        """A download cut short: ready again (the link works once more), unless it expired."""
        result = await self.collection.update_one(
            {"_id": export_id, "status": DOWNLOADED, "downloaded_at": downloaded_at},
            {"$set": {"status": READY, "due_at": due_at}, "$unset": {"downloaded_at": ""}},
        )
        return result.modified_count == 1

    async def delete_export(self, export_id: str) -> None:
        await self.collection.delete_one({"_id": export_id})

    async def get_all_of(self, user_id: str) -> list[dict[str, Any]]:
        return await self.collection.find({"user_id": user_id}).to_list(length=None)

    async def reschedule(self, export_id: str, due_at: int, next_due: int, **changes: Any) -> bool:
        """Move a claimed row's next job to ``next_due`` (only while ``due_at`` is our lease)."""
        result = await self.collection.update_one(
            {"_id": export_id, "due_at": due_at}, {"$set": {"due_at": next_due, **changes}}
        )
        return result.modified_count == 1

    async def clear_blob(self, export_id: str, status: str, next_due: int) -> None:
        """The row's blob is being deleted: forget its key (the row stays, for the daily limit)."""
        await self.collection.update_one(
            {"_id": export_id, "status": status}, {"$set": {"blob": None, "due_at": next_due}}
        )

    async def blob_used_elsewhere(self, key: str, export_id: str) -> bool:
        """Whether another export stores its ZIP under ``key`` (two byte-identical archives)."""
        found = await self.collection.find_one({"blob": key, "_id": {"$ne": export_id}}, {"_id": 1})
        return found is not None

    async def delete_if_due(self, export_id: str, due_at: int) -> None:
        await self.collection.delete_one({"_id": export_id, "due_at": due_at})
