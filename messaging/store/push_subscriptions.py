"""The ``push_subscriptions`` collection: one document per browser push subscription.

The id is derived from the endpoint (``subscription_id``), so subscribing the same endpoint again
— a browser re-subscribing, or another account signing in on that browser — is an upsert of the
one document, never a second one: a browser gets each push once, for the account using it now.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "push_subscriptions"
INDEXES = [
    IndexModel("endpoint", unique=True, name="endpoint"),
    IndexModel([("user_id", ASCENDING), ("updated_at", DESCENDING)], name="user_recent"),
]


def subscription_id(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()[:32]


class PushSubscriptions:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def get_subscription(self, sub_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": sub_id})

    async def get_subscriptions(self, ids: list[str]) -> list[dict[str, Any]]:
        return await self.collection.find({"_id": {"$in": ids}}).to_list(length=len(ids) or 1)

    async def get_user_subscriptions(self, user_id: str, limit: int) -> list[dict[str, Any]]:
        """Newest first."""
        cursor = self.collection.find({"user_id": user_id}).sort("updated_at", DESCENDING)
        return await cursor.to_list(length=limit)

    async def put_subscription(
        self,
        user_id: str,
        endpoint: str,
        p256dh: str,
        auth: str,
        expires_at: int | None,
        now: int,
    ) -> tuple[dict[str, Any], str | None]:
        """Create or replace the subscription of ``endpoint`` for ``user_id``. Returns it and
        the user it belonged to before, when that was someone else."""
        sub_id = subscription_id(endpoint)
        before = await self.collection.find_one({"_id": sub_id}, {"user_id": 1})
        # $min sets created_at on insert and keeps it after ($setOnInsert in an upsert is one of
        # the embedded server's deviations, DESIGN.md §3).
        await self.collection.update_one(
            {"_id": sub_id},
            {
                "$set": {
                    "endpoint": endpoint,
                    "user_id": user_id,
                    "p256dh": p256dh,
                    "auth": auth,
                    "expires_at": expires_at,
                    "updated_at": now,
                },
                "$min": {"created_at": now},
            },
            upsert=True,
        )
        saved = await self.collection.find_one({"_id": sub_id})
        assert saved is not None
        previous = before["user_id"] if before and before["user_id"] != user_id else None
        return saved, previous

    async def delete_subscription(self, sub_id: str, user_id: str | None = None) -> bool:
        """Delete one (only if it is ``user_id``'s, when given); False when there was none."""
        query: dict[str, Any] = {"_id": sub_id}
        if user_id is not None:
            query["user_id"] = user_id
        result = await self.collection.delete_one(query)
        return result.deleted_count == 1

    async def delete_subscriptions(self, ids: list[str]) -> int:
        if not ids:
            return 0
        result = await self.collection.delete_many({"_id": {"$in": ids}})
        return result.deleted_count
