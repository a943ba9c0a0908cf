"""The ``wallet_transfers`` collection: a transfer card's state (pending → accepted | returned).

The money sits in the transfer's hold account until it is settled; exactly one settlement
happens because accepting and returning share one ledger idempotency key.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "wallet_transfers"
INDEXES = [IndexModel([("status", ASCENDING), ("expires_at", ASCENDING)], name="status_expiry")]


class Transfers:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_transfer(self, transfer: dict[str, Any]) -> dict[str, Any]:
        """Insert unless it exists (a recovered hook writes it again); the stored document."""
        try:
            await self.collection.insert_one(transfer)
            return transfer
        except DuplicateKeyError:
            return await self.collection.find_one({"_id": transfer["_id"]}) or transfer

    async def get_transfer(self, transfer_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": transfer_id})

    async def set_message(self, transfer_id: str, message_id: str) -> None:
        await self.collection.update_one({"_id": transfer_id}, {"$set": {"message_id": message_id}})

    async def settle(self, transfer_id: str, status: str, now: int) -> dict[str, Any] | None:
        """pending → ``status``; the document after, or None when it was settled already."""
        return await self.collection.find_one_and_update(
            {"_id": transfer_id, "status": "pending"},
            {"$set": {"status": status, "settled_at": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def get_due(self, now: int, limit: int = 100) -> list[dict[str, Any]]:
        cursor = self.collection.find({"status": "pending", "expires_at": {"$lte": now}})
        return await cursor.limit(limit).to_list(None)

    async def get_pending_from(self, sender_id: str, limit: int) -> list[dict[str, Any]]:
        """Transfers ``sender_id`` sent that are still pending (returned to them at expiry)."""
        cursor = self.collection.find({"status": "pending", "sender_id": sender_id})
        return await cursor.limit(limit).to_list(None)
