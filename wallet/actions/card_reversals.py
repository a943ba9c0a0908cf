"""Money Stripe takes back from a card top-up: refunds and disputes (chargebacks).

When a card payment is refunded, or the cardholder disputes it, Stripe pulls that money from
the platform's balance; the wallet takes it back from the user who was credited. The user may
have spent it already, so these debits are *overdrafts* (``Ledger.post(overdraft=True)``): they
always go through, and a balance they take below zero gets ``wallet_flag: negative_balance``
(``common.notify_balances``); while it is below zero every outgoing movement is refused with
``negative_balance``. Admins see such accounts and the totals in the reconciliation report.

- ``charge.refunded``: the charge's ``amount_refunded`` is cumulative. Each new total is recorded
  once on the top-up (``StripeTopups.reserve_refund``, compare-and-set) with the total before it,
  and debited as one ledger movement keyed ``stripe-refund:<top-up>:<total>``. A partial refund
  then a full one debits the rest; a replayed, duplicated or late (smaller) total debits nothing.
  Every delivery posts all recorded steps again, which is free for posted ones and finishes one
  whose node died between recording and posting.
- ``charge.dispute.created``: debit the disputed amount, keyed ``stripe-dispute:<dispute>``
  (an inquiry — status ``warning_*`` — takes no money and is only logged).
- ``charge.dispute.closed``: ``won`` credits the debit back (``stripe-dispute-won:<dispute>``;
  posting the debit first if its own event never came, so the pair nets to zero in any order);
  ``lost`` keeps it debited (posting it if it never was).

Amounts come from the signed event, checked against the top-up: never more than was paid, in
the top-up's currency; anything else is refused (``amount_mismatch``) and moves nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from storage.errors import AppError
from wallet.actions.topups import STRIPE_EXTRA_DIGITS, find_topup
from wallet.context import Wallet
from wallet.ledger import Leg
from wallet.store.accounts import external_account, kind_of, user_account

log = logging.getLogger(__name__)

REFUND_KIND = "stripe_refund"
DISPUTE_KIND = "stripe_dispute"
DISPUTE_WON_KIND = "stripe_dispute_won"
REFUND_LABEL = "card refund (Stripe)"
DISPUTE_LABEL = "card payment disputed (chargeback)"
DISPUTE_WON_LABEL = "chargeback reversed: dispute won"


def _id_of(value: object) -> str | None:
    if isinstance(value, dict):  # an expanded object
        value = value.get("id")
    return value if isinstance(value, str) else None


def _mismatch(event: dict[str, Any], topup: dict[str, Any], what: str, value: object) -> AppError:
    log.error("Stripe event %s (%s): %s %r does not fit top-up %s (%d %s); nothing debited",
              event.get("id"), event["type"], what, value, topup["_id"], topup["stripe_amount"],
              topup["currency"])  # fmt: skip
    return AppError(
        "amount_mismatch", f"the event's {what} does not match its top-up; nothing was debited"
    )


def _amount(event: dict[str, Any], topup: dict[str, Any], obj: dict[str, Any], field: str) -> int:
    """``obj[field]`` (Stripe's unit) in our minor units, after checking it against the top-up."""
    currency = obj.get("currency")
    if not isinstance(currency, str) or currency.upper() != topup["currency"]:
        raise _mismatch(event, topup, "currency", currency)
    value = obj.get(field)
    scale = 10 ** STRIPE_EXTRA_DIGITS.get(topup["currency"], 0)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= topup["stripe_amount"]
        or value % scale
    ):
        raise _mismatch(event, topup, field, value)
    return value // scale


def _legs(topup: dict[str, Any], amount: int) -> list[Leg]:
    """``amount`` from the user back to Stripe (negative ``amount``: the other way)."""
    currency = topup["currency"]
    return [
        Leg(user_account(topup["user_id"], currency), -amount),
        Leg(external_account("stripe", currency), amount),
    ]


def _memo(topup: dict[str, Any], label: str, **extra: Any) -> dict[str, Any]:
    return {
        "topup_id": topup["_id"],
        "payment_intent_id": topup["payment_intent_id"],
        "label": label,
        **extra,
    }


