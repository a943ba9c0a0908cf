"""The ``mfa_recovery_codes`` collection: one-time codes that stand in for the authenticator.

Only a hash is stored (``_id`` = SHA-256 of the user id and the normalised code), so the
database never holds a usable code. Each row belongs to a *batch*; the factor
(``mfa_factors.recovery_batch``) names the live one, so a new set kills the old one at the
moment it is named, and rows of dead batches are only clean-up. A code is used by the
conditional update ``used_at: None → now``: of concurrent uses exactly one wins, and a used
code stays recognisable (a clear "already used" rather than "wrong code").
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "mfa_recovery_codes"
INDEXES = [IndexModel([("user_id", ASCENDING), ("batch", ASCENDING)], name="user_batch")]


class MfaRecoveryCodes:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_batch(self, user_id: str, batch: str, code_hashes: list[str], now: int) -> None:
        await self.collection.insert_many(
            [
                {"_id": h, "user_id": user_id, "batch": batch, "used_at": None, "created_at": now}
                for h in code_hashes
            ]
        )

    async def get_code(self, code_hash: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": code_hash})

    async def use_code(self, user_id: str, batch: str, code_hash: str, now: int) -> bool:
        """Spend an unused code of the live batch; False if it is not one (or was spent)."""
        result = await self.collection.update_one(
            {"_id": code_hash, "user_id": user_id, "batch": batch, "used_at": None},
            {"$set": {"used_at": now}},
        )
        return result.modified_count == 1

    async def count_unused(self, user_id: str, batch: str) -> int:
        # A find, not count_documents: the embedded server counts 0 for a ``field: None``
        # filter that find answers right (at most ten rows either way).
        cursor = self.collection.find(
            {"user_id": user_id, "batch": batch, "used_at": None}, {"_id": 1}
        )
        return len(await cursor.to_list(length=None))

    async def delete_other_batches(self, user_id: str, keep: str) -> int:
        result = await self.collection.delete_many({"user_id": user_id, "batch": {"$ne": keep}})
        return result.deleted_count

    async def delete_batch(self, user_id: str, batch: str) -> int:
        result = await self.collection.delete_many({"user_id": user_id, "batch": batch})
        return result.deleted_count

    async def delete_for_user(self, user_id: str) -> int:
        result = await self.collection.delete_many({"user_id": user_id})
        return result.deleted_count
