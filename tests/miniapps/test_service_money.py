"""Service money end to end: the sandboxed ``escrow`` app authorizes holds, the user confirms over
Socket.IO, the app captures (part of) or voids them, the job loop voids expired ones; it pays
people out of its merchant balance, less the fee an admin set, which reconciliation shows. The
app says every answer and every verified payment event in the chat (``escrow: <what> <json>``).
"""

from __future__ import annotations

import json

from gateway.keys import DATABASE, MESSAGING, WALLET
from tests.helpers import eventually
from tests.miniapps.test_capabilities import command, events_of, setup, texts_from
from tests.wallet.wallet_helpers import balance, check_ledger, topup
from wallet.jobs import run_due_jobs

RECONCILIATION = "/api/v1/admin/wallet/reconciliation"


def said(person, cid, what):
    prefix = f"escrow: {what} "
    return [json.loads(t.removeprefix(prefix)) for t in texts_from(person, cid, prefix)]


async def answer(person, cid, what, count):
    """The app's ``count``-th answer of kind ``what``."""
    got = await eventually(lambda: len(said(person, cid, what)) >= count, what=what)
    assert got
    return said(person, cid, what)[count - 1]


async def _authorize(ann, cid, ref, amount, nth):
    await command(ann, cid, f"/hold {ref} {amount}")
    requested = await answer(ann, cid, "hold", nth)
    asks = await eventually(
        lambda: [
            a
            for a in events_of(ann, "payment.confirm_required")
            if a["payment"]["id"] == requested["payment_id"]
        ],
        what="ask",
    )
    assert asks[0]["payment"]["capture"] is False
    ack = await ann.socket.call("payment.confirm", {"payment_id": requested["payment_id"]})
    assert ack["ok"] and ack["payment"]["status"] == "authorized", ack
    assert ack["payment"]["hold_expires_at"]
    return requested["payment_id"]


async def test_a_hold_is_captured_in_part_and_the_rest_goes_back(gateway):
    _, (ann, bea), cid = await setup(gateway, 2, ["escrow"])
    db = gateway.app[DATABASE].db
    await topup(ann, 5000)
    payment_id = await _authorize(ann, cid, "trip-1", 3000, 1)
    assert await balance(ann) == 2000
    authorized = await answer(bea, cid, "payment.authorized", 1)
    assert authorized == {
        "amount": 3000,
        "order_ref": "trip-1",
        "payment_id": payment_id,
        "status": "authorized",
    }
    balances = await check_ledger(db)
    assert balances[f"hold:payment:{payment_id}"] == 3000
    assert balances.get("merchant:escrow:USD", 0) == 0

    await command(ann, cid, f"/capture {payment_id} 2500")
    assert await answer(ann, cid, "capture", 1) == {
        "payment_id": payment_id,
        "status": "paid",
        "captured": 2500,
        "fee": 0,
        "released": 500,
    }
    captured = await answer(ann, cid, "payment.captured", 1)
    assert (captured["captured"], captured["status"]) == (2500, "captured")
    assert await balance(ann) == 2500
    # Once: the same capture again answers the same, another amount or a void is refused.
    await command(ann, cid, f"/capture {payment_id} 2500")
    assert (await answer(ann, cid, "capture", 2))["captured"] == 2500
    await command(ann, cid, f"/capture {payment_id} 100")
    assert await answer(ann, cid, "capture", 3) == "not_authorized"
    await command(ann, cid, f"/void {payment_id}")
    assert await answer(ann, cid, "void", 1) == "not_authorized"
    # Refundable up to what was captured.
    await command(ann, cid, f"/refund {payment_id} 2501 r-1")
    assert await answer(ann, cid, "refund", 1) == "refund_exceeds_payment"
    status, body = await ann.api.get(f"/api/v1/wallet/payments/{payment_id}")
    assert status == 200 and body["payment"]["status"] == "paid", body
    assert body["payment"]["captured"] == 2500
    balances = await check_ledger(db)
    assert balances[f"hold:payment:{payment_id}"] == 0
    assert balances["merchant:escrow:USD"] == 2500
    await ann.close()
    await bea.close()


