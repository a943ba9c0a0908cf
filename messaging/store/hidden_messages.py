"""The ``hidden_messages`` collection: messages a user deleted for themself only.

``at_seq`` is the conversation's last seq when it was hidden, so sync can tell the user's other
devices (``at_seq >= cursor``).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "hidden_messages"
INDEXES = [
    IndexModel(
        [("user_id", ASCENDING), ("conversation_id", ASCENDING), ("seq", ASCENDING)],
        name="user_conv_seq",
    ),
]


class HiddenMessages:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def hide(self, user_id: str, message: dict[str, Any], at_seq: int, now: int) -> bool:
        try:
            await self.collection.insert_one(
                {
                    "_id": f"{user_id}|{message['_id']}",
                    "user_id": user_id,
                    "conversation_id": message["conversation_id"],
                    "message_id": message["_id"],
                    "seq": message["seq"],
                    "at_seq": at_seq,
                    "created_at": now,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def get_hidden_seqs(
        self, user_id: str, conversation_id: str, low: int, high: int
    ) -> set[int]:
        """Seqs in [low, high] this user hid."""
        cursor = self.collection.find(
            {
                "user_id": user_id,
                "conversation_id": conversation_id,
                "seq": {"$gte": low, "$lte": high},
            },
            {"seq": 1},
        )
        return {doc["seq"] async for doc in cursor}

    async def get_hidden_since(self, user_id: str, conversation_id: str, cursor: int) -> list[str]:
        found = self.collection.find(
            {"user_id": user_id, "conversation_id": conversation_id, "at_seq": {"$gte": cursor}},
            {"message_id": 1},
        )
        return [doc["message_id"] async for doc in found]
