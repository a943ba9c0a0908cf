"""Payments for mini-programs, end to end: a real sandboxed app asks, the user confirms or
cancels over Socket.IO, the wallet moves money, the app gets a signed event it can verify."""

from __future__ import annotations

import asyncio
import json

from gateway.keys import DATABASE
from sdk.signing import sign_event, verify_event
from tests.helpers import eventually
from tests.miniapps.test_capabilities import command, events_of, setup, texts_from
from tests.wallet.wallet_helpers import balance, check_ledger, topup


def _requested(person, cid):
    got = texts_from(person, cid, "shopper: requested ")
    return [json.loads(t.removeprefix("shopper: requested ")) for t in got]


async def test_request_confirm_pays_the_app_and_it_verifies_the_event(gateway):
    _, (ann, bea), cid = await setup(gateway, 2, ["shopper"])
    await topup(ann, 5000)
    await command(ann, cid, "/buy order-1 1250")
    asks = await eventually(lambda: events_of(ann, "payment.confirm_required"), what="ask")
    payment = asks[0]["payment"]
    assert (payment["amount"], payment["currency"], payment["app_name"]) == (1250, "USD", "Shopper")
    assert payment["description"] == "Order order-1" and payment["status"] == "pending"
    assert not events_of(bea, "payment.confirm_required")  # only the payer is asked
    result = (await eventually(lambda: _requested(ann, cid)))[0]
    assert result == {"payment_id": payment["id"], "status": "pending"}
    assert await balance(ann) == 5000  # nothing moves before the user confirms
    ack = await ann.socket.call("payment.confirm", {"payment_id": payment["id"]})
    assert ack["ok"] and ack["payment"]["status"] == "paid", ack
    assert await balance(ann) == 3750
    got = await eventually(lambda: texts_from(bea, cid, "shopper: paid"), what="app told")
    assert got == [f"shopper: paid order-1 1250 {payment['id']}"]
    # Confirming again changes nothing; another user cannot confirm it.
    ack = await ann.socket.call("payment.confirm", {"payment_id": payment["id"]})
    assert ack["ok"] and await balance(ann) == 3750
    ack = await bea.socket.call("payment.confirm", {"payment_id": payment["id"]})
    assert not ack["ok"] and ack["error"]["code"] == "payment_not_found"
    # The same order_ref asked again: the same payment, already paid, no new question.
    await command(ann, cid, "/buy order-1 1250")
    await eventually(lambda: len(_requested(ann, cid)) == 2)
    assert _requested(ann, cid)[1] == {"payment_id": payment["id"], "status": "paid"}
    assert len(events_of(ann, "payment.confirm_required")) == 1
    # ...with another amount it is refused.
    await command(ann, cid, "/buy order-1 99")
    await eventually(lambda: len(_requested(ann, cid)) == 3)
    assert _requested(ann, cid)[2] == "order_ref_reused"
    db = gateway.app[DATABASE].db
    balances = await check_ledger(db)
    assert balances["merchant:shopper:USD"] == 1250
    await ann.close()
    await bea.close()


async def test_cancel_moves_nothing_and_the_app_hears_it(gateway):
    _, (ann,), cid = await setup(gateway, 1, ["shopper"])
    await topup(ann, 100)
    await command(ann, cid, "/buy order-2 60")
    payment = (await eventually(lambda: events_of(ann, "payment.confirm_required")))[0]["payment"]
    ack = await ann.socket.call("payment.cancel", {"payment_id": payment["id"]})
    assert ack["ok"] and ack["payment"]["status"] == "cancelled"
    got = await eventually(lambda: texts_from(ann, cid, "shopper: failed"))
    assert got == ["shopper: failed order-2 cancelled"]
    ack = await ann.socket.call("payment.confirm", {"payment_id": payment["id"]})
    assert not ack["ok"] and ack["error"]["code"] == "payment_closed"
    assert await balance(ann) == 100
    await check_ledger(gateway.app[DATABASE].db)
    await ann.close()


