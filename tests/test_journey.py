"""The journey of DESIGN.md §8, end to end, through the public API only (HTTP and Socket.IO),
growing with each built-in service. The one step outside the API is the operator's: making an
account an administrator (what `python run.py create-admin` does), who then grants roles in the
admin API.

So far (shop): one person signs in on the phone and the laptop; in a group with friends she
finds a product a merchant listed in the shop's web view, pays from the wallet after confirming
(the sheet reaches both devices), the order card appears on both, and "shipped" updates it in
place when the seller ships; the money waits in escrow until she confirms receipt, then the
seller is paid.
"""

from __future__ import annotations

from gateway.keys import MESSAGING
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, group, people
from tests.miniapps.shop.e2e_helpers import (
    add_product,
    button,
    command,
    events_of,
    grant_merchant,
    open_store,
    press,
    product_card_in,
    shop_cards,
    top_up,
)


def order_card(socket_events: list, cid: str) -> dict | None:
    """The latest version of the shop's order card in ``cid`` seen on one device."""
    latest = None
    for event, data in socket_events:
        message = data.get("message") if isinstance(data, dict) else None
        if event not in ("message.new", "message.updated") or not message:
            continue
        if message["conversation_id"] != cid or message.get("app_id") != "shop":
            continue
        if (message.get("card") or {}).get("title", "").startswith("Order "):
            latest = message
    return latest


def status_of(card_message: dict) -> str:
    """The order's state as its card's title says: "Order o-… · Paid · waiting for shipment"."""
    return card_message["card"]["title"].split(" · ", 1)[1]


async def test_a_day_in_aetherial(gateway):
    base = str(gateway.make_url("")).rstrip("/")
    mia, merchant, friend, admin = await people(base, 4)
    laptop = await mia.connect_device()
    try:
        await gateway.app[MESSAGING].users.collection.update_one(
            {"_id": admin.user_id}, {"$set": {"role": "admin"}}
        )
        await grant_merchant(admin, merchant)
        cid = await group(merchant, [mia, friend], "Weekend crew")
        status, body = await merchant.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "shop"}
        )
        assert status in (200, 201), body
        await open_store(merchant, cid, "Corner Shop")
        product = await add_product(
            merchant, cid, title="Travel Mug", price=1250, stock=5, description="Keeps it warm"
        )
        await top_up(mia, 5000)

        # Mia finds it (a typo still finds it) and buys from the card on her phone.
        await command(mia, cid, "/shop search travl mug")
        card = await product_card_in(merchant, cid, "Travel Mug", product["id"])
        buy = button(card, "product.buy")
        ack = await press(mia, cid, card["id"], "product.buy", buy["value"])
        assert ack["ok"], ack
        asks = await eventually(
            lambda: (
                [d for n, d in laptop.events if n == "payment.confirm_required"]
                and events_of(mia, "payment.confirm_required")
            ),
            what="the payment sheet on both devices",
        )
        payment = asks[0]["payment"]
        assert payment["amount"] == 1250 and payment["app_id"] == "shop"
        confirmed = await mia.socket.call("payment.confirm", {"payment_id": payment["id"]})
        assert confirmed["ok"] and confirmed["payment"]["status"] == "paid", confirmed

        on_phone = await eventually(lambda: order_card(mia.socket.events, cid), what="order")
        await eventually(lambda: order_card(laptop.events, cid), what="order on the laptop")
        assert status_of(on_phone) == "Paid · waiting for shipment"
        order_id = button(on_phone, "order.cancel")["value"]

        # The seller ships: the same card says so, on both of Mia's devices.
        await command(merchant, cid, f"/shop ship {order_id} TRACK-42")
        for device in (mia.socket.events, laptop.events):
            await eventually(
                lambda device=device: status_of(order_card(device, cid)) == "Shipped",
                what="the order card says shipped",
            )

        # Mia confirms receipt: the escrow pays the seller the price.
        shipped = order_card(mia.socket.events, cid)
        confirm = button(shipped, "order.confirm")
        assert (await press(mia, cid, shipped["id"], "order.confirm", confirm["value"]))["ok"]

        async def seller_paid():
            _status, wallet = await merchant.api.get("/api/v1/wallet")
            return any(b["currency"] == "USD" and b["amount"] == 1250 for b in wallet["balances"])

        await eventually(seller_paid, what="the seller paid out")
        status, wallet = await mia.api.get("/api/v1/wallet")
        assert [b["amount"] for b in wallet["balances"] if b["currency"] == "USD"] == [3750]
        assert shop_cards(friend, cid)  # the group saw the shop's cards too
    finally:
        await laptop.close()
        await close_all([mia, merchant, friend, admin])
