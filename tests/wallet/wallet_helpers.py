"""Wallet helpers for tests: top up through the dev route, read balances, check the ledger."""

from __future__ import annotations

import itertools
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from tests.messaging.chat_helpers import Person

_keys = itertools.count(1)


def new_key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_keys)}"


async def topup(p: Person, amount: int, currency: str = "USD") -> None:
    status, body = await p.api.post(
        "/api/v1/wallet/dev-topup", json={"amount": amount, "currency": currency}
    )
    assert status == 200, body


async def balance(p: Person, currency: str = "USD") -> int:
    status, body = await p.api.get("/api/v1/wallet")
    assert status == 200, body
    return next((b["amount"] for b in body["balances"] if b["currency"] == currency), 0)


async def transfer(p: Person, to: Person, conversation_id: str, amount: int, **extra: Any):
    return await p.api.post(
        "/api/v1/wallet/transfers",
        json={
            "to_user_id": to.user_id,
            "amount": amount,
            "currency": "USD",
            "conversation_id": conversation_id,
            "idempotency_key": new_key("t"),
            **extra,
        },
    )


async def red_packet(p: Person, conversation_id: str, total: int, count: int, **extra: Any):
    return await p.api.post(
        "/api/v1/wallet/red-packets",
        json={
            "conversation_id": conversation_id,
            "total": total,
            "count": count,
            "currency": "USD",
            "idempotency_key": new_key("rp"),
            **extra,
        },
    )


async def check_ledger(db: AsyncDatabase) -> dict[str, int]:
    """The invariants, read straight from the database: every transaction's entries sum to zero
    per currency, no non-external balance is negative (but a flagged overdrawn user's), and
    every account's balance equals the sum of its entries. Returns the balances by account."""
    txns = await db.ledger_txns.find({}).to_list(None)
    assert all(t["status"] in ("posted", "failed") for t in txns), "transactions left in flight"
    for txn in txns:
        assert sum(e["amount"] for e in txn["entries"]) == 0, txn
    entries = await db.ledger_entries.find({}).to_list(None)
    per_currency: dict[str, int] = {}
    per_account: dict[str, int] = {}
    for entry in entries:
        per_currency[entry["currency"]] = per_currency.get(entry["currency"], 0) + entry["amount"]
        per_account[entry["account_id"]] = per_account.get(entry["account_id"], 0) + entry["amount"]
    assert all(total == 0 for total in per_currency.values()), per_currency
    posted = {t["_id"] for t in txns if t["status"] == "posted"}
    assert {e["txn_id"] for e in entries} == posted
    balances = {}
    for account in await db.wallet_accounts.find({}).to_list(None):
        balances[account["_id"]] = account["balance"]
        if account["kind"] != "external":
            # Below zero only a user a card refund or chargeback overdrew, and then flagged.
            flagged = account["kind"] == "user" and account.get("wallet_flag") == "negative_balance"
            assert account["balance"] >= 0 or flagged, account
        assert account["balance"] == per_account.get(account["_id"], 0), account["_id"]
    return balances
