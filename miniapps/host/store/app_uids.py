"""The ``app_uids`` collection: the unprivileged uid each hosted app runs as (``_id`` = app id).

A uid is claimed by inserting it under a unique index, so two apps can never share one, on any
node, whatever order they start in; an app keeps its uid for good (its ``/data`` is owned by it).
"""

from __future__ import annotations

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "app_uids"
INDEXES = [IndexModel("uid", name="uid", unique=True)]


class AppUids:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def get_uid(self, app_id: str) -> int | None:
        doc = await self.collection.find_one({"_id": app_id})
        return None if doc is None else int(doc["uid"])

    async def get_highest(self) -> int | None:
        found = await self.collection.find({}).sort("uid", -1).limit(1).to_list(1)
        return int(found[0]["uid"]) if found else None

    async def add_uid(self, app_id: str, uid: int) -> bool:
        """Claim ``uid`` for ``app_id``; False when the uid (or the app) is taken already."""
        try:
            await self.collection.insert_one({"_id": app_id, "uid": uid})
        except DuplicateKeyError:
            return False
        return True
