"""Service money in the simulator: holds (authorize, capture, void, expiry), payouts from the
merchant balance and the platform's fee — each happy path and each error code, through the
``escrow`` test app (``tests/miniapps/apps/escrow``), whose answers and verified payment events
it says in the chat as ``escrow: <what> <json>``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdk.simulator import HostRefused, Simulator

ESCROW = Path(__file__).resolve().parents[1] / "miniapps" / "apps" / "escrow"


def said(sim, chat, what):
    prefix = f"escrow: {what} "
    texts = [m["text"] for m in sim.messages(chat) if m["type"] == "text"]
    return [json.loads(t.removeprefix(prefix)) for t in texts if t.startswith(prefix)]


@pytest.fixture
def world():
    sim = Simulator(ESCROW)
    ann, bea = sim.user("ann"), sim.user("bea")
    chat = sim.conversation(members=[ann, bea])
    sim.set_balance(ann, "USD", 5000)
    return sim, ann, bea, chat


async def _authorized(sim, ann, chat, ref="trip-1", amount=3000) -> str:
    await sim.command(ann, chat, f"/hold {ref} {amount}")
    answer = said(sim, chat, "hold")[-1]
    assert answer["status"] == "pending"
    payload = await sim.confirm_payment(ann, answer["payment_id"])
    assert payload["status"] == "authorized" and payload["hold_expires_at"]
    return answer["payment_id"]


async def test_a_hold_is_authorized_then_partly_captured_the_rest_goes_back(world):
    sim, ann, _, chat = world
    payment_id = await _authorized(sim, ann, chat)
    assert sim.balance(ann, "USD") == 2000  # held, not yet anybody's
    assert said(sim, chat, "payment.authorized")[-1]["status"] == "authorized"
    assert sim.payments[payment_id]["status"] == "authorized"
    assert sim.merchant_balance("USD") == 0
    # Confirming again changes nothing.
    await sim.confirm_payment(ann, payment_id)
    assert sim.balance(ann, "USD") == 2000

    await sim.command(ann, chat, f"/capture {payment_id} 2500")
    assert said(sim, chat, "capture")[-1] == {
        "payment_id": payment_id,
        "status": "paid",
        "captured": 2500,
        "fee": 0,
        "released": 500,
    }
    assert sim.balance(ann, "USD") == 2500 and sim.merchant_balance("USD") == 2500
    # The event comes after the call, like the host's background delivery.
    assert not said(sim, chat, "payment.captured")
    delivered = await sim.deliver_payment_events()
    assert [p["status"] for p in delivered] == ["captured"]
    assert said(sim, chat, "payment.captured")[-1]["captured"] == 2500
    # A retry of the same capture answers the same; another amount is refused.
    await sim.command(ann, chat, f"/capture {payment_id} 2500")
    assert said(sim, chat, "capture")[-1]["captured"] == 2500
    await sim.command(ann, chat, f"/capture {payment_id} 100")
    assert said(sim, chat, "capture")[-1] == "not_authorized"
    # Captured: refundable up to what was captured, not the hold.
    await sim.command(ann, chat, f"/refund {payment_id} 2501 r1")
    assert said(sim, chat, "refund")[-1] == "refund_exceeds_payment"
    await sim.command(ann, chat, f"/refund {payment_id} 2500 r1")
    assert said(sim, chat, "refund")[-1]["refunded_total"] == 2500
    assert sim.balance(ann, "USD") == 5000 and sim.merchant_balance("USD") == 0


async def test_void_and_expiry_give_everything_back(world):
    sim, ann, _, chat = world
    first = await _authorized(sim, ann, chat, "trip-1", 1000)
    second = await _authorized(sim, ann, chat, "trip-2", 1500)
    assert sim.balance(ann, "USD") == 2500
    await sim.command(ann, chat, f"/void {first}")
    assert said(sim, chat, "void")[-1] == {
        "payment_id": first,
        "status": "voided",
        "released": 1000,
    }
    await sim.deliver_payment_events()
    assert said(sim, chat, "payment.voided")[-1]["reason"] == "voided"
    await sim.command(ann, chat, f"/void {first}")  # again: the same answer
    assert said(sim, chat, "void")[-1]["status"] == "voided"
    await sim.command(ann, chat, f"/capture {first}")
    assert said(sim, chat, "capture")[-1] == "not_authorized"

    payload = await sim.expire_hold(second)
    assert payload["status"] == "voided" and payload["reason"] == "expired"
    assert said(sim, chat, "payment.voided")[-1]["reason"] == "expired"
    assert sim.balance(ann, "USD") == 5000
    with pytest.raises(HostRefused) as refused:
        await sim.expire_hold(second)
    assert refused.value.code == "payment_closed"


async def test_capture_and_void_errors(world):
    sim, ann, _, chat = world
    await sim.command(ann, chat, "/capture pay-404")
    await sim.command(ann, chat, "/void pay-404")
    assert said(sim, chat, "capture") == ["not_found"] and said(sim, chat, "void") == ["not_found"]
    # Still pending (not yet confirmed): no hold to capture or void.
    await sim.command(ann, chat, "/hold trip-9 700")
    pending = said(sim, chat, "hold")[-1]["payment_id"]
    await sim.command(ann, chat, f"/capture {pending}")
    await sim.command(ann, chat, f"/void {pending}")
    assert said(sim, chat, "capture")[-1] == "not_authorized"
    assert said(sim, chat, "void")[-1] == "not_authorized"
    # A plain payment is no hold either.
    await sim.command(ann, chat, "/buy mug 300")
    paid = said(sim, chat, "buy")[-1]["payment_id"]
    await sim.confirm_payment(ann, paid)
    await sim.command(ann, chat, f"/void {paid}")
    assert said(sim, chat, "void")[-1] == "not_authorized"
    # More than held.
    held = await _authorized(sim, ann, chat, "trip-3", 400)
    await sim.command(ann, chat, f"/capture {held} 401")
    assert said(sim, chat, "capture")[-1] == "capture_exceeds_hold"
    # A hold and a payment may not share an order_ref.
    await sim.command(ann, chat, "/buy trip-3 400")
    assert said(sim, chat, "buy")[-1] == "order_ref_reused"


async def test_payouts_never_beyond_the_merchant_balance_and_once_per_ref(world):
    sim, ann, bea, chat = world
    await sim.command(bea, chat, "/me")
    bea_id = [m["text"] for m in sim.messages(chat)][-1].removeprefix("escrow: me ")
    bea_id = json.loads(bea_id)
    sim.set_balance(bea, "USD", 0)
    await sim.command(ann, chat, f"/payout {bea_id} 100 prize-1")
    assert said(sim, chat, "payout")[-1] == "insufficient_merchant_funds"
    await sim.command(ann, chat, "/buy mug 1000")
    await sim.confirm_payment(ann, said(sim, chat, "buy")[-1]["payment_id"])
    sim.set_fee("USD", basis_points=250, fixed=5)  # 2.5% + 5

    await sim.command(ann, chat, f"/payout {bea_id} 600 prize-1")
    first = said(sim, chat, "payout")[-1]
    assert first["status"] == "sent" and (first["amount"], first["fee"]) == (600, 20)
    assert sim.balance(bea, "USD") == 580 and sim.merchant_balance("USD") == 400
    await sim.command(ann, chat, f"/payout {bea_id} 600 prize-1")  # a retry: paid once
    assert said(sim, chat, "payout")[-1] == first and sim.balance(bea, "USD") == 580
    await sim.command(ann, chat, f"/payout {bea_id} 700 prize-1")
    assert said(sim, chat, "payout")[-1] == "payout_ref_reused"
    await sim.command(ann, chat, f"/payout {bea_id} 401 prize-2")
    assert said(sim, chat, "payout")[-1] == "insufficient_merchant_funds"
    await sim.command(ann, chat, "/payout u-nobody 1 prize-3")
    assert said(sim, chat, "payout")[-1] == "not_found"
    assert sim.payouts["prize-1"]["user_id"] == bea_id


async def test_a_captures_fee_goes_to_the_platform(world):
    sim, ann, _, chat = world
    sim.set_fee("USD", basis_points=1000)  # 10%
    payment_id = await _authorized(sim, ann, chat, "trip-5", 2000)
    await sim.command(ann, chat, f"/capture {payment_id}")
    answer = said(sim, chat, "capture")[-1]
    assert (answer["captured"], answer["fee"], answer["released"]) == (2000, 200, 0)
    assert sim.merchant_balance("USD") == 1800


async def _app_id(sim, chat, user):
    await sim.command(user, chat, "/me")
    return json.loads([m["text"] for m in sim.messages(chat)][-1].removeprefix("escrow: me "))


async def test_a_transfer_request_is_paid_person_to_person(world):
    sim, ann, bea, chat = world
    bea_id, ann_id = await _app_id(sim, chat, bea), await _app_id(sim, chat, ann)
    sim.set_balance(bea, "USD", 1000)
    sim.set_balance(ann, "USD", 0)
    await sim.command(ann, chat, f"/split {bea_id} 300 dinner-1 your half")
    asked = said(sim, chat, "split")[-1]
    assert asked["status"] == "pending"
    assert sim.payments[asked["payment_id"]]["kind"] == "transfer_request"
    with pytest.raises(HostRefused):  # only the payer answers it
        await sim.confirm_payment(ann, asked["payment_id"])
    payload = await sim.confirm_payment(bea, asked["payment_id"])
    assert (payload["status"], payload["user_id"], payload["to_user_id"]) == (
        "paid",
        bea_id,
        ann_id,
    )
    assert said(sim, chat, "transfer_request.paid")[-1]["transfer_ref"] == "dinner-1"
    assert sim.balance(bea, "USD") == 700 and sim.balance(ann, "USD") == 300
    assert sim.merchant_balance("USD") == 0  # the app never held it
    # The same ref again: the same request; with another amount: refused.
    await sim.command(ann, chat, f"/split {bea_id} 300 dinner-1")
    assert said(sim, chat, "split")[-1] == {"payment_id": asked["payment_id"], "status": "paid"}
    await sim.command(ann, chat, f"/split {bea_id} 301 dinner-1")
    assert said(sim, chat, "split")[-1] == "transfer_ref_reused"
    # The app cannot take it back.
    await sim.command(ann, chat, f"/refund {asked['payment_id']} 300 r1")
    assert said(sim, chat, "refund")[-1] == "not_found"


async def test_a_transfer_request_declined_expired_and_refused(world):
    sim, ann, bea, chat = world
    bea_id, ann_id = await _app_id(sim, chat, bea), await _app_id(sim, chat, ann)
    await sim.command(ann, chat, f"/split {bea_id} 300 taxi-1")
    declined = said(sim, chat, "split")[-1]["payment_id"]
    assert (await sim.cancel_payment(bea, declined))["status"] == "declined"
    assert said(sim, chat, "transfer_request.declined")[-1]["transfer_ref"] == "taxi-1"
    await sim.command(ann, chat, f"/split {bea_id} 300 taxi-2")
    expired = said(sim, chat, "split")[-1]["payment_id"]
    assert (await sim.expire_payment(expired))["status"] == "expired"
    assert said(sim, chat, "transfer_request.expired")[-1]["transfer_ref"] == "taxi-2"
    await sim.command(ann, chat, "/split u-nobody 300 taxi-3")
    assert said(sim, chat, "split")[-1] == "not_found"
    await sim.command(ann, chat, f"/split {ann_id} 300 taxi-4")
    assert said(sim, chat, "split")[-1] == "same_user"
