"""The shop's carts and checkout (miniapps/shop/cart.py) in the SDK simulator: cart lines and
their bounds, checkout with stock reservation, re-pricing, sold out, expiry, payment outcomes,
the pay-after-expiry race, and 200 buyers at once on a stock of 50."""

from __future__ import annotations

import asyncio

import pytest

from sdk.errors import AppCallError
from sdk.simulator import HostRefused
from tests.miniapps.shop.orders_fixtures import MUG, STORE_ID, Shop, open_shop


@pytest.fixture
async def shop() -> Shop:
    """Mira's store with a blue mug (12.50 USD, 5 in stock), Ben the buyer, a chat of both."""
    return await open_shop()


def cart_lines(shop: Shop, user=None) -> list[dict]:
    cart = shop.sim.storage("carts").get((user or shop.buyer).id) or {}
    return cart.get("lines") or []


def qtys(shop: Shop, user=None) -> dict[str, int]:
    return {line["product_id"]: line["qty"] for line in cart_lines(shop, user)}


async def cart_card(shop: Shop, user=None) -> str:
    await shop.sim.command(user or shop.buyer, shop.chat, "/shop cart")
    message = shop.sim.messages(shop.chat)[-1]
    assert message["type"] == "card" and message["card"]["title"] == "Your cart"
    return message["id"]


def button(shop: Shop, message_id: str, action_id: str, index: int = 0) -> dict:
    return [b for b in shop.sim.card(message_id)["buttons"] if b["action_id"] == action_id][index]


async def checkout_cart(shop: Shop, user=None) -> str | None:
    """Press the cart card's first Check out; the checkout it made (None: none)."""
    card = await cart_card(shop, user)
    before = set(shop.checkouts())
    await shop.sim.press(user or shop.buyer, card, "cart.checkout")
    made = set(shop.checkouts()) - before
    return made.pop() if made else None


# --- the cart --------------------------------------------------------------------------------


async def test_add_to_cart_button_adds_one_each_press(shop):
    card = await shop.product_card(MUG)
    await shop.sim.press(shop.buyer, card, "cart.add")
    await shop.sim.press(shop.buyer, card, "cart.add")
    assert qtys(shop) == {MUG: 2}
    assert shop.said().startswith("Added Blue mug — 2 in your cart ($25.00 from this store)")
    assert shop.stock() == 5  # a cart reserves nothing
    assert shop.checkouts() == {}


async def test_cart_card_lists_lines_total_and_buttons(shop):
    await shop.product("p-cup", title="Tea cup", price=400)
    await shop.command(shop.buyer, "/shop cart add p-mug 2")
    await shop.command(shop.buyer, "/shop cart add p-cup")
    card = shop.sim.card(await cart_card(shop))
    assert card["text"].splitlines() == [
        "Mira's Market:",
        "1. 2 × Blue mug — $25.00",  # noqa: RUF001
        "2. 1 × Tea cup — $4.00",  # noqa: RUF001
    ]
    assert card["fields"] == [{"label": "Total · Mira's Market", "value": "$29.00"}]
    assert [(b["action_id"], b["value"]) for b in card["buttons"]] == [
        ("cart.checkout", f"{shop.buyer.id}|{STORE_ID}|USD"),
        ("cart.remove", f"{shop.buyer.id}|p-mug"),
        ("cart.remove", f"{shop.buyer.id}|p-cup"),
    ]


async def test_empty_cart_is_said_privately(shop):
    assert (
        await shop.command(shop.buyer, "/shop cart") == "Your cart is empty. /shop opens the shop."
    )
    assert shop.sim.messages(shop.chat) == []


@pytest.mark.parametrize("qty", ["0", "-1", "1000000", "abc", "100", "2.5", ""])
async def test_bad_quantities_are_refused_and_nothing_is_written(shop, qty):
    said = await shop.command(shop.buyer, f"/shop cart add p-mug '{qty}'")
    assert said == "Quantity must be a whole number from 1 to 99."
    assert shop.sim.storage("carts") == {}


async def test_quantity_bounds_per_line(shop):
    await shop.product("p-pen", title="Pen", price=100, stock=500)
    assert (await shop.command(shop.buyer, "/shop cart add p-pen 99")).startswith("Added Pen")
    assert await shop.command(shop.buyer, "/shop cart add p-pen 1") == (
        "At most 99 of one item in a cart."
    )
    assert qtys(shop) == {"p-pen": 99}


