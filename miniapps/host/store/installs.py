"""The ``app_installs`` collection: which mini-programs a conversation has (id ``<conv>|<app>``)."""

from __future__ import annotations

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "app_installs"
INDEXES = [IndexModel("conversation_id", name="conversation")]


class Installs:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_install(self, conversation_id: str, app_id: str, by: str, now: int) -> bool:
        try:
            await self.collection.insert_one(
                {
                    "_id": f"{conversation_id}|{app_id}",
                    "conversation_id": conversation_id,
                    "app_id": app_id,
                    "added_by": by,
                    "added_at": now,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def remove_install(self, conversation_id: str, app_id: str) -> bool:
        result = await self.collection.delete_one({"_id": f"{conversation_id}|{app_id}"})
        return result.deleted_count == 1

    async def get_app_ids(self, conversation_id: str) -> list[str]:
        found = self.collection.find({"conversation_id": conversation_id}).sort("added_at", 1)
        return [doc["app_id"] async for doc in found]

    async def get_install(self, conversation_id: str, app_id: str) -> dict | None:
        """The install (``added_by``, ``added_at``), None when the conversation lacks the app."""
        return await self.collection.find_one({"_id": f"{conversation_id}|{app_id}"})

    async def is_installed(self, conversation_id: str, app_id: str) -> bool:
        return await self.collection.find_one({"_id": f"{conversation_id}|{app_id}"}) is not None
