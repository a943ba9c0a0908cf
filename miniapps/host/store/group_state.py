"""The ``group_state`` collection: one versioned JSON document per (app, conversation).

The state is stored as a JSON string: it is opaque to the platform, and a string survives every
update shape on the embedded server. Writes are optimistic: ``expected_version`` must match.
"""

from __future__ import annotations

import json
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "group_state"
INDEXES: list[IndexModel] = []


def state_id(app_id: str, conversation_id: str) -> str:
    return f"{app_id}|{conversation_id}"


class GroupState:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def get_state(self, app_id: str, conversation_id: str) -> tuple[int, dict[str, Any]]:
        doc = await self.collection.find_one({"_id": state_id(app_id, conversation_id)})
        if doc is None:
            return 0, {}
        return doc["version"], json.loads(doc["state"])

    async def set_state(
        self, app_id: str, conversation_id: str, state: str, expected_version: int, now: int
    ) -> int | None:
        """Write ``state`` (JSON text) if the stored version is ``expected_version``; return the
        new version, or None on a conflict."""
        if expected_version == 0:
            try:
                await self.collection.insert_one(
                    {
                        "_id": state_id(app_id, conversation_id),
                        "app_id": app_id,
                        "conversation_id": conversation_id,
                        "version": 1,
                        "state": state,
                        "updated_at": now,
                    }
                )
            except DuplicateKeyError:
                return None
            return 1
        result = await self.collection.update_one(
            {"_id": state_id(app_id, conversation_id), "version": expected_version},
            {"$set": {"state": state, "updated_at": now, "version": expected_version + 1}},
        )
        return expected_version + 1 if result.modified_count == 1 else None
