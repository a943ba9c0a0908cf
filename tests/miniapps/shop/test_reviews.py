"""Reviews (miniapps/shop/reviews.py) in the SDK simulator: only the buyer, only completed orders,
once per order line — also when two land at once — and the product's rating counters."""

from __future__ import annotations

import asyncio

import pytest

from tests.miniapps.shop.orders_fixtures import MUG, Shop, open_shop

USAGE = "Usage: /shop review <order> <line#> <stars 1-5> <text>"


@pytest.fixture
async def shop() -> Shop:
    """Mira's store with a blue mug (12.50 USD, 5 in stock), Ben the buyer, a chat of both."""
    return await open_shop()


async def completed(shop: Shop) -> dict:
    """A completed order of a mug and two tea cups (lines 1 and 2)."""
    await shop.product("p-cup", title="Tea cup", price=400)
    await shop.command(shop.buyer, "/shop cart add p-mug")
    await shop.command(shop.buyer, "/shop cart add p-cup 2")
    await shop.sim.command(shop.buyer, shop.chat, "/shop cart")
    card = shop.sim.messages(shop.chat)[-1]["id"]
    before = set(shop.checkouts())
    await shop.sim.press(shop.buyer, card, "cart.checkout")
    [checkout_id] = set(shop.checkouts()) - before
    order = await shop.pay(checkout_id)
    await shop.command(shop.seller, f"/shop ship {order['id']} TRK-1")
    await shop.sim.press(shop.seller, order["message_id"], "order.delivered")
    await shop.sim.press(shop.buyer, order["message_id"], "order.confirm")
    order = shop.order(order["id"])
    assert order["state"] == "completed"
    return order


def rating(shop: Shop, product_id: str = MUG) -> tuple[int, int]:
    product = shop.sim.storage("products")[product_id]
    return product["rating_sum"], product["rating_count"]


async def test_the_buyer_reviews_each_line_once(shop):
    order = await completed(shop)
    said = await shop.command(shop.buyer, f"/shop review {order['id']} 1 4 Lovely mug, a bit small")
    assert said == "Thanks! ★★★★ for Blue mug."
    review = shop.sim.storage("reviews")[f"{order['id']}:0"]
    assert {k: review[k] for k in ("product_id", "buyer", "stars", "text", "line")} == {
        "product_id": MUG,
        "buyer": shop.buyer.id,
        "stars": 4,
        "text": "Lovely mug, a bit small",
        "line": 0,
    }
    assert rating(shop) == (4, 1)
    assert await shop.command(shop.buyer, f"/shop review {order['id']} #2 5 Great cups") == (
        "Thanks! ★★★★★ for Tea cup."
    )
    assert rating(shop, "p-cup") == (5, 1)
    assert await shop.command(shop.buyer, f"/shop review {order['id']} 1 1 Changed my mind") == (
        "You already reviewed line 1 of this order."
    )
    assert rating(shop) == (4, 1)
    assert shop.sim.storage("reviews")[f"{order['id']}:0"]["stars"] == 4


async def test_two_reviews_of_a_line_at_once_count_once(shop):
    order = await completed(shop)
    await asyncio.gather(
        *(
            shop.sim.command(shop.buyer, shop.chat, f"/shop review {order['id']} 1 {stars} ok")
            for stars in (2, 5, 3)
        )
    )
    [review] = shop.sim.storage("reviews").values()
    assert rating(shop) == (review["stars"], 1)


async def test_reviews_from_two_orders_add_up(shop):
    first = await completed(shop)
    await shop.command(shop.buyer, f"/shop review {first['id']} 1 5 Great")
    second = await completed(shop)
    await shop.command(shop.buyer, f"/shop review {second['id']} 1 2 Chipped this time")
    assert rating(shop) == (7, 2)


async def test_only_completed_orders_can_be_reviewed(shop):
    order = await shop.bought()
    assert await shop.command(shop.buyer, f"/shop review {order['id']} 1 5 Great") == (
        "You can review an order once it is completed (Confirm receipt)."
    )
    assert shop.sim.storage("reviews") == {} and rating(shop) == (0, 0)


async def test_only_the_buyer_reviews_and_others_see_no_order(shop):
    order = await completed(shop)
    assert await shop.command(shop.seller, f"/shop review {order['id']} 1 5 Great") == (
        "Only the buyer can review an order."
    )
    eve = shop.sim.user("eve")
    shop.sim.add_member(shop.chat, eve)
    for oid in (order["id"], "o-000000000000", "p-mug"):
        assert await shop.command(eve, f"/shop review {oid} 1 5 Great") == "No such order."
    assert shop.sim.storage("reviews") == {} and rating(shop) == (0, 0)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ("", USAGE),
        ("{oid} 1 5", USAGE),
        ("{oid} 0 5 text", "The line# is 1 to 2 (as numbered on the order card)."),
        ("{oid} 3 5 text", "The line# is 1 to 2 (as numbered on the order card)."),
        ("{oid} one 5 text", "The line# is 1 to 2 (as numbered on the order card)."),
        ("{oid} 1 0 text", "Stars are a whole number from 1 to 5."),
        ("{oid} 1 6 text", "Stars are a whole number from 1 to 5."),
        ("{oid} 1 -1 text", "Stars are a whole number from 1 to 5."),
        ("{oid} 1 4.5 text", "Stars are a whole number from 1 to 5."),
        ("{oid} 1 abc text", "Stars are a whole number from 1 to 5."),
        ("{oid} 1 5 '  '", f"Write a few words too. {USAGE}"),
        ("{oid} 1 5 " + "x" * 1001, "A review is limited to 1000 characters."),
    ],
)
async def test_bad_reviews_are_refused_and_nothing_is_written(shop, args, said):
    order = await completed(shop)
    assert await shop.command(shop.buyer, "/shop review " + args.format(oid=order["id"])) == said
    assert shop.sim.storage("reviews") == {} and rating(shop) == (0, 0)


async def test_the_review_button_explains_the_command(shop):
    order = await completed(shop)
    await shop.sim.press(shop.buyer, order["message_id"], "order.review")
    assert shop.said() == (
        f"Review with: /shop review {order['id']} <line#> <stars 1-5> <text> — "
        "1. Blue mug; 2. Tea cup"
    )
    await shop.sim.press(shop.seller, order["message_id"], "order.review")
    assert shop.said(shop.seller) == "Only the buyer can review an order."
