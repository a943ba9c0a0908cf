"""Payments for mini-programs: an app asks, the *user* confirms, the wallet moves the money.

An app's ``payments.request`` creates an order and asks the user (``payment.confirm_required``);
only the user's ``payment.confirm`` moves money (user → the app's merchant account). The
app hears the outcome as a signed event (``payment.succeeded`` / ``payment.failed``) through
``Wallet.notify_app``; it never sees a balance. Refunds go back from the merchant account, never
more in total than was paid.

Confirming is fenced (see ``wallet.store.payment_orders``): an attempt takes the order with a
conditional update that raises ``attempt_no`` and sets a lease; an attempt that stalls past its
lease is taken over by the user's next confirm or by the job loop. Every attempt posts the ledger
key ``payment:<id>:<charge_no>`` — derived from the order, not the attempt — so a stalled attempt
that wakes up after a takeover finds the movement already made (or failed) and moves nothing.
A charge that failed for want of funds moved nothing; only then does ``charge_no`` go up (one
conditional update, only by the attempt that holds the order), so a confirmation after a top-up
gets a fresh key while a stale attempt's key stays the failed one. The order becomes ``paid`` in
the ledger's hook, conditional on the charge number being the posted one.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from messaging.events import event
from storage.errors import AppError
from storage.mongo import iso, new_id, now_ms
from wallet.context import Wallet
from wallet.currencies import check_amount, check_currency
from wallet.ledger import FUNDS_ERRORS, LEASE_MS, Leg
from wallet.store.accounts import hold_account, merchant_account, user_account
from wallet.store.payment_orders import charge_is
from wallet.views import money

log = logging.getLogger(__name__)

ORDER_REF = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
DESCRIPTION_MAX = 200
# What an app and a user see of an order's status.
PUBLIC_STATUS = {
    "requested": "pending",
    "confirming": "pending",
    "paid": "paid",
    "cancelled": "cancelled",
    "expired": "expired",
    # A hold (``capture: false``, ``wallet.actions.holds``): confirmed into a hold account,
    # then captured (``paid``) or voided.
    "authorized": "authorized",
    "capturing": "authorized",
    "voiding": "authorized",
    "voided": "voided",
}
# The user's confirmation went through: confirming again answers the payment as it is.
CONFIRMED = ("paid", "authorized", "capturing", "voiding")
# An order of this kind is a transfer request (``wallet.actions.transfer_requests``): the payer
# confirms like a payment and the money goes to another user (``payee_id``), not to the app.
TRANSFER_REQUEST = "transfer_request"
HOLD_KIND = "payment_hold"  # the ledger kind of a confirmed hold: user -> hold:payment:<id>


def hold_of(order: dict[str, Any]) -> str:
    """The account an authorized hold's money waits in."""
    return hold_account(f"payment:{order['_id']}")


def register_hooks(wallet: Wallet) -> None:
    async def paid(txn: dict) -> None:
        await _on_paid(wallet, txn)

    async def refunded(txn: dict) -> None:
        order = await wallet.payments.get_order(txn["memo"]["payment_id"])
        if order is not None:
            await _tell_user(wallet, order)

    wallet.ledger.on_posted("payment", paid)
    wallet.ledger.on_posted(TRANSFER_REQUEST, paid)
    wallet.ledger.on_posted("payment_refund", refunded)


def payment_view(order: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": order["_id"],
        "app_id": order["app_id"],
        "app_name": order["app_name"],
        "conversation_id": order["conversation_id"],
        **money(order["amount"], order["currency"]),
        "description": order["description"],
        "order_ref": order["order_ref"],
        "status": PUBLIC_STATUS[order["status"]],
        # (A captured hold was paid what was captured, maybe less than its amount.)
        "refunded": (order.get("captured") or order["amount"]) - order["refundable"]
        if order["status"] == "paid"
        else 0,
        "capture": order.get("capture", True),
        "captured": order.get("captured"),
        "hold_expires_at": iso(order.get("hold_expires_at")),
        "kind": order.get("kind", "payment"),
        # A transfer request: who gets the money (the payer's sheet names them), and its note.
        "to_user_id": order.get("payee_id"),
        "note": order.get("note"),
        "created_at": iso(order["created_at"]),
        "expires_at": iso(order["expires_at"]),
    }


