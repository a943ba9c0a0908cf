"""The ``app_storage`` collection: each mini-program's own documents, one per (app, collection,
key), id ``<app>|<collection>|<key>``.

The value is stored as a JSON string with its size (key + value bytes), so the platform never
interprets it and the app's quota is a sum of sizes. ``find`` filters in Python (``sdk.filters``),
never by handing an app's filter to the database.

Every document has a ``version`` (an integer, 1 for a new one) that each write moves on, so
``storage.update`` can write only if the version it read is still the stored one (a
conditional single-document update, atomic on MongoDB and on nx-27017 alike; a document stored
before versions existed counts as version 0).

Counters (``storage.incr``): a counted field lives as an integer in ``counters.<field>`` so one
conditional ``find_one_and_update`` can check the bounds and add the delta atomically, whatever
the concurrency; reads lay ``counters`` over the JSON value. The first ``incr`` of a field moves
its value there (``move_to_counter``); a ``put``/``update`` writes the whole value again and
empties ``counters``. ``size`` follows the counters' digits.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from pymongo import IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from miniapps.host.store.app_storage_unique import AppStorageUnique

COLLECTION = "app_storage"
INDEXES = [IndexModel([("app_id", 1), ("collection", 1), ("key", 1)], name="app_collection_key")]


def doc_id(app_id: str, collection: str, key: str) -> str:
    return f"{app_id}|{collection}|{key}"


def text_of(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def value_of(doc: dict) -> Any:
    """A stored document's value: its JSON with its counters laid over."""
    value = json.loads(doc["value"])
    counters = doc.get("counters") or {}
    if counters and isinstance(value, dict):
        value.update(counters)
    return value


def version_of(doc: dict | None) -> int:
    return int(doc.get("version", 0)) if doc else 0


def _is_version(version: int) -> dict:
    # A document written before versions existed has no ``version``: it is version 0.
    return {"version": version} if version else {"version": {"$exists": False}}


class AppStorage:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]
        self.unique = AppStorageUnique(db)

    async def get_doc(self, app_id: str, collection: str, key: str) -> dict | None:
        return await self.collection.find_one({"_id": doc_id(app_id, collection, key)})

    async def get_value(self, app_id: str, collection: str, key: str) -> tuple[bool, Any]:
        """(found, value)."""
        doc = await self.get_doc(app_id, collection, key)
        if doc is None:
            return False, None
        return True, value_of(doc)

    async def get_size(self, app_id: str, collection: str, key: str) -> int:
        doc = await self.collection.find_one({"_id": doc_id(app_id, collection, key)}, {"size": 1})
        return int(doc["size"]) if doc else 0

    async def get_used(self, app_id: str) -> int:
        """The bytes the app's documents take (keys and JSON values)."""
        found = self.collection.find({"app_id": app_id}, {"size": 1})
        return sum([int(doc.get("size", 0)) async for doc in found])

    async def put_value(
        self, app_id: str, collection: str, key: str, text: str, size: int, now: int
    ) -> int:
        """Store ``text`` whatever was there; the new version."""
        doc = await self.collection.find_one_and_update(
            {"_id": doc_id(app_id, collection, key)},
            {
                "$set": {
                    "app_id": app_id,
                    "collection": collection,
                    "key": key,
                    "value": text,
                    "size": size,
                    "counters": {},
                    "updated_at": now,
                },
                "$inc": {"version": 1},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
            projection={"version": 1},
        )
        return version_of(doc)

    async def replace_if_version(
        self, app_id: str, collection: str, key: str, version: int, text: str, size: int, now: int
    ) -> int | None:
        """Store ``text`` only if the document is still at ``version`` (0: there is none);
        the new version, or None when it moved on meanwhile."""
        fields = {
            "app_id": app_id,
            "collection": collection,
            "key": key,
            "value": text,
            "size": size,
            "counters": {},
            "updated_at": now,
        }
        _id = doc_id(app_id, collection, key)
        if version == 0:
            existing = await self.collection.find_one({"_id": _id}, {"version": 1})
            if existing is None:
                try:
                    await self.collection.insert_one({"_id": _id, **fields, "version": 1})
                except DuplicateKeyError:
                    return None  # created meanwhile
                return 1
        result = await self.collection.update_one(
            {"_id": _id, **_is_version(version)},
            {"$set": {**fields, "version": version + 1}},
        )
        return version + 1 if result.modified_count == 1 else None

    async def add_counter(
        self, app_id: str, collection: str, key: str, field: str, text: str, size: int
    ) -> None:
        """A new document ``{field: 0}`` (version 0: the first ``incr`` makes it 1), unless
        one was created meanwhile."""
        with contextlib.suppress(DuplicateKeyError):
            await self.collection.insert_one(
                {
                    "_id": doc_id(app_id, collection, key),
                    "app_id": app_id,
                    "collection": collection,
                    "key": key,
                    "value": text,
                    "size": size,
                    "counters": {field: 0},
                }
            )

    async def move_to_counter(
        self, doc: dict, field: str, current: int, text: str, size: int
    ) -> bool:
        """First ``incr`` of ``field``: its value (``current``, 0 when absent) becomes
        ``counters.<field>``, unless the document changed or another call did it first."""
        result = await self.collection.update_one(
            {
                "_id": doc["_id"],
                **_is_version(version_of(doc)),
                f"counters.{field}": {"$exists": False},
            },
            {"$set": {f"counters.{field}": current, "value": text, "size": size}},
        )
        return result.modified_count == 1

    async def add_to_counter(
        self,
        app_id: str,
        collection: str,
        key: str,
        field: str,
        delta: int,
        low: int,
        high: int,
        now: int,
    ) -> tuple[int, int] | None:
        """Add ``delta`` to ``counters.<field>`` if the result stays in [low, high]: one
        conditional update. ``(value, version)``, or None when the counter is missing or out
        of bounds."""
        doc = await self.collection.find_one_and_update(
            {
                "_id": doc_id(app_id, collection, key),
                f"counters.{field}": {"$gte": low - delta, "$lte": high - delta},
            },
            {"$inc": {f"counters.{field}": delta, "version": 1}, "$set": {"updated_at": now}},
            # The whole document: nx-27017 leaves out a projection on a dotted path.
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        value = int(doc["counters"][field])
        grown = len(str(value)) - len(str(value - delta))
        if grown:  # the value's JSON got longer or shorter; each call adds its own part
            await self.collection.update_one({"_id": doc["_id"]}, {"$inc": {"size": grown}})
        return value, version_of(doc)

    async def delete_value(self, app_id: str, collection: str, key: str) -> dict | None:
        """Delete the document; the deleted one (None: there was none)."""
        return await self.collection.find_one_and_delete({"_id": doc_id(app_id, collection, key)})

    async def get_items(self, app_id: str, collection: str, *, limit: int) -> list[dict]:
        """Up to ``limit`` items ``{"key", "value", "version"}`` of one collection, by key."""
        found = (
            self.collection.find({"app_id": app_id, "collection": collection})
            .sort("key", 1)
            .limit(limit)
        )
        return [
            {"key": doc["key"], "value": value_of(doc), "version": version_of(doc)}
            async for doc in found
        ]
