"""The ``conversations`` collection: one document per chat (direct or group).

``last_seq`` is the highest message seq written; ``members_version`` changes with every membership
change, so a node that sees a newer version than its cache reloads the member list before it
delivers anything (see ``messaging.membership``).
"""

from __future__ import annotations

import re
from typing import Any

from pymongo import DESCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "conversations"
INDEXES = [IndexModel([("updated_at", DESCENDING)], name="recent")]


class Conversations:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_conversation(self, conversation: dict[str, Any]) -> None:
        await self.collection.insert_one(conversation)

    async def get_conversation(self, conversation_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": conversation_id})

    async def get_conversations(
        self, conversation_ids: list[str], *, before: int | None = None, limit: int = 0
    ) -> list[dict[str, Any]]:
        """Most recently active first; ``before`` pages by ``updated_at``."""
        query: dict[str, Any] = {"_id": {"$in": conversation_ids}}
        if before is not None:
            query["updated_at"] = {"$lt": before}
        cursor = self.collection.find(query).sort([("updated_at", DESCENDING), ("_id", DESCENDING)])
        # limit 0: all of them (sync needs every conversation the user belongs to)
        return await cursor.limit(limit).to_list(length=limit or None)

    async def advance(
        self, conversation_id: str, last_seq: int, last_message: dict[str, Any], now: int
    ) -> dict[str, Any] | None:
        """Move ``last_seq`` and the preview forward (never back); return the document."""
        updated = await self.collection.find_one_and_update(
            {"_id": conversation_id, "last_seq": {"$lt": last_seq}},
            {"$set": {"last_seq": last_seq, "last_message": last_message, "updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        return updated or await self.get_conversation(conversation_id)

    async def reserve_places(self, conversation_id: str, count: int, limit: int) -> dict | None:
        """Add ``count`` to member_count unless that passes ``limit``; the doc before, or None."""
        return await self.collection.find_one_and_update(
            {"_id": conversation_id, "member_count": {"$lte": limit - count}},
            {"$inc": {"member_count": count}},
        )

    async def note_change(self, conversation_id: str) -> int:
        """Record that an existing message is changing; returns the seq to stamp it with."""
        conversation = await self.get_conversation(conversation_id)
        if conversation is None:
            return 0
        await self.collection.update_one(
            {"_id": conversation_id}, {"$max": {"last_change_seq": conversation["last_seq"]}}
        )
        return conversation["last_seq"]

    async def advance_many(self, updates: list[tuple[str, int, dict, int, int]]) -> bool:
        """Advance several conversations in one round trip, each only if its ``members_version``
        is the expected one. ``updates``: (id, last_seq, preview, now, members_version).
        True when every one was advanced."""
        result = await self.collection.bulk_write(
            [
                UpdateOne(
                    {"_id": c, "last_seq": {"$lt": seq}, "members_version": version},
                    {"$set": {"last_seq": seq, "last_message": preview, "updated_at": now}},
                )
                for c, seq, preview, now, version in updates
            ],
            ordered=False,
        )
        return result.matched_count == len(updates)

    async def update_conversation(
        self,
        conversation_id: str,
        changes: dict[str, Any],
        *,
        member_delta: int = 0,
        membership_changed: bool = False,
    ) -> dict[str, Any] | None:
        update: dict[str, Any] = {}
        if changes:
            update["$set"] = changes
        inc = {}
        if member_delta:
            inc["member_count"] = member_delta
        if membership_changed:
            inc["members_version"] = 1
        if inc:
            update["$inc"] = inc
        return await self.collection.find_one_and_update(
            {"_id": conversation_id}, update, return_document=ReturnDocument.AFTER
        )

    async def search_conversations(
        self, text: str, *, before: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """For admins: every conversation (not one member's), most recently active first;
        ``text`` matches group titles in any letter case."""
        query: dict[str, Any] = {}
        if text:
            query["title"] = {"$regex": re.escape(text), "$options": "i"}
        if before is not None:
            query["updated_at"] = {"$lt": before}
        cursor = self.collection.find(query).sort([("updated_at", DESCENDING), ("_id", DESCENDING)])
        return await cursor.limit(limit).to_list(length=limit)

    async def blank_preview(self, conversation_id: str, message_id: str) -> None:
        """Erase the preview's text when it shows that message (a moderator hid it)."""
        await self.collection.update_one(
            {"_id": conversation_id, "last_message.id": message_id},
            {"$set": {"last_message.text": ""}},
        )

    async def set_preview_text(self, conversation_id: str, message_id: str, text: str) -> None:
        """Show a message's final text in the preview when the preview shows that message (a
        streaming message was posted with the text it had then)."""
        await self.collection.update_one(
            {"_id": conversation_id, "last_message.id": message_id},
            {"$set": {"last_message.text": text}},
        )
