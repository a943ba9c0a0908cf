"""Holds under concurrency: 50 authorized holds, each raced by a capture and a void at once (plus
the expiry job and a second capture), keep the ledger zero-sum — every hold settles exactly once,
nothing is lost or made. The holds are real payment requests of the sandboxed ``escrow`` app,
confirmed by their users over Socket.IO; the racing settlements are the wallet's own actions
(what ``payments.capture`` / ``payments.void`` call), run concurrently against the database.
"""

from __future__ import annotations

import asyncio
import random

from gateway.keys import DATABASE, WALLET
from storage.errors import AppError
from tests.miniapps.test_capabilities import setup
from tests.wallet.wallet_helpers import balance, check_ledger, topup
from wallet.actions import holds, payments
from wallet.jobs import run_due_jobs

HOLDS = 50
PEOPLE = 5


async def _outcome(call):
    try:
        return await call
    except AppError as exc:
        return exc.code


async def test_50_concurrent_captures_and_voids_keep_the_ledger_zero_sum(gateway):
    _, people, cid = await setup(gateway, PEOPLE, ["escrow"])
    wallet, db = gateway.app[WALLET], gateway.app[DATABASE].db
    for person in people:
        await topup(person, 100_000)
    rng = random.Random(14)
    amounts = [rng.randint(100, 5000) for _ in range(HOLDS)]
    orders = []
    for i, amount in enumerate(amounts):
        person = people[i % PEOPLE]
        asked = await payments.do_request(
            wallet,
            app_id="escrow",
            app_name="Escrow",
            user_id=person.user_id,
            app_user_id=f"u-test-{i % PEOPLE}",
            conversation_id=cid,
            params={
                "amount": amount,
                "currency": "USD",
                "description": f"seat {i}",
                "order_ref": f"seat-{i}",
                "capture": False,
            },
        )
        orders.append((person, asked["payment_id"], amount))
    acks = await asyncio.gather(
        *(p.socket.call("payment.confirm", {"payment_id": pid}) for p, pid, _ in orders)
    )
    assert all(a["ok"] and a["payment"]["status"] == "authorized" for a in acks), acks
    held = sum(amounts)
    before = await check_ledger(db)
    assert sum(v for k, v in before.items() if k.startswith("hold:payment:")) == held

    # Every hold: a capture of part of it, a void, and (for a third) the expiry job, at once.
    captures = [rng.randint(1, amount) for amount in amounts]
    expired = {pid for i, (_, pid, _) in enumerate(orders) if i % 3 == 0}
    await db.payment_orders.update_many(
        {"_id": {"$in": list(expired)}}, {"$set": {"hold_expires_at": 1}}
    )
    calls = []
    for (_, pid, _), capture in zip(orders, captures, strict=True):
        calls.append(_outcome(holds.do_capture(wallet, "escrow", pid, capture)))
        calls.append(_outcome(holds.do_void(wallet, "escrow", pid)))
    calls.append(run_due_jobs(wallet))
    calls.append(run_due_jobs(wallet))
    results = await asyncio.gather(*calls)
    pairs = [results[i : i + 2] for i in range(0, 2 * HOLDS, 2)]

    captured = released = 0
    for (_, pid, amount), capture, (cap, void) in zip(orders, captures, pairs, strict=True):
        order = await db.payment_orders.find_one({"_id": pid})
        if order["status"] == "paid":  # the capture won: the void lost
            assert cap["captured"] == capture and void == "not_authorized", (cap, void)
            captured += capture
            released += amount - capture
        else:  # voided, by the app or the expiry job: the capture lost
            assert order["status"] == "voided", order
            assert cap == "not_authorized", cap
            assert void == "not_authorized" or void["released"] == amount, void
            released += amount
    balances = await check_ledger(db)  # zero-sum per transaction and currency, no negatives
    settlements = await db.ledger_txns.count_documents(
        {"kind": {"$in": [holds.CAPTURE_KIND, holds.VOID_KIND]}, "status": "posted"}
    )
    users = sum(v for k, v in balances.items() if k.startswith("user:"))
    in_holds = sum(v for k, v in balances.items() if k.startswith("hold:payment:"))
    merchant = balances.get("merchant:escrow:USD", 0)
    external = balances["external:dev_topup:USD"]
    print(
        f"\n{HOLDS} holds, {held} held; {2 * HOLDS} concurrent capture/void calls + 2 expiry "
        f"jobs: {settlements} settlements, captured {captured}, released {released}; users "
        f"{users} + merchant {merchant} + holds {in_holds} + external {external} = "
        f"{users + merchant + in_holds + external}"
    )
    assert settlements == HOLDS  # each hold settled exactly once
    assert in_holds == 0
    assert captured + released == held
    assert balances.get("merchant:escrow:USD", 0) == captured
    assert users == PEOPLE * 100_000 - captured
    assert sum([await balance(p) for p in people]) == users
    for person in people:
        await person.close()
