"""The ``app_roles`` collection: the roles a platform administrator granted people inside a
mini-program, one document per grant (``_id`` = ``<app>|<role>|<user>``, so a grant is unique).
"""

from __future__ import annotations

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "app_roles"
INDEXES = [
    IndexModel([("app_id", 1), ("user_id", 1)], name="app_user"),
    IndexModel([("app_id", 1), ("role", 1)], name="app_role"),
]


class AppRoles:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_grant(self, app_id: str, role: str, user_id: str, by: str, now: int) -> bool:
        """True when the person did not have the role until now."""
        doc = {
            "_id": f"{app_id}|{role}|{user_id}",
            "app_id": app_id,
            "role": role,
            "user_id": user_id,
            "by": by,
            "at": now,
        }
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def remove_grant(self, app_id: str, role: str, user_id: str) -> bool:
        result = await self.collection.delete_one({"_id": f"{app_id}|{role}|{user_id}"})
        return result.deleted_count == 1

    async def get_roles(self, app_id: str, user_id: str) -> list[str]:
        found = self.collection.find({"app_id": app_id, "user_id": user_id}, {"role": 1})
        return sorted({doc["role"] async for doc in found})

    async def get_grants(self, app_id: str) -> list[dict]:
        found = self.collection.find({"app_id": app_id}).sort([("role", 1), ("at", 1)])
        return await found.to_list(length=None)
