"""Transfer requests: an app asks one person to pay another (splitting a bill).

``payments.request_transfer`` is a payment order of ``kind: transfer_request`` with a
``payee_id``: the payer is asked on the same sheet as a payment (``payment.confirm_required``,
the view names the payee and the note), confirms or declines through the same REST routes and
socket events, and the same fenced confirmation (``payments.charge``) moves the money payer →
payee, once. The app hears ``transfer_request.paid`` / ``.declined`` / ``.expired``, signed,
through the payment outbox. The app never touches the money: it is the payer's decision, and
the app cannot refund, capture or void a transfer request.
"""

from __future__ import annotations

from typing import Any

from storage.errors import AppError
from wallet.actions import payments
from wallet.context import Wallet

NOTE_MAX = payments.DESCRIPTION_MAX


def check_transfer(payer_id: str, payee_id: str, params: dict[str, Any]) -> dict[str, Any]:
    if payer_id == payee_id:
        raise AppError("same_user", "a transfer request needs two different people")
    note = params.get("note")
    if note is not None and (not isinstance(note, str) or len(note.strip()) > NOTE_MAX):
        raise AppError("invalid_params", f"note must be text of at most {NOTE_MAX} characters")
    return {"note": " ".join((note or "").split())}


async def do_request_transfer(
    wallet: Wallet,
    *,
    app_id: str,
    app_name: str,
    conversation_id: str,
    payer_id: str,
    payer_app_user_id: str,
    payee_id: str,
    payee_app_user_id: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Ask ``payer_id`` to pay ``payee_id``; returns ``{payment_id, status}`` (the payer's
    confirmation, or their refusal, arrives later as an event). The same ``transfer_ref`` with
    the same people and amount answers the same request; otherwise ``transfer_ref_reused``."""
    checked = check_transfer(payer_id, payee_id, params)
    try:
        return await payments.do_request(
            wallet,
            app_id=app_id,
            app_name=app_name,
            user_id=payer_id,
            app_user_id=payer_app_user_id,
            conversation_id=conversation_id,
            params={
                "amount": params.get("amount"),
                "currency": params.get("currency"),
                "description": checked["note"] or f"Transfer request from {app_name}",
                "order_ref": params.get("transfer_ref"),
            },
            transfer={
                "kind": payments.TRANSFER_REQUEST,
                "payee_id": payee_id,
                "payee_app_user_id": payee_app_user_id,
                "note": checked["note"],
            },
        )
    except AppError as exc:
        if exc.code == "order_ref_reused":
            raise AppError(
                "transfer_ref_reused", "this transfer_ref was used for another request"
            ) from None
        raise
