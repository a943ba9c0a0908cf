"""Stripe takes money back: ``charge.refunded`` and ``charge.dispute.created`` / ``closed``
webhooks, signed like Stripe signs them, debit the user who was credited — once, whatever the
order, duplication or concurrency of the deliveries — and an account they take below zero is
flagged, refuses outgoing money, and shows in the admins' reconciliation."""

# ruff: noqa: F811  (the Stripe fixtures are imported from test_stripe and named as parameters)
from __future__ import annotations

import asyncio
import json
import logging
import random

from tests.helpers import ApiClient
from tests.wallet.fake_stripe import event, signed_delivery
from tests.wallet.test_stripe import (  # noqa: F401  (fixtures)
    TOPUPS,
    WEBHOOK,
    WEBHOOK_SECRET,
    api,
    balance,
    create,
    deliver,
    fake_stripe,
    user,
)
from tests.wallet.wallet_helpers import check_ledger, new_key

RECONCILIATION = "/api/v1/admin/wallet/reconciliation"


async def _paid_topup(api, fake_stripe, amount: int, currency: str = "USD") -> dict:
    topup = await create(api, amount, currency)
    status, _ = await deliver(api, fake_stripe.succeed(topup["payment_intent_id"]))
    assert status == 200
    return topup


async def _entries(api, kind: str) -> list[int]:
    status, body = await api.get("/api/v1/wallet/transactions")
    assert status == 200, body
    return sorted(t["amount"] for t in body["transactions"] if t["kind"] == kind)


async def _wallet_row(api, currency: str = "USD") -> dict:
    status, body = await api.get("/api/v1/wallet")
    assert status == 200, body
    return next(b for b in body["balances"] if b["currency"] == currency)


async def _admin(api, mongo_db) -> ApiClient:
    admin = ApiClient(api.base_url)
    signed = await admin.signup()
    await mongo_db.users.update_one({"_id": signed["user"]["id"]}, {"$set": {"role": "admin"}})
    return admin


async def test_partial_then_full_refund_debits_the_cumulative_amount_once(
    api, user, fake_stripe, mongo_db
):
    topup = await _paid_topup(api, fake_stripe, 1000)
    intent = topup["payment_intent_id"]
    partial = fake_stripe.refund(intent, 300)
    assert partial["data"]["object"]["amount_refunded"] == 300
    for _ in range(2):  # Stripe redelivers
        status, body = await deliver(api, partial)
        assert status == 200 and body == {"received": True}
    assert await balance(api) == 700
    full = fake_stripe.refund(intent)  # the rest: amount_refunded is now 1000
    assert full["data"]["object"]["amount_refunded"] == 1000
    status, _ = await deliver(api, full)
    assert status == 200 and await balance(api) == 0
    # Late and repeated deliveries, and the same state as another event id: nothing more.
    for again in (partial, full, {**full, "id": "evt_same_state"}):
        status, _ = await deliver(api, again)
        assert status == 200
    assert await balance(api) == 0
    assert await _entries(api, "stripe_refund") == [-700, -300]
    status, body = await api.get(f"{TOPUPS}/{topup['id']}")
    assert body["topup"]["refunded"] == 1000 and body["topup"]["status"] == "succeeded"
    assert (await _wallet_row(api))["flag"] is None
    balances = await check_ledger(mongo_db)
    assert balances["external:stripe:USD"] == 0  # what came in by card went back out


async def test_concurrent_out_of_order_refund_deliveries_debit_the_largest_total(
    api, user, fake_stripe, mongo_db
):
    topup = await _paid_topup(api, fake_stripe, 1000)
    steps = [fake_stripe.refund(topup["payment_intent_id"], 250) for _ in range(4)]
    deliveries = [step for step in steps for _ in range(4)]
    random.Random(7).shuffle(deliveries)
    results = await asyncio.gather(*(deliver(api, d) for d in deliveries))
    assert {status for status, _ in results} == {200}, results
    assert await balance(api) == 0
    assert sum(await _entries(api, "stripe_refund")) == -1000
    await check_ledger(mongo_db)


