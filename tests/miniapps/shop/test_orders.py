"""The shop's orders (miniapps/shop/orders.py, order_state.py) in the SDK simulator: every
transition allowed and refused, the card updated in place, service messages, auto-completion,
escrow payouts (exact, minus the platform fee, once), cancellation, full and partial refunds,
the refund window, /shop orders, someone else's order, and the cross-app course event."""

from __future__ import annotations

import asyncio

import pytest

from tests.miniapps.shop.orders_fixtures import MUG, Shop, open_shop

ACTIONS = (
    "order.ship",
    "order.delivered",
    "order.confirm",
    "order.cancel",
    "order.refund",
    "order.refund_approve",
    "order.refund_decline",
    "order.payout",
)


@pytest.fixture
async def shop() -> Shop:
    """Mira's store with a blue mug (12.50 USD, 5 in stock), Ben the buyer, a chat of both."""
    return await open_shop()


async def press(shop: Shop, user, action_id: str, order_id: str) -> str:
    """``user`` presses ``action_id`` with the value ``order_id`` (as any client may send)."""
    card = await shop.buttons(action_id)
    await shop.sim.press(user, card, action_id, order_id)
    return shop.said(user)


async def to_state(shop: Shop, state: str, order: dict | None = None, buyer=None) -> dict:
    """A paid order of one mug (or ``order``, bought by ``buyer``) walked to ``state``."""
    buyer = buyer or shop.buyer
    order = order or await shop.bought(buyer)
    oid = order["id"]
    if state in ("shipped", "delivered", "completed"):
        await shop.command(shop.seller, f"/shop ship {oid} TRK-1")
    if state in ("delivered", "completed"):
        await press(shop, shop.seller, "order.delivered", oid)
    if state == "completed":
        await press(shop, buyer, "order.confirm", oid)
    if state == "cancelled":
        await press(shop, buyer, "order.cancel", oid)
    if state in ("refund_requested", "refunded"):
        await shop.command(buyer, f"/shop refund {oid} broken")
    if state == "refunded":
        await press(shop, shop.seller, "order.refund_approve", oid)
    order = shop.order(oid)
    assert order["state"] == state
    return order


def titles(shop: Shop, order: dict) -> list[str]:
    return [card["title"].split(" · ")[1] for card in shop.sim.card_history(order["message_id"])]


def button_ids(shop: Shop, order: dict) -> list[str]:
    return [b["action_id"] for b in shop.sim.card(order["message_id"]).get("buttons", [])]


# --- the happy path --------------------------------------------------------------------------


async def test_paid_shipped_delivered_completed_with_an_exact_payout(shop):
    shop.sim.set_fee("USD", basis_points=300, fixed=20)
    order = await shop.bought()
    oid = order["id"]
    assert order["state"] == "paid" and order["seller"] == shop.seller.id
    assert order["message_id"] == shop.sim.messages(shop.chat)[-1]["id"]
    assert button_ids(shop, order) == ["order.ship", "order.cancel", "order.refund"]
    assert shop.sim.merchant_balance("USD") == 1250  # held by the shop (escrow)

    assert await press(shop, shop.seller, "order.ship", oid) == (
        f"Send the tracking no. with: /shop ship {oid} <tracking no.>"
    )
    assert await shop.command(shop.seller, f"/shop ship {oid} 1Z999AA10123456784") == (
        f"Order {oid} is marked shipped."
    )
    order = shop.order(oid)
    assert (order["state"], order["tracking_no"]) == ("shipped", "1Z999AA10123456784")
    assert button_ids(shop, order) == ["order.delivered", "order.confirm", "order.refund"]

    assert await press(shop, shop.seller, "order.delivered", oid) == (
        f"Order {oid} is marked delivered."
    )
    assert [t["key"] for t in shop.sim.pending_timers()] == [f"ac-{oid}", f"rw-{oid}"]

    assert await press(shop, shop.buyer, "order.confirm", oid) == (
        f"Thanks! Order {oid} is completed."
    )
    order = shop.order(oid)
    assert order["state"] == "completed" and shop.sim.pending_timers() == []
    assert shop.sim.payouts == {
        f"po-{oid}": {
            "payout_id": order["payout"]["payout_id"],
            "user_id": shop.seller.id,
            "amount": 1250,
            "fee": 20 + 1250 * 300 // 10_000,
            "currency": "USD",
        }
    }
    assert (order["payout"]["state"], order["payout_failed"]) == ("sent", False)
    assert shop.sim.merchant_balance("USD") == 0  # paid in, paid out: zero-sum
    assert titles(shop, order) == [
        "Paid",
        "Shipped",
        "Delivered",
        "Completed",
    ]
    assert [h["state"] for h in order["history"]] == ["paid", "shipped", "delivered", "completed"]
    assert button_ids(shop, order) == ["order.review"]
    # Pressing Confirm again (a stale card) changes nothing and pays nothing more.
    assert await press(shop, shop.buyer, "order.confirm", oid) == (
        f"Order {oid} is completed: it cannot be completed."
    )
    assert len(shop.sim.payouts) == 1


