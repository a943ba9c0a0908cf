"""The ``app_users`` collection: per-app user ids (WeChat's openid) and who they stand for.

The id is derived (HMAC of the app and user with a platform key), so it is stable without a
lookup; the document is the reverse mapping the host needs when an app names a user.
"""

from __future__ import annotations

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "app_users"
INDEXES = [
    IndexModel("app_id", name="app"),
    IndexModel("user_id", name="user"),  # an account deleted: its ids are forgotten
]


class AppUsers:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def remember(self, app_user_id: str, app_id: str, user_id: str) -> None:
        await self.collection.update_one(
            {"_id": app_user_id},
            {"$set": {"app_id": app_id, "user_id": user_id}},
            upsert=True,
        )

    async def get_user_id(self, app_id: str, app_user_id: str) -> str | None:
        doc = await self.collection.find_one({"_id": app_user_id, "app_id": app_id})
        return doc["user_id"] if doc else None

    async def get_user_app_ids(self, user_id: str) -> list[dict[str, str]]:
        """Every app that knows ``user_id``, with the per-app id it knows them by."""
        cursor = self.collection.find({"user_id": user_id}, {"app_id": 1})
        return [{"app_id": doc["app_id"], "app_user_id": doc["_id"]} async for doc in cursor]

    async def forget_user(self, user_id: str) -> int:
        """Drop every per-app id of ``user_id`` (an account deleted): apps naming them are
        answered as for an unknown user."""
        result = await self.collection.delete_many({"user_id": user_id})
        return result.deleted_count
