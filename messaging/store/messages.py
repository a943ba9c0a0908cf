"""The ``messages`` collection: one document per message, ordered by a gap-free ``seq`` per chat.

Unique (conversation_id, seq) makes a seq impossible to use twice; unique (conversation_id,
sender_id, client_msg_id) makes a retried send impossible to store twice. ``updated_at_seq`` is
the conversation's ``last_seq`` when the message last changed (edit, recall, reaction; 0 when
never), so sync finds the changes a client with cursor C has not seen: ``seq <= C`` and
``updated_at_seq >= C`` (less a small margin, see ``messaging.actions.sync``).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "messages"
INDEXES = [
    IndexModel([("conversation_id", ASCENDING), ("seq", ASCENDING)], unique=True, name="conv_seq"),
    IndexModel(
        [("conversation_id", ASCENDING), ("sender_id", ASCENDING), ("client_msg_id", ASCENDING)],
        unique=True,
        name="conv_sender_client_id",
    ),
    IndexModel(
        [("conversation_id", ASCENDING), ("updated_at_seq", ASCENDING)], name="conv_changes"
    ),
]


class Messages:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def insert_in_order(self, messages: list[dict[str, Any]]) -> None:
        """Insert in order; stops at the first failure (raises ``BulkWriteError``)."""
        await self.collection.insert_many(messages, ordered=True)

    async def get_by_client_msg_id(
        self, conversation_id: str, sender_id: str, client_msg_id: str
    ) -> dict[str, Any] | None:
        return await self.collection.find_one(
            {
                "conversation_id": conversation_id,
                "sender_id": sender_id,
                "client_msg_id": client_msg_id,
            }
        )

    async def get_max_seq(self, conversation_id: str) -> int:
        last = await self.collection.find_one(
            {"conversation_id": conversation_id}, {"seq": 1}, sort=[("seq", DESCENDING)]
        )
        return last["seq"] if last else 0

    async def get_message(self, conversation_id: str, message_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one(
            {"_id": message_id, "conversation_id": conversation_id}
        )

    async def get_page(
        self,
        conversation_id: str,
        *,
        after: int,
        before: int | None = None,
        limit: int,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Messages with after < seq < before, oldest first unless ``newest_first``."""
        seq: dict[str, int] = {"$gt": after}
        if before is not None:
            seq["$lt"] = before
        cursor = self.collection.find({"conversation_id": conversation_id, "seq": seq}).sort(
            "seq", DESCENDING if newest_first else ASCENDING
        )
        return await cursor.limit(limit).to_list(length=limit)

    async def count_after(self, conversation_id: str, after: int) -> int:
        return await self.collection.count_documents(
            {"conversation_id": conversation_id, "seq": {"$gt": after}}
        )

    async def get_changed_since(
        self, conversation_id: str, since: int, *, up_to: int, visible_after: int, limit: int
    ) -> list[dict[str, Any]]:
        """Messages with visible_after < seq <= up_to stamped as changed at ``since`` or later."""
        query = {
            "conversation_id": conversation_id,
            "updated_at_seq": {"$gte": since},
            "seq": {"$lte": up_to, "$gt": visible_after},
        }
        found = self.collection.find(query).sort("seq", ASCENDING)
        return await found.limit(limit).to_list(length=limit)

    async def update_message(
        self,
        conversation_id: str,
        message_id: str,
        condition: dict[str, Any],
        changes: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Apply ``changes`` when ``condition`` still holds; bump the version; return the doc."""
        return await self.collection.find_one_and_update(
            {"_id": message_id, "conversation_id": conversation_id, **condition},
            {"$set": changes, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
