"""The ``app_config`` collection: the settings an administrator set for a mini-program, one
document per app and setting (``_id`` = ``<app>|<name>``).

Values are stored as given, in plain text: MongoDB's own access control and encryption at rest
protect them like the rest of the platform's data. They are never logged, never written to the
admin audit, and a secret one is never read back through the admin API (``set: true`` only).
"""

from __future__ import annotations

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "app_config"
INDEXES = [IndexModel("app_id", name="app")]


class AppConfigStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def get_values(self, app_id: str) -> dict[str, str]:
        found = self.collection.find({"app_id": app_id}, {"name": 1, "value": 1})
        return {doc["name"]: doc["value"] async for doc in found}

    async def set_value(self, app_id: str, name: str, value: str, by: str, now: int) -> None:
        await self.collection.update_one(
            {"_id": f"{app_id}|{name}"},
            {"$set": {"app_id": app_id, "name": name, "value": value, "by": by, "at": now}},
            upsert=True,
        )

    async def remove_value(self, app_id: str, name: str) -> bool:
        result = await self.collection.delete_one({"_id": f"{app_id}|{name}"})
        return result.deleted_count == 1
