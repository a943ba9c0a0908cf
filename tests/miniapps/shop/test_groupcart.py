"""The shared group cart in the SDK simulator: members add lines, the card lists them by member,
each member pays only their own lines (stock reserved like a checkout, released when the payment
fails or expires), the card marks who has paid, and bad input is answered privately with nothing
written."""

from __future__ import annotations

import asyncio

import pytest

from tests.miniapps.shop.groupbuy_fixtures import (
    add_product,
    change_product,
    conversation_of_type,
    last_text,
    new_sim,
    open_store,
    snapshot,
    stock_left,
)


@pytest.fixture
def sim():
    return new_sim()


@pytest.fixture
def mira(sim):
    return sim.user("mira")


@pytest.fixture
def people(sim):
    return [sim.user(name) for name in ("ann", "ben", "cat")]


@pytest.fixture
def group(sim, mira, people):
    return sim.conversation(members=[mira, *people], title="Office")


@pytest.fixture
async def goods(sim, mira):
    await open_store(sim, mira)
    await add_product(sim, mira, "p-tea", "Jasmine Tea", price=500, stock=10)
    await add_product(sim, mira, "p-mug", "Blue Mug", price=1200, stock=3)


def cart_card(sim, chat) -> dict:
    """The live group-cart card (the newest one)."""
    return next(m for m in reversed(sim.messages(chat)) if m["card"]["title"] == "Group cart")


def cart(sim) -> dict:
    [value] = sim.storage("groupcarts").values()
    return value


def field(card: dict, label: str) -> str:
    return next(f["value"] for f in card["fields"] if f["label"] == label)


async def pay(sim, user, chat) -> dict:
    """``user`` presses Pay my part: the payment they are asked for."""
    message = cart_card(sim, chat)
    await sim.press(user, message["id"], "groupcart.pay")
    [payment] = [
        p for p in sim.payments.values() if p["user_id"] == user.id and p["status"] == "requested"
    ]
    return payment


def groupcart_orders(sim) -> list[dict]:
    return [o for o in sim.storage("orders").values() if o["source"] == "groupcart"]


async def test_groupcart_posts_an_empty_cart(sim, people, group, goods):
    await sim.command(people[0], group, "/shop groupcart")
    card = cart_card(sim, group)["card"]
    assert card["text"].startswith("Empty.")
    assert [b["action_id"] for b in card["buttons"]] == ["groupcart.pay"]
    assert len(sim.storage("groupcarts")) == 1


async def test_members_add_and_the_card_lists_lines_by_member(sim, people, group, goods):
    ann, ben, _ = people
    await sim.command(ann, group, "/shop groupcart add p-tea 2")
    assert last_text(sim, ann) == "Added 2 x Jasmine Tea to the group cart (your part: $10.00)."
    await sim.command(ben, group, "/shop groupcart add p-mug")
    message = cart_card(sim, group)
    assert message["card"]["text"] == ("Ann: 2 x Jasmine Tea — $10.00\nBen: 1 x Blue Mug — $12.00")
    assert field(message["card"], "Total") == "$22.00"
    assert field(message["card"], "Paid") == "0 of 2"
    labels = [b["label"] for b in message["card"]["buttons"]]
    assert labels == ["Pay my part", "+ Jasmine Tea", "+ Blue Mug"]
    # "Me too": Ben presses + Jasmine Tea, and Ann adds one more the same way.
    await sim.press(
        ben, message["id"], "groupcart.add", value=message["card"]["buttons"][1]["value"]
    )
    await sim.press(
        ann, message["id"], "groupcart.add", value=message["card"]["buttons"][1]["value"]
    )
    assert cart_card(sim, group)["card"]["text"] == (
        "Ann: 3 x Jasmine Tea — $15.00\nBen: 1 x Blue Mug, 1 x Jasmine Tea — $17.00"
    )
    assert len(sim.messages(group)) == 1  # one card, updated in place


async def test_a_product_cards_button_adds_to_the_chats_cart(sim, people, group, goods):
    ann, ben, _ = people
    await sim.command(ann, group, "/shop groupcart add p-tea")
    message = cart_card(sim, group)
    # A product card's "Add to group cart" sends the bare product id: the chat's current cart.
    await sim.press(ben, message["id"], "groupcart.add", value="p-mug")
    assert cart(sim)["members"][ben.id]["lines"][0]["product_id"] == "p-mug"


