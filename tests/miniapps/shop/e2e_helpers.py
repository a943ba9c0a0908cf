"""The shop through the running platform: what a merchant's web view and a buyer's chat do,
over the public HTTP API and Socket.IO."""

from __future__ import annotations

import itertools
from typing import Any

from tests.helpers import eventually
from tests.messaging.chat_helpers import app_cards

_ids = itertools.count(1)


async def view(
    person, cid: str, name: str, params: dict | None = None, *, app: str = "shop"
) -> Any:
    """Open an app's web view (the shop's by default) in ``cid`` as ``person`` and call one of
    its views, as the page does (``Aetherial.call``): the launch token, then
    ``POST /api/v1/webviews/call``."""
    status, launch = await person.api.post(f"/api/v1/conversations/{cid}/apps/{app}/launch")
    assert status in (200, 201), launch
    status, body = await person.api.post(
        "/api/v1/webviews/call",
        json={"token": launch["token"], "name": name, "params": params or {}},
    )
    assert status == 200, (name, status, body)
    return body["result"]


async def command(person, cid: str, text: str) -> None:
    ack = await person.socket.call(
        "message.send", {"conversation_id": cid, "client_msg_id": f"s{next(_ids)}", "text": text}
    )
    assert ack["ok"] and "routed_to" in ack, ack


async def press(person, cid: str, message_id: str, action_id: str, value: str | None) -> dict:
    return await person.socket.call(
        "miniapp.action",
        {
            "conversation_id": cid,
            "message_id": message_id,
            "action_id": action_id,
            "value": value,
        },
    )


def events_of(person, name: str) -> list[dict]:
    return [data for event, data in person.socket.events if event == name]


def shop_cards(person, cid: str) -> list[dict]:
    """The shop's cards in ``cid`` as ``person`` saw them, each at its latest version."""
    return app_cards(person, cid, "shop")


def button(card_message: dict, action_id: str) -> dict | None:
    for candidate in card_message["card"].get("buttons", []):
        if candidate.get("action_id") == action_id:  # a button opening the web view has none
            return candidate
    return None


def ephemerals(person, cid: str) -> list[str]:
    return [
        data.get("text") or (data.get("card") or {}).get("title", "")
        for data in events_of(person, "miniapp.ephemeral")
        if data["conversation_id"] == cid
    ]


async def grant_role(admin, person, app: str, role: str) -> None:
    """An administrator grants ``person`` an app role (the admin API)."""
    status, body = await admin.api.post(
        f"/api/v1/admin/miniapps/{app}/roles/{role}/users/{person.user_id}"
    )
    assert status in (200, 201), body


async def grant_merchant(admin, merchant) -> None:
    await grant_role(admin, merchant, "shop", "merchant")


async def open_store(merchant, cid: str, name: str) -> dict:
    return (await view(merchant, cid, "store.save", {"name": name}))["store"]


async def add_product(merchant, cid: str, **fields: Any) -> dict:
    params = {"currency": "USD", "description": "", **fields}
    return (await view(merchant, cid, "product.save", params))["product"]


async def product_card_in(merchant, cid: str, words: str, product_id: str) -> dict:
    """Post the product's card into ``cid`` with ``/shop search`` and return it."""
    await command(merchant, cid, f"/shop search {words}")

    def found():
        for message in shop_cards(merchant, cid):
            buy = button(message, "product.buy")
            if buy and (buy.get("value") or "").split(":")[0] == product_id:
                return message
        return None

    return await eventually(found, what=f"the card of {product_id}")


async def top_up(person, amount: int, currency: str = "USD") -> None:
    status, body = await person.api.post(
        "/api/v1/wallet/dev-topup", json={"amount": amount, "currency": currency}
    )
    assert status in (200, 201), body