async def test_refund_of_money_already_spent_goes_negative_flags_and_blocks_outgoing(
    api, user, fake_stripe, mongo_db
):
    friend = ApiClient(api.base_url)
    friend_id = (await friend.signup())["user"]["id"]
    status, body = await api.post(
        "/api/v1/conversations", json={"type": "group", "title": "Pay", "member_ids": [friend_id]}
    )
    assert status == 201, body
    chat = body["conversation"]["id"]

    async def send(amount: int):
        return await api.post(
            "/api/v1/wallet/transfers",
            json={"to_user_id": friend_id, "amount": amount, "currency": "USD",
                  "conversation_id": chat, "idempotency_key": new_key("t")},
        )  # fmt: skip

    topup = await _paid_topup(api, fake_stripe, 1000)
    status, _ = await send(800)
    assert status == 201
    # The card payment is refunded in full: 1000 is taken back, 800 of it already spent.
    status, _ = await deliver(api, fake_stripe.refund(topup["payment_intent_id"]))
    assert status == 200
    row = await _wallet_row(api)
    assert (row["amount"], row["flag"]) == (-800, "negative_balance")
    # Outgoing money is refused with a clear code, and nothing moves.
    status, body = await send(1)
    assert status == 402 and body["error"]["code"] == "negative_balance", body
    assert "below zero" in body["error"]["message"]
    status, body = await api.post(
        "/api/v1/wallet/red-packets",
        json={"conversation_id": chat, "total": 2, "count": 1, "currency": "USD",
              "idempotency_key": new_key("rp")},
    )  # fmt: skip
    assert status == 402 and body["error"]["code"] == "negative_balance", body
    assert await balance(api) == -800

    admin = await _admin(api, mongo_db)
    try:
        status, report = await admin.get(RECONCILIATION)
        assert status == 200, report
        assert report["balanced"] is True, report
        [usd] = [r for r in report["currencies"] if r["currency"] == "USD"]
        assert (usd["card_refunds"], usd["card_disputes"], usd["card_disputes_won"]) == (1000, 0, 0)
        assert (usd["negative_accounts"], usd["negative_total"]) == (1, -800)
        [negative] = report["negative_accounts"]
        assert negative["user_id"] == user["id"] and negative["amount"] == -800
        assert negative["flag"] == "negative_balance" and negative["flagged_at"]

        # Topping up covers the debt; the flag stays until the balance is back at zero.
        for amount, flag in ((500, "negative_balance"), (400, None)):
            status, _ = await api.post(
                "/api/v1/wallet/dev-topup", json={"amount": amount, "currency": "USD"}
            )
            assert status == 200
            assert (await _wallet_row(api))["flag"] == flag
        assert await balance(api) == 100
        status, _ = await send(50)
        assert status == 201
        status, report = await admin.get(RECONCILIATION)
        assert report["negative_accounts"] == [] and report["balanced"] is True
    finally:
        await admin.close()
        await friend.close()
    await check_ledger(mongo_db)


async def test_disputes_debit_once_lost_stays_debited_won_is_credited_back(
    api, user, fake_stripe, mongo_db
):
    lost_topup = await _paid_topup(api, fake_stripe, 600)
    won_topup = await _paid_topup(api, fake_stripe, 400)
    assert await balance(api) == 1000

    lost = fake_stripe.dispute(lost_topup["payment_intent_id"])
    for _ in range(2):
        status, _ = await deliver(api, lost)
        assert status == 200
    assert await balance(api) == 400
    dispute_id = lost["data"]["object"]["id"]
    for _ in range(2):
        status, _ = await deliver(api, fake_stripe.close_dispute(dispute_id, "lost"))
        assert status == 200
    assert await balance(api) == 400

    won = fake_stripe.dispute(won_topup["payment_intent_id"], 300)
    status, _ = await deliver(api, won)
    assert status == 200 and await balance(api) == 100
    closed = fake_stripe.close_dispute(won["data"]["object"]["id"], "won")
    for again in (closed, closed, won):
        status, _ = await deliver(api, again)
        assert status == 200
    assert await balance(api) == 400
    assert await _entries(api, "stripe_dispute") == [-600, -300]
    assert await _entries(api, "stripe_dispute_won") == [300]

    admin = await _admin(api, mongo_db)
    try:
        status, report = await admin.get(RECONCILIATION)
        [usd] = [r for r in report["currencies"] if r["currency"] == "USD"]
        got = (usd["card_disputes"], usd["card_disputes_won"], usd["card_refunds"])
        assert got == (900, 300, 0), usd
        assert report["balanced"] is True and report["negative_accounts"] == []
    finally:
        await admin.close()
    await check_ledger(mongo_db)