def _check_request(wallet: Wallet, params: dict[str, Any]) -> dict[str, Any]:
    currency = check_currency(params.get("currency"))
    amount = check_amount(params.get("amount"), wallet.max_amount)
    description = params.get("description")
    if not isinstance(description, str) or not 1 <= len(description.strip()) <= DESCRIPTION_MAX:
        raise AppError(
            "invalid_params", f"description must be text of 1-{DESCRIPTION_MAX} characters"
        )
    order_ref = params.get("order_ref")
    if not isinstance(order_ref, str) or not ORDER_REF.match(order_ref):
        raise AppError("invalid_params", "order_ref must be 1-64 characters of [A-Za-z0-9_.:-]")
    capture = params.get("capture")
    if capture is None:
        capture = True
    if not isinstance(capture, bool):
        raise AppError("invalid_params", "capture must be true or false")
    return {
        "amount": amount,
        "currency": currency,
        "description": description.strip(),
        "order_ref": order_ref,
        "capture": capture,
    }


async def do_request(
    wallet: Wallet,
    *,
    app_id: str,
    app_name: str,
    user_id: str,
    app_user_id: str,
    conversation_id: str,
    params: dict[str, Any],
    transfer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record an app's request and ask the user; returns ``{payment_id, status}`` for the app.
    ``transfer``: a transfer request's ``kind``, ``payee_id`` and ``note`` (checked by
    ``wallet.actions.transfer_requests``): the money is to go to that user."""
    checked = _check_request(wallet, params)
    now = now_ms()
    order = {
        "_id": new_id(),
        "app_id": app_id,
        "app_name": app_name,
        "user_id": user_id,
        "app_user_id": app_user_id,
        "conversation_id": conversation_id,
        **checked,
        "status": "requested",
        "attempt_no": 0,
        "charge_no": 0,
        "refundable": 0,
        "created_at": now,
        "expires_at": now + wallet.config.payment_expiry * 1000,
        **(transfer or {}),
    }
    if not await wallet.payments.add_order(order):
        existing = await wallet.payments.get_by_ref(app_id, checked["order_ref"])
        assert existing is not None
        same = (
            existing["user_id"], existing["amount"], existing["currency"],
            existing.get("capture", True), existing.get("kind"), existing.get("payee_id"),
        ) == (
            user_id, checked["amount"], checked["currency"], checked["capture"],
            order.get("kind"), order.get("payee_id"),
        )  # fmt: skip
        if not same:
            raise AppError("order_ref_reused", "this order_ref was used for another user or amount")
        order = existing
    if order["status"] == "requested":
        await wallet.messaging.events.emit(
            event(
                "payment.confirm_required",
                {"user": user_id},
                {"payment": payment_view(order)},
            )
        )
    return {"payment_id": order["_id"], "status": PUBLIC_STATUS[order["status"]]}


async def _get_own(wallet: Wallet, user_id: str, payment_id: object) -> dict[str, Any]:
    order = await wallet.payments.get_order(payment_id) if isinstance(payment_id, str) else None
    if order is None or order["user_id"] != user_id:
        raise AppError("payment_not_found", "no such payment request", status=404)
    return order


async def get_payment(wallet: Wallet, user_id: str, payment_id: str) -> dict[str, Any]:
    return payment_view(await _get_own(wallet, user_id, payment_id))


def _closed(order: dict[str, Any]) -> AppError:
    status = PUBLIC_STATUS[order["status"]]
    return AppError(
        "payment_closed", f"this payment is {status}", status=409, details={"status": status}
    )


async def do_confirm(wallet: Wallet, user_id: str, payment_id: object) -> dict[str, Any]:
    """The user says yes: move the money (once), then the app hears ``payment.succeeded``."""
    order = await _get_own(wallet, user_id, payment_id)
    if order["status"] in CONFIRMED:
        return payment_view(order)
    now = now_ms()
    if order["status"] == "requested" and order["expires_at"] <= now:
        raise _closed(order)
    if order["status"] not in ("requested", "confirming"):
        raise _closed(order)
    claimed = await wallet.payments.claim(order["_id"], now, now + LEASE_MS)
    if claimed is None:
        order = await _get_own(wallet, user_id, payment_id)
        if order["status"] in CONFIRMED:
            return payment_view(order)
        if order["status"] != "confirming":
            raise _closed(order)
        raise _in_progress()
    return await charge(wallet, claimed)


def _in_progress() -> AppError:
    return AppError("payment_in_progress", "this payment is being confirmed", status=409)


def _charge_key(order: dict[str, Any], charge_no: int) -> str:
    return f"payment:{order['_id']}:{charge_no}"


async def charge(wallet: Wallet, claimed: dict[str, Any]) -> dict[str, Any]:
    """Move the money of an order this attempt has claimed (``claimed`` is the order as the
    claim left it: its ``attempt_no`` is ours). Safe to run late, after another attempt took
    the order over: the ledger key is the order's, so the money moves at most once."""
    attempt_no, charge_no = claimed["attempt_no"], claimed.get("charge_no") or 0
    currency, amount = claimed["currency"], claimed["amount"]
    # A hold's money goes to its own hold account, not to the merchant (yet).
    kind = "payment" if claimed.get("capture", True) else HOLD_KIND
    payee = merchant_account(claimed["app_id"], currency) if kind == "payment" else hold_of(claimed)
    if claimed.get("kind") == TRANSFER_REQUEST:  # person to person
        kind, payee = TRANSFER_REQUEST, user_account(claimed["payee_id"], currency)
    legs = [Leg(user_account(claimed["user_id"], currency), -amount), Leg(payee, amount)]
    memo = {
        "payment_id": claimed["_id"],
        "app_id": claimed["app_id"],
        "app_name": claimed["app_name"],
        "description": claimed["description"],
        "order_ref": claimed["order_ref"],
    }
    while True:
        key = _charge_key(claimed, charge_no)
        try:
            await wallet.ledger.post(
                key, kind, currency, legs,
                {**memo, "charge_no": charge_no, "attempt_no": attempt_no},
            )  # fmt: skip
            break
        except AppError as exc:
            if exc.code == "in_progress":  # another attempt's posting is still moving it
                raise _in_progress() from None
            if exc.code not in FUNDS_ERRORS:
                raise
            failed = await wallet.txns.get_by_key(key)
            ours = failed is not None and failed["memo"].get("attempt_no") == attempt_no
            # Nothing moved. Ours: the request stays open (top up and confirm again, or
            # cancel). An earlier attempt's: that charge is spent, so try the next one now.
            moved_on = await wallet.payments.next_charge(
                claimed["_id"], attempt_no, charge_no, reopen=ours
            )
            if ours or moved_on is None:
                # (None: a later attempt holds the order now; this one does nothing more.)
                raise
            charge_no += 1
    order = await wallet.payments.get_order(claimed["_id"])
    assert order is not None
    return payment_view(order)


