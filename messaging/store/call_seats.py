"""The ``call_seats`` collection: who is in a call right now, one document per person in a call.

The document's id is the user id, so a person holds at most one seat anywhere (one call at a
time); ``seat`` is a number below ``CALL_MAX_PARTICIPANTS`` and (call_id, seat) is unique, so a
call never seats more. Taking a seat is a single insert that both unique indexes decide, so
concurrent accepts and starts, on any node, cannot overfill a call or put one person in two
calls (no count-then-insert). Releasing is a delete conditional on the call: repeating it is
harmless, and there is no counter that could drift.

A seat whose holder never became a participant (a crash mid-join) or whose call ended without
releasing it (a crash mid-end) is found stale by the next person it blocks and removed then
(``messaging.calls.lifecycle``).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "call_seats"
INDEXES = [
    IndexModel([("call_id", ASCENDING), ("seat", ASCENDING)], unique=True, name="call_seat"),
]


class CallSeats:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def take(self, call_id: str, seat: int, user_id: str, now: int) -> bool:
        """Seat this person in the call; False when the seat is taken or the person already
        holds one (in this call or another: ``get`` tells which)."""
        try:
            await self.collection.insert_one(
                {"_id": user_id, "call_id": call_id, "seat": seat, "taken_at": now}
            )
        except DuplicateKeyError:
            return False
        return True

    async def get(self, user_id: str) -> dict[str, Any] | None:
        """The seat this person holds, if any."""
        return await self.collection.find_one({"_id": user_id})

    async def taken(self, call_id: str) -> set[int]:
        cursor = self.collection.find({"call_id": call_id}, {"seat": 1})
        return {doc["seat"] for doc in await cursor.to_list(None)}

    async def release(self, call_id: str, user_id: str) -> bool:
        """Free this person's seat in this call (not a seat they took since in another)."""
        result = await self.collection.delete_one({"_id": user_id, "call_id": call_id})
        return result.deleted_count == 1

    async def release_stale(self, seat: dict[str, Any]) -> bool:
        """Remove exactly this seat document (not a newer seat of the same person)."""
        result = await self.collection.delete_one(
            {"_id": seat["_id"], "call_id": seat["call_id"], "taken_at": seat["taken_at"]}
        )
        return result.deleted_count == 1

    async def release_call(self, call_id: str) -> None:
        await self.collection.delete_many({"call_id": call_id})
