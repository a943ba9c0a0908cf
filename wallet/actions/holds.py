"""Holds: a payment the app captures later (``payments.request`` with ``capture: false``).

The user confirms as for any payment, but the money moves user → ``hold:payment:<id>`` (ledger
kind ``payment_hold``) and the order becomes ``authorized``; the app hears
``payment.authorized``. Then exactly one settlement, the app's ``payments.capture`` (some or
all of it to the merchant, less the platform's fee, the rest back to the user) or
``payments.void`` (all back), or the job loop's void once ``hold_expires_at`` passed
(HOLD_EXPIRY). One conditional update moves the order ``authorized`` → ``capturing`` or
``voiding`` and records ``settle`` (what to do, how much, the fee); only the winner of that update
settles, and the ledger key ``hold-settle:<id>`` is the same for either kind, so a capture and a
void racing on one hold never both move money. A settlement whose worker died is finished by the
job loop from ``settle`` (same legs, same key). The app hears ``payment.captured`` or
``payment.voided`` through the payment outbox (``payments._notify_app``).
"""

from __future__ import annotations

import logging
from typing import Any

from storage.errors import AppError
from storage.mongo import iso, now_ms
from wallet.actions.payments import (
    HOLD_KIND,
    _notify_app,
    _tell_user,
    hold_of,
    payment_view,
)
from wallet.context import Wallet
from wallet.currencies import check_amount
from wallet.ledger import LEASE_MS, Leg
from wallet.store.accounts import fee_account, merchant_account, user_account
from wallet.store.app_fees import fee_of
from wallet.store.payment_orders import charge_is

log = logging.getLogger(__name__)

CAPTURE_KIND = "payment_capture"
VOID_KIND = "payment_void"


def register_hooks(wallet: Wallet) -> None:
    async def authorized(txn: dict) -> None:
        await _on_authorized(wallet, txn)

    async def settled(txn: dict) -> None:
        await _on_settled(wallet, txn)

    wallet.ledger.on_posted(HOLD_KIND, authorized)
    wallet.ledger.on_posted(CAPTURE_KIND, settled)
    wallet.ledger.on_posted(VOID_KIND, settled)


async def _on_authorized(wallet: Wallet, txn: dict) -> None:
    at = txn.get("applied_at") or now_ms()
    expires = at + wallet.config.hold_expiry * 1000
    authorized = await wallet.payments.transition(
        txn["memo"]["payment_id"],
        ["confirming"],
        "authorized",
        {"authorized_at": at, "hold_expires_at": expires},
        charge_is(txn["memo"]["charge_no"]),
    )
    if authorized is not None:  # first time here
        await _tell_user(wallet, authorized)
        await _notify_app(
            wallet,
            authorized,
            "payment.authorized",
            {"status": "authorized", "hold_expires_at": iso(expires)},
        )


async def _on_settled(wallet: Wallet, txn: dict) -> None:
    payment_id = txn["memo"]["payment_id"]
    order = await wallet.payments.get_order(payment_id)
    if order is None:
        return
    settle = order["settle"]
    if settle["kind"] == "capture":
        done = await wallet.payments.transition(
            payment_id,
            ["capturing"],
            "paid",
            {
                "paid_at": txn.get("applied_at") or now_ms(),
                "captured": settle["amount"],
                "fee": settle["fee"],
                "refundable": settle["amount"],
            },
        )
        name, extra = (
            "payment.captured",
            {
                "status": "captured",
                "captured": settle["amount"],
                "fee": settle["fee"],
            },
        )
    else:
        done = await wallet.payments.transition(
            payment_id, ["voiding"], "voided", {"voided_at": txn.get("applied_at") or now_ms()}
        )
        name, extra = "payment.voided", {"status": "voided", "reason": settle["reason"]}
    if done is not None:
        await _tell_user(wallet, done)
        await _notify_app(wallet, done, name, extra)


def _not_authorized(order: dict[str, Any]) -> AppError:
    status = payment_view(order)["status"]
    return AppError(
        "not_authorized",
        f"this payment is {status}, not an authorized hold",
        status=409,
        details={"status": status},
    )


async def _app_order(wallet: Wallet, app_id: str, payment_id: object) -> dict[str, Any]:
    order = await wallet.payments.get_order(payment_id) if isinstance(payment_id, str) else None
    if order is None or order["app_id"] != app_id:
        raise AppError("not_found", "this app has no such payment", status=404)
    return order


def capture_view(order: dict[str, Any]) -> dict[str, Any]:
    settle = order["settle"]
    return {
        "payment_id": order["_id"],
        "status": "paid",
        "captured": settle["amount"],
        "fee": settle["fee"],
        "released": order["amount"] - settle["amount"],
    }


def void_view(order: dict[str, Any]) -> dict[str, Any]:
    return {"payment_id": order["_id"], "status": "voided", "released": order["amount"]}


