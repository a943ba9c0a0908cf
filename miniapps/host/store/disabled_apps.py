"""The ``disabled_apps`` collection: mini-programs an administrator switched off, ``_id`` = app id.

A disabled app keeps its installs and data; it refuses new installs, commands and button presses
until it is enabled again (the document is deleted).
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "disabled_apps"
INDEXES: list = []  # looked up by _id, and read whole at start-up (a handful of rows)


class DisabledApps:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def get_app_ids(self) -> set[str]:
        return {d["_id"] for d in await self.collection.find({}, {"_id": 1}).to_list(length=None)}

    async def disable(self, app_id: str, by: str, reason: str, now: int) -> bool:
        """True when the app was enabled until now."""
        doc: dict[str, Any] = {"_id": app_id, "by": by, "reason": reason, "at": now}
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def enable(self, app_id: str) -> bool:
        """True when the app was disabled until now."""
        return (await self.collection.delete_one({"_id": app_id})).deleted_count == 1