# --- refunds ------------------------------------------------------------------------------------


async def do_charge_refunded(wallet: Wallet, event: dict[str, Any], charge: dict[str, Any]) -> None:
    topup = await find_topup(wallet, event, _id_of(charge.get("payment_intent")), charge["id"])
    if topup is None:
        return
    total = _amount(event, topup, charge, "amount_refunded")
    while total > (topup.get("refunded") or 0):
        before = topup.get("refunded") or 0
        if await wallet.topups.reserve_refund(topup["_id"], before, total):
            log.info("top-up %s: Stripe refunded %d in total (was %d)", topup["_id"], total, before)
        topup = await wallet.topups.get_topup(topup["_id"]) or topup
    steps = topup.get("refund_steps") or {}
    for step_total, before in sorted((int(k[1:]), v) for k, v in steps.items()):
        await wallet.ledger.post(
            f"stripe-refund:{topup['_id']}:{step_total}",
            REFUND_KIND,
            topup["currency"],
            _legs(topup, step_total - before),
            _memo(topup, REFUND_LABEL, charge_id=charge["id"], refunded_total=step_total),
            overdraft=True,
        )


# --- disputes -----------------------------------------------------------------------------------


async def _dispute_topup(
    wallet: Wallet, event: dict[str, Any], dispute: dict[str, Any]
) -> dict[str, Any] | None:
    return await find_topup(
        wallet, event, _id_of(dispute.get("payment_intent")), _id_of(dispute.get("charge"))
    )


async def _debit_dispute(
    wallet: Wallet, event: dict[str, Any], topup: dict[str, Any], dispute: dict[str, Any]
) -> int:
    """Take the disputed amount back (once per dispute); the amount debited."""
    key = f"stripe-dispute:{dispute['id']}"
    existing = await wallet.txns.get_by_key(key)
    if existing is None:
        amount = _amount(event, topup, dispute, "amount")
        if amount == 0:
            return 0
        existing = await wallet.ledger.post(
            key,
            DISPUTE_KIND,
            topup["currency"],
            _legs(topup, amount),
            _memo(topup, DISPUTE_LABEL, dispute_id=dispute["id"], reason=dispute.get("reason")),
            overdraft=True,
        )
    elif existing["status"] != "posted":
        existing = await wallet.ledger.post(
            key, existing["kind"], existing["currency"],
            [Leg(e["account_id"], e["amount"]) for e in existing["entries"]],
            existing["memo"], overdraft=True,
        )  # fmt: skip
    return next(-e["amount"] for e in existing["entries"] if kind_of(e["account_id"]) == "user")


async def do_dispute_created(
    wallet: Wallet, event: dict[str, Any], dispute: dict[str, Any]
) -> None:
    topup = await _dispute_topup(wallet, event, dispute)
    if topup is None:
        return
    status = dispute.get("status")
    if isinstance(status, str) and status.startswith("warning_"):
        # An inquiry: the issuer asks questions, Stripe withdraws nothing (yet).
        log.info("Stripe inquiry %s on top-up %s: nothing debited", dispute["id"], topup["_id"])
        return
    await _debit_dispute(wallet, event, topup, dispute)


async def do_dispute_closed(wallet: Wallet, event: dict[str, Any], dispute: dict[str, Any]) -> None:
    topup = await _dispute_topup(wallet, event, dispute)
    if topup is None:
        return
    status = dispute.get("status")
    if status == "lost":
        await _debit_dispute(wallet, event, topup, dispute)  # stays debited (or is, now)
    elif status == "won":
        debited = await _debit_dispute(wallet, event, topup, dispute)
        if debited:
            await wallet.ledger.post(
                f"stripe-dispute-won:{dispute['id']}",
                DISPUTE_WON_KIND,
                topup["currency"],
                _legs(topup, -debited),
                _memo(topup, DISPUTE_WON_LABEL, dispute_id=dispute["id"]),
            )
    else:  # warning_closed: an inquiry that never took money
        log.info("Stripe dispute %s closed %s: nothing to do", dispute["id"], status)
