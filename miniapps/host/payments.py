"""The ``payments.*`` capabilities and the signed payment events the host sends to apps.

An app can only *ask*: ``payments.request`` records the order and asks the user; the wallet moves
money when the user confirms. The outcome reaches the app as ``payment.succeeded`` /
``payment.failed``, signed with the app's own secret (``sdk.signing.verify_event``), so an app can
tell a real payment event from anything else. No capability reads a balance.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sdk.signing import sign_event
from storage.errors import AppError
from storage.mongo import now_ms

if TYPE_CHECKING:
    from miniapps.host.host import Call, MiniappHost


def _wallet(host: MiniappHost):
    if host.wallet is None:
        raise AppError("payments_unavailable", "payments are not available on this server")
    return host.wallet


async def request_payment(host: MiniappHost, call: Call, params: dict) -> dict:
    from wallet.actions import payments

    return await payments.do_request(
        _wallet(host),
        app_id=call.app_id,
        app_name=host.apps[call.app_id].manifest["name"],
        user_id=call.user_id,
        app_user_id=call.app_user_id,
        conversation_id=call.conversation_id,
        params=params,
    )


async def refund_payment(host: MiniappHost, call: Call, params: dict) -> dict:
    from wallet.actions import payments

    return await payments.do_refund(
        _wallet(host),
        call.app_id,
        params.get("payment_id"),
        params.get("amount"),
        params.get("refund_ref"),
    )


async def deliver_payment_event(
    host: MiniappHost, order: dict[str, Any], name: str, extra: dict[str, Any]
) -> None:
    """Tell the app that asked what became of its payment, as a signed event (in the
    background, like every event; the app dedups by ``payment_id``)."""
    entry = host.apps.get(order["app_id"])
    if entry is None:
        return
    payload = {
        "payment_id": order["_id"],
        "order_ref": order["order_ref"],
        "amount": order["amount"],
        "currency": order["currency"],
        "user_id": order["app_user_id"],
        "at": now_ms(),
        **extra,
    }
    payload["signature"] = sign_event(await host.remote.launch_secret(entry.app_id), payload)
    host.deliver_event(entry, order["user_id"], order["conversation_id"], name, payload)
