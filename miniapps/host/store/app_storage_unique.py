"""The ``app_storage_unique`` collection: who holds each value of a ``unique`` field of an
app's storage (``storage.indexes`` in the manifest). One document per (app, collection, field,
value), id ``<app>|<collection>|<field>|<sha256 of the value>``, holding the ``key`` of the
document that has it — the unique ``_id`` is what refuses a second holder, on MongoDB and on
nx-27017 alike (no partial index needed).

A write claims its new values *before* it writes the document and releases the old ones after,
so at no time can two documents hold the value. A claim left behind by a write that failed
(a conflict, a crash) is taken over once it is ``STALE_MS`` old and its holder does not have
the value.
"""

from __future__ import annotations

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "app_storage_unique"
INDEXES = [IndexModel([("app_id", 1), ("collection", 1), ("key", 1)], name="app_collection_key")]
STALE_MS = 30_000


def claim_id(app_id: str, collection: str, field: str, digest: str) -> str:
    return f"{app_id}|{collection}|{field}|{digest}"


class AppStorageUnique:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def claim(
        self, app_id: str, collection: str, field: str, digest: str, key: str, now: int
    ) -> str | None:
        """Claim the value for ``key``: None when done (or it was ``key``'s already), else the
        key holding it."""
        _id = claim_id(app_id, collection, field, digest)
        try:
            await self.collection.insert_one(
                {"_id": _id, "app_id": app_id, "collection": collection, "key": key, "at": now}
            )
            return None
        except DuplicateKeyError:
            pass
        held = await self.collection.find_one({"_id": _id})
        if held is None:  # released meanwhile: try once more
            try:
                await self.collection.insert_one(
                    {"_id": _id, "app_id": app_id, "collection": collection, "key": key, "at": now}
                )
                return None
            except DuplicateKeyError:
                return "?"
        return None if held["key"] == key else held["key"]

    async def take_over(
        self,
        app_id: str,
        collection: str,
        field: str,
        digest: str,
        holder: str,
        key: str,
        now: int,
    ) -> bool:
        """Move a stale claim of ``holder`` to ``key`` (only if ``holder`` still has it and it
        is old enough)."""
        result = await self.collection.update_one(
            {
                "_id": claim_id(app_id, collection, field, digest),
                "key": holder,
                "at": {"$lte": now - STALE_MS},
            },
            {"$set": {"key": key, "at": now}},
        )
        return result.modified_count == 1

    async def release(
        self, app_id: str, collection: str, field: str, digest: str, key: str
    ) -> None:
        await self.collection.delete_one(
            {"_id": claim_id(app_id, collection, field, digest), "key": key}
        )