async def test_buyer_and_seller_get_a_service_message_on_each_change(shop):
    order = await to_state(shop, "completed")
    buyer_titles = [n["title"] for n in shop.sim.notifications(shop.buyer)]
    seller_titles = [n["title"] for n in shop.sim.notifications(shop.seller)]
    states = ["Paid", "Shipped", "Delivered", "Completed"]
    expected = [f"Order {order['id']} · {s}" for s in states]
    assert [t.split(" · waiting")[0] for t in buyer_titles] == expected
    assert [t.split(" · waiting")[0] for t in seller_titles] == expected
    # Each one shows that person's buttons only.
    first_seller, first_buyer = (
        shop.sim.notifications(shop.seller)[0],
        shop.sim.notifications(shop.buyer)[0],
    )
    assert [b["action_id"] for b in first_seller["buttons"]] == ["order.ship"]
    assert [b["action_id"] for b in first_buyer["buttons"]] == ["order.cancel", "order.refund"]
    assert first_seller["text"].startswith("New order: please ship it.")


async def test_people_who_did_not_opt_in_get_no_service_message_and_nothing_fails(shop):
    ann = shop.sim.user("ann", notifications=False)
    shop.sim.add_member(shop.chat, ann)
    order = await to_state(shop, "completed", buyer=ann)
    assert shop.sim.notifications(ann) == []
    assert order["state"] == "completed"


async def test_the_seller_ships_from_another_chat_and_the_card_updates_in_place(shop):
    order = await shop.bought()
    elsewhere = shop.sim.conversation(members=[shop.seller])
    said = await shop.command(shop.seller, f"/shop ship {order['id']} TRK-9", chat=elsewhere)
    assert said == f"Order {order['id']} is marked shipped."
    assert titles(shop, shop.order(order["id"])) == ["Paid", "Shipped"]
    assert shop.sim.messages(elsewhere) == []


async def test_orders_complete_by_themselves_after_auto_complete_days():
    shop = await open_shop(config={"auto_complete_days": "3"})
    order = await to_state(shop, "delivered")
    await shop.sim.advance(days=2, hours=23)
    assert shop.order(order["id"])["state"] == "delivered"
    fired = await shop.sim.advance(hours=2)
    assert [f["name"] for f in fired] == ["order.autocomplete"]
    order = shop.order(order["id"])
    assert order["state"] == "completed" and order["payout"]["state"] == "sent"
    assert shop.sim.payouts[f"po-{order['id']}"]["amount"] == 1250
    assert titles(shop, order)[-1] == "Completed"


@pytest.mark.parametrize("setting", [None, "abc", "0", "1000"])
async def test_auto_complete_defaults_to_7_days(setting):
    shop = await open_shop(config={"auto_complete_days": setting} if setting else None)
    order = await to_state(shop, "delivered")
    [timer] = [t for t in shop.sim.pending_timers() if t["name"] == "order.autocomplete"]
    assert timer["due_at"] == shop.sim.now + 7 * 86_400_000
    await shop.sim.advance(days=7)
    assert shop.order(order["id"])["state"] == "completed"


async def test_confirm_racing_the_auto_complete_timer_pays_once(shop):
    order = await to_state(shop, "delivered")
    await asyncio.gather(
        press(shop, shop.buyer, "order.confirm", order["id"]), shop.sim.advance(days=8)
    )
    assert shop.order(order["id"])["state"] == "completed"
    assert list(shop.sim.payouts) == [f"po-{order['id']}"]
    assert shop.sim.merchant_balance("USD") == 0


# --- refused transitions and refused people --------------------------------------------------