async def test_more_than_stock_and_sold_out_are_refused(shop):
    assert await shop.command(shop.buyer, "/shop cart add p-mug 6") == "Only 5 of Blue mug left."
    await shop.product("p-gone", title="Vase", stock=0)
    assert await shop.command(shop.buyer, "/shop cart add p-gone") == "Vase is sold out."
    assert cart_lines(shop) == []


async def test_a_cart_holds_at_most_30_items(shop):
    for n in range(31):
        await shop.product(f"p-item{n}", title=f"Item {n}", price=100)
    for n in range(30):
        await shop.command(shop.buyer, f"/shop cart add p-item{n}")
    assert await shop.command(shop.buyer, "/shop cart add p-item30") == (
        "A cart holds at most 30 different items."
    )
    assert len(cart_lines(shop)) == 30


USAGE = (
    "Usage: /shop cart · /shop cart add <product>[:<option>] [1-99] · "
    "/shop cart remove <product>[:<option>]"
)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("/shop cart add", USAGE),
        ("/shop cart add p-mug 1 2", USAGE),
        ("/shop cart remove p-mug 1", USAGE),
        ("/shop cart empty", USAGE),
        ("/shop cart add mug", "'mug' is not a product id (like p-abc123 or p-abc123:v1)."),
        ("/shop cart add p-nothing", "p-nothing is no longer available."),
        ("/shop cart remove p-mug", "That item is not in your cart."),
    ],
)
async def test_bad_cart_commands(shop, text, said):
    assert await shop.command(shop.buyer, text) == said
    assert shop.sim.storage("carts") == {}


async def test_hidden_and_deleted_products_cannot_go_in_the_cart(shop):
    await shop.product("p-hidden", title="Secret", visible=False)
    await shop.product("p-deleted", title="Old")
    await shop.change_product("p-deleted", deleted=True)
    assert await shop.command(shop.buyer, "/shop cart add p-hidden") == (
        "p-hidden is no longer available."
    )
    assert await shop.command(shop.buyer, "/shop cart add p-deleted") == (
        "p-deleted is no longer available."
    )
    assert cart_lines(shop) == []


async def test_variants_need_a_known_option(shop):
    variants = [{"id": "v1", "label": "M / red", "price": 2000}, {"id": "v2", "label": "L"}]
    await shop.product("p-tee", title="Tee", variants=variants, stock={"v1": 3, "v2": 0})
    assert await shop.command(shop.buyer, "/shop cart add p-tee") == (
        "Tee comes in options: pick one on its card."
    )
    assert await shop.command(shop.buyer, "/shop cart add p-tee:v9") == "Tee has no option 'v9'."
    assert await shop.command(shop.buyer, "/shop cart add p-mug:v1") == "Blue mug has no options."
    assert await shop.command(shop.buyer, "/shop cart add p-tee:v2") == "Tee (L) is sold out."
    await shop.command(shop.buyer, "/shop cart add p-tee:v1 2")
    [line] = cart_lines(shop)
    assert (line["variant_id"], line["variant_label"], line["unit_price"], line["qty"]) == (
        "v1",
        "M / red",
        2000,
        2,
    )


async def test_bad_button_values_are_refused(shop):
    card = await shop.product_card(MUG)
    for value in ("", "x", "p-mug:v1:3", "p-mug:" + "v" * 40):
        await shop.sim.press(shop.buyer, card, "cart.add", value)
        assert shop.said() == "That is not a product."
        await shop.sim.press(shop.buyer, card, "product.buy", value)
        assert shop.said() == "That is not a product."
    assert shop.sim.storage("carts") == {} and shop.checkouts() == {}


async def test_remove_button_updates_the_cart_card_in_place(shop):
    await shop.product("p-cup", title="Tea cup", price=400)
    await shop.command(shop.buyer, "/shop cart add p-mug")
    await shop.command(shop.buyer, "/shop cart add p-cup")
    card = await cart_card(shop)
    await shop.sim.press(
        shop.buyer, card, "cart.remove", button(shop, card, "cart.remove")["value"]
    )
    assert qtys(shop) == {"p-cup": 1}
    assert "Blue mug" not in shop.sim.card(card)["text"]
    await shop.sim.press(shop.buyer, card, "cart.remove", f"{shop.buyer.id}|p-cup")
    assert shop.sim.card(card)["text"] == "Your cart is empty."
    assert cart_lines(shop) == []


