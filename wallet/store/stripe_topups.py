"""The ``stripe_topups`` collection: one document per card top-up (a Stripe PaymentIntent).

The id is derived from the user and their idempotency key, so a retried request finds its
top-up. A document is written only once its PaymentIntent exists, so ``payment_intent_id`` is
always set and can be unique (no null or missing values for the index to trip over).

Status: ``requires_payment`` → ``succeeded`` (the ledger has credited the user: only the verified
webhook does that), or ``failed`` / ``canceled`` as Stripe reports them; a failed payment may
still succeed later (the customer tries another card), a succeeded one never changes again.

After success Stripe may take money back: ``charge.refunded`` carries the charge's cumulative
``amount_refunded``. ``refunded`` is how much of it the wallet has debited so far (our minor
units) and ``refund_steps.c<total>`` the total before each step, so each step's debit is
``total - before``; ``reserve_refund`` moves ``refunded`` forward with a compare-and-set, so
concurrent or out-of-order deliveries record each step once and never debit more than the
largest total Stripe reported.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "stripe_topups"
INDEXES = [
    IndexModel([("payment_intent_id", ASCENDING)], name="payment_intent", unique=True),
    IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_created"),
    IndexModel([("charge_id", ASCENDING)], name="charge"),
]
STATUSES = ("requires_payment", "succeeded", "failed", "canceled")


class StripeTopups:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_topup(self, topup: dict[str, Any]) -> dict[str, Any]:
        """Insert the top-up, or return the one a concurrent request with the same id (or a
        PaymentIntent already recorded) inserted first."""
        try:
            await self.collection.insert_one(topup)
            return topup
        except DuplicateKeyError:
            existing = await self.get_topup(topup["_id"])
            if existing is None:
                existing = await self.get_by_payment_intent(topup["payment_intent_id"])
            if existing is None:  # cannot happen: top-ups are never deleted
                raise
            return existing

    async def get_topup(self, topup_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": topup_id})

    async def get_by_payment_intent(self, payment_intent_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"payment_intent_id": payment_intent_id})

    async def get_by_charge(self, charge_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"charge_id": charge_id})

    async def set_charge(self, topup_id: str, charge_id: str) -> None:
        """The Stripe charge that paid the top-up (disputes may name only the charge)."""
        await self.collection.update_one({"_id": topup_id}, {"$set": {"charge_id": charge_id}})

    async def reserve_refund(self, topup_id: str, before: int, total: int) -> bool:
        """``refunded``: ``before`` → ``total``, recording the step; False when another delivery
        moved it first (read it again)."""
        result = await self.collection.update_one(
            {"_id": topup_id, "refunded": before if before else {"$in": [0, None]}},
            {"$set": {"refunded": total, f"refund_steps.c{total}": before}},
        )
        return result.modified_count == 1

    async def update_status(
        self, topup_id: str, from_statuses: tuple[str, ...], status: str, fields: dict[str, Any]
    ) -> bool:
        """Move the top-up to ``status`` if it is in one of ``from_statuses``; True if it moved.
        One conditional update, so concurrent deliveries of one event move it once."""
        result = await self.collection.update_one(
            {"_id": topup_id, "status": {"$in": list(from_statuses)}},
            {"$set": {**fields, "status": status}},
        )
        return result.modified_count == 1
