"""The ``media`` collection: one document per upload (photo, file, voice note).

The bytes live in the blob store under ``blob`` (and the thumbnail under ``thumbnail_blob``);
this document says what they were verified to be and who uploaded them. ``app_id`` is set when
a mini-program uploaded it (its product photos).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "media"
INDEXES = [
    IndexModel([("owner_id", ASCENDING), ("created_at", ASCENDING)], name="owner"),
    # Whether a blob is still used before it is deleted (an account's media removed).
    IndexModel([("blob", ASCENDING)], name="blob"),
    IndexModel([("thumbnail_blob", ASCENDING)], name="thumbnail_blob"),
]


class MediaStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_media(self, doc: dict[str, Any]) -> None:
        await self.collection.insert_one(doc)

    async def get_media(self, media_id: str) -> dict[str, Any] | None:
        if not isinstance(media_id, str):
            return None
        return await self.collection.find_one({"_id": media_id})

    async def get_many(self, media_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not media_ids:
            return {}
        cursor = self.collection.find({"_id": {"$in": list(dict.fromkeys(media_ids))}})
        return {doc["_id"]: doc async for doc in cursor}

    async def set_avatar_of(self, media_id: str, owner: str) -> None:
        """``owner``: "user:<id>" or "conversation:<id>" whose avatar this media now is."""
        await self.collection.update_one({"_id": media_id}, {"$set": {"avatar_of": owner}})

    async def clear_avatar_of(self, media_id: str, owner: str) -> None:
        await self.collection.update_one(
            {"_id": media_id, "avatar_of": owner}, {"$unset": {"avatar_of": ""}}
        )

    async def get_owned_page(
        self, owner_id: str, after: tuple[int, str] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Media uploaded by ``owner_id``, oldest first; ``after`` is the last (created_at, id)
        seen (the export pages through them)."""
        query: dict[str, Any] = {"owner_id": owner_id}
        if after is not None:
            at, last_id = after
            query["$or"] = [
                {"created_at": {"$gt": at}},
                {"created_at": at, "_id": {"$gt": last_id}},
            ]
        cursor = self.collection.find(query).sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        return await cursor.limit(limit).to_list(length=limit)

    async def delete_media(self, media_id: str) -> bool:
        result = await self.collection.delete_one({"_id": media_id})
        return result.deleted_count == 1

    async def blob_in_use(self, key: str) -> bool:
        """Whether any media still stores its bytes or thumbnail under ``key`` (blobs are
        content-addressed: two uploads of the same bytes share one)."""
        found = await self.collection.find_one(
            {"$or": [{"blob": key}, {"thumbnail_blob": key}]}, {"_id": 1}
        )
        return found is not None
