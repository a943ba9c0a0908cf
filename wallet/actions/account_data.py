"""The wallet's part in leaving with your data (``messaging.actions.data_export`` and
``account_deletion``, which know nothing of money): the statement that goes into an export, and
the check that refuses to delete an account that still has money or money on its way.

The ledger's entries are kept when an account is deleted: they are the books (every movement
must still add up), and they name the account only by its id.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from storage.errors import AppError
from storage.mongo import iso
from wallet.context import Wallet
from wallet.views import balance_view, entry_view, money

PAGE = 500
PENDING_MAX = 50  # pending items listed in a refusal (enough to act on)


async def statement_section(wallet: Wallet, user: dict[str, Any]) -> dict[str, bytes]:
    """``wallet/statement.json`` (balances and every entry, newest first) and the same entries
    as ``wallet/statement.csv``."""
    user_id = user["_id"]
    balances = [balance_view(a) for a in await wallet.accounts.get_owned(user_id, "user")]
    entries: list[dict[str, Any]] = []
    before = None
    while True:
        page = await wallet.entries.get_history(
            user_id, "user", currency=None, before=before, limit=PAGE
        )
        entries.extend(entry_view(e) for e in page)
        if len(page) < PAGE:
            break
        before = (page[-1]["at"], page[-1]["_id"])
    statement = {"balances": balances, "transactions": entries}
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["at", "kind", "amount", "currency", "exponent", "transaction_id", "details"])
    for e in entries:
        details = json.dumps(e["details"], ensure_ascii=False, sort_keys=True)
        writer.writerow(
            [
                e["at"],
                e["kind"],
                e["amount"],
                e["currency"],
                e["exponent"],
                e["transaction_id"],
                details,
            ]
        )
    return {
        "wallet/statement.json": json.dumps(statement, ensure_ascii=False, indent=1).encode(),
        "wallet/statement.csv": table.getvalue().encode(),
    }


async def check_empty(wallet: Wallet, user: dict[str, Any]) -> None:
    """Refuse (409 ``wallet_not_empty``) while the account holds money in any currency, or
    something pending would move money to or from it later: a transfer it sent that was not
    accepted yet (returned to it at expiry), a red packet not finished (its remainder comes
    back), a payment or hold of a mini-program not settled, a transfer request that would pay
    it. ``details`` lists the balances and the pending items, so the person knows what to do."""
    user_id = user["_id"]
    accounts = await wallet.accounts.get_owned(user_id, "user")
    balances = [money(a["balance"], a["currency"]) for a in accounts if a["balance"] != 0]
    pending: list[dict[str, Any]] = []
    for transfer in await wallet.transfers.get_pending_from(user_id, PENDING_MAX):
        pending.append(
            {
                "kind": "transfer",
                "id": transfer["_id"],
                **money(transfer["amount"], transfer["currency"]),
                "until": iso(transfer.get("expires_at")),
            }
        )
    for packet in await wallet.red_packets.get_unsettled_from(user_id, PENDING_MAX):
        pending.append(
            {
                "kind": "red_packet",
                "id": packet["_id"],
                **money(packet["total"], packet["currency"]),
                "until": iso(packet.get("expires_at")),
            }
        )
    for order in await wallet.payments.get_open_for(user_id, PENDING_MAX):
        pending.append(
            {
                "kind": "transfer_request" if order.get("payee_id") == user_id else "payment",
                "id": order["_id"],
                **money(order["amount"], order["currency"]),
                "status": order["status"],
            }
        )
    if not balances and not pending:
        return
    what = []
    if balances:
        what.append("money in your wallet (" + ", ".join(_amount(b) for b in balances) + ")")
    if pending:
        what.append(f"{len(pending)} payment(s) still pending")
    raise AppError(
        "wallet_not_empty",
        "your account cannot be deleted while it has "
        + " and ".join(what)
        + ": spend or transfer the money, and wait for pending payments to settle",
        status=409,
        details={"balances": balances, "pending": pending},
    )


def _amount(m: dict[str, Any]) -> str:
    exponent = m["exponent"]
    value = m["amount"] / (10**exponent) if exponent else m["amount"]
    return f"{value:.{exponent}f} {m['currency']}"


def register(wallet: Wallet) -> None:
    """Add the wallet's export section and deletion check to the messaging context."""

    async def section(user: dict[str, Any]) -> dict[str, bytes]:
        return await statement_section(wallet, user)

    async def check(user: dict[str, Any]) -> None:
        await check_empty(wallet, user)

    wallet.messaging.export_sections.append(section)
    wallet.messaging.deletion_checks.append(check)