async def test_each_member_pays_only_their_own_lines(sim, mira, people, group, goods):
    ann, ben, _ = people
    await sim.command(ann, group, "/shop groupcart add p-tea 2")
    await sim.command(ben, group, "/shop groupcart add p-mug")
    payment = await pay(sim, ann, group)
    gc_id = next(iter(sim.storage("groupcarts")))
    assert payment["amount"] == 1000 and payment["currency"] == "USD"
    assert payment["order_ref"] == f"{gc_id}.1"
    assert stock_left(sim, "p-tea") == 8 and stock_left(sim, "p-mug") == 3  # Ann's lines only
    assert "Ann ⏳ paying" in cart_card(sim, group)["card"]["text"]

    await sim.confirm_payment(ann, payment["id"])
    [order] = groupcart_orders(sim)
    assert (order["buyer"], order["total"], order["payment_id"]) == (ann.id, 1000, payment["id"])
    assert [(line["product_id"], line["qty"]) for line in order["lines"]] == [("p-tea", 2)]
    assert order["seller"] == mira.id and order["state"] == "paid"
    card = cart_card(sim, group)["card"]
    assert "Ann ✓ paid: 2 x Jasmine Tea — $10.00" in card["text"]
    assert field(card, "Paid") == "1 of 2"

    second = await pay(sim, ben, group)
    assert second["amount"] == 1200 and second["order_ref"] == f"{gc_id}.2"
    await sim.confirm_payment(ben, second["id"])
    assert sorted(o["buyer"] for o in groupcart_orders(sim)) == sorted([ann.id, ben.id])
    assert field(cart_card(sim, group)["card"], "Paid") == "2 of 2"
    assert sim.merchant_balance("USD") == 2200
    assert stock_left(sim, "p-tea") == 8 and stock_left(sim, "p-mug") == 2
    # A repeated event makes no second order.
    await sim.deliver_event(
        "payment.succeeded",
        next(
            e["payload"] for e in sim.payment_events if e["payload"]["payment_id"] == second["id"]
        ),
        user=ben,
        conversation=group,
    )
    assert len(groupcart_orders(sim)) == 2


async def test_who_paid_cannot_change_their_lines_but_others_still_add(sim, people, group, goods):
    ann, _ben, cat = people
    await sim.command(ann, group, "/shop groupcart add p-tea")
    await sim.confirm_payment(ann, (await pay(sim, ann, group))["id"])
    before = snapshot(sim, group)
    await sim.command(ann, group, "/shop groupcart add p-mug")
    assert last_text(sim, ann).startswith("You have paid for your lines")
    await sim.command(ann, group, "/shop groupcart remove p-tea")
    assert last_text(sim, ann).startswith("You have paid for your lines")
    await sim.press(ann, cart_card(sim, group)["id"], "groupcart.pay")
    assert last_text(sim, ann) == "You have paid for your lines already ✓"
    assert snapshot(sim, group) == before
    await sim.command(cat, group, "/shop groupcart add p-tea 3")
    assert cart(sim)["members"][cat.id]["lines"][0]["qty"] == 3


async def test_lines_are_frozen_while_paying(sim, people, group, goods):
    ann = people[0]
    await sim.command(ann, group, "/shop groupcart add p-tea")
    payment = await pay(sim, ann, group)
    before = snapshot(sim, group)
    await sim.command(ann, group, "/shop groupcart add p-tea")
    assert (
        last_text(sim, ann) == "You are paying for your lines: finish or cancel that payment first."
    )
    assert snapshot(sim, group) == before
    await sim.press(ann, cart_card(sim, group)["id"], "groupcart.pay")  # shown again
    assert last_text(sim, ann) == "Confirm the payment of $5.00 in the payment sheet."
    assert list(sim.payments) == [payment["id"]]


async def test_a_cancelled_payment_gives_the_stock_back(sim, people, group, goods):
    ann = people[0]
    await sim.command(ann, group, "/shop groupcart add p-tea 4")
    payment = await pay(sim, ann, group)
    assert stock_left(sim, "p-tea") == 6
    await sim.cancel_payment(ann, payment["id"])
    assert stock_left(sim, "p-tea") == 10
    assert cart(sim)["members"][ann.id]["state"] == "open"
    assert sim.pending_timers() == []
    assert "paying" not in cart_card(sim, group)["card"]["text"]
    again = await pay(sim, ann, group)  # a new attempt, a new order_ref
    assert again["order_ref"].endswith(".2") and stock_left(sim, "p-tea") == 6


async def test_an_unpaid_reservation_expires_after_15_minutes(sim, people, group, goods):
    ann = people[0]
    await sim.command(ann, group, "/shop groupcart add p-tea 4")
    await pay(sim, ann, group)
    await sim.advance(minutes=14)
    assert stock_left(sim, "p-tea") == 6
    await sim.advance(minutes=2)
    assert stock_left(sim, "p-tea") == 10
    assert cart(sim)["members"][ann.id]["state"] == "open"


