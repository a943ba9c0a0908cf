"""The ``blocks`` collection: one document per (blocker, blocked), id ``"<blocker>|<blocked>"``.

A blocked user cannot message the blocker, open a direct chat with them, send them a friend
request, or see their presence.
"""

from __future__ import annotations

from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "blocks"
INDEXES = [IndexModel("blocker_id", name="blocker"), IndexModel("blocked_id", name="blocked")]


def block_id(blocker_id: str, blocked_id: str) -> str:
    return f"{blocker_id}|{blocked_id}"


class Blocks:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_block(self, blocker_id: str, blocked_id: str, now: int) -> bool:
        """Record a block; False when it already existed."""
        try:
            await self.collection.insert_one(
                {
                    "_id": block_id(blocker_id, blocked_id),
                    "blocker_id": blocker_id,
                    "blocked_id": blocked_id,
                    "created_at": now,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def remove_block(self, blocker_id: str, blocked_id: str) -> bool:
        result = await self.collection.delete_one({"_id": block_id(blocker_id, blocked_id)})
        return result.deleted_count == 1

    async def is_blocked_either_way(self, a: str, b: str) -> bool:
        """Whether a blocked b or b blocked a."""
        found = await self.collection.find_one(
            {"_id": {"$in": [block_id(a, b), block_id(b, a)]}}, {"_id": 1}
        )
        return found is not None

    async def has_blocked(self, blocker_id: str, blocked_id: str) -> bool:
        found = await self.collection.find_one(
            {"_id": block_id(blocker_id, blocked_id)}, {"_id": 1}
        )
        return found is not None

    async def get_blocker_ids(self, blocked_id: str) -> list[str]:
        """Everyone who blocked ``blocked_id``."""
        found = self.collection.find({"blocked_id": blocked_id}, {"blocker_id": 1})
        return [doc["blocker_id"] async for doc in found]

    async def get_blocked_ids(self, blocker_id: str) -> list[dict[str, Any]]:
        return (
            await self.collection.find({"blocker_id": blocker_id})
            .sort("created_at", -1)
            .to_list(length=10_000)
        )

    async def get_blocked_by(self, blocked_id: str) -> list[dict[str, Any]]:
        """The blocks others placed on ``blocked_id``."""
        return await self.collection.find({"blocked_id": blocked_id}).to_list(length=10_000)

    async def delete_user_blocks(self, user_id: str) -> int:
        """Every block ``user_id`` placed or was placed under (an account deleted)."""
        result = await self.collection.delete_many(
            {"$or": [{"blocker_id": user_id}, {"blocked_id": user_id}]}
        )
        return result.deleted_count