async def test_dispute_events_out_of_order_inquiries_and_charge_only_disputes(
    api, user, fake_stripe, mongo_db
):
    topup = await _paid_topup(api, fake_stripe, 500)
    intent = topup["payment_intent_id"]
    # "closed: won" arrives before "created": debited and credited back, net nothing.
    created = fake_stripe.dispute(intent, 200)
    closed = fake_stripe.close_dispute(created["data"]["object"]["id"], "won")
    for delivery in (closed, created, closed):
        status, _ = await deliver(api, delivery)
        assert status == 200
    assert await balance(api) == 500
    # An inquiry takes no money, opening or closing.
    inquiry = fake_stripe.dispute(intent, 100, status="warning_needs_response")
    status, _ = await deliver(api, inquiry)
    assert status == 200 and await balance(api) == 500
    status, _ = await deliver(
        api, fake_stripe.close_dispute(inquiry["data"]["object"]["id"], "warning_closed")
    )
    assert status == 200 and await balance(api) == 500
    # A dispute that names only the charge (older API versions) is found by it; "lost" without
    # its "created" ever arriving still debits it.
    orphan = fake_stripe.dispute(intent, 150)
    lost = fake_stripe.close_dispute(orphan["data"]["object"]["id"], "lost")
    lost["data"]["object"]["payment_intent"] = None
    status, _ = await deliver(api, lost)
    assert status == 200 and await balance(api) == 350
    await check_ledger(mongo_db)


async def test_bad_signatures_and_mismatched_amounts_change_nothing(
    api, user, fake_stripe, mongo_db
):
    topup = await _paid_topup(api, fake_stripe, 1000)
    refund = fake_stripe.refund(topup["payment_intent_id"], 100)
    payload, headers = signed_delivery(refund, WEBHOOK_SECRET)
    tampered = payload.replace(b'"amount_refunded": 100', b'"amount_refunded": 900')
    assert tampered != payload
    status, body = await api.post(WEBHOOK, data=tampered, headers=headers)
    assert status == 400 and body["error"]["code"] == "invalid_signature"
    status, body = await deliver(api, refund, secret="whsec_someone_else")
    assert status == 400 and body["error"]["code"] == "invalid_signature"
    dispute = fake_stripe.dispute(topup["payment_intent_id"])
    status, body = await deliver(api, dispute, secret="whsec_someone_else")
    assert status == 400 and body["error"]["code"] == "invalid_signature"

    # Signed, but more than was paid, or in another currency: refused, nothing moves.
    too_much = json.loads(json.dumps(refund))
    too_much["data"]["object"]["amount_refunded"] = 1001
    other_currency = json.loads(json.dumps(refund))
    other_currency["data"]["object"]["currency"] = "eur"
    not_a_number = json.loads(json.dumps(refund))
    not_a_number["data"]["object"]["amount_refunded"] = "100"
    for bad in (too_much, other_currency, not_a_number):
        status, body = await deliver(api, bad)
        assert status == 400 and body["error"]["code"] == "amount_mismatch", body
    # A charge event without a charge in it.
    status, body = await deliver(api, event("charge.refunded", {"object": "charge"}))
    assert status == 400 and body["error"]["code"] == "invalid_payload"
    assert await balance(api) == 1000
    assert await _entries(api, "stripe_refund") == []
    assert await _entries(api, "stripe_dispute") == []
    # The genuine delivery still works.
    status, _ = await deliver(api, refund)
    assert status == 200 and await balance(api) == 900
    await check_ledger(mongo_db)


async def test_unknown_charges_are_acknowledged_and_logged(api, user, fake_stripe, caplog):
    await _paid_topup(api, fake_stripe, 300)
    foreign_charge = {
        "id": "ch_not_ours", "object": "charge", "amount": 300, "amount_refunded": 300,
        "currency": "usd", "payment_intent": "pi_not_ours", "refunded": True,
    }  # fmt: skip
    foreign_dispute = {
        "id": "dp_not_ours", "object": "dispute", "amount": 300, "currency": "usd",
        "charge": "ch_not_ours", "payment_intent": "pi_not_ours", "status": "needs_response",
    }  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="wallet.actions.topups"):
        for kind, obj in (
            ("charge.refunded", foreign_charge),
            ("charge.dispute.created", foreign_dispute),
            ("charge.dispute.closed", {**foreign_dispute, "status": "lost"}),
        ):
            status, body = await deliver(api, event(kind, obj))
            assert status == 200 and body == {"received": True}
    logged = [r.getMessage() for r in caplog.records if "pi_not_ours" in r.getMessage()]
    assert len(logged) == 3 and all("ch_not_ours" in m for m in logged), logged
    assert await balance(api) == 300
