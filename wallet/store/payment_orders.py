"""The ``payment_orders`` collection: a mini-program's request for money, and what became of it.

``status``: ``requested`` → ``confirming`` (the user pressed confirm; the ledger is moving the
money) → ``paid``; or ``cancelled`` / ``expired``. A hold (``capture: false``) goes
``confirming`` → ``authorized`` (the money is in ``hold:payment:<id>``) → ``capturing`` → ``paid``
(``captured``: how much the merchant got) or → ``voiding`` → ``voided`` (all back to the user);
``settle`` on the order says which, and how much, so a crashed settlement is finished alike.

Confirming is fenced by two counters. ``attempt_no`` goes up by one with every confirmation that
takes the order (``claim``: a ``requested`` order, or a ``confirming`` one whose ``lease_until``
passed because its attempt stalled); an attempt changes the order afterwards only while the
number is still its own. ``charge_no`` names the ledger movement, ``payment:<id>:<charge_no>``;
it goes up only once that movement has *failed* (nothing moved: funds short), so every attempt
of a charge — a stalled one that wakes up included — posts the same idempotency key, and at most
one movement of money exists per order. ``(app_id, order_ref)`` is unique: an app asking
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
    IndexModel([("status", ASCENDING), ("hold_expires_at", ASCENDING)], name="status_hold_expiry"),
]


def charge_is(charge_no: int) -> dict[str, Any]:
    """The condition ``charge_no == n`` (orders from before the field existed have none: 0)."""
    return {"charge_no": charge_no if charge_no else {"$in": [0, None]}}


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
        self,
        payment_id: str,
        old: list[str],
        new: str,
        fields: dict[str, Any] | None = None,
        where: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """``old`` → ``new`` (if ``where`` matches too); the document after, or None when it was
        in another state."""
        return await self.collection.find_one_and_update(
            {"_id": payment_id, "status": {"$in": old}, **(where or {})},
            {"$set": {"status": new, **(fields or {})}},
            return_document=ReturnDocument.AFTER,
        )

    async def claim(
        self, payment_id: str, now: int, lease_until: int, *, stalled_only: bool = False
    ) -> dict[str, Any] | None:
        """Take the order for a confirmation attempt: an open request (unless ``stalled_only``),
        or a confirmation whose lease ran out. The document after (its ``attempt_no`` is this
        attempt's fencing token), or None when another attempt holds it or it is closed."""
        stalled = {"status": "confirming", "lease_until": {"$lt": now}}
        open_request = {"status": "requested", "expires_at": {"$gt": now}}
        # ``$and`` around the ``$or``: nx-27017 applies ``{"_id": x, "$or": [...]}`` in an
        # update as ``_id = x AND a OR b`` and would claim another order matching ``b``
        # (tests/storage/test_mongo_conformance.py).
        either = [stalled] if stalled_only else [open_request, stalled]
        return await self.collection.find_one_and_update(
            {"$and": [{"_id": payment_id}, {"$or": either}]},
            {
                "$set": {"status": "confirming", "lease_until": lease_until},
                "$inc": {"attempt_no": 1},
            },
            return_document=ReturnDocument.AFTER,
        )

    async def next_charge(
        self, payment_id: str, attempt_no: int, charge_no: int, *, reopen: bool
    ) -> dict[str, Any] | None:
        """After charge ``charge_no`` failed: move to the next charge number, still confirming
        (``reopen=False``: this attempt tries again) or back to ``requested`` (the user tops up
        and confirms again). Only while ``attempt_no`` is still the order's."""
        update: dict[str, Any] = {"$set": {"charge_no": charge_no + 1}}
        if reopen:
            update["$set"]["status"] = "requested"
            update["$unset"] = {"lease_until": ""}
        return await self.collection.find_one_and_update(
            {
                "_id": payment_id,
                "status": "confirming",
                "attempt_no": attempt_no,
                **charge_is(charge_no),
            },
            update,
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
        """Requests nobody answered in time, and confirmations whose worker died (holds:
        ``get_due_holds``)."""
        cursor = self.collection.find(
            {
                "$or": [
                    {"status": "requested", "expires_at": {"$lte": now}},
                    {"status": "confirming", "lease_until": {"$lt": now}},
                ]
            }
        )
        return await cursor.limit(limit).to_list(None)

    async def get_due_holds(self, now: int, limit: int = 100) -> list[dict[str, Any]]:
        """Authorized holds past their expiry (to void), and captures or voids whose worker
        died before the ledger settled them (to finish)."""
        cursor = self.collection.find(
            {
                "$or": [
                    {"status": "authorized", "hold_expires_at": {"$lte": now}},
                    {"status": {"$in": ["capturing", "voiding"]}, "lease_until": {"$lt": now}},
                ]
            }
        )
        return await cursor.limit(limit).to_list(None)

    async def get_open_for(self, user_id: str, limit: int) -> list[dict[str, Any]]:
        """Orders that may still move money from or to ``user_id``: their own payments not yet
        settled (asked, being confirmed, a hold), and transfer requests that would pay them."""
        cursor = self.collection.find(
            {
                "$or": [
                    {
                        "user_id": user_id,
                        "status": {
                            "$in": ["requested", "confirming", "authorized", "capturing", "voiding"]
                        },
                    },
                    {"payee_id": user_id, "status": {"$in": ["requested", "confirming"]}},
                ]
            }
        )
        return await cursor.limit(limit).to_list(None)