REFUSED = {
    # state: [(who, action, what they are told)]
    "paid": [
        ("seller", "order.delivered", "only a shipped order can be delivered"),
        ("buyer", "order.confirm", "it cannot be completed"),
        ("seller", "order.refund_approve", "there is no refund to approve"),
        ("seller", "order.refund_decline", "there is no refund to decline"),
        ("seller", "order.payout", "there is no payout to retry"),
    ],
    "shipped": [
        ("seller", "order.ship", "only a paid order can be shipped"),
        ("buyer", "order.cancel", "only an order not yet shipped can be cancelled"),
    ],
    "delivered": [
        ("seller", "order.delivered", "only a shipped order can be delivered"),
        ("buyer", "order.cancel", "only an order not yet shipped can be cancelled"),
    ],
    "completed": [
        ("buyer", "order.cancel", "only an order not yet shipped can be cancelled"),
        ("buyer", "order.refund", "a refund can no longer be asked"),
        ("seller", "order.ship", "only a paid order can be shipped"),
    ],
    "cancelled": [
        ("seller", "order.ship", "only a paid order can be shipped"),
        ("buyer", "order.confirm", "it cannot be completed"),
        ("buyer", "order.refund", "a refund can no longer be asked"),
    ],
    "refund_requested": [
        ("seller", "order.ship", "only a paid order can be shipped"),
        ("buyer", "order.cancel", "only an order not yet shipped can be cancelled"),
        ("buyer", "order.confirm", "it cannot be completed"),
    ],
    "refunded": [
        ("seller", "order.refund_approve", "there is no refund to approve"),
        ("buyer", "order.cancel", "only an order not yet shipped can be cancelled"),
    ],
}


@pytest.mark.parametrize("state", list(REFUSED))
async def test_transitions_not_in_the_table_are_refused_and_nothing_changes(shop, state):
    order = await to_state(shop, state)
    payouts, payments = shop.sim.payouts, shop.sim.payments
    for who, action_id, reason in REFUSED[state]:
        user = shop.seller if who == "seller" else shop.buyer
        said = await press(shop, user, action_id, order["id"])
        assert said == f"Order {order['id']} is {STATE_TEXT[state]}: {reason}.", action_id
    assert shop.order(order["id"]) == order
    assert (shop.sim.payouts, shop.sim.payments) == (payouts, payments)


STATE_TEXT = {
    "paid": "paid · waiting for shipment",
    "shipped": "shipped",
    "delivered": "delivered",
    "completed": "completed",
    "cancelled": "cancelled",
    "refund_requested": "refund requested",
    "refunded": "refunded",
}


async def test_ship_and_refund_commands_refuse_wrong_states(shop):
    order = await to_state(shop, "shipped")
    oid = order["id"]
    assert await shop.command(shop.seller, f"/shop ship {oid} TRK-2") == (
        f"Order {oid} is shipped: only a paid order can be shipped."
    )
    completed = await to_state(shop, "completed", await shop.bought())
    assert await shop.command(shop.buyer, f"/shop refund {completed['id']} broken") == (
        f"Order {completed['id']} is completed: a refund can no longer be asked."
    )
    assert shop.order(oid)["tracking_no"] == "TRK-1"


async def test_buyer_and_seller_each_press_only_their_own_buttons(shop):
    order = await shop.bought()
    oid = order["id"]
    for action_id in ("order.ship", "order.delivered", "order.refund_approve", "order.payout"):
        assert await press(shop, shop.buyer, action_id, oid) == "Only the seller can do that."
    for action_id in ("order.confirm", "order.cancel", "order.refund"):
        assert await press(shop, shop.seller, action_id, oid) == "Only the buyer can do that."
    assert await shop.command(shop.buyer, f"/shop ship {oid} TRK-3") == (
        "Only the seller can do that."
    )
    assert await shop.command(shop.seller, f"/shop refund {oid} broken") == (
        "Only the buyer can do that."
    )
    assert shop.order(oid) == order


async def test_a_seller_without_the_merchant_role_cannot_act(shop):
    order = await shop.bought()
    shop.sim.revoke_role(shop.seller, "merchant")
    said = await shop.command(shop.seller, f"/shop ship {order['id']} TRK-4")
    assert said == "Only merchants can do that: your merchant role is not active."
    assert shop.order(order["id"])["state"] == "paid"


