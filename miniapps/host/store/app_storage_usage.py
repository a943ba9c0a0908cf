"""The ``app_storage_usage`` collection: the bytes each app's storage takes, one document
``{_id: app_id, bytes}`` — the sum of the ``size`` of its ``app_storage`` documents, kept by
``$inc`` of each write's size change so the quota check reads one document instead of all of
them.

The document is made once per app, from a scan of its documents (``add_if_missing``: an upsert
with ``$setOnInsert``, so two nodes making it at once store one count, not two), before any
write of the app changes a size — ``AppStorage`` sees to that order, which is what keeps the
count exact (see ``miniapps.host.store.app_storage``). Only ``_id`` is queried: no index.
"""

from __future__ import annotations

import contextlib

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "app_storage_usage"
INDEXES: list[IndexModel] = []


class AppStorageUsage:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def get_bytes(self, app_id: str) -> int | None:
        """The bytes the app's storage takes, or None when it has not been counted yet."""
        doc = await self.collection.find_one({"_id": app_id})
        return int(doc["bytes"]) if doc is not None else None

    async def add_if_missing(self, app_id: str, scanned: int) -> int:
        """Store ``scanned`` (the sum found by a scan) as the app's usage unless it is counted
        already; the stored count either way."""
        # DuplicateKeyError: two upserts raced on MongoDB and the other one inserted it.
        with contextlib.suppress(DuplicateKeyError):
            # update_one, not find_one_and_update: nx-27017 ignores $setOnInsert in the latter
            await self.collection.update_one(
                {"_id": app_id}, {"$setOnInsert": {"bytes": scanned}}, upsert=True
            )
        doc = await self.collection.find_one({"_id": app_id})
        return int(doc["bytes"]) if doc is not None else scanned

    async def add_bytes(self, app_id: str, delta: int) -> bool:
        """Add ``delta`` (negative: freed) to the app's usage; False when it has none (not
        counted yet)."""
        result = await self.collection.update_one({"_id": app_id}, {"$inc": {"bytes": delta}})
        return result.matched_count == 1