async def _on_paid(wallet: Wallet, txn: dict) -> None:
    payment_id = txn["memo"]["payment_id"]
    order = await wallet.payments.get_order(payment_id)
    if order is None:
        return
    if "charge_no" in txn["memo"]:
        old, where = ["confirming"], charge_is(txn["memo"]["charge_no"])
    else:  # posted before charges were numbered
        old, where = ["requested", "confirming"], None
    paid = await wallet.payments.transition(
        payment_id,
        old,
        "paid",
        {"paid_at": txn.get("applied_at") or now_ms(), "refundable": order["amount"]},
        where,
    )
    if paid is not None:  # first time here (a recovered hook does not tell the app twice)
        await _tell_user(wallet, paid)
        if paid.get("kind") == TRANSFER_REQUEST:
            await _notify_app(wallet, paid, "transfer_request.paid", _transfer_extra(paid, "paid"))
        else:
            await _notify_app(wallet, paid, "payment.succeeded", {"status": "succeeded"})


async def do_cancel(wallet: Wallet, user_id: str, payment_id: object) -> dict[str, Any]:
    """The user says no: nothing moves; the app hears ``payment.failed`` (cancelled)."""
    order = await _get_own(wallet, user_id, payment_id)
    cancelled = await wallet.payments.transition(order["_id"], ["requested"], "cancelled")
    if cancelled is None:
        raise _closed(await _get_own(wallet, user_id, payment_id))
    await _tell_user(wallet, cancelled)
    await _notify_failed(wallet, cancelled, "cancelled")
    return payment_view(cancelled)


async def do_refund(
    wallet: Wallet, app_id: str, payment_id: object, amount: object, refund_ref: object = None
) -> dict[str, Any]:
    """Give (part of) a payment back; with the same ``refund_ref`` a retry refunds once."""
    order = await wallet.payments.get_order(payment_id) if isinstance(payment_id, str) else None
    if order is None or order["app_id"] != app_id or order.get("kind") == TRANSFER_REQUEST:
        raise AppError("not_found", "this app has no such payment")
    if order["status"] != "paid":
        raise AppError("not_paid", "only a paid payment can be refunded")
    amount = check_amount(amount, wallet.max_amount)
    if refund_ref is None:
        refund_ref = new_id()
    if not isinstance(refund_ref, str) or not ORDER_REF.match(refund_ref):
        raise AppError("invalid_params", "refund_ref must be 1-64 characters of [A-Za-z0-9_.:-]")
    ref = hashlib.sha256(refund_ref.encode()).hexdigest()[:24]
    if not await wallet.payments.reserve_refund(order["_id"], ref, amount):
        order = await wallet.payments.get_order(order["_id"]) or order
        reserved = (order.get("refunds") or {}).get(ref)
        if reserved is None:
            raise AppError(
                "refund_exceeds_payment",
                f"at most {order['refundable']} more can be refunded for this payment",
            )
        if reserved != amount:
            raise AppError("invalid_params", "this refund_ref was used for another refund")
        # else: a retry of a refund already reserved; the ledger key makes it move money once
    await wallet.ledger.post(
        f"refund:{order['_id']}:{ref}",
        "payment_refund",
        order["currency"],
        [
            Leg(merchant_account(app_id, order["currency"]), -amount),
            Leg(user_account(order["user_id"], order["currency"]), amount),
        ],
        {
            "payment_id": order["_id"],
            "app_id": app_id,
            "app_name": order["app_name"],
            "order_ref": order["order_ref"],
        },
    )
    order = await wallet.payments.get_order(order["_id"]) or order
    paid = order.get("captured") or order["amount"]
    return {"refund_id": ref, "refunded_total": paid - order["refundable"]}


