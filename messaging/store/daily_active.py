"""The ``daily_active`` collection: ``{_id: "<day>|<user id>", day, user_id}``, one per user who
was active (signed in, connected, sent) on a UTC day. The unique ``_id`` makes a second insert for
the same day fail, so each user is counted once per day however many nodes see them."""

from __future__ import annotations

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "daily_active"
INDEXES = [IndexModel("day", name="day")]


class DailyActive:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_active(self, day: str, user_id: str) -> bool:
        """True when this is the user's first activity recorded for that day."""
        key = f"{day}|{user_id}"
        # Look first: after a restart most users are already counted, and a read is cheaper
        # than an insert that fails on the unique _id.
        if await self.collection.find_one({"_id": key}, {"_id": 1}) is not None:
            return False
        try:
            await self.collection.insert_one({"_id": key, "day": day, "user_id": user_id})
        except DuplicateKeyError:
            return False
        return True
