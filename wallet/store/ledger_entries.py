"""The ``ledger_entries`` collection: one document per entry of a posted transaction.

``_id`` is ``<txn id>:<index>``, so writing a transaction's entries again is harmless. Entries
are what history pages show and what reconciliation sums: for every account, the sum of its
entries equals its balance once no transaction is in flight.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

COLLECTION = "ledger_entries"
INDEXES = [
    # (nx-27017 cannot index ``_id`` inside a compound index; ties on ``at`` are few.)
    IndexModel([("owner", ASCENDING), ("at", DESCENDING)], name="owner_history"),
    IndexModel([("account_id", ASCENDING)], name="account"),
]


class LedgerEntries:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_entries(self, entries: list[dict[str, Any]]) -> None:
        try:
            await self.collection.insert_many(entries, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise

    async def get_history(
        self,
        owner: str,
        kind: str,
        *,
        currency: str | None,
        before: tuple[int, str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """An owner's entries, newest first; ``before`` is the (at, id) of the last one seen."""
        query: dict[str, Any] = {"owner": owner, "account_kind": kind}
        if currency:
            query["currency"] = currency
        if before is not None:
            at, entry_id = before
            query["$or"] = [{"at": {"$lt": at}}, {"at": at, "_id": {"$lt": entry_id}}]
        cursor = self.collection.find(query).sort([("at", DESCENDING), ("_id", DESCENDING)])
        return await cursor.limit(limit).to_list(None)

    async def sum_by_account(self) -> dict[str, int]:
        pipeline = [{"$group": {"_id": "$account_id", "total": {"$sum": "$amount"}}}]
        rows = await (await self.collection.aggregate(pipeline)).to_list(None)
        return {row["_id"]: row["total"] for row in rows}

    async def sum_by_currency(self, kind: str, account_kind: str) -> dict[str, int]:
        """Per currency, the sum of the entries of one transaction kind on one kind of account.
        (One kind per query: nx-27017 groups wrongly by a compound ``_id``.)"""
        pipeline = [
            {"$match": {"kind": kind, "account_kind": account_kind}},
            {"$group": {"_id": "$currency", "total": {"$sum": "$amount"}}},
        ]
        rows = await (await self.collection.aggregate(pipeline)).to_list(None)
        return {row["_id"]: row["total"] for row in rows}
