"""The ``wallet_app_fees`` collection: the platform's fee on an app's captures and payouts, one
document per (app, currency), set by an admin.

A fee is ``fixed + amount * basis_points / 10000`` (rounded down), never more than the amount; it
is booked to ``fee:<CUR>`` in the same ledger transaction as the capture or payout it is taken
from. Each change is kept in ``history`` as scalar strings (nx-27017 stores pushed sub-documents
as strings anyway, DESIGN.md §3) so the document says who set what, when.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "wallet_app_fees"
INDEXES = [IndexModel([("app_id", ASCENDING)], name="app")]
BPS_MAX = 5000  # half of the amount at most


def fee_id(app_id: str, currency: str) -> str:
    return f"{app_id}:{currency}"


class AppFees:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def get_fee(self, app_id: str, currency: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": fee_id(app_id, currency)})

    async def get_app_fees(self, app_id: str) -> list[dict[str, Any]]:
        cursor = self.collection.find({"app_id": app_id}, {"history": 0})
        return await cursor.sort("currency", ASCENDING).to_list(None)

    async def set_fee(
        self, app_id: str, currency: str, bps: int, fixed: int, admin_id: str, now: int
    ) -> dict[str, Any]:
        return await self.collection.find_one_and_update(
            {"_id": fee_id(app_id, currency)},
            {
                "$set": {
                    "app_id": app_id,
                    "currency": currency,
                    "basis_points": bps,
                    "fixed": fixed,
                    "updated_by": admin_id,
                    "updated_at": now,
                },
                "$push": {"history": f"{now} {admin_id} bps={bps} fixed={fixed}"},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )


def fee_of(fee: dict[str, Any] | None, amount: int) -> int:
    """The fee on ``amount`` minor units (0 without a configured fee); at most ``amount``."""
    if not fee:
        return 0
    return min(amount, fee.get("fixed", 0) + amount * fee.get("basis_points", 0) // 10_000)
