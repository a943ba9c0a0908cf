"""``payments.*``: an app can only *ask* a user for money. ``payments.request`` records the order
and asks the user; the wallet moves money when the user confirms, and the outcome reaches the app
as a signed event (``miniapps.host.payments``). With ``capture: false`` the money waits in a hold
the app then captures or voids (``wallet.actions.holds``); ``payments.payout`` pays a person from
the app's own merchant balance (``wallet.actions.payouts``). No capability reads a balance."""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.errors import AppError
from wallet.actions import holds, payments, payouts, transfer_requests

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


async def capture(host: MiniappHost, call: Call, params: dict) -> dict:
    return await holds.do_capture(
        _wallet(host), call.app_id, params.get("payment_id"), params.get("amount")
    )


async def void(host: MiniappHost, call: Call, params: dict) -> dict:
    return await holds.do_void(_wallet(host), call.app_id, params.get("payment_id"))


async def payout(host: MiniappHost, call: Call, params: dict) -> dict:
    wallet = _wallet(host)
    # The app names the person by its per-app id; one it never saw is nobody to it.
    user_id = await host.identity.app_users.get_user_id(call.app_id, params["user_id"])
    if user_id is None:
        raise AppError("not_found", "this app knows no such user", status=404)
    return await payouts.do_payout(
        wallet,
        app_id=call.app_id,
        app_name=host.apps_catalogue.apps[call.app_id].manifest["name"],
        user_id=user_id,
        params=params,
    )


async def request_transfer(host: MiniappHost, call: Call, params: dict) -> dict:
    app_users = host.identity.app_users
    payer_id = await app_users.get_user_id(call.app_id, params["from_user_id"])
    payee_id = await app_users.get_user_id(call.app_id, params["to_user_id"])
    if payer_id is None or payee_id is None:
        raise AppError("not_found", "this app knows no such user", status=404)
    return await transfer_requests.do_request_transfer(
        _wallet(host),
        app_id=call.app_id,
        app_name=host.apps_catalogue.apps[call.app_id].manifest["name"],
        conversation_id=call.conversation_id,
        payer_id=payer_id,
        payer_app_user_id=params["from_user_id"],
        payee_id=payee_id,
        payee_app_user_id=params["to_user_id"],
        params=params,
    )


# The service-money capabilities (issue 14), registered by ``capabilities.EFFECTS``.
EFFECTS = {
    "payments.capture": capture,
    "payments.void": void,
    "payments.payout": payout,
    "payments.request_transfer": request_transfer,
}
