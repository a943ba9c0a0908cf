"""The ``remote_apps`` collection: mini-programs registered by an admin with an HTTPS endpoint
(id = app id). The secret signs requests both ways, so it is kept as is (it must be usable)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "remote_apps"
INDEXES: list = []  # looked up by _id only


class RemoteApps:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_app(
        self, app_id: str, manifest: dict, endpoint: str, secret: str, now: int
    ) -> bool:
        try:
            await self.collection.insert_one(
                {
                    "_id": app_id,
                    "manifest": manifest,
                    "endpoint": endpoint,
                    "secret": secret,
                    "created_at": now,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def get_app(self, app_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": app_id})

    async def get_all(self) -> list[dict[str, Any]]:
        return [doc async for doc in self.collection.find({}).sort("created_at", 1)]