async def do_capture(
    wallet: Wallet, app_id: str, payment_id: object, amount: object = None
) -> dict[str, Any]:
    """Take ``amount`` (default: all) of an authorized hold for the app; the rest goes back to
    the user. Once per hold: a retry with the same amount answers the same capture."""
    order = await _app_order(wallet, app_id, payment_id)
    settling = order.get("settle") or {}
    if order["status"] not in ("authorized", "capturing", "paid") or (
        order["status"] != "authorized" and settling.get("kind") != "capture"
    ):
        raise _not_authorized(order)
    amount = order["amount"] if amount is None else check_amount(amount, wallet.max_amount)
    if amount > order["amount"]:
        raise AppError(
            "capture_exceeds_hold",
            f"at most {order['amount']} can be captured on this hold",
            details={"held": order["amount"]},
        )
    if order["status"] == "authorized":
        fee = fee_of(await wallet.fees.get_fee(app_id, order["currency"]), amount)
        settle = {"kind": "capture", "amount": amount, "fee": fee}
        started = await _start(wallet, order, "capturing", settle)
        if started is not None:
            await _settle(wallet, started)
            return capture_view(started)
        order = await _app_order(wallet, app_id, payment_id)
        settling = order.get("settle") or {}
    # A retry (or a race) after a settlement began: the same capture answers again.
    if settling.get("kind") != "capture" or settling.get("amount") != amount:
        raise _not_authorized(order)
    if order["status"] == "capturing":
        await _settle(wallet, order)
    return capture_view(order)


async def do_void(wallet: Wallet, app_id: str, payment_id: object) -> dict[str, Any]:
    """Give an authorized hold back to the user in full (again: the same answer)."""
    order = await _app_order(wallet, app_id, payment_id)
    if order["status"] == "authorized":
        started = await _start(wallet, order, "voiding", {"kind": "void", "reason": "voided"})
        if started is not None:
            await _settle(wallet, started)
            return void_view(started)
        order = await _app_order(wallet, app_id, payment_id)
    if order["status"] not in ("voiding", "voided"):
        raise _not_authorized(order)
    if order["status"] == "voiding":
        await _settle(wallet, order)
    return void_view(order)


async def _start(
    wallet: Wallet, order: dict[str, Any], status: str, settle: dict[str, Any]
) -> dict[str, Any] | None:
    """``authorized`` → ``status`` with what to settle: the one winner, or None."""
    return await wallet.payments.transition(
        order["_id"],
        ["authorized"],
        status,
        {"settle": settle, "lease_until": now_ms() + LEASE_MS},
    )


def settle_legs(order: dict[str, Any]) -> list[Leg]:
    """The movement out of the hold: all of it, to the merchant (less the fee), the fee account
    and back to the user for a capture, back to the user for a void. Zero legs left out."""
    settle, currency, held = order["settle"], order["currency"], order["amount"]
    user = user_account(order["user_id"], currency)
    if settle["kind"] == "capture":
        legs = [
            Leg(hold_of(order), -held),
            Leg(merchant_account(order["app_id"], currency), settle["amount"] - settle["fee"]),
            Leg(fee_account(currency), settle["fee"]),
            Leg(user, held - settle["amount"]),
        ]
    else:
        legs = [Leg(hold_of(order), -held), Leg(user, held)]
    return [leg for leg in legs if leg.amount]


async def _settle(wallet: Wallet, order: dict[str, Any]) -> None:
    kind = CAPTURE_KIND if order["settle"]["kind"] == "capture" else VOID_KIND
    try:
        await wallet.ledger.post(
            f"hold-settle:{order['_id']}",
            kind,
            order["currency"],
            settle_legs(order),
            {
                "payment_id": order["_id"],
                "app_id": order["app_id"],
                "app_name": order["app_name"],
                "order_ref": order["order_ref"],
                "description": order["description"],
            },
        )
    except AppError as exc:
        if exc.code == "in_progress":  # another worker's posting; its hook finishes the order
            raise AppError(
                "payment_in_progress", "this hold is being settled", status=409
            ) from None
        raise


async def do_settle_due(wallet: Wallet) -> int:
    """Void holds past their expiry (the app hears ``payment.voided``, reason ``expired``) and
    finish settlements whose worker died (job loop, any node)."""
    done = 0
    now = now_ms()
    for order in await wallet.payments.get_due_holds(now):
        if order["status"] == "authorized":
            taken = await _start(wallet, order, "voiding", {"kind": "void", "reason": "expired"})
        else:  # a stalled capture or void: take its lease, then finish it the same way
            taken = await wallet.payments.transition(
                order["_id"],
                [order["status"]],
                order["status"],
                {"lease_until": now_ms() + LEASE_MS},
                {"lease_until": order["lease_until"]},
            )
        if taken is None:
            continue  # the app or another node got there first
        try:
            await _settle(wallet, taken)
        except AppError as exc:
            log.info("settling hold %s ended %s", order["_id"], exc.code)
            continue
        done += 1
    return done
