"""The signed payment events the host sends to apps (the ``payments.*`` capabilities are in
``capabilities/payments.py``).

The outcome of a payment reaches the app that asked as ``payment.succeeded`` /
``payment.failed``, signed with the app's own secret (``sdk.signing.verify_event``), so an app can
tell a real payment event from anything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sdk.signing import sign_event
from storage.mongo import now_ms

if TYPE_CHECKING:
    from miniapps.host.host import MiniappHost


async def deliver_payment_event(
    host: MiniappHost, order: dict[str, Any], name: str, extra: dict[str, Any]
) -> None:
    """Tell the app that asked what became of its payment, as a signed event (in the
    background, like every event; the app dedups by ``payment_id``). Delivered even when the
    app was since removed from the chat or switched off: the money moved, the app must know."""
    entry = host.apps_catalogue.apps.get(order["app_id"])
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
    host.invoker.invoke_later(
        entry,
        order["user_id"],
        order["conversation_id"],
        "event",
        {"name": name, "payload": payload},
        host_event=True,
    )