def _failed(reason: str) -> dict[str, Any]:
    return {"status": "failed", "reason": reason}


def _transfer_extra(order: dict[str, Any], status: str) -> dict[str, Any]:
    # The payload's ``user_id`` is the payer's per-app id; the payee's is ``to_user_id``.
    return {
        "status": status,
        "to_user_id": order["payee_app_user_id"],
        "transfer_ref": order["order_ref"],
    }


async def _notify_failed(wallet: Wallet, order: dict[str, Any], reason: str) -> None:
    if order.get("kind") == TRANSFER_REQUEST:  # the payer declined, or let it expire
        status = "declined" if reason == "cancelled" else "expired"
        await _notify_app(
            wallet, order, f"transfer_request.{status}", _transfer_extra(order, status)
        )
    else:
        await _notify_app(wallet, order, "payment.failed", _failed(reason))


async def _tell_user(wallet: Wallet, order: dict[str, Any]) -> None:
    await wallet.messaging.events.emit(
        event("payment.updated", {"user": order["user_id"]}, {"payment": payment_view(order)})
    )


OUTBOX_LEASE_MS = 30_000


async def _notify_app(wallet: Wallet, order: dict, name: str, extra: dict[str, Any]) -> None:
    """The app must hear the outcome: recorded on the order first (an outbox), then delivered
    now when this process hosts the apps — else, or after a crash, by a gateway's next
    ``do_deliver_outbox`` (a Celery worker settles payments but hosts no apps)."""
    await wallet.payments.set_outbox(order["_id"], name, extra)
    if wallet.notify_app is not None:
        await _deliver(wallet, order["_id"])


async def _deliver(wallet: Wallet, payment_id: str) -> bool:
    assert wallet.notify_app is not None
    order = await wallet.payments.take_outbox(payment_id, now_ms(), OUTBOX_LEASE_MS)
    if order is None:
        return False  # delivered already, or another gateway is delivering it
    outbox = order["outbox"]
    await wallet.notify_app(order, outbox["name"], outbox["extra"])
    await wallet.payments.clear_outbox(payment_id, outbox["name"])
    return True


async def do_deliver_outbox(wallet: Wallet) -> int:
    """Deliver payment events still owed to apps (run by gateways, which host the apps)."""
    if wallet.notify_app is None:
        return 0
    delivered = 0
    for payment_id in await wallet.payments.get_outbox_ids(now_ms()):
        delivered += await _deliver(wallet, payment_id)
    return delivered


async def do_expire_due(wallet: Wallet) -> int:
    """Expire unanswered requests (the app hears ``payment.failed``: expired) and finish
    confirmations whose attempt stalled past its lease (job loop): the user did confirm, so the
    job takes the order over like a second confirm would and makes the same charge."""
    done = 0
    now = now_ms()
    for order in await wallet.payments.get_due(now):
        if order["status"] == "requested":
            expired = await wallet.payments.transition(order["_id"], ["requested"], "expired")
            if expired is not None:
                await _tell_user(wallet, expired)
                await _notify_failed(wallet, expired, "expired")
                done += 1
            continue
        claimed = await wallet.payments.claim(
            order["_id"], now, now_ms() + LEASE_MS, stalled_only=True
        )
        if claimed is None:
            continue  # the user's own retry took it first
        try:
            await charge(wallet, claimed)
        except AppError as exc:
            # Funds short: back to requested (it expires in time); in progress: a posting in
            # flight that ledger recovery finishes, and its hook marks the order paid.
            log.info("stalled confirmation of payment %s ended %s", order["_id"], exc.code)
        done += 1
    return done
