"""The ``credentials`` collection: the verifiable credentials (Open Badges 3.0) mini-programs
issued, one document per credential (``_id`` = its id), kept for their public verification
(``GET /credentials/<id>``) and their revocation.

The credential is kept as the exact JSON text that was signed (``credential_json``), so what
the public route serves and what verification compares is byte for byte what the JWS carries.
``user_id`` (the platform's id of the earner) stays here and never leaves the platform: the
credential itself names the per-app id only.
"""

from __future__ import annotations

from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "credentials"
INDEXES = [
    IndexModel([("app_id", 1), ("subject_user_id", 1)], name="app_subject"),
    IndexModel([("user_id", 1), ("issued_at", -1)], name="earner_newest"),
]


class Credentials:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_credential(self, doc: dict[str, Any]) -> None:
        await self.collection.insert_one(doc)

    async def get_credential(self, credential_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": credential_id})

    async def revoke(self, app_id: str, credential_id: str, reason: str, now: int) -> bool:
        """Revoke a credential ``app_id`` issued, once (a second revocation keeps the first
        reason and time); False when the app issued no such credential."""
        found = await self.collection.find_one(
            {"_id": credential_id, "app_id": app_id}, {"revoked_at": 1}
        )
        if found is None:
            return False
        if not found.get("revoked_at"):
            await self.collection.update_one(
                {"_id": credential_id, "app_id": app_id, "revoked_at": None},
                {"$set": {"revoked_at": now, "reason": reason}},
            )
        return True