async def test_someone_elses_cart_card_buttons_are_refused(shop):
    await shop.command(shop.buyer, "/shop cart add p-mug")
    card = await cart_card(shop)
    await shop.command(shop.seller, "/shop cart add p-mug")
    for action_id in ("cart.remove", "cart.checkout"):
        await shop.sim.press(shop.seller, card, action_id)
        assert shop.said(shop.seller) == "That is someone else's cart: /shop cart shows yours."
    assert qtys(shop, shop.seller) == {MUG: 1} and qtys(shop) == {MUG: 1}
    assert shop.checkouts() == {}
    await shop.sim.press(shop.buyer, card, "cart.checkout", "not|a")
    assert shop.said() == "That button is not a cart's."


# --- checkout --------------------------------------------------------------------------------


async def test_cart_checkout_reserves_asks_payment_and_pay_makes_the_order(shop):
    await shop.product("p-cup", title="Tea cup", price=400)
    await shop.command(shop.buyer, "/shop cart add p-mug 2")
    await shop.command(shop.buyer, "/shop cart add p-cup 3")
    checkout_id = await checkout_cart(shop)
    checkout = shop.checkouts()[checkout_id]
    assert (checkout["state"], checkout["total"], checkout["currency"]) == ("reserved", 3700, "USD")
    assert (shop.stock(), shop.stock("p-cup")) == (3, 2)
    assert shop.said() == "Reserved for 15 minutes: confirm the payment of $37.00."
    payment = shop.payment_for(checkout_id)
    assert (payment["amount"], payment["status"], payment["description"]) == (
        3700,
        "requested",
        "Shop: 5 items",
    )
    [timer] = shop.sim.pending_timers()
    assert (timer["name"], timer["key"]) == ("reservation.expire", checkout_id)
    assert timer["due_at"] == shop.sim.now + 15 * 60_000
    checkout_card = shop.sim.card(checkout["message_id"])
    assert [b["action_id"] for b in checkout_card["buttons"]] == ["checkout.pay", "checkout.cancel"]

    order = await shop.pay(checkout_id)
    assert order["state"] == "paid" and order["total"] == 3700 and order["source"] == "cart"
    assert [(x["product_id"], x["qty"], x["unit_price"]) for x in order["lines"]] == [
        ("p-mug", 2, 1250),
        ("p-cup", 3, 400),
    ]
    assert shop.checkouts()[checkout_id]["state"] == "paid"
    assert shop.checkouts()[checkout_id]["order_ids"] == [order["id"]]
    assert cart_lines(shop) == []  # the bought lines left the cart
    assert shop.sim.pending_timers() == []  # the expiry was cancelled
    assert shop.sim.card(checkout["message_id"])["title"] == "Checkout · paid"
    assert shop.sim.messages(shop.chat)[-1]["id"] == order["message_id"]
    assert (shop.stock(), shop.stock("p-cup")) == (3, 2)  # sold: stays taken


async def test_lines_added_while_paying_stay_in_the_cart(shop):
    await shop.command(shop.buyer, "/shop cart add p-mug 2")
    checkout_id = await checkout_cart(shop)
    await shop.command(shop.buyer, "/shop cart add p-mug")  # one more while the sheet is open
    await shop.pay(checkout_id)
    assert qtys(shop) == {MUG: 1}


async def test_a_changed_price_reprices_the_cart_and_asks_to_confirm(shop):
    await shop.command(shop.buyer, "/shop cart add p-mug 2")
    await shop.change_product(price=1500)
    card = await cart_card(shop)
    await shop.sim.press(shop.buyer, card, "cart.checkout")
    # Nothing reserved, nothing asked: the buyer sees the new total first.
    assert shop.checkouts() == {} and shop.sim.payments == {} and shop.stock() == 5
    assert cart_lines(shop)[0]["unit_price"] == 1500
    confirm = shop.sim.card(card)
    assert confirm["title"] == "Confirm the new total"
    assert confirm["text"].startswith(
        "Prices changed since you added them: Blue mug: $12.50 → $15.00"
    )
    [ok] = confirm["buttons"]
    assert (ok["action_id"], ok["label"], ok["value"]) == (
        "cart.checkout",
        "Confirm new total $30.00",
        f"{shop.buyer.id}|{STORE_ID}|USD|3000",
    )
    await shop.sim.press(shop.buyer, card, "cart.checkout")
    [checkout] = shop.checkouts().values()
    assert (checkout["total"], checkout["lines"][0]["unit_price"]) == (3000, 1500)
    assert shop.stock() == 3