async def test_a_payment_after_expiry_takes_the_stock_again(sim, people, group, goods):
    ann = people[0]
    await sim.command(ann, group, "/shop groupcart add p-mug 2")
    payment = await pay(sim, ann, group)
    await sim.advance(minutes=16)
    assert stock_left(sim, "p-mug") == 3
    await sim.confirm_payment(ann, payment["id"])
    assert stock_left(sim, "p-mug") == 1
    [order] = groupcart_orders(sim)
    assert order["buyer"] == ann.id and order["total"] == 2400
    assert "Ann ✓ paid" in cart_card(sim, group)["card"]["text"]


async def test_a_payment_after_expiry_is_refunded_when_sold_out(sim, people, group, goods):
    ann, ben, _ = people
    await sim.command(ann, group, "/shop groupcart add p-mug 2")
    payment = await pay(sim, ann, group)
    await sim.advance(minutes=16)
    await sim.command(ben, group, "/shop groupcart add p-mug 3")
    await sim.confirm_payment(ben, (await pay(sim, ben, group))["id"])  # Ben takes all 3
    await sim.confirm_payment(ann, payment["id"])
    assert sim.payments[payment["id"]]["refunded"] == 2400
    assert "refunded in full" in last_text(sim, ann)
    assert [o["buyer"] for o in groupcart_orders(sim)] == [ben.id]
    assert stock_left(sim, "p-mug") == 0 and sim.merchant_balance("USD") == 3600


async def test_new_prices_are_shown_before_paying(sim, people, group, goods):
    ann = people[0]
    await sim.command(ann, group, "/shop groupcart add p-tea 2")
    await change_product(sim, "p-tea", price=600)
    await sim.press(ann, cart_card(sim, group)["id"], "groupcart.pay")
    assert (
        last_text(sim, ann) == "Prices changed: your part is now $12.00. Press Pay my part again."
    )
    assert sim.payments == {} and stock_left(sim, "p-tea") == 10  # nothing reserved yet
    payment = await pay(sim, ann, group)
    assert payment["amount"] == 1200


async def test_not_enough_stock_at_paying(sim, people, group, goods):
    ann, ben, _ = people
    await sim.command(ann, group, "/shop groupcart add p-mug 2")
    await sim.command(ben, group, "/shop groupcart add p-mug 2")
    await pay(sim, ann, group)
    before = snapshot(sim, group)
    await sim.press(ben, cart_card(sim, group)["id"], "groupcart.pay")
    assert last_text(sim, ben) == "Not enough Blue Mug left for your 2."
    assert snapshot(sim, group) == before


async def test_a_product_gone_by_paying_time(sim, people, group, goods):
    ann = people[0]
    await sim.command(ann, group, "/shop groupcart add p-tea")
    await change_product(sim, "p-tea", visible=False)
    before = snapshot(sim, group)
    await sim.press(ann, cart_card(sim, group)["id"], "groupcart.pay")
    assert last_text(sim, ann) == (
        "Jasmine Tea is not for sale any more: take it off with /shop groupcart remove p-tea"
    )
    assert snapshot(sim, group) == before
    await sim.command(ann, group, "/shop groupcart remove p-tea")
    assert ann.id not in cart(sim)["members"]


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ("/shop groupcart add p-tea 0", "Quantity must be 1 to 99."),
        ("/shop groupcart add p-tea -1", "Quantity '-1' is not a whole number: use 1 to 99."),
        ("/shop groupcart add p-tea abc", "Quantity 'abc' is not a whole number: use 1 to 99."),
        ("/shop groupcart add p-tea 1000000", "Quantity must be 1 to 99."),
        ("/shop groupcart add p-nothing", "That product is not for sale (any more)."),
        ("/shop groupcart add <script>", "That product does not exist."),
        ("/shop groupcart add p-tea:v1", "That product does not exist."),
        ("/shop groupcart add p-shirt", "Choose an option: /shop groupcart add p-shirt:v1 (S)"),
        ("/shop groupcart add p-hidden", "That product is not for sale (any more)."),
        ("/shop groupcart add p-other", "This group cart holds another store's products"),
        ("/shop groupcart add p-tea 50", "At most 99 of one product (you have 50)."),
        (
            "/shop groupcart remove p-mug",
            "That product is not among your lines of this group cart.",
        ),
        ("/shop groupcart fly", "Usage: /shop groupcart · /shop groupcart new"),
        ("/shop groupcart add", "Usage: /shop groupcart"),
        ("/shop groupcart add p-tea 1 2", "Usage: /shop groupcart"),
    ],
)
async def test_bad_input_is_refused_and_nothing_written(
    sim, mira, people, group, goods, command, answer
):
    ann = people[0]
    shirt = [{"id": "v1", "label": "S", "price": 2000}]
    await add_product(sim, mira, "p-shirt", "Shirt", variants=shirt)
    await add_product(sim, mira, "p-hidden", "Hidden", visible=False)
    await add_product(sim, mira, "p-other", "Other", store_id="st-elsewhere")
    await sim.command(ann, group, "/shop groupcart add p-tea 50")
    before = snapshot(sim, group)
    await sim.command(ann, group, command)
    assert last_text(sim, ann).startswith(answer)
    assert snapshot(sim, group) == before


