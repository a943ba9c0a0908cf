"""The ``calls`` collection: one document per call, its state machine and its outcome.

``state`` goes ringing → active → ended, each step a conditional single-document update, so of
two nodes (or two clients) racing to end or answer a call exactly one wins. ``ring_done`` is set
once by whoever handles the ring timeout (missed, or "stop ringing" for a call already answered);
``recorded`` once the call's record message is in the conversation. ``heartbeat_at`` is moved
forward by the node hosting the call's media, so a node that died is noticed by the others.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "calls"
INDEXES = [
    IndexModel([("state", ASCENDING), ("ring_expires_at", ASCENDING)], name="state_ring"),
    IndexModel([("conversation_id", ASCENDING), ("created_at", ASCENDING)], name="conversation"),
]
LIVE = ["ringing", "active"]


class Calls:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_call(self, call: dict[str, Any]) -> None:
        await self.collection.insert_one(call)

    async def get_call(self, call_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": call_id})

    async def answer(self, call_id: str, now: int) -> dict[str, Any] | None:
        """ringing → active; the document after, or None when it was not ringing."""
        return await self.collection.find_one_and_update(
            {"_id": call_id, "state": "ringing"},
            {"$set": {"state": "active", "answered_at": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def end(self, call_id: str, outcome: str, reason: str, now: int) -> dict | None:
        """ringing|active → ended; the document after, or None when another end won."""
        return await self.collection.find_one_and_update(
            {"_id": call_id, "state": {"$in": LIVE}},
            {"$set": {"state": "ended", "outcome": outcome, "end_reason": reason, "ended_at": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def claim_ring_timeout(self, call_id: str, now: int) -> dict[str, Any] | None:
        """Take the ring timeout of a call once (whoever gets it stops the ringing)."""
        return await self.collection.find_one_and_update(
            {"_id": call_id, "ring_done": {"$exists": False}},
            {"$set": {"ring_done": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def get_ring_expired(self, now: int, limit: int = 100) -> list[dict[str, Any]]:
        cursor = self.collection.find(
            {
                "state": {"$in": LIVE},
                "ring_expires_at": {"$lte": now},
                "ring_done": {"$exists": False},
            }
        )
        return await cursor.limit(limit).to_list(length=limit)

    async def get_live(self, *, heartbeat_before: int | None = None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"state": {"$in": LIVE}}
        if heartbeat_before is not None:
            query["heartbeat_at"] = {"$lt": heartbeat_before}
        return await self.collection.find(query).to_list(length=None)

    async def get_unrecorded(self, limit: int = 100) -> list[dict[str, Any]]:
        cursor = self.collection.find({"state": "ended", "recorded": {"$exists": False}})
        return await cursor.limit(limit).to_list(length=limit)

    async def mark_recorded(self, call_id: str, message_id: str) -> None:
        await self.collection.update_one(
            {"_id": call_id}, {"$set": {"recorded": 1, "message_id": message_id}}
        )

    async def heartbeat(self, call_ids: list[str], now: int) -> None:
        if call_ids:
            await self.collection.update_many(
                {"_id": {"$in": call_ids}, "state": {"$in": LIVE}},
                {"$set": {"heartbeat_at": now}},
            )
