"""The ``app_storage`` collection: each mini-program's own documents, one per (app, collection,
key), id ``<app>|<collection>|<key>``.

The value is stored as a JSON string with its size (key + value bytes), so the platform never
interprets it and the app's quota is a sum of sizes. ``find`` filters in Python (``sdk.filters``),
never by handing an app's filter to the database: ``iter_items`` reads a collection in key order,
in batches of key ranges, as far as ``sdk.filters.FindScan`` asks.

Every document has a ``version`` (an integer, 1 for a new one) that each write moves on, so
``storage.update`` can write only if the version it read is still the stored one (a
conditional single-document update, atomic on MongoDB and on nx-27017 alike; a document stored
before versions existed counts as version 0).

Counters (``storage.incr``): a counted field lives as an integer in ``counters.<field>`` so one
conditional ``find_one_and_update`` can check the bounds and add the delta atomically, whatever
the concurrency; reads lay ``counters`` over the JSON value. The first ``incr`` of a field moves
its value there (``move_to_counter``); a ``put``/``update`` writes the whole value again and
empties ``counters``. ``size`` follows the counters' digits.

Usage (``get_used``, what the quota is checked against) is not a scan: ``app_storage_usage``
holds each app's sum of ``size``, and every write here adds the size change it made to it. Each
write learns the size it replaced from the same atomic operation that replaced it (the document
before a ``find_one_and_update``, the deleted one, or the digits a counter grew by, added only
to a document that is still there), so concurrent writes each add their own exact change and
the count stays the sum of the sizes. The first write of an app (or the first ``get_used``)
counts its documents once and stores the sum — before that write changes anything, so a scan
never sees a change that will also be added. A process that dies between a write and its
``$inc`` leaves the count off by that write's change.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from pymongo import IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from miniapps.host.store.app_storage_unique import AppStorageUnique
from miniapps.host.store.app_storage_usage import AppStorageUsage

COLLECTION = "app_storage"
FIND_FIRST_BATCH = 100  # documents of the first read of a storage.find (iter_items)
FIND_BATCH = 500  # documents of each later read, at most
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


def size_of(doc: dict | None) -> int:
    return int(doc.get("size", 0)) if doc else 0


def version_of(doc: dict | None) -> int:
    return int(doc.get("version", 0)) if doc else 0


def _is_version(version: int) -> dict:
    # A document written before versions existed has no ``version``: it is version 0.
    return {"version": version} if version else {"version": {"$exists": False}}


class AppStorage:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]
        self.unique = AppStorageUnique(db)
        self.usage = AppStorageUsage(db)
        # The apps whose usage document this process has seen exist: their writes need not
        # look for it again (it is never deleted while the app has documents).
        self._counted: set[str] = set()

    async def _before_write(self, app_id: str) -> None:
        """Make sure the app's usage is counted before a write changes a size (see above)."""
        if app_id not in self._counted:
            await self.get_used(app_id)

    async def _count(self, app_id: str, delta: int) -> None:
        if delta and not await self.usage.add_bytes(app_id, delta):
            self._counted.discard(app_id)  # gone meanwhile: the next write counts again

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
        """The bytes the app's documents take (keys and JSON values): one read of its usage
        document, made from a scan of the documents the first time."""
        used = await self.usage.get_bytes(app_id)
        if used is None:
            used = await self.usage.add_if_missing(app_id, await self.scan_used(app_id))
        self._counted.add(app_id)
        return used

    async def scan_used(self, app_id: str) -> int:
        """The sum of the sizes of the app's documents, read from all of them."""
        found = self.collection.find({"app_id": app_id}, {"size": 1})
        return sum([size_of(doc) async for doc in found])

    async def put_value(
        self, app_id: str, collection: str, key: str, text: str, size: int, now: int
    ) -> int:
        """Store ``text`` whatever was there; the new version."""
        await self._before_write(app_id)
        before = await self.collection.find_one_and_update(
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
            projection={"version": 1, "size": 1},
        )  # the document before (None: new), whose size this one replaced
        await self._count(app_id, size - size_of(before))
        return version_of(before) + 1

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
        await self._before_write(app_id)
        if version == 0:
            existing = await self.collection.find_one({"_id": _id}, {"version": 1})
            if existing is None:
                try:
                    await self.collection.insert_one({"_id": _id, **fields, "version": 1})
                except DuplicateKeyError:
                    return None  # created meanwhile
                await self._count(app_id, size)
                return 1
        before = await self.collection.find_one_and_update(
            {"_id": _id, **_is_version(version)},
            {"$set": {**fields, "version": version + 1}},
            projection={"size": 1},
        )
        if before is None:
            return None
        await self._count(app_id, size - size_of(before))
        return version + 1

    async def add_counter(
        self, app_id: str, collection: str, key: str, field: str, text: str, size: int
    ) -> None:
        """A new document ``{field: 0}`` (version 0: the first ``incr`` makes it 1), unless
        one was created meanwhile."""
        await self._before_write(app_id)
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
            await self._count(app_id, size)

    async def move_to_counter(
        self, doc: dict, field: str, current: int, text: str, size: int
    ) -> bool:
        """First ``incr`` of ``field``: its value (``current``, 0 when absent) becomes
        ``counters.<field>``, unless the document changed or another call did it first."""
        await self._before_write(doc["app_id"])
        before = await self.collection.find_one_and_update(
            {
                "_id": doc["_id"],
                **_is_version(version_of(doc)),
                f"counters.{field}": {"$exists": False},
            },
            {"$set": {f"counters.{field}": current, "value": text, "size": size}},
            projection={"size": 1},
        )
        if before is None:
            return False
        await self._count(doc["app_id"], size - size_of(before))
        return True

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
        await self._before_write(app_id)
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
            result = await self.collection.update_one(
                {"_id": doc["_id"]}, {"$inc": {"size": grown}}
            )
            if result.matched_count == 1:  # not deleted meanwhile
                await self._count(app_id, grown)
        return value, version_of(doc)

    async def delete_value(self, app_id: str, collection: str, key: str) -> dict | None:
        """Delete the document; the deleted one (None: there was none)."""
        await self._before_write(app_id)
        doc = await self.collection.find_one_and_delete({"_id": doc_id(app_id, collection, key)})
        await self._count(app_id, -size_of(doc))
        return doc

    async def iter_items(
        self, app_id: str, collection: str, *, after: str | None, limit: int
    ) -> AsyncIterator[dict]:
        """Up to ``limit`` items ``{"key", "value", "version"}`` of one collection in key order,
        from the first key after ``after`` (None: from the first key).

        Read in batches by ``key > last key`` (never skip: each batch is one index range),
        ``FIND_FIRST_BATCH`` documents first, doubling up to ``FIND_BATCH``, so a caller that
        stops early reads little more than it needed; a value is decoded only when its item is
        reached, and one batch at most is held at a time."""
        last, size = after, FIND_FIRST_BATCH
        while limit > 0:
            query: dict[str, Any] = {"app_id": app_id, "collection": collection}
            if last is not None:
                query["key"] = {"$gt": last}
            wanted = min(size, limit)
            docs = await self.collection.find(query).sort("key", 1).limit(wanted).to_list()
            for doc in docs:
                yield {"key": doc["key"], "value": value_of(doc), "version": version_of(doc)}
            if len(docs) < wanted:
                return
            limit -= len(docs)
            last, size = docs[-1]["key"], min(size * 2, FIND_BATCH)