async def test_limits_on_lines(sim, mira, people, group, goods):
    ann = people[0]
    for index in range(10):
        await add_product(sim, mira, f"p-item{index}", f"Item {index}")
        await sim.command(ann, group, f"/shop groupcart add p-item{index}")
    before = snapshot(sim, group)
    await sim.command(ann, group, "/shop groupcart add p-tea")
    assert (
        last_text(sim, ann) == "You have 10 products in this group cart already: that is the limit."
    )
    assert snapshot(sim, group) == before
    assert len(cart_card(sim, group)["card"]["buttons"]) == 10  # Pay + 9 "+ product"


async def test_pay_with_nothing_or_a_bad_value(sim, people, group, goods):
    ann, ben, _ = people
    await sim.command(ann, group, "/shop groupcart add p-tea")
    card_id = cart_card(sim, group)["id"]
    before = snapshot(sim, group)
    await sim.press(ben, card_id, "groupcart.pay")
    assert last_text(sim, ben) == "You have nothing in this group cart: add something first."
    await sim.press(ben, card_id, "groupcart.pay", value="gc-000000000000")
    assert last_text(sim, ben) == "No such group cart in this chat."
    await sim.press(ben, card_id, "groupcart.add", value="gc-000000000000/p-tea")
    assert last_text(sim, ben) == "No such group cart in this chat."
    assert snapshot(sim, group) == before


async def test_group_carts_happen_in_groups(sim, mira, people, goods, monkeypatch):
    ann = people[0]
    chat = conversation_of_type(sim, [ann, mira], "direct", monkeypatch)
    before = snapshot(sim, chat)
    await sim.command(ann, chat, "/shop groupcart add p-tea")
    assert last_text(sim, ann) == "Group carts happen in groups: open this in a group chat."
    await sim.command(ann, chat, "/shop groupcart")
    assert last_text(sim, ann) == "Group carts happen in groups: open this in a group chat."
    assert snapshot(sim, chat) == before


async def test_showing_the_cart_again_moves_its_card_down(sim, people, group, goods):
    ann = people[0]
    await sim.command(ann, group, "/shop groupcart add p-tea")
    first = cart_card(sim, group)["id"]
    await sim.command(ann, group, "/shop groupcart")
    second = cart_card(sim, group)["id"]
    assert second != first and len(sim.storage("groupcarts")) == 1
    assert sim.card(first)["text"] == "This group cart moved to a newer card below."
    assert "Ann: 1 x Jasmine Tea" in sim.card(second)["text"]
    await sim.command(ann, group, "/shop groupcart add p-tea")  # the new card is updated
    assert "Ann: 2 x Jasmine Tea" in sim.card(second)["text"]


async def test_a_new_cart_leaves_the_old_one_payable(sim, people, group, goods):
    ann, ben, _ = people
    await sim.command(ann, group, "/shop groupcart add p-tea")
    old = cart_card(sim, group)["id"]
    await sim.command(ben, group, "/shop groupcart new")
    await sim.command(ben, group, "/shop groupcart add p-mug")
    assert len(sim.storage("groupcarts")) == 2
    await sim.press(ann, old, "groupcart.pay")
    [payment] = sim.payments.values()
    assert payment["user_id"] == ann.id and payment["amount"] == 500


async def test_members_adding_at_once_all_get_their_lines(sim, people, group, goods):
    extra = [sim.user(f"member{i}") for i in range(8)]
    for user in extra:
        sim.add_member(group, user)
    await asyncio.gather(*(sim.command(u, group, "/shop groupcart add p-tea") for u in extra))
    assert len(sim.storage("groupcarts")) == 1  # started once
    members = cart(sim)["members"]
    assert sorted(members) == sorted(u.id for u in extra)
    assert field(cart_card(sim, group)["card"], "Total") == "$40.00"