async def test_void_and_expiry_give_it_all_back(gateway):
    _, (ann,), cid = await setup(gateway, 1, ["escrow"])
    wallet, db = gateway.app[WALLET], gateway.app[DATABASE].db
    await topup(ann, 1000)
    first = await _authorize(ann, cid, "trip-a", 400, 1)
    second = await _authorize(ann, cid, "trip-b", 500, 2)
    assert await balance(ann) == 100
    await command(ann, cid, f"/void {first}")
    assert await answer(ann, cid, "void", 1) == {
        "payment_id": first,
        "status": "voided",
        "released": 400,
    }
    assert (await answer(ann, cid, "payment.voided", 1))["reason"] == "voided"
    assert await balance(ann) == 500
    # Nobody captures the second hold: at its expiry the job loop voids it.
    await db.payment_orders.update_one({"_id": second}, {"$set": {"hold_expires_at": 1}})
    done = await run_due_jobs(wallet)
    assert done["settled_holds"] == 1
    assert (await answer(ann, cid, "payment.voided", 2))["reason"] == "expired"
    assert await balance(ann) == 1000
    await command(ann, cid, f"/capture {second}")
    assert await answer(ann, cid, "capture", 1) == "not_authorized"
    await check_ledger(db)
    await ann.close()


async def test_errors_of_capture_and_void(gateway):
    _, (ann,), cid = await setup(gateway, 1, ["escrow"])
    await command(ann, cid, "/capture nope")
    assert await answer(ann, cid, "capture", 1) == "not_found"
    await command(ann, cid, "/hold trip-p 300")
    pending = (await answer(ann, cid, "hold", 1))["payment_id"]
    await command(ann, cid, f"/void {pending}")
    assert await answer(ann, cid, "void", 1) == "not_authorized"  # not confirmed yet
    await topup(ann, 300)
    await eventually(lambda: events_of(ann, "payment.confirm_required"))
    ack = await ann.socket.call("payment.confirm", {"payment_id": pending})
    assert ack["ok"], ack
    await command(ann, cid, f"/capture {pending} 301")
    assert await answer(ann, cid, "capture", 2) == "capture_exceeds_hold"
    await command(ann, cid, "/buy trip-p 300")  # a hold's order_ref is not a payment's
    assert await answer(ann, cid, "buy", 1) == "order_ref_reused"
    await ann.close()


async def test_payouts_with_a_fee_an_admin_set(gateway):
    _, (ann, bea), cid = await setup(gateway, 2, ["escrow"])
    db = gateway.app[DATABASE].db
    await command(bea, cid, "/me")
    got = await eventually(lambda: texts_from(bea, cid, "escrow: me "))
    bea_app_id = json.loads(got[0].removeprefix("escrow: me "))
    await command(ann, cid, f"/payout {bea_app_id} 100 prize-0")
    assert await answer(ann, cid, "payout", 1) == "insufficient_merchant_funds"

    # The merchant earns 1000, an admin sets a fee of 2.5% + 5.
    await topup(ann, 1000)
    await command(ann, cid, "/buy mug 1000")
    payment_id = (await answer(ann, cid, "buy", 1))["payment_id"]
    await eventually(lambda: events_of(ann, "payment.confirm_required"))
    ack = await ann.socket.call("payment.confirm", {"payment_id": payment_id})
    assert ack["ok"], ack
    await gateway.app[MESSAGING].users.collection.update_one(
        {"_id": ann.user_id}, {"$set": {"role": "admin"}}
    )
    url = "/api/v1/admin/miniapps/escrow/fees"
    status, body = await bea.api.post(url, json={"currency": "USD", "basis_points": 250})
    assert status == 403, body  # admins only
    status, body = await ann.api.post(
        url, json={"currency": "USD", "basis_points": 250, "fixed": 5, "reason": "standard"}
    )
    assert status == 200 and body["fee"]["basis_points"] == 250, body
    status, body = await ann.api.post(url, json={"currency": "USD", "basis_points": 99999})
    assert status == 400 and body["error"]["code"] == "invalid_field", body
    status, body = await ann.api.post(
        "/api/v1/admin/miniapps/nope/fees", json={"currency": "USD", "basis_points": 1}
    )
    assert status == 404 and body["error"]["code"] == "app_not_found", body
    status, body = await ann.api.get("/api/v1/admin/audit?action=wallet.set_fee")
    assert status == 200 and len(body["entries"]) == 1, body
    assert body["entries"][0]["target"]["basis_points"] == 250

    await command(ann, cid, f"/payout {bea_app_id} 600 prize-1")
    first = await answer(ann, cid, "payout", 2)
    assert (first["status"], first["amount"], first["fee"]) == ("sent", 600, 20), first
    assert await balance(bea) == 580
    await command(ann, cid, f"/payout {bea_app_id} 600 prize-1")  # a retry pays once
    assert await answer(ann, cid, "payout", 3) == first
    await command(ann, cid, f"/payout {bea_app_id} 700 prize-1")
    assert await answer(ann, cid, "payout", 4) == "payout_ref_reused"
    await command(ann, cid, f"/payout {bea_app_id} 401 prize-2")  # 400 left
    assert await answer(ann, cid, "payout", 5) == "insufficient_merchant_funds"
    await command(ann, cid, "/payout u-nobody 1 prize-3")
    assert await answer(ann, cid, "payout", 6) == "not_found"
    assert await balance(bea) == 580

    balances = await check_ledger(db)
    assert balances["merchant:escrow:USD"] == 400 and balances["fee:USD"] == 20
    status, report = await ann.api.get(RECONCILIATION)
    assert status == 200, report
    usd = next(r for r in report["currencies"] if r["currency"] == "USD")
    assert usd["fees"] == 20 and usd["merchants"] == 400 and usd["balanced"], usd
    await ann.close()
    await bea.close()


