"""The ``consents`` collection: a user's answer per (app, scope), revocable."""

from __future__ import annotations

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "consents"
INDEXES = [IndexModel("user_id", name="user")]


class Consents:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def get_answer(self, user_id: str, app_id: str, scope: str) -> bool | None:
        """True granted, False denied, None never asked."""
        doc = await self.collection.find_one({"_id": f"{user_id}|{app_id}|{scope}"})
        return None if doc is None else bool(doc["granted"])

    async def set_answer(
        self, user_id: str, app_id: str, scope: str, granted: bool, now: int
    ) -> None:
        await self.collection.update_one(
            {"_id": f"{user_id}|{app_id}|{scope}"},
            {
                "$set": {
                    "user_id": user_id,
                    "app_id": app_id,
                    "scope": scope,
                    "granted": granted,
                    "at": now,
                }
            },
            upsert=True,
        )

    async def revoke(self, user_id: str, app_id: str, scope: str) -> bool:
        result = await self.collection.delete_one({"_id": f"{user_id}|{app_id}|{scope}"})
        return result.deleted_count == 1

    async def get_user_consents(self, user_id: str) -> list[dict]:
        return await self.collection.find({"user_id": user_id}).sort("at", -1).to_list(None)

    async def delete_user_consents(self, user_id: str) -> int:
        result = await self.collection.delete_many({"user_id": user_id})
        return result.deleted_count
