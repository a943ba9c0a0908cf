"""The JSON shapes of the wallet's API: amounts are integers in minor units with their currency
and exponent; timestamps are ISO 8601 UTC."""

from __future__ import annotations

from typing import Any

from storage.mongo import iso
from wallet.currencies import EXPONENTS


def money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency, "exponent": EXPONENTS[currency]}


def balance_view(account: dict[str, Any]) -> dict[str, Any]:
    # ``flag``: "negative_balance" while a card refund or chargeback has taken it below zero.
    return {**money(account["balance"], account["currency"]), "flag": account.get("wallet_flag")}


def entry_view(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": entry["_id"],
        "transaction_id": entry["txn_id"],
        "kind": entry["kind"],
        **money(entry["amount"], entry["currency"]),
        "at": iso(entry["at"]),
        "details": _public_memo(entry.get("memo") or {}),
    }


def _public_memo(memo: dict[str, Any]) -> dict[str, Any]:
    # Shares of other claimers and internal references stay out of a user's statement.
    return {k: v for k, v in memo.items() if k not in {"shares"}}


def transfer_view(transfer: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": transfer["_id"],
        "sender_id": transfer["sender_id"],
        "recipient_id": transfer["recipient_id"],
        "conversation_id": transfer["conversation_id"],
        **money(transfer["amount"], transfer["currency"]),
        "note": transfer.get("note", ""),
        "status": transfer["status"],
        "message_id": transfer.get("message_id"),
        "created_at": iso(transfer["created_at"]),
        "expires_at": iso(transfer["expires_at"]),
        "settled_at": iso(transfer.get("settled_at")),
    }


def red_packet_view(packet: dict[str, Any], claims: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": packet["_id"],
        "sender_id": packet["sender_id"],
        "conversation_id": packet["conversation_id"],
        **money(packet["total"], packet["currency"]),
        "count": packet["count"],
        "mode": packet["mode"],
        "greeting": packet["greeting"],
        "status": packet["status"],
        "claimed_count": len(claims),
        "claimed_amount": sum(c["amount"] for c in claims),
        "claims": [
            {"user_id": c["user_id"], "amount": c["amount"], "at": iso(c.get("paid_at"))}
            for c in claims
        ],
        "refunded": packet.get("refunded"),
        "message_id": packet.get("message_id"),
        "created_at": iso(packet["created_at"]),
        "expires_at": iso(packet["expires_at"]),
    }
