"""Confirming a mini-program payment is fenced: a confirmation that stalls past its lease is taken
over (by the user's next confirm or by the job loop), and when the stalled one wakes up it moves
no money and changes nothing — whatever happened in between (paid, failed for funds, cancelled).

The orders are real (a sandboxed app asks through ``/buy``); the steps of a confirmation are the
wallet's own action functions, run against the real database. "Stalled" is an attempt that has
taken the order (``PaymentOrders.claim``, the first half of ``do_confirm``) and has not yet run
its second half (``payments.charge``); its lease running out is written to the order directly,
as time passing would.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.keys import DATABASE, WALLET
from storage.errors import AppError
from storage.mongo import now_ms
from tests.helpers import eventually
from tests.miniapps.test_capabilities import command, events_of, setup, texts_from
from tests.wallet.wallet_helpers import balance, check_ledger, topup
from wallet.actions import payments
from wallet.ledger import FUNDS_ERRORS, LEASE_MS, Leg
from wallet.store.accounts import user_account


@pytest.fixture
async def server(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    """A gateway whose job loop stays out of the way: the tests run its steps themselves."""
    from gateway.app import create_app
    from tests.conftest import make_config

    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", jobs_interval=3600)
    return await aiohttp_server(create_app(config))


async def _order(server, amount: int, funds: int, ref: str):
    _, (ann,), cid = await setup(server, 1, ["shopper"])
    if funds:
        await topup(ann, funds)
    await command(ann, cid, f"/buy {ref} {amount}")
    asks = await eventually(lambda: events_of(ann, "payment.confirm_required"), what="ask")
    return ann, cid, asks[0]["payment"]["id"]


async def _stall(wallet, payment_id: str) -> dict:
    """An attempt takes the order and stalls; its lease runs out."""
    now = now_ms()
    stalled = await wallet.payments.claim(payment_id, now, now + LEASE_MS)
    assert stalled is not None and stalled["status"] == "confirming"
    await wallet.payments.collection.update_one(
        {"_id": payment_id}, {"$set": {"lease_until": now_ms() - 1}}
    )
    return stalled


async def _payments_posted(db, payment_id: str) -> list[dict]:
    txns = await db.ledger_txns.find({"kind": "payment"}).to_list(None)
    return [t for t in txns if t["memo"]["payment_id"] == payment_id and t["status"] == "posted"]


async def test_stalled_confirmation_wakes_after_a_takeover_and_charges_nothing_more(server):
    wallet, db = server.app[WALLET], server.app[DATABASE].db
    ann, cid, payment_id = await _order(server, 600, 1000, "fence-1")
    stalled = await _stall(wallet, payment_id)

    # The user confirms again: the expired lease lets this attempt take over, and it pays.
    view = await payments.do_confirm(wallet, ann.user_id, payment_id)
    assert view["status"] == "paid"
    assert await balance(ann) == 400

    # The stalled attempt wakes up and finishes its work: the movement is already there.
    resumed = await payments.charge(wallet, stalled)
    assert resumed["status"] == "paid"
    assert await balance(ann) == 400
    assert len(await _payments_posted(db, payment_id)) == 1
    order = await db.payment_orders.find_one({"_id": payment_id})
    assert order["status"] == "paid" and order["attempt_no"] == 2 and order["charge_no"] == 0
    balances = await check_ledger(db)
    assert balances["merchant:shopper:USD"] == 600
    got = await eventually(lambda: texts_from(ann, cid, "shopper: paid"), what="app told")
    assert got == [f"shopper: paid fence-1 600 {payment_id}"]
    await ann.close()


async def test_stalled_confirmation_cannot_pay_a_request_cancelled_meanwhile(server):
    wallet, db = server.app[WALLET], server.app[DATABASE].db
    ann, _cid, payment_id = await _order(server, 600, 100, "fence-2")
    stalled = await _stall(wallet, payment_id)
    # The takeover finds the funds short: nothing moves, the request is open again...
    with pytest.raises(AppError) as raised:
        await payments.do_confirm(wallet, ann.user_id, payment_id)
    assert raised.value.code == "insufficient_funds"
    # ...so the user cancels it, and later tops up.
    assert (await payments.do_cancel(wallet, ann.user_id, payment_id))["status"] == "cancelled"
    await topup(ann, 1000)

    # Now the stalled attempt wakes up: money is there, but its charge is spent.
    with pytest.raises(AppError) as raised:
        await payments.charge(wallet, stalled)
    assert raised.value.code in FUNDS_ERRORS
    assert await balance(ann) == 1100
    assert await _payments_posted(db, payment_id) == []
    order = await db.payment_orders.find_one({"_id": payment_id})
    assert order["status"] == "cancelled"
    balances = await check_ledger(db)
    assert balances.get("merchant:shopper:USD", 0) == 0
    await ann.close()


async def test_confirm_after_a_top_up_works_even_when_the_failed_attempt_stalled(server):
    wallet, db = server.app[WALLET], server.app[DATABASE].db
    ann, _cid, payment_id = await _order(server, 600, 100, "fence-3")
    stalled = await _stall(wallet, payment_id)
    # The stalled attempt's own charge failed for want of funds, and its process died before it
    # could reopen the order (charge()'s ledger posting, alone).
    with pytest.raises(AppError) as raised:
        await wallet.ledger.post(
            f"payment:{payment_id}:0",
            "payment",
            "USD",
            [Leg(user_account(ann.user_id, "USD"), -600), Leg("merchant:shopper:USD", 600)],
            {"payment_id": payment_id, "attempt_no": stalled["attempt_no"], "charge_no": 0},
        )
    assert raised.value.code == "insufficient_funds"
    await topup(ann, 1000)

    # The user confirms again: the spent charge does not block this one.
    view = await payments.do_confirm(wallet, ann.user_id, payment_id)
    assert view["status"] == "paid"
    assert await balance(ann) == 500
    # The stalled attempt wakes up: it changes nothing.
    with pytest.raises(AppError):
        await payments.charge(wallet, stalled)
    assert await balance(ann) == 500
    assert len(await _payments_posted(db, payment_id)) == 1
    order = await db.payment_orders.find_one({"_id": payment_id})
    assert order["status"] == "paid" and order["charge_no"] == 1
    await check_ledger(db)
    await ann.close()


async def test_the_job_loop_finishes_a_stalled_confirmation_once(server):
    wallet, db = server.app[WALLET], server.app[DATABASE].db
    ann, cid, payment_id = await _order(server, 250, 1000, "fence-4")
    stalled = await _stall(wallet, payment_id)
    assert await payments.do_expire_due(wallet) == 1  # the user did confirm: the job pays
    assert (await payments.get_payment(wallet, ann.user_id, payment_id))["status"] == "paid"
    assert await payments.do_expire_due(wallet) == 0
    assert (await payments.charge(wallet, stalled))["status"] == "paid"
    assert await balance(ann) == 750
    assert len(await _payments_posted(db, payment_id)) == 1
    await eventually(lambda: texts_from(ann, cid, "shopper: paid"), what="app told")
    await check_ledger(db)
    await ann.close()


async def test_many_concurrent_confirms_of_one_order_pay_once(server):
    db = server.app[DATABASE].db
    ann, _cid, payment_id = await _order(server, 300, 1000, "fence-5")
    results = await asyncio.gather(
        *(ann.api.post(f"/api/v1/wallet/payments/{payment_id}/confirm") for _ in range(30)),
        *(ann.socket.call("payment.confirm", {"payment_id": payment_id}) for _ in range(10)),
    )
    rest, acks = results[:30], results[30:]
    for status, body in rest:
        assert (status, body.get("payment", {}).get("status")) == (200, "paid") or (
            status == 409 and body["error"]["code"] == "payment_in_progress"
        ), (status, body)
    for ack in acks:
        assert ack["ok"] or ack["error"]["code"] == "payment_in_progress", ack
    assert any(status == 200 for status, _ in rest) or any(ack["ok"] for ack in acks)
    assert await balance(ann) == 700
    assert len(await _payments_posted(db, payment_id)) == 1
    await check_ledger(db)
    await ann.close()


async def test_many_concurrent_takeovers_of_a_stalled_confirmation_pay_once(server):
    wallet, db = server.app[WALLET], server.app[DATABASE].db
    ann, _cid, payment_id = await _order(server, 300, 1000, "fence-6")
    stalled = await _stall(wallet, payment_id)

    async def confirm():
        try:
            return (await payments.do_confirm(wallet, ann.user_id, payment_id))["status"]
        except AppError as exc:
            return exc.code

    outcomes = await asyncio.gather(
        *(confirm() for _ in range(20)),
        payments.charge(wallet, stalled),
        payments.do_expire_due(wallet),
        payments.charge(wallet, stalled),
    )
    assert set(outcomes[:20]) <= {"paid", "payment_in_progress"}, outcomes
    assert outcomes[20]["status"] == outcomes[22]["status"] == "paid"
    assert await balance(ann) == 700
    assert len(await _payments_posted(db, payment_id)) == 1
    order = await db.payment_orders.find_one({"_id": payment_id})
    assert order["status"] == "paid" and order["charge_no"] == 0
    await check_ledger(db)
    await ann.close()


async def test_claiming_one_order_never_takes_another(mongo_db):
    """``claim`` is conditional on its own order only: with another order open and a third
    stalled, claiming a settled order takes nothing (the embedded server once applied such a
    filter to the other orders: see the conformance tests' $or cases)."""
    from wallet.store.payment_orders import PaymentOrders

    orders = PaymentOrders(mongo_db)
    now = now_ms()
    await orders.add_order({"_id": "open", "status": "requested", "expires_at": now + 60_000})
    await orders.add_order({"_id": "stalled", "status": "confirming", "lease_until": now - 1})
    await orders.add_order({"_id": "paid", "status": "paid"})
    assert await orders.claim("paid", now, now + LEASE_MS) is None
    assert await orders.claim("paid", now, now + LEASE_MS, stalled_only=True) is None
    assert (await orders.get_order("open"))["status"] == "requested"
    assert (await orders.get_order("stalled"))["lease_until"] == now - 1
    claimed = await orders.claim("stalled", now, now + LEASE_MS, stalled_only=True)
    assert claimed["_id"] == "stalled" and claimed["lease_until"] == now + LEASE_MS
    assert (await orders.get_order("open"))["status"] == "requested"
