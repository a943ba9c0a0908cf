"""The ``app_storage`` collection: each mini-program's own documents, one per (app, collection,
key), id ``<app>|<collection>|<key>``.

The value is stored as a JSON string with its size (key + value bytes), so the platform never
interprets it and the app's quota is a sum of sizes. ``find`` filters in Python (``sdk.filters``),
never by handing an app's filter to the database.
"""

from __future__ import annotations

import json
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "app_storage"
INDEXES = [IndexModel([("app_id", 1), ("collection", 1), ("key", 1)], name="app_collection_key")]


def doc_id(app_id: str, collection: str, key: str) -> str:
    return f"{app_id}|{collection}|{key}"


class AppStorage:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def get_value(self, app_id: str, collection: str, key: str) -> tuple[bool, Any]:
        """(found, value)."""
        doc = await self.collection.find_one({"_id": doc_id(app_id, collection, key)})
        if doc is None:
            return False, None
        return True, json.loads(doc["value"])

    async def get_size(self, app_id: str, collection: str, key: str) -> int:
        doc = await self.collection.find_one({"_id": doc_id(app_id, collection, key)}, {"size": 1})
        return int(doc["size"]) if doc else 0

    async def get_used(self, app_id: str) -> int:
        """The bytes the app's documents take (keys and JSON values)."""
        found = self.collection.find({"app_id": app_id}, {"size": 1})
        return sum([int(doc.get("size", 0)) async for doc in found])

    async def put_value(
        self, app_id: str, collection: str, key: str, text: str, size: int, now: int
    ) -> None:
        await self.collection.update_one(
            {"_id": doc_id(app_id, collection, key)},
            {
                "$set": {
                    "app_id": app_id,
                    "collection": collection,
                    "key": key,
                    "value": text,
                    "size": size,
                    "updated_at": now,
                }
            },
            upsert=True,
        )

    async def delete_value(self, app_id: str, collection: str, key: str) -> bool:
        result = await self.collection.delete_one({"_id": doc_id(app_id, collection, key)})
        return result.deleted_count == 1

    async def get_items(self, app_id: str, collection: str, *, limit: int) -> list[dict]:
        """Up to ``limit`` items ``{"key", "value"}`` of one collection, by key."""
        found = (
            self.collection.find({"app_id": app_id, "collection": collection})
            .sort("key", 1)
            .limit(limit)
        )
        return [{"key": doc["key"], "value": json.loads(doc["value"])} async for doc in found]
