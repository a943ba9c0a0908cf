"""The ``media_refs`` collection: where each media was shared, one document per
(media, conversation) — what lets a member of that conversation fetch it.

Its own collection rather than an array on the media document (DESIGN §3: no arrays of
sub-documents in documents that change).
"""

from __future__ import annotations

import contextlib

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "media_refs"
INDEXES = [
    IndexModel(
        [("media_id", ASCENDING), ("conversation_id", ASCENDING)], unique=True, name="media_conv"
    ),
]


class MediaRefs:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_refs(self, media_ids: list[str], conversation_id: str, now: int) -> None:
        """Record that these media were shared in the conversation (idempotent)."""
        for media_id in dict.fromkeys(media_ids):
            with contextlib.suppress(DuplicateKeyError):
                await self.collection.insert_one(
                    {
                        "_id": f"{media_id}|{conversation_id}",
                        "media_id": media_id,
                        "conversation_id": conversation_id,
                        "created_at": now,
                    }
                )

    async def get_conversation_ids(self, media_id: str, limit: int = 1000) -> list[str]:
        cursor = self.collection.find({"media_id": media_id}, {"conversation_id": 1}).limit(limit)
        return [doc["conversation_id"] async for doc in cursor]

    async def delete_for_media(self, media_id: str) -> int:
        result = await self.collection.delete_many({"media_id": media_id})
        return result.deleted_count
