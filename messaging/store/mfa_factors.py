"""The ``mfa_factors`` collection: a person's authenticator (TOTP, RFC 6238), one per account.

``_id`` is the user id, so "one factor per person" is the primary key's rule, not a read first.
A factor is *pending* (``confirmed_at`` None) from the start of an enrolment until a code from
the authenticator confirms it; only a confirmed factor signs anyone in.

``last_step`` is the last accepted TOTP time step (starting at -1). Accepting a code is the
conditional update ``last_step < step → step``: of two uses of one code (a replay, or the same
code sent twice at once) exactly one moves it, and a code of an earlier step than one already
used is refused too (RFC 6238 §5.2). ``recovery_batch`` names the live set of recovery codes
(``mfa_recovery_codes``): codes of any other batch are dead.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "mfa_factors"
INDEXES: list = []  # looked up by _id (the user id) only


class MfaFactors:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def get_factor(self, user_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": user_id})

    async def put_pending(self, user_id: str, secret: str, now: int) -> bool:
        """Start (or restart) an enrolment with a new secret. A pending factor is replaced; a
        confirmed one is kept and False returned (the upsert's insert hits the primary key)."""
        try:
            await self.collection.update_one(
                {"_id": user_id, "confirmed_at": None},
                {
                    "$set": {
                        "type": "totp",
                        "secret": secret,
                        "last_step": -1,
                        "recovery_batch": None,
                        "created_at": now,
                    }
                },
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    async def replace_stale(self, user_id: str, confirmed_at: int) -> bool:
        """Drop a confirmed factor whose account never got ``mfa_enabled`` (a confirmation cut
        short by a crash), so a new enrolment can start; only that exact factor goes."""
        result = await self.collection.delete_one({"_id": user_id, "confirmed_at": confirmed_at})
        return result.deleted_count == 1

    async def confirm(self, user_id: str, secret: str, step: int, now: int, batch: str) -> bool:
        """Confirm the pending factor with this secret by a code of ``step``; False when it was
        replaced, confirmed already, or the step was used."""
        result = await self.collection.update_one(
            {"_id": user_id, "secret": secret, "confirmed_at": None, "last_step": {"$lt": step}},
            {"$set": {"confirmed_at": now, "last_step": step, "recovery_batch": batch}},
        )
        return result.modified_count == 1

    async def use_step(self, user_id: str, step: int) -> bool:
        """Accept a code of time step ``step`` once: False if it (or a later one) was used."""
        result = await self.collection.update_one(
            {"_id": user_id, "last_step": {"$lt": step}}, {"$set": {"last_step": step}}
        )
        return result.modified_count == 1

    async def swap_recovery_batch(self, user_id: str, old: str | None, new: str) -> bool:
        """Make ``new`` the live recovery batch if ``old`` still is (of two concurrent
        regenerations one wins, and only its codes work)."""
        result = await self.collection.update_one(
            {"_id": user_id, "recovery_batch": old}, {"$set": {"recovery_batch": new}}
        )
        return result.modified_count == 1

    async def delete_factor(self, user_id: str) -> None:
        await self.collection.delete_one({"_id": user_id})
