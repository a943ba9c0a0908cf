"""The platform's fee on an app's captures and payouts, set per (app, currency) by an admin and
recorded in the admin audit log. Fees are booked to ``fee:<CUR>`` within the capture or payout
itself (``wallet.actions.holds``, ``wallet.actions.payouts``); reconciliation shows the total."""

from __future__ import annotations

from typing import Any

from messaging.actions import admin
from storage.errors import AppError
from storage.mongo import iso, now_ms
from wallet.context import Wallet
from wallet.currencies import check_currency
from wallet.store.app_fees import BPS_MAX

FEE_ACTION = "wallet.set_fee"


def fee_view(fee: dict[str, Any]) -> dict[str, Any]:
    return {
        "app_id": fee["app_id"],
        "currency": fee["currency"],
        "basis_points": fee["basis_points"],
        "fixed": fee["fixed"],
        "updated_by": fee["updated_by"],
        "updated_at": iso(fee["updated_at"]),
    }


def _whole(value: object, field: str, maximum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise AppError(
            "invalid_field",
            f"{field} is a whole number from 0 to {maximum}",
            details={"field": field},
        )
    return value


async def do_set_fee(
    wallet: Wallet, admin_id: str, app_id: str, params: dict[str, Any], *, app_known: bool
) -> dict[str, Any]:
    """Set the fee ``fixed + amount * basis_points / 10000`` (minor units, rounded down) on the
    app's captures and payouts in ``currency``; 0 and 0 turn it off. Audited."""
    if not app_known:
        raise AppError("app_not_found", "no such mini-program", status=404)
    currency = check_currency(params.get("currency"))
    bps = _whole(params.get("basis_points", 0), "basis_points", BPS_MAX)
    fixed = _whole(params.get("fixed", 0), "fixed", wallet.max_amount)
    reason = admin.check_reason(params.get("reason"))
    fee = await wallet.fees.set_fee(app_id, currency, bps, fixed, admin_id, now_ms())
    await admin.record(
        wallet.messaging,
        admin_id,
        FEE_ACTION,
        {"app_id": app_id, "currency": currency, "basis_points": bps, "fixed": fixed},
        reason,
    )
    return fee_view(fee)


async def get_fees(wallet: Wallet, app_id: str) -> list[dict[str, Any]]:
    return [fee_view(fee) for fee in await wallet.fees.get_app_fees(app_id)]
