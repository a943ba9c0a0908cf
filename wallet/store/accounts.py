"""The ``wallet_accounts`` collection: one document per account, holding its balance.

Account ids say what they are: ``user:<user id>:<CUR>``, ``merchant:<app id>:<CUR>`` (what a
mini-program was paid), ``hold:<ref>`` (money held for a pending transfer or an open red packet)
``fee:<CUR>`` (the platform's fees on captures and payouts)
and ``external:<source>:<CUR>`` (Stripe, dev top-ups: where money enters or leaves the platform;
the only accounts that may go below zero — besides a user account that a card refund or
chargeback overdrew, which is flagged ``wallet_flag: negative_balance`` until it is covered).

Applying an entry is one conditional update that also records the transaction's id under
``applied.<txn id>``; the condition ``applied.<txn id>`` does not exist makes the update
idempotent (a retry or a recovering node cannot apply it twice), and ``balance >= -amount`` keeps
non-negative accounts non-negative. Both conditions are evaluated atomically by the server
(conformance: ``test_conditional_update_on_dotted_key_is_atomic``). The markers are removed long
after the transaction finished (``prune_markers``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "wallet_accounts"
INDEXES = [
    IndexModel([("owner", ASCENDING), ("currency", ASCENDING)], name="owner_currency"),
    IndexModel([("kind", ASCENDING), ("currency", ASCENDING)], name="kind_currency"),
]
KINDS = ("user", "merchant", "hold", "external", "fee")
# ``wallet_flag`` of a user account a card refund or chargeback took below zero (see
# ``Ledger.post(overdraft=True)``); cleared when the balance is back at zero or above.
NEGATIVE_BALANCE = "negative_balance"


def user_account(user_id: str, currency: str) -> str:
    return f"user:{user_id}:{currency}"


def merchant_account(app_id: str, currency: str) -> str:
    return f"merchant:{app_id}:{currency}"


def hold_account(ref: str) -> str:
    return f"hold:{ref}"


def fee_account(currency: str) -> str:
    """The platform's fees (per capture or payout, configured per app by an admin)."""
    return f"fee:{currency}"


def external_account(source: str, currency: str) -> str:
    return f"external:{source}:{currency}"


def kind_of(account_id: str) -> str:
    return account_id.split(":", 1)[0]


def owner_of(account_id: str) -> str:
    """The user id, app id, hold reference or external source the account belongs to."""
    parts = account_id.split(":")
    return parts[1] if len(parts) > 1 else ""


KNOWN_MAX = 100_000  # account ids this process remembers as existing