async def test_someone_elses_order_is_no_such_order(shop):
    order = await shop.bought()
    eve = shop.sim.user("eve")
    shop.sim.grant_role(eve, "merchant")
    shop.sim.add_member(shop.chat, eve)
    for action_id in ACTIONS:
        assert await press(shop, eve, action_id, order["id"]) == "No such order."
    missing = "o-000000000000"
    for action_id in ACTIONS:
        assert await press(shop, shop.buyer, action_id, missing) == "No such order."
    for text in (
        f"/shop ship {order['id']} TRK-5",
        f"/shop refund {order['id']} broken",
        f"/shop ship {missing} TRK-5",
        f"/shop refund {missing} broken",
        "/shop ship ../../etc TRK-5",
    ):
        assert await shop.command(eve, text) == "No such order.", text
    assert shop.order(order["id"]) == order


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("/shop ship", "Usage: /shop ship <order> <tracking no.>"),
        ("/shop ship {oid}", "Usage: /shop ship <order> <tracking no.>"),
        (
            "/shop ship {oid} ab",
            "A tracking no. is 3-64 letters, digits, spaces or . _ / - characters.",
        ),
        (
            "/shop ship {oid} 'tr<ck>'",
            "A tracking no. is 3-64 letters, digits, spaces or . _ / - characters.",
        ),
        (
            "/shop ship {oid} " + "T" * 65,
            "A tracking no. is 3-64 letters, digits, spaces or . _ / - characters.",
        ),
        ("/shop orders mine", "Usage: /shop orders"),
    ],
)
async def test_bad_ship_input_changes_nothing(shop, text, said):
    order = await shop.bought()
    assert await shop.command(shop.seller, text.format(oid=order["id"])) == said
    assert shop.order(order["id"]) == order


# --- cancel and refunds ----------------------------------------------------------------------


async def test_cancel_a_paid_order_refunds_in_full_and_restocks(shop):
    order = await shop.bought()
    assert shop.stock() == 4
    said = await press(shop, shop.buyer, "order.cancel", order["id"])
    assert said == f"Order {order['id']} is cancelled; your payment is refunded."
    order = shop.order(order["id"])
    assert (order["state"], order["refunded_total"], order["restock"]) == (
        "cancelled",
        1250,
        "done",
    )
    assert order["refund"]["state"] == "approved"
    assert shop.payment_for(order["source_ref"])["refunded"] == 1250
    assert shop.stock() == 5
    assert shop.sim.merchant_balance("USD") == 0
    assert button_ids(shop, order) == [] and titles(shop, order)[-1] == "Cancelled"
    # Twice at once: one refund, one restock.
    other = await shop.bought()
    await asyncio.gather(*(press(shop, shop.buyer, "order.cancel", other["id"]) for _ in range(3)))
    assert shop.payment_for(other["source_ref"])["refunded"] == 1250
    assert shop.stock() == 5


async def test_partial_refund_then_completion_pays_the_rest(shop):
    order = await to_state(shop, "delivered")
    oid = order["id"]
    said = await shop.command(shop.buyer, f"/shop refund {oid} 4.50 chipped handle")
    assert said == "Refund of $4.50 asked; the seller will answer."
    order = shop.order(oid)
    assert order["state"] == "refund_requested"
    assert order["refund"] == {
        "seq": 1,
        "amount": 450,
        "reason": "chipped handle",
        "state": "requested",
        "previous": "delivered",
    }
    assert button_ids(shop, order) == ["order.refund_approve", "order.refund_decline"]
    assert {"label": "Refund asked", "value": "$4.50 · chipped handle"} in shop.sim.card(
        order["message_id"]
    )["fields"]
    assert await press(shop, shop.seller, "order.refund_approve", oid) == (
        f"Refunded $4.50 on order {oid}."
    )
    order = shop.order(oid)
    assert (order["state"], order["refunded_total"]) == ("delivered", 450)
    assert shop.payment_for(order["source_ref"])["refunded"] == 450
    assert shop.stock() == 4  # the mug stays with the buyer
    # Back to delivered: it still completes by itself, and the seller gets the rest.
    await shop.sim.advance(days=7)
    order = shop.order(oid)
    assert order["state"] == "completed"
    assert shop.sim.payouts[f"po-{oid}"]["amount"] == 800
    assert shop.sim.merchant_balance("USD") == 0


async def test_full_refund_approved_before_shipping_restocks(shop):
    order = await shop.bought()
    await shop.command(shop.buyer, f"/shop refund {order['id']} changed my mind")
    await press(shop, shop.seller, "order.refund_approve", order["id"])
    order = shop.order(order["id"])
    assert (order["state"], order["refunded_total"]) == ("refunded", 1250)
    assert shop.stock() == 5
    assert button_ids(shop, order) == []