async def test_insufficient_funds_keeps_the_request_open(gateway):
    _, (ann,), cid = await setup(gateway, 1, ["shopper"])
    await command(ann, cid, "/buy order-3 500")
    payment = (await eventually(lambda: events_of(ann, "payment.confirm_required")))[0]["payment"]
    ack = await ann.socket.call("payment.confirm", {"payment_id": payment["id"]})
    assert not ack["ok"] and ack["error"]["code"] == "insufficient_funds"
    await topup(ann, 500)
    ack = await ann.socket.call("payment.confirm", {"payment_id": payment["id"]})
    assert ack["ok"] and ack["payment"]["status"] == "paid"
    assert await balance(ann) == 0
    await eventually(lambda: texts_from(ann, cid, "shopper: paid"))
    await ann.close()


async def test_refund_limits(gateway):
    _, (ann,), cid = await setup(gateway, 1, ["shopper"])
    await topup(ann, 1000)
    await command(ann, cid, "/buy order-4 1000")
    payment = (await eventually(lambda: events_of(ann, "payment.confirm_required")))[0]["payment"]
    # Refunding before payment is refused.
    await command(ann, cid, f"/refund {payment['id']} 10")
    refunds = lambda: texts_from(ann, cid, "shopper: refund ")  # noqa: E731
    await eventually(lambda: len(refunds()) == 1)
    assert refunds()[0] == 'shopper: refund "not_paid"'
    assert (await ann.socket.call("payment.confirm", {"payment_id": payment["id"]}))["ok"]
    for args, want in [
        ("400 r1", {"refund_id": None, "refunded_total": 400}),
        ("400 r1", {"refund_id": None, "refunded_total": 400}),  # a retry refunds once
        ("300 r1", "invalid_params"),
        ("601 r2", "refund_exceeds_payment"),
        ("600 r3", {"refund_id": None, "refunded_total": 1000}),
        ("1 r4", "refund_exceeds_payment"),
        ("0 r5", "invalid_amount"),
    ]:
        count = len(refunds())
        await command(ann, cid, f"/refund {payment['id']} {args}")
        await eventually(lambda count=count: len(refunds()) == count + 1)
        got = json.loads(refunds()[-1].removeprefix("shopper: refund "))
        if isinstance(want, dict):
            assert got["refunded_total"] == want["refunded_total"], (args, got)
        else:
            assert got == want, (args, got)
    await command(ann, cid, "/refund nope 1")
    await eventually(lambda: refunds()[-1] == 'shopper: refund "not_found"')
    assert await balance(ann) == 1000
    balances = await check_ledger(gateway.app[DATABASE].db)
    assert balances["merchant:shopper:USD"] == 0
    await ann.close()


async def test_app_cannot_forge_a_payment_or_read_a_balance(gateway):
    host, (ann,), cid = await setup(gateway, 1, ["shopper"])
    await topup(ann, 300)
    await command(ann, cid, "/forge")
    await eventually(lambda: texts_from(ann, cid, "shopper: forge"))
    assert texts_from(ann, cid, "shopper: forge") == ["shopper: forge permission_denied"]
    await command(ann, cid, "/peek")
    await eventually(lambda: texts_from(ann, cid, "shopper: peek"))
    assert texts_from(ann, cid, "shopper: peek") == ["shopper: peek unknown_method"]
    # An event signed with anything but the app's secret is refused by the app.
    entry = host.apps["shopper"]
    payload = {"payment_id": "p", "order_ref": "o", "amount": 1, "currency": "USD",
               "user_id": "u", "status": "succeeded", "at": 1}  # fmt: skip
    payload["signature"] = sign_event("not-the-secret", payload)
    event = {"name": "payment.succeeded", "payload": payload}
    host.invoker.invoke_later(entry, ann.user_id, cid, "event", event, host_event=True)
    await eventually(lambda: texts_from(ann, cid, "shopper: forged"))
    # The real secret verifies, and any change breaks it.
    secret = await host.remote.launch_secret("shopper")
    payload["signature"] = sign_event(secret, payload)
    assert verify_event(secret, payload)
    assert not verify_event(secret, {**payload, "amount": 2})
    assert await balance(ann) == 300  # nothing moved, the ledger has no payment
    assert await gateway.app[DATABASE].db.ledger_txns.count_documents({"kind": "payment"}) == 0
    await ann.close()