async def test_confirming_a_total_that_moved_again_asks_again(shop):
    await shop.command(shop.buyer, "/shop cart add p-mug")
    await shop.change_product(price=1500)
    card = await cart_card(shop)
    await shop.sim.press(shop.buyer, card, "cart.checkout")
    await shop.command(shop.buyer, "/shop cart add p-mug")  # the cart changed after the ask
    await shop.sim.press(
        shop.buyer, card, "cart.checkout", button(shop, card, "cart.checkout")["value"]
    )
    assert shop.checkouts() == {} and shop.stock() == 5
    assert shop.sim.card(card)["buttons"][0]["label"] == "Confirm new total $30.00"
    assert shop.sim.card(card)["text"].startswith("Your cart changed since: check the new total.")


async def test_a_hidden_product_at_checkout_is_named_and_nothing_is_written(shop):
    await shop.product("p-cup", title="Tea cup", price=400)
    await shop.command(shop.buyer, "/shop cart add p-mug")
    await shop.command(shop.buyer, "/shop cart add p-cup")
    await shop.change_product("p-cup", visible=False)
    card = await cart_card(shop)
    carts = shop.sim.storage("carts")
    await shop.sim.press(shop.buyer, card, "cart.checkout")
    assert shop.said() == ("Tea cup is no longer available. Remove it from your cart to check out.")
    assert shop.checkouts() == {} and shop.sim.payments == {}
    assert (shop.stock(), shop.stock("p-cup")) == (5, 5)
    assert shop.sim.storage("carts") == carts


async def test_sold_out_line_gives_back_what_the_checkout_took(shop):
    await shop.product("p-cup", title="Tea cup", price=400, stock=3)
    await shop.command(shop.buyer, "/shop cart add p-mug 2")
    await shop.command(shop.buyer, "/shop cart add p-cup 3")
    await shop.bought(shop.seller, "p-cup")  # someone buys a cup meanwhile: 2 left
    assert shop.stock("p-cup") == 2
    checkout_id = await checkout_cart(shop)
    assert checkout_id is None
    assert shop.said() == "Sold out: Tea cup. Nothing was reserved."
    assert (shop.stock(), shop.stock("p-cup")) == (5, 2)
    assert [p["user"] for p in shop.sim.payments.values()] == ["mira"]


async def test_checkout_per_store_and_currency(shop):
    await shop.put("stores", "st-other", {"owner": shop.seller.id, "name": "Other"})
    await shop.product("p-far", title="Far mug", price=900, store_id="st-other")
    await shop.command(shop.buyer, "/shop cart add p-mug")
    await shop.command(shop.buyer, "/shop cart add p-far")
    card = await cart_card(shop)
    checkouts = [b for b in shop.sim.card(card)["buttons"] if b["action_id"] == "cart.checkout"]
    assert [b["value"].split("|")[1] for b in checkouts] == [STORE_ID, "st-other"]
    await shop.sim.press(shop.buyer, card, "cart.checkout", checkouts[1]["value"])
    [checkout] = shop.checkouts().values()
    assert (checkout["store_id"], checkout["total"]) == ("st-other", 900)
    await shop.pay(checkout["id"])
    assert qtys(shop) == {MUG: 1}  # the other store's line is still there


# --- Buy -------------------------------------------------------------------------------------


async def test_buy_is_a_one_line_checkout(shop):
    checkout_id = await shop.buy()
    checkout = shop.checkouts()[checkout_id]
    assert checkout["lines"] == [
        {
            "product_id": MUG,
            "variant_id": None,
            "variant_label": None,
            "qty": 1,
            "unit_price": 1250,
            "title": "Blue mug",
        }
    ]
    assert shop.payment_for(checkout_id)["description"] == "Shop: 1 × Blue mug"  # noqa: RUF001
    assert shop.stock() == 4
    assert shop.sim.subscription_asks == []  # ben has opted in already
    order = await shop.pay(checkout_id)
    assert order["source"] == "buy" and cart_lines(shop) == []


async def test_buy_asks_for_service_messages(shop):
    ann = shop.sim.user("ann", notifications=False)
    shop.sim.add_member(shop.chat, ann)
    await shop.buy(ann)
    assert shop.sim.subscription_asks == [ann]


