"""The ``app_calls`` collection: the live invocations of *remote* apps, so a capability call
that a remote app sends back lands on any gateway node (its ``call_id`` is looked up here when the
node that made the invocation is another). Hosted apps call back over their own pipe, to the node
that runs them, and never need it. Expired entries are removed by whoever notices them.
"""

from __future__ import annotations

from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "app_calls"
INDEXES = [IndexModel("expires_at", name="expiry")]


class AppCalls:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_call(self, call_id: str, fields: dict[str, Any], expires_at: int) -> None:
        await self.collection.insert_one({"_id": call_id, **fields, "expires_at": expires_at})

    async def get_call(self, call_id: str, now: int) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": call_id, "expires_at": {"$gt": now}})

    async def remove_call(self, call_id: str) -> None:
        await self.collection.delete_one({"_id": call_id})

    async def remove_expired(self, now: int) -> None:
        await self.collection.delete_many({"expires_at": {"$lte": now}})
