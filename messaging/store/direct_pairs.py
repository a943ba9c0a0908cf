"""The ``direct_pairs`` collection: at most one direct conversation per pair of users.

The id is the two user ids sorted and joined, so the unique ``_id`` decides a race between two
people opening the same chat at once.
"""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "direct_pairs"
INDEXES: list = []


def pair_id(a: str, b: str) -> str:
    return "|".join(sorted((a, b)))


class DirectPairs:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def claim_pair(self, a: str, b: str, conversation_id: str) -> str:
        """Bind the pair to ``conversation_id`` unless already bound; return the bound id."""
        try:
            await self.collection.insert_one(
                {"_id": pair_id(a, b), "conversation_id": conversation_id}
            )
            return conversation_id
        except DuplicateKeyError:
            existing = await self.collection.find_one({"_id": pair_id(a, b)})
            return existing["conversation_id"]

    async def get_pair(self, a: str, b: str) -> str | None:
        existing = await self.collection.find_one({"_id": pair_id(a, b)})
        return existing["conversation_id"] if existing else None
