"""``payments.*``: an app can only *ask*. ``payments.request`` records the order and asks the
user; the wallet moves money when the user confirms, and the outcome reaches the app as a signed
event (``miniapps.host.payments``). No capability reads a balance."""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.errors import AppError
from wallet.actions import payments

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost


def _wallet(host: MiniappHost):
    if host.wallet is None:
        raise AppError("payments_unavailable", "payments are not available on this server")
    return host.wallet


async def request(host: MiniappHost, call: Call, params: dict) -> dict:
    return await payments.do_request(
        _wallet(host),
        app_id=call.app_id,
        app_name=host.apps_catalogue.apps[call.app_id].manifest["name"],
        user_id=call.user_id,
        app_user_id=call.app_user_id,
        conversation_id=call.conversation_id,
        params=params,
    )


async def refund(host: MiniappHost, call: Call, params: dict) -> dict:
    return await payments.do_refund(
        _wallet(host),
        call.app_id,
        params.get("payment_id"),
        params.get("amount"),
        params.get("refund_ref"),
    )
