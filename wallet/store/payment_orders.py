"""The ``payment_orders`` collection: a mini-program's request for money, and what became of it.

``status``: ``requested`` → ``confirming`` (the user pressed confirm; the ledger is moving the
money) → ``paid``; or ``cancelled`` / ``expired``. ``(app_id, order_ref)`` is unique: an app asking
again for the same order gets the same payment. ``refundable`` is what may still be refunded; a
refund reserves its amount with a conditional ``$inc`` that also records ``refunds.<ref>``, so a
retried refund is recognised and the total refunded can never exceed the amount paid.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "payment_orders"
INDEXES = [
    IndexModel([("app_id", ASCENDING), ("order_ref", ASCENDING)], name="app_order", unique=True),
    IndexModel([("status", ASCENDING), ("expires_at", ASCENDING)], name="status_expiry"),
]


class PaymentOrders:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_order(self, order: dict[str, Any]) -> bool:
        try:
            await self.collection.insert_one(order)
            return True
        except DuplicateKeyError:
            return False

    async def get_order(self, payment_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": payment_id})

    async def get_by_ref(self, app_id: str, order_ref: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"app_id": app_id, "order_ref": order_ref})

    async def transition(
        self, payment_id: str, old: list[str], new: str, fields: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """``old`` → ``new``; the document after, or None when it was in another state."""
        return await self.collection.find_one_and_update(
            {"_id": payment_id, "status": {"$in": old}},
            {"$set": {"status": new, **(fields or {})}},
            return_document=ReturnDocument.AFTER,
        )

    async def reserve_refund(self, payment_id: str, ref: str, amount: int) -> bool:
        result = await self.collection.update_one(
            {
                "_id": payment_id,
                "status": "paid",
                "refundable": {"$gte": amount},
                f"refunds.{ref}": {"$exists": False},
            },
            {"$inc": {"refundable": -amount}, "$set": {f"refunds.{ref}": amount}},
        )
        return result.modified_count == 1

    async def set_outbox(self, payment_id: str, name: str, extra: dict[str, Any]) -> None:
        """Record the event the app must hear (delivered, then cleared, by ``take_outbox`` /
        ``clear_outbox``: at least once, whichever process decided the outcome)."""
        await self.collection.update_one(
            {"_id": payment_id},
            {"$set": {"outbox": {"name": name, "extra": extra}, "outbox_lease_until": 0}},
        )

    async def take_outbox(self, payment_id: str, now: int, lease: int) -> dict[str, Any] | None:
        return await self.collection.find_one_and_update(
            {
                "_id": payment_id,
                "outbox": {"$exists": True},
                "outbox_lease_until": {"$lt": now},
            },
            {"$set": {"outbox_lease_until": now + lease}},
            return_document=ReturnDocument.AFTER,
        )

    async def clear_outbox(self, payment_id: str, name: str) -> None:
        await self.collection.update_one(
            {"_id": payment_id, "outbox.name": name},
            {"$unset": {"outbox": "", "outbox_lease_until": ""}},
        )

    async def get_outbox_ids(self, now: int, limit: int = 100) -> list[str]:
        cursor = self.collection.find(
            {"outbox": {"$exists": True}, "outbox_lease_until": {"$lt": now}}, {"_id": 1}
        )
        return [doc["_id"] for doc in await cursor.limit(limit).to_list(None)]

    async def get_due(self, now: int, limit: int = 100) -> list[dict[str, Any]]:
        """Requests nobody answered in time, and confirmations whose worker died."""
        cursor = self.collection.find(
            {
                "$or": [
                    {"status": "requested", "expires_at": {"$lte": now}},
                    {"status": "confirming", "lease_until": {"$lt": now}},
                ]
            }
        )
        return await cursor.limit(limit).to_list(None)
