"""The ``red_packets`` collection: a red packet, its precomputed shares and how many are taken.

``claimed`` counts the shares handed out; a claimer takes share number ``claimed`` with one
conditional ``$inc`` (``claimed < count``), so concurrent claimers never take the same share or
more shares than there are.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "red_packets"
INDEXES = [IndexModel([("status", ASCENDING), ("expires_at", ASCENDING)], name="status_expiry")]


class RedPackets:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_packet(self, packet: dict[str, Any]) -> dict[str, Any]:
        """Insert unless it exists (a recovered hook writes it again); the stored document."""
        try:
            await self.collection.insert_one(packet)
            return packet
        except DuplicateKeyError:
            return await self.collection.find_one({"_id": packet["_id"]}) or packet

    async def get_packet(self, packet_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": packet_id})

    async def set_message(self, packet_id: str, message_id: str) -> None:
        await self.collection.update_one({"_id": packet_id}, {"$set": {"message_id": message_id}})

    async def take_share(self, packet_id: str, now: int) -> int | None:
        """The index of the next free share, or None when none is left or the packet closed."""
        packet = await self.collection.find_one_and_update(
            {
                "_id": packet_id,
                "status": "open",
                "expires_at": {"$gt": now},
                "remaining": {"$gt": 0},
            },
            {"$inc": {"claimed": 1, "remaining": -1}},
            return_document=ReturnDocument.AFTER,
        )
        return None if packet is None else packet["claimed"] - 1

    async def close(self, packet_id: str, status: str, now: int) -> bool:
        """open → finished | expired."""
        result = await self.collection.update_one(
            {"_id": packet_id, "status": "open"}, {"$set": {"status": status, "closed_at": now}}
        )
        return result.modified_count == 1

    async def set_refunded(self, packet_id: str, amount: int, now: int) -> dict[str, Any] | None:
        return await self.collection.find_one_and_update(
            {"_id": packet_id},
            {"$set": {"refunded": amount, "refunded_at": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def get_due(self, now: int, limit: int = 100) -> list[dict[str, Any]]:
        """Open packets past their expiry, and expired ones whose refund is not recorded."""
        cursor = self.collection.find(
            {
                "$or": [
                    {"status": "open", "expires_at": {"$lte": now}},
                    {"status": "expired", "refunded_at": {"$exists": False}},
                ]
            }
        )
        return await cursor.limit(limit).to_list(None)

    async def get_unsettled_from(self, sender_id: str, limit: int) -> list[dict[str, Any]]:
        """Red packets ``sender_id`` sent whose remainder may still be refunded to them."""
        cursor = self.collection.find(
            {
                "sender_id": sender_id,
                "$or": [
                    {"status": "open"},
                    {"status": "expired", "refunded_at": {"$exists": False}},
                ],
            }
        )
        return await cursor.limit(limit).to_list(None)
