"""Transfers in chat: money held for the recipient, posted as a card they accept.

The sender's money moves into the transfer's hold account at once. The recipient accepts (hold →
recipient) or returns it; unaccepted, the job loop returns it to the sender at expiry. Accepting
and returning post under one idempotency key, so exactly one of them ever happens.
"""

from __future__ import annotations

import asyncio
from typing import Any

from messaging.actions import cards, notifications
from messaging.actions.conversations import check_member
from storage.errors import AppError
from storage.mongo import now_ms
from wallet.actions.common import check_key, check_note, derived_id
from wallet.context import Wallet
from wallet.currencies import check_amount, check_currency, format_amount
from wallet.ledger import Leg
from wallet.store.accounts import hold_account, user_account
from wallet.views import transfer_view

ACCEPT_ACTION = "wallet.transfer.accept"


def register_hooks(wallet: Wallet) -> None:
    async def created(txn: dict) -> None:
        await _on_created(wallet, txn)

    async def settled(txn: dict) -> None:
        await _on_settled(wallet, txn)

    wallet.ledger.on_posted("transfer", created)
    wallet.ledger.on_posted("transfer_accept", settled)
    wallet.ledger.on_posted("transfer_return", settled)


async def check_transfer(wallet: Wallet, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
    key = check_key(body.get("idempotency_key"))
    currency = check_currency(body.get("currency"))
    amount = check_amount(body.get("amount"), wallet.max_amount)
    note = check_note(body.get("note"))
    recipient = body.get("to_user_id")
    if recipient == user_id:
        raise AppError(
            "invalid_recipient", "you cannot transfer to yourself", details={"field": "to_user_id"}
        )
    ctx = wallet.messaging
    membership = await check_member(ctx, body.get("conversation_id"), user_id)
    if not isinstance(recipient, str) or membership.role_of(recipient) is None:
        raise AppError(
            "invalid_recipient",
            "the recipient must be a member of this conversation",
            details={"field": "to_user_id"},
        )
    if await ctx.blocks.is_blocked_either_way(user_id, recipient):
        raise AppError("blocked", "you cannot send money to this user", status=403)
    return {
        "key": key,
        "currency": currency,
        "amount": amount,
        "note": note,
        "recipient_id": recipient,
        "conversation_id": membership.conversation_id,
    }


async def do_create_transfer(wallet: Wallet, user_id: str, body: dict[str, Any]) -> dict:
    checked = await check_transfer(wallet, user_id, body)
    transfer_id = derived_id("transfer", user_id, checked["key"])
    amount, currency = checked["amount"], checked["currency"]
    txn = await wallet.ledger.post(
        f"transfer:{user_id}:{checked['key']}",
        "transfer",
        currency,
        [
            Leg(user_account(user_id, currency), -amount),
            Leg(hold_account(f"transfer:{transfer_id}"), amount),
        ],
        {
            "transfer_id": transfer_id,
            "sender_id": user_id,
            "recipient_id": checked["recipient_id"],
            "conversation_id": checked["conversation_id"],
            "note": checked["note"],
        },
    )
    # Posted just now: the hook left the transfer it wrote (saves a read). A replay of the key
    # reads it: it may have been accepted or returned since.
    transfer = txn.get("transfer") or await wallet.transfers.get_transfer(transfer_id)
    assert transfer is not None  # the posting hook wrote it
    return transfer_view(transfer)


async def _on_created(wallet: Wallet, txn: dict) -> None:
    memo, entry = txn["memo"], txn["entries"]
    amount = max(e["amount"] for e in entry)
    created = txn["created_at"]
    draft = {
        "_id": memo["transfer_id"],
        "sender_id": memo["sender_id"],
        "recipient_id": memo["recipient_id"],
        "conversation_id": memo["conversation_id"],
        "amount": amount,
        "currency": txn["currency"],
        "note": memo["note"],
        "status": "pending",
        "created_at": created,
        "expires_at": created + wallet.config.transfer_expiry * 1000,
    }
    users = {
        u["_id"]: u
        for u in await wallet.messaging.users.get_users([memo["sender_id"], memo["recipient_id"]])
    }
    # The card first, then the transfer with its message id in one insert (no update after).
    # A rerun (recovery) gets the same message back (one per transfer id) and finds the stored
    # transfer; until the transfer exists nobody can press the card's button to any effect.
    message = await cards.do_post_wallet_message(
        wallet.messaging,
        draft["conversation_id"],
        draft["sender_id"],
        "transfer",
        draft["_id"],
        _card(draft, users.get(draft["recipient_id"])),
    )
    transfer = await wallet.transfers.add_transfer({**draft, "message_id": message["id"]})
    if transfer.get("message_id") is None:  # stored by an earlier version of this hook
        await wallet.transfers.set_message(transfer["_id"], message["id"])
        transfer["message_id"] = message["id"]
    await _notify_recipient(wallet, transfer, users.get(transfer["sender_id"]))
    txn["transfer"] = transfer  # for do_create_transfer's answer (not stored)


async def _notify_recipient(wallet: Wallet, transfer: dict, sender: dict | None) -> None:
    """``money_received`` for the recipient (once per transfer, also when the hook reruns)."""
    ctx = wallet.messaging
    sender = sender or {}
    name = sender.get("display_name") or sender.get("username") or "Someone"
    amount = format_amount(transfer["amount"], transfer["currency"])
    # Only the recipient's own member document (muted_in reads every member of the group).
    member = await ctx.members.get_member(transfer["conversation_id"], transfer["recipient_id"])
    await notifications.do_notify(
        ctx,
        transfer["recipient_id"],
        "money_received",
        title=f"{name} sent you {amount}",
        body=transfer.get("note") or "Accept it in the chat",
        source=f"transfer:{transfer['_id']}",
        silent=bool((member or {}).get("muted")),
        conversation_id=transfer["conversation_id"],
        actor_id=transfer["sender_id"],
    )


async def _card_of(wallet: Wallet, transfer: dict) -> dict:
    recipient = await wallet.messaging.users.get_user(transfer["recipient_id"])
    return _card(transfer, recipient)


def _card(transfer: dict, recipient: dict | None) -> dict:
    name = (recipient or {}).get("display_name") or (recipient or {}).get("username", "")
    status = {
        "pending": "Waiting for the recipient to accept",
        "accepted": "Accepted",
        "returned": "Returned to the sender",
    }[transfer["status"]]
    card: dict[str, Any] = {
        "title": f"Transfer {format_amount(transfer['amount'], transfer['currency'])}",
        "fields": [{"label": "To", "value": name}, {"label": "Status", "value": status}],
    }
    if transfer.get("note"):
        card["text"] = transfer["note"]
    if transfer["status"] == "pending":
        card["buttons"] = [{"action_id": ACCEPT_ACTION, "label": "Accept", "style": "primary"}]
    return card


async def get_transfer(wallet: Wallet, user_id: str, transfer_id: str) -> dict:
    transfer = await wallet.transfers.get_transfer(transfer_id)
    if transfer is None or user_id not in (transfer["sender_id"], transfer["recipient_id"]):
        raise AppError("not_found", "no such transfer", status=404)
    return transfer_view(transfer)


# The card is posted a moment before its transfer row (``_on_created``): a button pressed in that
# instant waits this long, in steps, for the row before the answer is "not found".
CARD_BEFORE_ROW_WAIT = (0.02, 0.05, 0.1, 0.2)


async def _pressed_transfer(wallet: Wallet, transfer_id: str) -> dict | None:
    transfer = await wallet.transfers.get_transfer(transfer_id)
    for delay in CARD_BEFORE_ROW_WAIT:
        if transfer is not None:
            break
        await asyncio.sleep(delay)
        transfer = await wallet.transfers.get_transfer(transfer_id)
    return transfer


async def do_accept(wallet: Wallet, user_id: str, transfer_id: str) -> dict:
    """The recipient takes the money."""
    transfer = await _pressed_transfer(wallet, transfer_id)
    if transfer is None or user_id != transfer["recipient_id"]:
        raise AppError("not_found", "no transfer to you with that id", status=404)
    if transfer["status"] == "pending" and transfer["expires_at"] <= now_ms():
        await do_settle(wallet, transfer, "return")
        raise AppError("transfer_expired", "this transfer expired and went back", status=409)
    return await do_settle(wallet, transfer, "accept")


async def do_return(wallet: Wallet, user_id: str, transfer_id: str) -> dict:
    """The recipient sends the money back."""
    transfer = await _pressed_transfer(wallet, transfer_id)
    if transfer is None or user_id != transfer["recipient_id"]:
        raise AppError("not_found", "no transfer to you with that id", status=404)
    return await do_settle(wallet, transfer, "return")


async def do_settle(wallet: Wallet, transfer: dict, outcome: str) -> dict:
    if transfer["status"] != "pending":
        raise _settled(transfer)
    to = transfer["recipient_id"] if outcome == "accept" else transfer["sender_id"]
    try:
        await wallet.ledger.post(
            f"transfer-settle:{transfer['_id']}",
            f"transfer_{outcome}",
            transfer["currency"],
            [
                Leg(hold_account(f"transfer:{transfer['_id']}"), -transfer["amount"]),
                Leg(user_account(to, transfer["currency"]), transfer["amount"]),
            ],
            {
                "transfer_id": transfer["_id"],
                "sender_id": transfer["sender_id"],
                "recipient_id": transfer["recipient_id"],
                "conversation_id": transfer["conversation_id"],
            },
        )
    except AppError as exc:
        if exc.code != "idempotency_key_reused":
            raise
        # Settled the other way (accepted while it was being returned, or the reverse).
        raise _settled(await wallet.transfers.get_transfer(transfer["_id"]) or transfer) from None
    settled = await wallet.transfers.get_transfer(transfer["_id"])
    assert settled is not None
    return transfer_view(settled)


def _settled(transfer: dict) -> AppError:
    return AppError(
        "transfer_settled",
        f"this transfer was {transfer['status']} already",
        status=409,
        details={"status": transfer["status"]},
    )


async def _on_settled(wallet: Wallet, txn: dict) -> None:
    status = "accepted" if txn["kind"] == "transfer_accept" else "returned"
    transfer_id = txn["memo"]["transfer_id"]
    await wallet.transfers.settle(transfer_id, status, txn.get("applied_at") or now_ms())
    transfer = await wallet.transfers.get_transfer(transfer_id)
    if transfer is not None and transfer.get("message_id"):
        await cards.do_update_wallet_message(
            wallet.messaging,
            transfer["conversation_id"],
            transfer["message_id"],
            await _card_of(wallet, transfer),
        )


async def do_expire_due(wallet: Wallet) -> int:
    """Return every transfer nobody accepted in time (run by the job loop on every node)."""
    returned = 0
    for transfer in await wallet.transfers.get_due(now_ms()):
        try:
            await do_settle(wallet, transfer, "return")
            returned += 1
        except AppError as exc:
            if exc.code not in ("transfer_settled", "in_progress"):
                raise
    return returned