class Accounts:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]
        # Accounts are never deleted, so one known to exist needs no upsert again (saves a round
        # trip per leg of every movement). Bounded, oldest forgotten first.
        self._known: OrderedDict[str, None] = OrderedDict()

    async def ensure_account(self, account_id: str, currency: str, now: int) -> None:
        """Create the account with a zero balance unless it exists (idempotent)."""
        if account_id in self._known:
            self._known.move_to_end(account_id)
            return
        kind = kind_of(account_id)
        assert kind in KINDS, account_id
        await self._upsert(account_id, kind, currency, now)
        self._known[account_id] = None
        if len(self._known) > KNOWN_MAX:
            self._known.popitem(last=False)

    async def ensure_accounts(self, currencies: dict[str, str], now: int) -> None:
        """``ensure_account`` for many (account id → currency) in one round trip (the ledger's
        group commit: a transfer's hold account is new every time)."""
        unknown = [a for a in currencies if a not in self._known]
        assert all(kind_of(a) in KINDS for a in unknown), unknown
        for account_id in currencies:
            if account_id in self._known:
                self._known.move_to_end(account_id)
        if not unknown:
            return
        await self.collection.bulk_write(
            [
                UpdateOne(
                    {"_id": a},
                    {"$setOnInsert": _new_account(a, currencies[a], now)},
                    upsert=True,
                )
                for a in unknown
            ],
            ordered=False,
        )
        for account_id in unknown:
            self._known[account_id] = None
        while len(self._known) > KNOWN_MAX:
            self._known.popitem(last=False)

    async def _upsert(self, account_id: str, kind: str, currency: str, now: int) -> None:
        await self.collection.update_one(
            {"_id": account_id},
            {"$setOnInsert": _new_account(account_id, currency, now)},
            upsert=True,
        )

    async def apply_entry(
        self, account_id: str, txn_id: str, amount: int, now: int, *, overdraft: bool = False
    ) -> bool:
        """Add ``amount`` once for ``txn_id``; a debit of a non-external account only if the
        balance covers it (unless ``overdraft``). True when applied now or before; False when
        the funds are short."""
        query: dict[str, Any] = {"_id": account_id, f"applied.{txn_id}": {"$exists": False}}
        if amount < 0 and kind_of(account_id) != "external" and not overdraft:
            query["balance"] = {"$gte": -amount}
        result = await self.collection.update_one(
            query, {"$inc": {"balance": amount}, "$set": {f"applied.{txn_id}": now}}
        )
        if result.modified_count == 1:
            return True
        return await self.is_applied(account_id, txn_id)

    async def apply_grouped(
        self, groups: dict[str, list[tuple[str, int]]], now: int, *, covered: bool
    ) -> bool:
        """Apply, per account, all of its (txn id, amount) moves as ONE conditional update (one
        round trip for the lot): each account's moves land together or not at all. ``covered``:
        a non-external account's total debit only when the balance covers the total — so two
        debits in one group can never take it below zero. True when every group was applied;
        else ``applied_groups`` tells which."""
        ops = []
        for account_id, moves in groups.items():
            query: dict[str, Any] = {"_id": account_id}
            for txn_id, _ in moves:
                query[f"applied.{txn_id}"] = {"$exists": False}
            total = sum(amount for _, amount in moves)
            if covered and total < 0 and kind_of(account_id) != "external":
                query["balance"] = {"$gte": -total}
            update = {
                "$inc": {"balance": total},
                "$set": {f"applied.{txn_id}": now for txn_id, _ in moves},
            }
            ops.append(UpdateOne(query, update))
        if not ops:
            return True
        result = await self.collection.bulk_write(ops, ordered=False)
        return result.modified_count == len(ops)

    async def applied_groups(self, firsts: dict[str, str]) -> set[str]:
        """Of (account id → a txn id of its group), the accounts whose group was applied (the
        markers of a group are set together, so one tells for all). One round trip."""
        if not firsts:
            return set()
        # $or alone in the filter (beside other fields nx-27017 misreads it, DESIGN.md §3).
        query = {"$or": [{"_id": a, f"applied.{t}": {"$exists": True}} for a, t in firsts.items()]}
        found = await self.collection.find(query, {"_id": 1}).to_list(None)
        return {doc["_id"] for doc in found}

    async def get_accounts(self, account_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Several accounts (without markers) in one round trip, by id."""
        if not account_ids:
            return {}
        cursor = self.collection.find({"_id": {"$in": account_ids}}, {"applied": 0})
        return {doc["_id"]: doc for doc in await cursor.to_list(None)}

    async def is_applied(self, account_id: str, txn_id: str) -> bool:
        found = await self.collection.find_one(
            {"_id": account_id, f"applied.{txn_id}": {"$exists": True}}, {"_id": 1}
        )
        return found is not None

    async def prune_markers(self, account_id: str, txn_ids: list[str]) -> None:
        if txn_ids:
            await self.collection.update_one(
                {"_id": account_id}, {"$unset": {f"applied.{t}": "" for t in txn_ids}}
            )

    async def get_account(self, account_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": account_id}, {"applied": 0})

    async def get_balance(self, account_id: str) -> int:
        account = await self.get_account(account_id)
        return account["balance"] if account else 0

    async def get_owned(self, owner: str, kind: str) -> list[dict[str, Any]]:
        cursor = self.collection.find({"owner": owner, "kind": kind}, {"applied": 0})
        return await cursor.sort("currency", ASCENDING).to_list(None)

    async def flag_if_negative(self, account_id: str, now: int) -> bool:
        """Mark the account ``wallet_flag: negative_balance`` if its balance is below zero now
        (one conditional update: a credit that landed first leaves it unflagged)."""
        result = await self.collection.update_one(
            {"_id": account_id, "balance": {"$lt": 0}, "wallet_flag": {"$exists": False}},
            {"$set": {"wallet_flag": NEGATIVE_BALANCE, "flagged_at": now}},
        )
        return result.modified_count == 1

    async def unflag_if_covered(self, account_id: str) -> bool:
        """Remove the flag once the balance is back at zero or above."""
        result = await self.collection.update_one(
            {"_id": account_id, "balance": {"$gte": 0}, "wallet_flag": {"$exists": True}},
            {"$unset": {"wallet_flag": "", "flagged_at": ""}},
        )
        return result.modified_count == 1

    async def get_all(self) -> list[dict[str, Any]]:
        return await self.collection.find({}, {"applied": 0}).to_list(None)


def _new_account(account_id: str, currency: str, now: int) -> dict[str, Any]:
    return {
        "kind": kind_of(account_id),
        "owner": owner_of(account_id),
        "currency": currency,
        "balance": 0,
        "applied": {},
        "created_at": now,
    }
