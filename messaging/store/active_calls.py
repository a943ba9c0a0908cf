"""The ``active_calls`` collection: at most one live call per conversation.

The document's id *is* the conversation id, so the unique ``_id`` decides which of two
concurrent ``call.start`` wins; the loser is told the conversation is busy. The lock is removed
when its call ends (conditionally on the call id, so a late remover cannot free a newer call).
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "active_calls"
INDEXES: list = []


class ActiveCalls:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def claim(self, conversation_id: str, call_id: str, now: int) -> bool:
        try:
            await self.collection.insert_one(
                {"_id": conversation_id, "call_id": call_id, "created_at": now}
            )
        except DuplicateKeyError:
            return False
        return True

    async def get(self, conversation_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": conversation_id})

    async def release(self, conversation_id: str, call_id: str) -> None:
        await self.collection.delete_one({"_id": conversation_id, "call_id": call_id})
