"""The ``ephemeral_cards`` collection: cards with buttons that an app showed one person only
(``messages.reply_ephemeral``), kept for an hour so their buttons can be pressed. Nothing else of
an ephemeral reply is stored, and nothing of it is in the conversation's history.

``expires_at`` is a BSON date, unlike the integer milliseconds of every other timestamp: a TTL
index only removes documents whose field is a date (MongoDB's monitor every 60 s, nx-27017 on
its own schedule). A date written by ``insert_one`` is kept as a date on both; it is never
``$set`` (nx-27017 turns a ``$set`` date into a string, ARCHITECTURE "Storage"). Reads refuse
expired cards themselves, so a card the TTL monitor has not removed yet cannot be pressed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from storage.mongo import new_id

COLLECTION = "ephemeral_cards"
TTL_MS = 60 * 60 * 1000  # an ephemeral card's buttons can be pressed for an hour
INDEXES = [IndexModel("expires_at", name="expiry", expireAfterSeconds=0)]


def as_date(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class EphemeralCards:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_card(
        self,
        user_id: str,
        conversation_id: str,
        app_id: str,
        card: dict[str, Any],
        now: int,
        ttl_ms: int = TTL_MS,
    ) -> str:
        """Keep ``card``, shown to ``user_id`` in ``conversation_id``; returns its id."""
        ephemeral_id = new_id()
        await self.collection.insert_one(
            {
                "_id": ephemeral_id,
                "user_id": user_id,
                "conversation_id": conversation_id,
                "app_id": app_id,
                "card": card,
                "created_at": now,
                "expires_at": as_date(now + ttl_ms),
            }
        )
        return ephemeral_id

    async def get_card(self, ephemeral_id: str, now: int) -> dict[str, Any] | None:
        """The card ``ephemeral_id`` while it has not expired, else None."""
        return await self.collection.find_one(
            {"_id": ephemeral_id, "expires_at": {"$gt": as_date(now)}}
        )

    async def update_card(
        self, ephemeral_id: str, app_id: str, card: dict[str, Any], now: int
    ) -> bool:
        """Replace the card (still ``app_id``'s and not expired); False when it is not there.
        Its expiry stays: an update does not make a private card pressable for longer."""
        result = await self.collection.update_one(
            {"_id": ephemeral_id, "app_id": app_id, "expires_at": {"$gt": as_date(now)}},
            {"$set": {"card": card, "updated_at": now}},
        )
        return result.matched_count == 1
