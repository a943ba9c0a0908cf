"""The ``conversation_grants`` collection: what a conversation let an app do beyond what is
addressed to it — today one grant, ``messages.read_history`` (``messages.history``), made by a
group admin (in a direct chat either person, in a service chat its person) and revocable.

One document per (conversation, app, grant), id ``<conversation>|<app>|<grant>``: granting again
keeps the first grant's author and time (``$setOnInsert`` is avoided: nx-27017 answers it
wrongly in ``find_one_and_update``, DESIGN §3 — an insert that may meet the duplicate key instead).
"""

from __future__ import annotations

from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "conversation_grants"
INDEXES = [IndexModel("conversation_id", name="conversation")]


def grant_id(conversation_id: str, app_id: str, grant: str) -> str:
    return f"{conversation_id}|{app_id}|{grant}"


class ConversationGrants:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_grant(
        self, conversation_id: str, app_id: str, grant: str, by: str, now: int
    ) -> tuple[dict[str, Any], bool]:
        """The grant, made now by ``by`` unless it exists: ``(grant, created)``."""
        doc = {
            "_id": grant_id(conversation_id, app_id, grant),
            "conversation_id": conversation_id,
            "app_id": app_id,
            "grant": grant,
            "granted_by": by,
            "granted_at": now,
        }
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.get_grant(conversation_id, app_id, grant)
            if existing is not None:
                return existing, False
            return await self.add_grant(conversation_id, app_id, grant, by, now)  # revoked since
        return doc, True

    async def remove_grant(self, conversation_id: str, app_id: str, grant: str) -> bool:
        found = await self.collection.delete_one({"_id": grant_id(conversation_id, app_id, grant)})
        return found.deleted_count == 1

    async def get_grant(
        self, conversation_id: str, app_id: str, grant: str
    ) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": grant_id(conversation_id, app_id, grant)})

    async def get_grants(self, conversation_id: str, app_id: str) -> list[dict[str, Any]]:
        found = self.collection.find({"conversation_id": conversation_id, "app_id": app_id})
        return await found.sort("granted_at", 1).to_list(length=None)
