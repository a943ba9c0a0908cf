"""The ``members`` collection: one document per user per conversation, id ``"<conv>|<user>"``.

``last_read_seq`` only moves forward (``$max``); unread = conversation ``last_seq`` minus it.
``joined_seq`` is the conversation's last seq when the member joined: they see messages after it.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

COLLECTION = "members"
INDEXES = [
    IndexModel([("user_id", ASCENDING)], name="user"),
    IndexModel([("conversation_id", ASCENDING)], name="conversation"),
]
ROLES = ("owner", "admin", "member")


def member_id(conversation_id: str, user_id: str) -> str:
    return f"{conversation_id}|{user_id}"


class Members:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_members(self, members: list[dict[str, Any]]) -> list[str]:
        """Insert members; ones already present are left as they are. Returns the added user ids."""
        if not members:
            return []
        try:
            await self.collection.insert_many(members, ordered=False)
            return [m["user_id"] for m in members]
        except BulkWriteError as exc:
            failed = {error["index"] for error in exc.details.get("writeErrors", [])}
            return [m["user_id"] for i, m in enumerate(members) if i not in failed]

    async def get_member(self, conversation_id: str, user_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": member_id(conversation_id, user_id)})

    async def get_member_docs(self, conversation_ids: list[str], user_id: str) -> list[dict]:
        """One user's member documents in the given conversations."""
        ids = [member_id(c, user_id) for c in conversation_ids]
        return await self.collection.find({"_id": {"$in": ids}}).to_list(length=None)

    async def get_members(self, conversation_id: str) -> list[dict[str, Any]]:
        cursor = self.collection.find({"conversation_id": conversation_id}).sort("joined_at", 1)
        return await cursor.to_list(length=None)

    async def get_memberships(self, user_id: str) -> list[dict[str, Any]]:
        return await self.collection.find({"user_id": user_id}).to_list(length=None)

    async def remove_member(self, conversation_id: str, user_id: str) -> bool:
        result = await self.collection.delete_one({"_id": member_id(conversation_id, user_id)})
        return result.deleted_count == 1

    async def set_role(self, conversation_id: str, user_id: str, role: str) -> bool:
        result = await self.collection.update_one(
            {"_id": member_id(conversation_id, user_id)}, {"$set": {"role": role}}
        )
        return result.matched_count == 1

    async def set_muted(self, conversation_id: str, user_id: str, muted: bool) -> bool:
        result = await self.collection.update_one(
            {"_id": member_id(conversation_id, user_id)}, {"$set": {"muted": muted}}
        )
        return result.matched_count == 1

    async def note_hidden(self, conversation_id: str, user_id: str, at_seq: int) -> None:
        """Remember the newest point this member hid a message at (lets sync skip the lookup)."""
        await self.collection.update_one(
            {"_id": member_id(conversation_id, user_id)}, {"$max": {"last_hidden_at_seq": at_seq}}
        )

    async def mark_read(self, reads: list[tuple[str, str, int]]) -> None:
        """Move ``last_read_seq`` forward for (conversation, user, seq) triples, one round trip."""
        if reads:
            await self.collection.bulk_write(
                [
                    UpdateOne({"_id": member_id(c, u)}, {"$max": {"last_read_seq": seq}})
                    for c, u, seq in reads
                ],
                ordered=False,
            )
