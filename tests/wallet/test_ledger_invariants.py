"""The ledger's invariants under concurrency and after a crash.

50 clients make 1,000 random transfers, accepts, returns, red-packet drops and grabs at once;
afterwards every currency's entries sum to zero, no balance is negative, each account's balance
equals the sum of its entries, and no money appeared or vanished.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from gateway.keys import DATABASE, WALLET
from storage.mongo import new_id, now_ms
from tests.helpers import ApiClient
from tests.wallet.wallet_helpers import check_ledger, new_key
from wallet.store.accounts import external_account, user_account

CLIENTS = 50
OPERATIONS = 1000
START = 10_000


@pytest.mark.xdist_group("heavy")  # CPU-heavy: never beside another heavy test
async def test_fifty_clients_thousand_random_movements_keep_every_invariant(gateway):
    base = str(gateway.make_url("")).rstrip("/")
    clients = [ApiClient(base) for _ in range(CLIENTS)]
    users = await asyncio.gather(*[c.signup() for c in clients])
    ids = [u["user"]["id"] for u in users]
    status, body = await clients[0].post(
        "/api/v1/conversations", json={"type": "group", "title": "Money", "member_ids": ids[1:]}
    )
    assert status == 201, body
    chat = body["conversation"]["id"]
    await asyncio.gather(
        *[
            c.post("/api/v1/wallet/dev-topup", json={"amount": START, "currency": "USD"})
            for c in clients
        ]
    )
    rng = random.Random(20261126)
    transfers: list[str] = []
    packets: list[str] = []
    outcomes: dict[str, int] = {}

    async def one(i: int, op: int) -> None:
        me = clients[i]
        kind = rng.choice(["transfer", "transfer", "settle", "packet", "grab", "grab"])
        if kind == "transfer":
            to = rng.choice([j for j in range(CLIENTS) if j != i])
            status, body = await me.post(
                "/api/v1/wallet/transfers",
                json={
                    "to_user_id": ids[to],
                    "amount": rng.randint(1, 900),
                    "currency": "USD",
                    "conversation_id": chat,
                    "idempotency_key": new_key(f"t{i}-{op}"),
                },
            )
            if status == 201:
                transfers.append(body["transfer"]["id"])
        elif kind == "settle" and transfers:
            tid = rng.choice(transfers)
            action = rng.choice(["accept", "return"])
            # Anyone may try; only the recipient gets past not_found.
            for client in (me, *rng.sample(clients, 3)):
                status, body = await client.post(f"/api/v1/wallet/transfers/{tid}/{action}")
        elif kind == "packet":
            count = rng.randint(1, 8)
            status, body = await me.post(
                "/api/v1/wallet/red-packets",
                json={
                    "conversation_id": chat,
                    "total": rng.randint(count, 2000),
                    "count": count,
                    "currency": "USD",
                    "mode": rng.choice(["random", "equal"]),
                    "idempotency_key": new_key(f"p{i}-{op}"),
                },
            )
            if status == 201:
                packets.append(body["red_packet"]["id"])
        elif kind == "grab" and packets:
            status, body = await me.post(f"/api/v1/wallet/red-packets/{rng.choice(packets)}/claim")
        else:
            status = 0
        outcomes[f"{kind}:{status}"] = outcomes.get(f"{kind}:{status}", 0) + 1
        assert status < 500, (kind, body)

    per_client = OPERATIONS // CLIENTS

    async def run_client(i: int) -> None:
        for op in range(per_client):
            await one(i, op)

    await asyncio.gather(*[run_client(i) for i in range(CLIENTS)])
    assert sum(outcomes.values()) == OPERATIONS
    assert outcomes.get("transfer:201", 0) > 100 and outcomes.get("grab:200", 0) > 50, outcomes
    db = gateway.app[DATABASE].db
    balances = await check_ledger(db)
    # Money in = what the dev top-ups brought; it is all still somewhere inside.
    assert balances[external_account("dev_topup", "USD")] == -START * CLIENTS
    inside = sum(v for k, v in balances.items() if not k.startswith("external:"))
    assert inside == START * CLIENTS
    # Every API balance agrees with the ledger.
    for client, user_id in zip(clients, ids, strict=True):
        _, body = await client.get("/api/v1/wallet")
        assert body["balances"][0]["amount"] == balances[user_account(user_id, "USD")]
    # The admin report says the same.
    await db.users.update_one({"_id": ids[0]}, {"$set": {"role": "admin"}})
    status, report = await clients[0].get("/api/v1/admin/wallet/reconciliation")
    assert status == 200 and report["balanced"], report
    assert report["currencies"][0]["sum"] == 0
    assert report["currencies"][0]["external"] == -START * CLIENTS
    status, body = await clients[1].get("/api/v1/admin/wallet/reconciliation")
    assert (status, body["error"]["code"]) == (403, "not_admin")
    await asyncio.gather(*[c.close() for c in clients])


async def test_recovery_finishes_a_transaction_whose_worker_died(gateway, api):
    """A node died after journalling a transfer and moving the sender's balance, before the
    credit: once the lease is over, recovery applies the rest, posts it, and runs its hook."""
    wallet = gateway.app[WALLET]
    db = gateway.app[DATABASE].db
    me = await api.signup()
    user_id = me["user"]["id"]
    status, _ = await api.post("/api/v1/wallet/dev-topup", json={"amount": 1000, "currency": "USD"})
    assert status == 200
    txn_id = new_id()
    source, target = user_account(user_id, "USD"), external_account("payout_test", "USD")
    await wallet.accounts.ensure_account(target, "USD", now_ms())
    await db.ledger_txns.insert_one(
        {
            "_id": txn_id,
            "idempotency_key": "crash-test",
            "kind": "crash_test",
            "currency": "USD",
            "entries": [
                {"account_id": source, "amount": -300},
                {"account_id": target, "amount": 300},
            ],
            "memo": {},
            "fingerprint": "x",
            "status": "pending",
            "created_at": now_ms(),
            "lease_until": now_ms() - 1,  # the worker's lease ran out
        }
    )
    assert await wallet.accounts.apply_entry(source, txn_id, -300, now_ms())  # half done
    seen = []

    async def hook(txn):
        seen.append(txn["_id"])

    wallet.ledger.on_posted("crash_test", hook)
    assert await wallet.ledger.recover() == 1
    txn = await db.ledger_txns.find_one({"_id": txn_id})
    assert txn["status"] == "posted" and seen == [txn_id]
    assert await wallet.accounts.get_balance(source) == 700  # debited once, not twice
    assert await wallet.accounts.get_balance(target) == 300
    assert await wallet.ledger.recover() == 0
    await check_ledger(db)
    # Markers of long-finished transactions are pruned; balances stay.
    await db.ledger_txns.update_many({}, {"$set": {"posted_at": 1}})
    assert await wallet.ledger.prune() >= 2
    account = await db.wallet_accounts.find_one({"_id": source})
    assert account["applied"] == {} and account["balance"] == 700
