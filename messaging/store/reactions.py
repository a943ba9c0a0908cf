"""The ``reactions`` collection: one document per (message, user, emoji)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from storage.mongo import count_up_to

COLLECTION = "reactions"
INDEXES = [IndexModel([("message_id", ASCENDING)], name="message")]
USERS_LISTED = 50  # reactors named per emoji; the count is always exact


def reaction_id(message_id: str, user_id: str, emoji: str) -> str:
    return f"{message_id}|{user_id}|{emoji}"


class Reactions:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_reaction(
        self, message_id: str, conversation_id: str, user_id: str, emoji: str, now: int
    ) -> bool:
        try:
            await self.collection.insert_one(
                {
                    "_id": reaction_id(message_id, user_id, emoji),
                    "message_id": message_id,
                    "conversation_id": conversation_id,
                    "user_id": user_id,
                    "emoji": emoji,
                    "created_at": now,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def remove_reaction(self, message_id: str, user_id: str, emoji: str) -> bool:
        result = await self.collection.delete_one({"_id": reaction_id(message_id, user_id, emoji)})
        return result.deleted_count == 1

    async def count_user_reactions(self, message_id: str, user_id: str, cap: int) -> int:
        """The user's reactions to the message, counted up to ``cap``."""
        query = {"message_id": message_id, "user_id": user_id}
        return await count_up_to(self.collection, query, cap)

    async def get_summaries(self, message_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Per message: ``[{emoji, count, user_ids}]`` in order of first use."""
        if not message_ids:
            return {}
        grouped: dict[str, dict[str, list[str]]] = defaultdict(dict)
        cursor = self.collection.find({"message_id": {"$in": message_ids}}).sort("created_at", 1)
        async for reaction in cursor:
            grouped[reaction["message_id"]].setdefault(reaction["emoji"], []).append(
                reaction["user_id"]
            )
        return {
            message_id: [
                {"emoji": emoji, "count": len(users), "user_ids": users[:USERS_LISTED]}
                for emoji, users in emojis.items()
            ]
            for message_id, emojis in grouped.items()
        }