async def test_buy_a_variant(shop):
    variants = [{"id": "v1", "label": "M", "price": 2000}]
    await shop.product("p-tee", title="Tee", variants=variants, stock={"v1": 1})
    checkout_id = await shop.buy(value="p-tee:v1")
    assert shop.checkouts()[checkout_id]["total"] == 2000 and shop.stock("p-tee", "v1") == 0
    assert await shop.buy(value="p-tee:v1") is None
    assert shop.said() == "Sold out: Tee (M). Nothing was reserved."


async def test_buy_a_hidden_product_is_refused(shop):
    await shop.change_product(visible=False)
    assert await shop.buy() is None
    assert shop.said() == "p-mug is no longer available."
    assert shop.stock() == 5


# --- after the reservation ----------------------------------------------------------------------


async def test_reservation_expires_after_15_minutes_and_the_stock_comes_back(shop):
    checkout_id = await shop.buy()
    await shop.sim.advance(minutes=14)
    assert shop.checkouts()[checkout_id]["state"] == "reserved" and shop.stock() == 4
    fired = await shop.sim.advance(minutes=2)
    assert [f["name"] for f in fired] == ["reservation.expire"]
    checkout = shop.checkouts()[checkout_id]
    assert (checkout["state"], checkout["released_because"]) == ("released", "reservation_expired")
    assert shop.stock() == 5
    card = shop.sim.card(checkout["message_id"])
    assert card["title"] == "Checkout · reservation released" and "buttons" not in card
    assert "15 minutes ran out" in card["text"]


@pytest.mark.parametrize("outcome", ["cancel", "expire"])
async def test_a_failed_payment_releases_the_stock_once(shop, outcome):
    checkout_id = await shop.buy()
    payment = shop.payment_for(checkout_id)
    if outcome == "cancel":
        await shop.sim.cancel_payment(shop.buyer, payment["id"])
    else:
        await shop.sim.expire_payment(payment["id"])
    reason = "cancelled" if outcome == "cancel" else "expired"
    checkout = shop.checkouts()[checkout_id]
    assert (checkout["state"], checkout["released_because"]) == ("released", reason)
    assert shop.stock() == 5
    assert shop.sim.pending_timers() == []
    await shop.sim.advance(minutes=16)  # nothing left to release
    [event] = [e for e in shop.sim.payment_events if e["name"] == "payment.failed"]
    await shop.sim.deliver_event(
        "payment.failed", event["payload"], user=shop.buyer, conversation=shop.chat
    )
    assert shop.stock() == 5 and shop.orders() == {}


async def test_cancel_button_releases_and_only_the_buyer_may_press(shop):
    checkout_id = await shop.buy()
    message_id = shop.checkouts()[checkout_id]["message_id"]
    await shop.sim.press(shop.seller, message_id, "checkout.cancel")
    assert shop.said(shop.seller) == "No such checkout."
    await shop.sim.press(shop.buyer, message_id, "checkout.cancel", "co-0000000000000000")
    assert shop.said() == "No such checkout."
    assert shop.stock() == 4
    await shop.sim.press(shop.buyer, message_id, "checkout.cancel")
    assert shop.said() == "Cancelled: nothing was bought and the items are back in stock."
    assert shop.stock() == 5 and shop.checkouts()[checkout_id]["state"] == "released"
    assert shop.sim.pending_timers() == []
    with pytest.raises(HostRefused):  # the card has no buttons any more
        await shop.sim.press(shop.buyer, message_id, "checkout.cancel")


async def test_pay_button_reopens_the_same_payment(shop):
    checkout_id = await shop.buy()
    message_id = shop.checkouts()[checkout_id]["message_id"]
    await shop.sim.press(shop.buyer, message_id, "checkout.pay")
    assert shop.said() == "Confirm the payment in the window that just opened."
    assert len(shop.sim.payments) == 1
    await shop.sim.press(shop.seller, message_id, "checkout.pay")
    assert shop.said(shop.seller) == "No such checkout."


async def test_pay_after_expiry_takes_the_stock_again_when_it_is_there(shop):
    checkout_id = await shop.buy()
    await shop.sim.advance(minutes=16)
    assert shop.stock() == 5
    order = await shop.pay(checkout_id)
    assert order["state"] == "paid" and shop.stock() == 4
    assert shop.checkouts()[checkout_id]["state"] == "paid"