async def test_full_refund_after_shipping_keeps_the_stock_and_pays_nothing_out(shop):
    order = await to_state(shop, "refunded", await to_state(shop, "shipped"))
    assert order["refunded_total"] == 1250 and shop.stock() == 4
    assert shop.sim.payouts == {} and shop.sim.merchant_balance("USD") == 0


async def test_declined_refund_goes_back_and_can_be_asked_again(shop):
    order = await to_state(shop, "delivered")
    oid = order["id"]
    await shop.command(shop.buyer, f"/shop refund {oid} 2 scratch")
    assert await press(shop, shop.seller, "order.refund_decline", oid) == (
        f"Refund declined; order {oid} is back to delivered."
    )
    order = shop.order(oid)
    assert (order["state"], order["refund"]["state"], order["refunded_total"]) == (
        "delivered",
        "declined",
        0,
    )
    assert shop.sim.payments[order["payment_id"]]["refunded"] == 0
    await shop.command(shop.buyer, f"/shop refund {oid} 2 scratch, really")
    assert shop.order(oid)["refund"]["seq"] == 2
    await press(shop, shop.seller, "order.refund_approve", oid)
    assert shop.order(oid)["refunded_total"] == 200
    assert shop.sim.payments[order["payment_id"]]["refunds"][0]["refund_ref"] == f"{oid}.r2"


async def test_approve_and_decline_at_once_settle_one_way(shop):
    order = await to_state(shop, "refund_requested")
    await asyncio.gather(
        press(shop, shop.seller, "order.refund_approve", order["id"]),
        press(shop, shop.seller, "order.refund_decline", order["id"]),
        press(shop, shop.seller, "order.refund_approve", order["id"]),
    )
    order = shop.order(order["id"])
    refunded = shop.sim.payments[order["payment_id"]]["refunded"]
    if order["state"] == "refunded":
        assert refunded == 1250 == order["refunded_total"]
    else:
        assert (order["state"], refunded, order["refunded_total"]) == ("paid", 0, 0)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ("", "Usage: /shop refund <order> [amount] <reason>"),
        ("{oid}", "Usage: /shop refund <order> [amount] <reason>"),
        ("{oid} 5.00", "Say why you want a refund. Usage: /shop refund <order> [amount] <reason>"),
        ("{oid} 0 broken", "Amount: Price must be more than 0"),
        ("{oid} -5 broken", "Amount: Price '-5' is not a number: type it like 12.50"),
        ("{oid} 1.234 broken", "Amount: USD has 2 decimals at most: '1.234' has more"),
        ("{oid} 12.51 broken", "At most $12.50 can be refunded."),
        ("{oid} 1000000 broken", "At most $12.50 can be refunded."),
        ("{oid} " + "x" * 501, "The reason is limited to 500 characters."),
    ],
)
async def test_bad_refund_requests_change_nothing(shop, args, said):
    order = await shop.bought()
    assert await shop.command(shop.buyer, "/shop refund " + args.format(oid=order["id"])) == said
    assert shop.order(order["id"]) == order


async def test_the_refund_window_closes_14_days_after_delivery():
    shop = await open_shop(config={"auto_complete_days": "30"})
    order = await to_state(shop, "delivered")
    await shop.sim.advance(days=13)
    assert "order.refund" in button_ids(shop, shop.order(order["id"]))
    await shop.sim.advance(days=2)
    order = shop.order(order["id"])
    assert order["refund_window_closed"] is True and order["state"] == "delivered"
    assert button_ids(shop, order) == ["order.confirm"]
    said = await shop.command(shop.buyer, f"/shop refund {order['id']} late")
    assert said == "The 14-day refund window after delivery has closed."
    assert shop.order(order["id"]) == order


async def test_refund_button_explains_the_command(shop):
    order = await shop.bought()
    assert await press(shop, shop.buyer, "order.refund", order["id"]) == (
        f"Ask for a refund with: /shop refund {order['id']} [amount] <reason>"
    )


# --- payouts ---------------------------------------------------------------------------------


