"""Payouts: an app pays a person from its merchant balance (marketplace sellers, prizes).

One ledger transaction, merchant → user (less the platform's fee, booked to ``fee:<CUR>``),
keyed ``payout:<app>:<hash of payout_ref>``: a retry with the same ``payout_ref`` pays once and
answers the same payout. The merchant debit is the ledger's conditional debit, so however many
payouts run at once the merchant balance never goes below zero. A payout refused for want of
merchant funds moved nothing and stays refused for that ``payout_ref`` (the ledger replays its
outcome): pay again under a new ``payout_ref``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from storage.errors import AppError
from wallet.actions.common import KEY_PATTERN
from wallet.context import Wallet
from wallet.currencies import check_amount, check_currency
from wallet.ledger import FUNDS_ERRORS, Leg
from wallet.store.accounts import fee_account, merchant_account, user_account
from wallet.store.app_fees import fee_of

PAYOUT_KIND = "payout"


def _key(app_id: str, payout_ref: str) -> str:
    return f"payout:{app_id}:{hashlib.sha256(payout_ref.encode()).hexdigest()[:24]}"


def check_payout(wallet: Wallet, params: dict[str, Any]) -> dict[str, Any]:
    currency = check_currency(params.get("currency"))
    amount = check_amount(params.get("amount"), wallet.max_amount)
    payout_ref = params.get("payout_ref")
    if not isinstance(payout_ref, str) or not KEY_PATTERN.match(payout_ref):
        raise AppError("invalid_params", "payout_ref must be 1-64 characters of [A-Za-z0-9_.:-]")
    return {"amount": amount, "currency": currency, "payout_ref": payout_ref}


def _view(txn: dict[str, Any]) -> dict[str, Any]:
    memo = txn["memo"]
    return {
        "payout_id": txn["_id"],
        "status": "sent",
        "amount": memo["amount"],
        "fee": memo["fee"],
        "currency": txn["currency"],
    }


async def do_payout(
    wallet: Wallet,
    *,
    app_id: str,
    app_name: str,
    user_id: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Pay ``amount`` from the app's merchant balance to ``user_id`` (a real user id: the
    capability resolved the app's per-app id). Raises ``insufficient_merchant_funds``,
    ``payout_ref_reused`` (the ref named another payout) or ``payout_in_progress``."""
    checked = check_payout(wallet, params)
    amount, currency = checked["amount"], checked["currency"]
    key = _key(app_id, checked["payout_ref"])
    existing = await wallet.txns.get_by_key(key)
    if existing is not None and existing["status"] == "posted":
        # A retry: the same payout answers again, whatever the fee is now.
        memo = existing["memo"]
        if (memo["user_id"], memo["amount"], existing["currency"]) != (user_id, amount, currency):
            raise _reused()
        return _view(existing)
    fee = fee_of(await wallet.fees.get_fee(app_id, currency), amount)
    legs = [
        Leg(merchant_account(app_id, currency), -amount),
        Leg(user_account(user_id, currency), amount - fee),
        Leg(fee_account(currency), fee),
    ]
    memo = {
        "app_id": app_id,
        "app_name": app_name,
        "payout_ref": checked["payout_ref"],
        "user_id": user_id,
        "amount": amount,
        "fee": fee,
    }
    try:
        txn = await wallet.ledger.post(
            key, PAYOUT_KIND, currency, [leg for leg in legs if leg.amount], memo
        )
    except AppError as exc:
        if exc.code in FUNDS_ERRORS:
            raise AppError(
                "insufficient_merchant_funds",
                "the app's merchant balance does not cover this payout",
                status=402,
            ) from None
        if exc.code == "idempotency_key_reused":
            raise _reused() from None
        if exc.code == "in_progress":
            raise AppError(
                "payout_in_progress", "this payout is being made; retry", status=409
            ) from None
        raise
    return _view(txn)


def _reused() -> AppError:
    return AppError("payout_ref_reused", "this payout_ref was used for another payout", status=409)
