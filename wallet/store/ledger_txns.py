"""The ``ledger_txns`` collection: the journal of money movements (a "transaction" each).

A document is written *before* any balance moves, with its entries, a unique idempotency key and
a lease. Its ``status`` goes ``pending`` → ``applied`` (every entry's balance moved) → ``posted``
(entry documents written); one that cannot be applied (funds short) ends ``failed`` and is kept,
so its key replays that answer. A node that finds one stuck past its lease finishes it
(``Ledger.recover``).
(The name avoids ``transaction``: nx-27017 refuses collections named like SQL keywords.)
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

COLLECTION = "ledger_txns"
INDEXES = [
    IndexModel([("idempotency_key", ASCENDING)], name="idempotency_key", unique=True),
    IndexModel([("status", ASCENDING), ("lease_until", ASCENDING)], name="status_lease"),
    IndexModel([("status", ASCENDING), ("posted_at", ASCENDING)], name="status_posted"),
]


class LedgerTxns:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_txn(self, txn: dict[str, Any]) -> bool:
        """Journal a new transaction; False when its idempotency key is taken."""
        try:
            await self.collection.insert_one(txn)
            return True
        except DuplicateKeyError:
            return False

    async def add_txns(self, txns: list[dict[str, Any]]) -> set[int]:
        """Journal many in one round trip; the indexes of those whose idempotency key is taken
        (the unique index decides, also between two of this list)."""
        if not txns:
            return set()
        try:
            await self.collection.insert_many(txns, ordered=False)
            return set()
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors") or []
            if not errors or any(e.get("code") != 11000 for e in errors):
                raise
            return {e["index"] for e in errors}

    async def set_failed_many(self, failures: list[tuple[str, str]], now: int) -> None:
        """(txn id, reason) pending → failed, in one round trip."""
        if failures:
            await self.collection.bulk_write(
                [
                    UpdateOne(
                        {"_id": txn_id, "status": "pending"},
                        {"$set": {"status": "failed", "failed_at": now, "reason": reason}},
                    )
                    for txn_id, reason in failures
                ],
                ordered=False,
            )

    async def set_posted_many(self, txn_ids: list[str], applied_at: int, now: int) -> None:
        """Transactions whose every balance moved and whose entries and hooks are written:
        → posted, in one round trip (group commit skips the ``applied`` step: the accounts'
        markers already make a recovery's re-apply a no-op)."""
        if txn_ids:
            await self.collection.update_many(
                {"_id": {"$in": txn_ids}, "status": {"$in": ["pending", "applied"]}},
                {"$set": {"status": "posted", "applied_at": applied_at, "posted_at": now}},
            )

    async def get_by_key(self, key: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"idempotency_key": key})

    async def set_status(self, txn_id: str, old: str, new: str, fields: dict[str, Any]) -> bool:
        result = await self.collection.update_one(
            {"_id": txn_id, "status": old}, {"$set": {"status": new, **fields}}
        )
        return result.modified_count == 1

    async def get_stuck(self, now: int, limit: int = 100) -> list[dict[str, Any]]:
        cursor = self.collection.find(
            {"status": {"$in": ["pending", "applied"]}, "lease_until": {"$lt": now}}
        )
        return await cursor.limit(limit).to_list(None)

    async def take_lease(self, txn: dict[str, Any], until: int) -> dict[str, Any] | None:
        """Claim a stuck transaction for recovery; None when someone else did first."""
        return await self.collection.find_one_and_update(
            {"_id": txn["_id"], "status": txn["status"], "lease_until": txn["lease_until"]},
            {"$set": {"lease_until": until}},
            return_document=ReturnDocument.AFTER,
        )

    async def count_unfinished(self) -> int:
        return await self.collection.count_documents({"status": {"$in": ["pending", "applied"]}})

    async def get_prunable(self, before: int, limit: int = 500) -> list[dict[str, Any]]:
        cursor = self.collection.find(
            {"status": "posted", "posted_at": {"$lt": before}, "pruned": {"$exists": False}},
            {"entries": 1},
        )
        return await cursor.limit(limit).to_list(None)

    async def mark_pruned(self, txn_ids: list[str], now: int) -> None:
        await self.collection.update_many({"_id": {"$in": txn_ids}}, {"$set": {"pruned": now}})