async def test_a_payout_without_funds_is_flagged_and_retried_once_funds_are_there(shop):
    order = await to_state(shop, "delivered")
    oid = order["id"]
    shop.sim.set_merchant_balance("USD", 0)  # spent elsewhere (another order's refund, say)
    await press(shop, shop.buyer, "order.confirm", oid)
    order = shop.order(oid)
    assert order["state"] == "completed" and order["payout_failed"] is True
    assert order["payout"]["state"] == "failed"
    assert order["payout"]["error"] == "insufficient_merchant_funds"
    assert order["payout"]["ref"] == f"po-{oid}.2"  # the refused ref is never used again
    assert shop.sim.payouts == {}
    assert {"label": "Seller payout", "value": "waiting for funds · retried automatically"} in (
        shop.sim.card(order["message_id"])["fields"]
    )
    assert "order.payout" in button_ids(shop, order)
    assert await press(shop, shop.seller, "order.payout", oid) == (
        "Payout: waiting for funds · retried automatically."
    )
    assert shop.order(oid)["payout"]["ref"] == f"po-{oid}.3"

    shop.sim.set_merchant_balance("USD", 1250)
    fired = await shop.sim.advance(hours=1)
    assert [f["name"] for f in fired] == ["order.settle"]
    order = shop.order(oid)
    assert (order["payout"]["state"], order["payout_failed"]) == ("sent", False)
    assert list(shop.sim.payouts) == [f"po-{oid}.3"]
    assert shop.sim.payouts[f"po-{oid}.3"]["amount"] == 1250
    assert shop.sim.merchant_balance("USD") == 0
    await shop.sim.advance(days=1)
    assert await press(shop, shop.seller, "order.payout", oid) == "Payout: paid to the seller."
    assert len(shop.sim.payouts) == 1


# --- /shop orders and the course event ------------------------------------------------------


async def test_shop_orders_lists_newest_first_for_buyers_and_merchants(shop):
    first = await shop.bought()
    await to_state(shop, "shipped", first)
    second = await shop.bought()
    await shop.command(shop.buyer, "/shop orders")
    card = shop.sim.ephemeral(shop.buyer)[-1]["card"]
    assert card["title"] == "Your orders"
    assert [f["label"] for f in card["fields"]] == [
        f"{second['id']} · Paid · waiting for shipment",
        f"{first['id']} · Shipped",
    ]
    assert card["fields"][0]["value"] == "#2 · 1 item · $12.50"
    await shop.command(shop.seller, "/shop orders")
    labels = [f["label"] for f in shop.sim.ephemeral(shop.seller)[-1]["card"]["fields"]]
    assert labels == [
        f"Sold: {second['id']} · Paid · waiting for shipment",
        f"Sold: {first['id']} · Shipped",
    ]
    eve = shop.sim.user("eve")
    shop.sim.add_member(shop.chat, eve)
    assert (
        await shop.command(eve, "/shop orders") == "You have no orders yet. /shop opens the shop."
    )


async def test_a_course_product_emits_shop_order_paid_for_the_buyer(shop):
    await shop.product("p-course", title="Python 101", price=4900, course_id="python-101")
    order = await shop.bought(value="p-course")
    [event] = shop.sim.events_emitted
    assert event == {
        "name": "shop.order_paid",
        "payload": {"order_id": order["id"], "product_id": "p-course", "course_id": "python-101"},
        "user_id": shop.buyer.id,  # the host names the buyer to each app in its own ids
        "conversation_id": shop.chat.id,
    }
    assert shop.order(order["id"])["course_events"] == "sent"
    await shop.bought(value=MUG)
    assert len(shop.sim.events_emitted) == 1


async def test_a_refund_the_host_refuses_stays_approving_and_is_retried(shop):
    order = await to_state(shop, "shipped")
    # Refunded already outside the order (by hand, say): the host refuses a second full refund.
    await shop.call("payments.refund", {"payment_id": order["payment_id"], "amount": 1250})
    await shop.command(shop.buyer, f"/shop refund {order['id']} lost in the post")
    said = await press(shop, shop.seller, "order.refund_approve", order["id"])
    assert said == "The refund could not be made yet; press Approve again."
    order = shop.order(order["id"])
    assert (order["state"], order["refund"]["state"], order["refunded_total"]) == (
        "refund_requested",
        "approving",
        0,
    )
    assert [t["key"] for t in shop.sim.pending_timers()] == [f"settle-{order['id']}"]
    # A decline can no longer undo an approval whose money may be on its way.
    assert await press(shop, shop.seller, "order.refund_decline", order["id"]) == (
        "That refund is already approved."
    )
    fired = await shop.sim.advance(hours=1)
    assert [f["name"] for f in fired] == ["order.settle"]
    assert shop.order(order["id"])["refund"]["state"] == "approving"
    assert shop.sim.payments[order["payment_id"]]["refunded"] == 1250
