"""The ``app_users`` collection: per-app user ids (WeChat's openid) and who they stand for.

The id is derived (HMAC of the app and user with a platform key), so it is stable without a
lookup; the document is the reverse mapping the host needs when an app names a user.
"""

from __future__ import annotations

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "app_users"
INDEXES = [IndexModel("app_id", name="app")]


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