async def test_pay_after_expiry_when_sold_out_is_refunded_in_full(shop):
    await shop.put("stock", "p-mug:-", {"left": 1})
    checkout_id = await shop.buy()
    await shop.sim.advance(minutes=16)
    await shop.bought(shop.seller)  # the unit went to someone else
    assert shop.stock() == 0
    payment = shop.payment_for(checkout_id)
    await shop.sim.confirm_payment(shop.buyer, payment["id"])
    assert shop.payment_for(checkout_id)["refunded"] == 1250
    assert shop.checkouts()[checkout_id]["state"] == "refunded"
    assert [o["buyer"] for o in shop.orders().values()] == [shop.seller.id]
    assert shop.stock() == 0
    assert "refunded in full" in shop.said()
    assert "refunded in full" in shop.sim.notifications(shop.buyer)[-1]
    # The event again: no second refund, no order.
    [event] = [
        e
        for e in shop.sim.payment_events
        if e["name"] == "payment.succeeded" and e["payload"]["payment_id"] == payment["id"]
    ]
    await shop.sim.deliver_event(
        "payment.succeeded", event["payload"], user=shop.buyer, conversation=shop.chat
    )
    assert shop.payment_for(checkout_id)["refunded"] == 1250 and len(shop.orders()) == 1


async def test_the_same_payment_event_twice_makes_one_order(shop):
    checkout_id = await shop.buy()
    order = await shop.pay(checkout_id)
    [event] = [e for e in shop.sim.payment_events if e["name"] == "payment.succeeded"]
    await asyncio.gather(
        *(
            shop.sim.deliver_event(
                "payment.succeeded", event["payload"], user=shop.buyer, conversation=shop.chat
            )
            for _ in range(3)
        )
    )
    assert list(shop.orders()) == [order["id"]]
    assert shop.stock() == 4
    titles = [m["card"]["title"] for m in shop.sim.messages(shop.chat) if m["type"] == "card"]
    assert [t for t in titles if t.startswith("Order")] == [
        f"Order {order['id']} · Paid · waiting for shipment"
    ]


async def test_a_forged_payment_event_is_ignored(shop):
    checkout_id = await shop.buy()
    payment = shop.payment_for(checkout_id)
    forged = {
        "payment_id": payment["id"],
        "order_ref": checkout_id,
        "amount": 1250,
        "currency": "USD",
        "user_id": shop.buyer.id,
        "status": "succeeded",
        "at": 0,
        "signature": "v1=" + "0" * 64,
    }
    await shop.sim.deliver_event(
        "payment.succeeded", forged, user=shop.buyer, conversation=shop.chat
    )
    assert shop.checkouts()[checkout_id]["state"] == "reserved" and shop.orders() == {}


# --- concurrency -----------------------------------------------------------------------------


async def test_200_buyers_at_once_on_a_stock_of_50(shop):
    await shop.put("stock", "p-mug:-", {"left": 50})
    card = await shop.product_card(MUG)
    buyers = [shop.sim.user(f"buyer{n}") for n in range(200)]
    for buyer in buyers:
        shop.sim.add_member(shop.chat, buyer)
    await asyncio.gather(*(shop.sim.press(buyer, card, "product.buy") for buyer in buyers))
    checkouts = shop.checkouts()
    assert len(checkouts) == 50 and shop.stock() == 0
    assert len({c["buyer"] for c in checkouts.values()}) == 50
    said = [shop.said(buyer) for buyer in buyers]
    assert said.count("Sold out: Blue mug. Nothing was reserved.") == 150
    assert len(shop.sim.payments) == 50
    # Half of them pay; the others let it run out: exactly the unpaid units come back.
    paying = [c for c in checkouts.values()][:25]
    by_id = {buyer.id: buyer for buyer in buyers}
    await asyncio.gather(*(shop.pay(c["id"], by_id[c["buyer"]]) for c in paying))
    await shop.sim.advance(minutes=16)
    assert shop.stock() == 25
    assert len(shop.orders()) == 25
    states = [c["state"] for c in shop.checkouts().values()]
    assert (states.count("paid"), states.count("released")) == (25, 25)


async def test_release_races_are_settled_once(shop):
    checkout_id = await shop.buy()
    message_id = shop.checkouts()[checkout_id]["message_id"]
    payment = shop.payment_for(checkout_id)
    results = await asyncio.gather(
        shop.sim.press(shop.buyer, message_id, "checkout.cancel"),
        shop.sim.cancel_payment(shop.buyer, payment["id"]),
        shop.sim.advance(minutes=16),
        return_exceptions=True,
    )
    assert not [r for r in results if isinstance(r, AppCallError)]
    assert shop.stock() == 5 and shop.checkouts()[checkout_id]["state"] == "released"