async def test_payment_request_bad_input(gateway):
    _, (ann,), cid = await setup(gateway, 1, ["shopper"])
    cases = [
        ("o5 0", "invalid_params"),  # the capability contract: amount is an integer >= 1
        ("o6 -1", "invalid_params"),
        ("o7 1000000000000", "amount_too_large"),
        ("bad/ref 10", "invalid_params"),
    ]
    for args, code in cases:
        count = len(_requested(ann, cid))
        await command(ann, cid, f"/buy {args}")
        await eventually(lambda count=count: len(_requested(ann, cid)) == count + 1)
        assert _requested(ann, cid)[-1] == code, args
    assert not events_of(ann, "payment.confirm_required")
    for event in ("payment.confirm", "payment.cancel"):
        for payload, code in [
            ({"payment_id": "x" * 65}, "invalid_field"),
            ({"payment_id": ""}, "invalid_field"),
            ({}, "missing_field"),
            ({"payment_id": 7}, "wrong_type"),
            ({"payment_id": "p", "extra": 1}, "unknown_field"),
            ("not an object", "wrong_type"),
            ({"payment_id": "unknown"}, "payment_not_found"),
        ]:
            ack = await ann.socket.call(event, payload)
            assert not ack["ok"] and ack["error"]["code"] == code, (event, payload, ack)
            assert ack["error"]["message"]
    assert await gateway.app[DATABASE].db.payment_orders.count_documents({}) == 0
    await asyncio.sleep(0)
    await ann.close()


async def test_outcome_decided_elsewhere_reaches_the_app_through_the_outbox(gateway):
    """A Celery worker settles payments but hosts no apps: it leaves the event in the order's
    outbox and a gateway delivers it."""
    from gateway.keys import CONFIG, MESSAGING
    from wallet.actions import payments
    from wallet.context import Wallet

    _, (ann,), cid = await setup(gateway, 1, ["shopper"])
    await command(ann, cid, "/buy order-9 10")
    payment = (await eventually(lambda: events_of(ann, "payment.confirm_required")))[0]["payment"]
    worker_wallet = Wallet.build(gateway.app[CONFIG], gateway.app[MESSAGING])
    assert worker_wallet.notify_app is None
    await payments.do_cancel(worker_wallet, ann.user_id, payment["id"])
    got = await eventually(lambda: texts_from(ann, cid, "shopper: failed"), what="outbox")
    assert got == ["shopper: failed order-9 cancelled"]
    order = await gateway.app[DATABASE].db.payment_orders.find_one({"_id": payment["id"]})
    assert "outbox" not in order
    await ann.close()


async def test_unanswered_request_expires_and_the_app_hears_it(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    from gateway.app import create_app
    from tests.conftest import make_config

    config = make_config(
        mongo_url, mongo_db_name, tmp_path / "var", payment_expiry=1, jobs_interval=0.1
    )
    server = await aiohttp_server(create_app(config))
    _, (ann,), cid = await setup(server, 1, ["shopper"])
    await topup(ann, 100)
    await command(ann, cid, "/buy order-10 10")
    payment = (await eventually(lambda: events_of(ann, "payment.confirm_required")))[0]["payment"]
    got = await eventually(lambda: texts_from(ann, cid, "shopper: failed"), what="expiry")
    assert got == ["shopper: failed order-10 expired"]
    updated = await eventually(lambda: events_of(ann, "payment.updated"))
    assert updated[-1]["payment"]["status"] == "expired"
    ack = await ann.socket.call("payment.confirm", {"payment_id": payment["id"]})
    assert not ack["ok"] and ack["error"]["code"] == "payment_closed"
    assert await balance(ann) == 100
    await ann.close()
