"""Balances, statements, dev top-ups and the reconciliation report."""

from __future__ import annotations

import secrets
from typing import Any

from storage.errors import AppError
from storage.mongo import iso
from wallet.actions import card_reversals
from wallet.actions.common import check_key
from wallet.context import Wallet
from wallet.currencies import EXPONENTS, check_amount, check_currency
from wallet.ledger import Leg
from wallet.store.accounts import external_account, user_account
from wallet.views import balance_view, entry_view, money

HISTORY_LIMIT_MAX = 100


async def get_balances(wallet: Wallet, user_id: str) -> dict[str, Any]:
    accounts = await wallet.accounts.get_owned(user_id, "user")
    return {
        "balances": [balance_view(a) for a in accounts],
        "dev_topup": wallet.config.dev_topup_enabled,
        "card_topup": wallet.config.stripe_enabled,
    }


def _cursor(before: str | None) -> tuple[int, str] | None:
    if not before:
        return None
    at, _, entry_id = before.partition("~")
    if not at.isdigit() or not entry_id:
        raise AppError(
            "invalid_field", "before is a cursor from next_before", details={"field": "before"}
        )
    return int(at), entry_id


async def get_history(
    wallet: Wallet, user_id: str, *, currency: str | None, before: str | None, limit: int
) -> dict[str, Any]:
    if currency is not None:
        check_currency(currency)
    entries = await wallet.entries.get_history(
        user_id, "user", currency=currency, before=_cursor(before), limit=limit
    )
    last = entries[-1] if len(entries) == limit else None
    return {
        "transactions": [entry_view(e) for e in entries],
        "next_before": f"{last['at']}~{last['_id']}" if last else None,
    }


async def do_dev_topup(
    wallet: Wallet, user_id: str, amount: object, currency: object, key: object = None
) -> dict[str, Any]:
    """Money from nowhere, for development: only when AETHERIAL_DEV_TOPUP is on, and booked
    against the ``external:dev_topup`` account so the ledger says where it came from."""
    if not wallet.config.dev_topup_enabled:
        raise AppError(
            "dev_topup_disabled",
            "dev top-ups are off on this server (AETHERIAL_DEV_TOPUP); top up by card",
            status=403,
        )
    currency = check_currency(currency)
    amount = check_amount(amount, wallet.max_amount)
    key = check_key(key) if key is not None else secrets.token_urlsafe(12)
    txn = await wallet.ledger.post(
        f"dev-topup:{user_id}:{key}",
        "dev_topup",
        currency,
        [
            Leg(external_account("dev_topup", currency), -amount),
            Leg(user_account(user_id, currency), amount),
        ],
        {"label": "development top-up (not real money)", "user_id": user_id},
    )
    balance = await wallet.accounts.get_balance(user_account(user_id, currency))
    return {"transaction_id": txn["_id"], "balance": money(balance, currency)}


async def get_reconciliation(wallet: Wallet) -> dict[str, Any]:
    """Per currency: what users, merchants, holds and the fee account have against the
    external accounts (the sum must be zero), what card refunds and chargebacks took back from
    users, every account whose entries do not add up to its balance, and every user account
    below zero."""
    accounts = await wallet.accounts.get_all()
    entry_sums = await wallet.entries.sum_by_account()
    # Taken back from users (positive numbers): refunds, disputes, and disputes won back.
    refunds = await wallet.entries.sum_by_currency(card_reversals.REFUND_KIND, "user")
    disputes = await wallet.entries.sum_by_currency(card_reversals.DISPUTE_KIND, "user")
    won = await wallet.entries.sum_by_currency(card_reversals.DISPUTE_WON_KIND, "user")
    negative = sorted(
        (a for a in accounts if a["kind"] != "external" and a["balance"] < 0),
        key=lambda a: (a["currency"], a["balance"]),
    )
    currencies: dict[str, dict[str, int]] = {}
    for account in accounts:
        row = currencies.setdefault(
            account["currency"], {"user": 0, "merchant": 0, "hold": 0, "external": 0, "fee": 0}
        )
        row[account["kind"]] += account["balance"]
    for currency in (*refunds, *disputes, *won):
        currencies.setdefault(
            currency, {"user": 0, "merchant": 0, "hold": 0, "external": 0, "fee": 0}
        )
    unfinished = await wallet.txns.count_unfinished()
    mismatched = [
        {"account_id": a["_id"], "balance": a["balance"], "entries": entry_sums.get(a["_id"], 0)}
        for a in accounts
        if a["balance"] != entry_sums.get(a["_id"], 0)
    ]
    report = []
    for currency, row in sorted(currencies.items()):
        total = sum(row.values())
        report.append(
            {
                "currency": currency,
                "exponent": EXPONENTS[currency],
                "users": row["user"],
                "merchants": row["merchant"],
                "held": row["hold"],
                "external": row["external"],
                # The platform's fees on captures and payouts (wallet_app_fees), kept so far.
                "fees": row["fee"],
                "sum": total,
                "balanced": total == 0,
                "card_refunds": -refunds.get(currency, 0),
                "card_disputes": -disputes.get(currency, 0),
                "card_disputes_won": won.get(currency, 0),
                "negative_accounts": sum(1 for a in negative if a["currency"] == currency),
                "negative_total": sum(a["balance"] for a in negative if a["currency"] == currency),
            }
        )
    return {
        "currencies": report,
        "balanced": all(r["balanced"] for r in report) and not mismatched,
        "mismatched_accounts": mismatched,
        # Users a card refund or chargeback took below zero: the platform is owed this money.
        "negative_accounts": [
            {
                "account_id": a["_id"],
                "user_id": a["owner"],
                **money(a["balance"], a["currency"]),
                "flag": a.get("wallet_flag"),
                "flagged_at": iso(a.get("flagged_at")),
            }
            for a in negative
        ],
        # Balances move before entries are written; a report taken mid-flight may list them.
        "transactions_in_flight": unfinished,
    }
