"""The ``red_packet_claims`` collection: one document per (red packet, member), id
``"<packet>|<user>"`` — the unique id is what stops a member claiming twice, also concurrently.

``status`` goes ``claiming`` (the claimer holds a lease, takes a share) → ``paid``. A claim
whose claimer died is finished by the job loop once its lease is over.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "red_packet_claims"
INDEXES = [
    IndexModel([("packet_id", ASCENDING), ("paid_at", ASCENDING)], name="packet"),
    IndexModel([("status", ASCENDING), ("lease_until", ASCENDING)], name="status_lease"),
]


def claim_id(packet_id: str, user_id: str) -> str:
    return f"{packet_id}|{user_id}"


class RedPacketClaims:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_claim(self, claim: dict[str, Any]) -> bool:
        try:
            await self.collection.insert_one(claim)
            return True
        except DuplicateKeyError:
            return False

    async def get_claim(self, packet_id: str, user_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": claim_id(packet_id, user_id)})

    async def take_over(self, claim: dict[str, Any], lease_until: int) -> dict[str, Any] | None:
        """Take a claim whose lease ran out; None when someone else holds it."""
        return await self.collection.find_one_and_update(
            {"_id": claim["_id"], "status": "claiming", "lease_until": claim["lease_until"]},
            {"$set": {"lease_until": lease_until}},
            return_document=ReturnDocument.AFTER,
        )

    async def set_share(self, claim_id_: str, index: int, amount: int) -> dict[str, Any] | None:
        """Record the share taken (once: a claim keeps its first share)."""
        return await self.collection.find_one_and_update(
            {"_id": claim_id_, "index": {"$exists": False}},
            {"$set": {"index": index, "amount": amount}},
            return_document=ReturnDocument.AFTER,
        )

    async def set_paid(self, claim_id_: str, now: int) -> bool:
        result = await self.collection.update_one(
            {"_id": claim_id_, "status": "claiming"}, {"$set": {"status": "paid", "paid_at": now}}
        )
        return result.modified_count == 1

    async def set_void(self, claim_id_: str) -> None:
        """A share that could not be paid (the packet was refunded first)."""
        await self.collection.update_one(
            {"_id": claim_id_, "status": "claiming"}, {"$set": {"status": "void"}}
        )

    async def delete_unshared(self, claim_id_: str) -> None:
        await self.collection.delete_one(
            {"_id": claim_id_, "status": "claiming", "index": {"$exists": False}}
        )

    async def get_paid(self, packet_id: str) -> list[dict[str, Any]]:
        cursor = self.collection.find({"packet_id": packet_id, "status": "paid"})
        return await cursor.sort("paid_at", ASCENDING).to_list(None)

    async def get_stuck(self, now: int, limit: int = 100) -> list[dict[str, Any]]:
        cursor = self.collection.find({"status": "claiming", "lease_until": {"$lt": now}})
        return await cursor.limit(limit).to_list(None)