async def test_a_transfer_request_is_confirmed_by_the_payer_and_paid_person_to_person(gateway):
    _, (ann, bea), cid = await setup(gateway, 2, ["escrow"])
    wallet, db = gateway.app[WALLET], gateway.app[DATABASE].db
    await topup(bea, 1000)
    await command(bea, cid, "/me")
    got = await eventually(lambda: texts_from(bea, cid, "escrow: me "))
    bea_app_id = json.loads(got[0].removeprefix("escrow: me "))
    # Ann splits the bill: the app asks Bea to pay Ann 300.
    await command(ann, cid, f"/split {bea_app_id} 300 dinner-1 your half of dinner")
    asked = await answer(ann, cid, "split", 1)
    assert asked["status"] == "pending"
    sheet = (await eventually(lambda: events_of(bea, "payment.confirm_required")))[0]["payment"]
    assert (sheet["kind"], sheet["to_user_id"], sheet["note"]) == (
        "transfer_request",
        ann.user_id,
        "your half of dinner",
    )
    assert not events_of(ann, "payment.confirm_required")  # only the payer is asked
    ack = await ann.socket.call("payment.confirm", {"payment_id": asked["payment_id"]})
    assert not ack["ok"] and ack["error"]["code"] == "payment_not_found"
    ack = await bea.socket.call("payment.confirm", {"payment_id": asked["payment_id"]})
    assert ack["ok"] and ack["payment"]["status"] == "paid", ack
    assert (await balance(bea), await balance(ann)) == (700, 300)
    paid = await answer(ann, cid, "transfer_request.paid", 1)
    assert (paid["transfer_ref"], paid["amount"], paid["status"]) == ("dinner-1", 300, "paid")
    # The app cannot take it back, and the same ref answers the same request.
    await command(ann, cid, f"/refund {asked['payment_id']} 300 r-1")
    assert await answer(ann, cid, "refund", 1) == "not_found"
    await command(ann, cid, f"/split {bea_app_id} 300 dinner-1")
    assert await answer(ann, cid, "split", 2) == {
        "payment_id": asked["payment_id"],
        "status": "paid",
    }
    await command(ann, cid, f"/split {bea_app_id} 999 dinner-1")
    assert await answer(ann, cid, "split", 3) == "transfer_ref_reused"

    # Declined, and let expire.
    await command(ann, cid, f"/split {bea_app_id} 100 taxi-1")
    declined = (await answer(ann, cid, "split", 4))["payment_id"]
    await eventually(lambda: len(events_of(bea, "payment.confirm_required")) >= 2)
    ack = await bea.socket.call("payment.cancel", {"payment_id": declined})
    assert ack["ok"], ack
    assert (await answer(ann, cid, "transfer_request.declined", 1))["transfer_ref"] == "taxi-1"
    await command(ann, cid, f"/split {bea_app_id} 100 taxi-2")
    expired = (await answer(ann, cid, "split", 5))["payment_id"]
    await db.payment_orders.update_one({"_id": expired}, {"$set": {"expires_at": 1}})
    await run_due_jobs(wallet)
    assert (await answer(ann, cid, "transfer_request.expired", 1))["transfer_ref"] == "taxi-2"
    # Refused: an unknown payer, oneself.
    await command(ann, cid, "/split u-nobody 100 taxi-3")
    assert await answer(ann, cid, "split", 6) == "not_found"
    await command(bea, cid, f"/split {bea_app_id} 100 taxi-4")
    assert await answer(bea, cid, "split", 7) == "same_user"
    assert (await balance(bea), await balance(ann)) == (700, 300)
    await check_ledger(db)
    await ann.close()
    await bea.close()
