"""Helpers every wallet action shares: idempotency keys, ids derived from them, balance events."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from messaging.events import event
from storage.errors import AppError
from storage.mongo import now_ms
from wallet.context import Wallet
from wallet.store.accounts import NEGATIVE_BALANCE, kind_of, owner_of, user_account
from wallet.views import money

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
NOTE_MAX = 200


def check_key(key: object) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise AppError(
            "invalid_field",
            "idempotency_key must be 1-64 characters of letters, digits and _ . : -",
            details={"field": "idempotency_key"},
        )
    return key


def check_note(note: object, field: str = "note", maximum: int = NOTE_MAX) -> str:
    if note is None:
        return ""
    if not isinstance(note, str) or len(note) > maximum:
        raise AppError(
            "invalid_field", f"{field} is text of at most {maximum} characters",
            details={"field": field},
        )  # fmt: skip
    return " ".join(note.split())


def derived_id(kind: str, user_id: str, key: str) -> str:
    """The id of what a request creates, fixed by who asked and their idempotency key, so a
    retry names the same transfer or red packet (and the ledger sees the same movement)."""
    return hashlib.sha256(f"{kind}\0{user_id}\0{key}".encode()).hexdigest()[:24]


async def notify_balances(wallet: Wallet, txn: dict[str, Any]) -> None:
    """Tell each person whose balance a posted transaction moved (all their devices), and keep
    the ``negative_balance`` flag of their account true: set when a refund or chargeback took
    it below zero, cleared once it is covered again."""
    for entry in txn["entries"]:
        if kind_of(entry["account_id"]) != "user":
            continue
        user_id = owner_of(entry["account_id"])
        account_id = user_account(user_id, txn["currency"])
        # The ledger's group commit read the balances right after the batch moved them (one
        # read for the batch); recovery and the one-by-one path read here.
        account = (txn.get("balances_after") or {}).get(account_id)
        if account is None:
            account = await wallet.accounts.get_account(account_id) or {"balance": 0}
        balance, flag = account["balance"], account.get("wallet_flag")
        # Both updates are conditional on the live balance, so concurrent movements settle on
        # the right state whatever order their hooks run in.
        if (
            balance < 0
            and flag is None
            and await wallet.accounts.flag_if_negative(account_id, now_ms())
        ):
            flag = NEGATIVE_BALANCE
        elif (
            balance >= 0
            and flag is not None
            and await wallet.accounts.unflag_if_covered(account_id)
        ):
            flag = None
        await wallet.messaging.events.emit(
            event(
                "wallet.balance",
                {"user": user_id},
                {
                    **money(balance, txn["currency"]),
                    "change": entry["amount"],
                    "kind": txn["kind"],
                    "transaction_id": txn["_id"],
                    "flag": flag,
                },
            )
        )
