"""The ``users`` collection: one document per account.

Usernames and emails are unique case-insensitively: the lower-cased forms carry unique indexes and
the index, not a prior read, decides a race between two registrations.
"""

from __future__ import annotations

import re
from typing import Any

from pymongo import IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "users"
INDEXES = [
    IndexModel("username_lower", unique=True, name="username_lower_unique"),
    IndexModel("email_lower", unique=True, name="email_lower_unique"),
    IndexModel([("created_at", -1)], name="newest"),
]


class Users:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_user(self, user: dict[str, Any]) -> None:
        """Insert; raises ``DuplicateKeyError`` when the username or email is taken."""
        await self.collection.insert_one(user)

    async def get_user(self, user_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": user_id})

    async def get_preferences(self, user_id: str) -> dict[str, Any]:
        """The locale (a BCP 47 tag) and time zone (an IANA name) the person chose, each None
        if none: read on every app invocation, so only those fields are fetched, in one read."""
        doc = await self.collection.find_one({"_id": user_id}, {"locale": 1, "time_zone": 1})
        doc = doc or {}
        return {"locale": doc.get("locale"), "time_zone": doc.get("time_zone")}

    async def get_users(self, user_ids: list[str]) -> list[dict[str, Any]]:
        if not user_ids:
            return []
        return await self.collection.find({"_id": {"$in": user_ids}}).to_list(length=None)

    async def find_by_username_prefix(
        self, prefix_lower: str, *, exclude_ids: list[str], limit: int
    ) -> list[dict[str, Any]]:
        """Users whose lower-cased username starts with ``prefix_lower``, in username order."""
        query = {
            "username_lower": {"$regex": "^" + re.escape(prefix_lower)},
            "_id": {"$nin": exclude_ids},
        }
        cursor = self.collection.find(query).sort("username_lower", 1).limit(limit)
        return await cursor.to_list(length=limit)

    async def get_user_by_login(self, login_lower: str) -> dict[str, Any] | None:
        """Find by lower-cased username or email."""
        field = "email_lower" if "@" in login_lower else "username_lower"
        return await self.collection.find_one({field: login_lower})

    async def taken_fields(self, username_lower: str, email_lower: str) -> list[str]:
        """Which of username / email already belong to an account."""
        taken = []
        if await self.collection.find_one({"username_lower": username_lower}, {"_id": 1}):
            taken.append("username")
        if await self.collection.find_one({"email_lower": email_lower}, {"_id": 1}):
            taken.append("email")
        return taken

    async def update_user(self, user_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        return await self.collection.find_one_and_update(
            {"_id": user_id}, {"$set": changes}, return_document=ReturnDocument.AFTER
        )

    async def search_users(
        self, text: str, *, before: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """For admins: users whose username starts with, or display name contains, ``text``
        (any letter case), newest accounts first; ``before`` pages by ``created_at``."""
        query: dict[str, Any] = {}
        if text:
            pattern = re.escape(text.lower())
            query["$or"] = [
                {"username_lower": {"$regex": "^" + pattern}},
                {"display_name": {"$regex": re.escape(text), "$options": "i"}},
            ]
        if before is not None:
            query["created_at"] = {"$lt": before}
        cursor = self.collection.find(query).sort([("created_at", -1), ("_id", -1)])
        return await cursor.limit(limit).to_list(length=limit)

    # --- account deletion (messaging.actions.account_deletion) -------------------------------

    async def claim_deletion(self, user_id: str, now: int, stale_before: int) -> bool:
        """Mark the account as being deleted (``deleting_at``), unless a deletion started after
        ``stale_before`` is still running: of two concurrent deletions one wins, and one that
        crashed halfway can be taken over once its lease has passed."""
        # Two conditional updates, not one with ``$or``: nx-27017 applies an update whose filter
        # has an ``$or`` with an ``$exists: False`` clause to the wrong document (see
        # tests/storage/test_mongo_conformance.py). Each is atomic; of two racing claims the
        # first wins and the second then finds a fresh ``deleting_at``.
        unclaimed = {"_id": user_id, "deleted_at": {"$exists": False}}
        result = await self.collection.update_one(
            {**unclaimed, "deleting_at": {"$exists": False}}, {"$set": {"deleting_at": now}}
        )
        if result.modified_count == 1:
            return True
        result = await self.collection.update_one(
            {**unclaimed, "deleting_at": {"$lt": stale_before}}, {"$set": {"deleting_at": now}}
        )
        return result.modified_count == 1

    async def replace_deleted(self, user_id: str, doc: dict[str, Any]) -> bool:
        """Replace the account's document by its anonymised remains (every field not in
        ``doc`` is forgotten: password hash, second-factor secrets, settings)."""
        result = await self.collection.replace_one(
            {"_id": user_id, "deleted_at": {"$exists": False}}, {**doc, "_id": user_id}
        )
        return result.modified_count == 1

    async def get_deleted_ids(self) -> list[str]:
        """Every deleted account's id, and those being deleted (read at start-up by the
        mini-program host)."""
        query = {"$or": [{"deleted_at": {"$exists": True}}, {"deleting_at": {"$exists": True}}]}
        cursor = self.collection.find(query, {"_id": 1})
        return [doc["_id"] async for doc in cursor]
