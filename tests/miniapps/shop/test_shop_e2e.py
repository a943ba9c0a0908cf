"""The shop through the running platform: two gateway nodes sharing MongoDB and Redis, the shop
as a real sandboxed process on each, people over real Socket.IO and HTTP.

The flash sale: 200 buyers press Buy at once on a product with 50 units → exactly 50 are asked
to pay, 150 are told "sold out"; the 50 pay → 50 paid orders; the seller ships, the buyers
confirm receipt → the seller is paid out exactly 50 times the price from the shop's escrow, and the
ledger is zero-sum throughout.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.keys import MESSAGING
from miniapps.host.store.app_storage import value_of
from tests.conftest import base_url, node_configs, start_nodes
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, group, person
from tests.miniapps.shop.e2e_helpers import (
    add_product,
    button,
    command,
    ephemerals,
    events_of,
    grant_merchant,
    open_store,
    press,
    product_card_in,
    shop_cards,
    top_up,
)
from tests.wallet.wallet_helpers import check_ledger
from wallet.store.accounts import merchant_account

BUYERS = 200
UNITS = 50
PRICE = 1500  # minor units of USD
GROUPS = 10


async def shop_docs(db, collection: str) -> list[dict]:
    found = db["app_storage"].find({"app_id": "shop", "collection": collection})
    return [{**value_of(doc), "_key": doc["key"]} async for doc in found]


async def _equals(value, expected) -> bool:
    return await value == expected


def asked_to_pay(buyer) -> list[dict]:
    return [
        data["payment"]
        for data in events_of(buyer, "payment.confirm_required")
        if data["payment"].get("app_id") == "shop"
    ]


@pytest.mark.xdist_group("heavy")  # CPU-heavy: never beside another heavy test
async def test_flash_sale_200_buyers_50_units_on_two_nodes(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path
):
    nodes = await start_nodes(
        aiohttp_server, node_configs(mongo_url, mongo_db_name, tmp_path, redis_url)
    )
    bases = [base_url(node) for node in nodes]
    db = nodes[0].app[MESSAGING].db
    merchant = await person(bases[0])
    admin = await person(bases[1])
    buyers = []
    for first in range(0, BUYERS, 25):
        buyers += await asyncio.gather(*(person(bases[i % 2]) for i in range(first, first + 25)))
    everyone = [merchant, admin, *buyers]
    try:
        await db.users.update_one({"_id": admin.user_id}, {"$set": {"role": "admin"}})
        await grant_merchant(admin, merchant)
        per_group = BUYERS // GROUPS
        groups = []
        for index in range(GROUPS):
            members = buyers[index * per_group : (index + 1) * per_group]
            cid = await group(merchant, members, f"Flash sale {index}")
            status, body = await merchant.api.post(
                f"/api/v1/conversations/{cid}/apps", json={"app_id": "shop"}
            )
            assert status in (200, 201), body
            groups.append((cid, members))
        await open_store(merchant, groups[0][0], "Flash Store")
        product = await add_product(
            merchant, groups[0][0], title="Flash Lamp", price=PRICE, stock=UNITS
        )
        cards = [
            await product_card_in(merchant, cid, "Flash Lamp", product["id"]) for cid, _ in groups
        ]
        for first in range(0, BUYERS, 50):
            await asyncio.gather(*(top_up(b, 2 * PRICE) for b in buyers[first : first + 50]))

        # Everyone presses Buy at once, half of them on each node.
        presses = []
        for (cid, members), card in zip(groups, cards, strict=True):
            buy = button(card, "product.buy")
            presses += [press(b, cid, card["id"], "product.buy", buy["value"]) for b in members]
        acks = await asyncio.gather(*presses)
        assert all(ack["ok"] for ack in acks), [a for a in acks if not a["ok"]][:3]

        def settled():
            done = 0
            for cid, members in groups:
                for buyer in members:
                    sold_out = any("Sold out" in t for t in ephemerals(buyer, cid))
                    done += bool(asked_to_pay(buyer)) or sold_out
            return done == BUYERS

        await eventually(settled, timeout=180, what="every buyer asked to pay or told sold out")
        payers = [b for b in buyers if asked_to_pay(b)]
        told_sold_out = [
            b
            for cid, members in groups
            for b in members
            if any("Sold out" in t for t in ephemerals(b, cid))
        ]
        assert (len(payers), len(told_sold_out)) == (UNITS, BUYERS - UNITS)
        assert not set(map(id, payers)) & set(map(id, told_sold_out))
        [stock] = await shop_docs(db, "stock")
        assert stock["left"] == 0

        confirmations = await asyncio.gather(
            *(
                b.socket.call("payment.confirm", {"payment_id": asked_to_pay(b)[0]["id"]})
                for b in payers
            )
        )
        assert all(c["ok"] and c["payment"]["status"] == "paid" for c in confirmations)

        async def paid_orders():
            orders = await shop_docs(db, "orders")
            return (
                orders
                if len(orders) == UNITS and all(o["state"] == "paid" for o in orders)
                else None
            )

        orders = await eventually(paid_orders, timeout=120, what="50 paid orders")
        assert sorted(o["buyer"] for o in orders) == sorted({o["buyer"] for o in orders})
        await check_ledger(db)

        # The seller ships each order; each buyer confirms receipt on the order's card.
        for index, order in enumerate(orders):
            await command(
                merchant, order["conversation_id"], f"/shop ship {order['id']} TRK{index}"
            )
            await asyncio.sleep(0.05)  # the seller's send rate

        async def shipped():
            found = await shop_docs(db, "orders")
            return all(o["state"] == "shipped" for o in found)

        await eventually(shipped, timeout=120, what="every order shipped")
        payer_of = {asked_to_pay(b)[0]["id"]: b for b in payers}

        def confirm_buttons():
            """Each order's card with its Confirm receipt button, as its buyer sees it (the
            "shipped" update may still be on its way)."""
            found = []
            for order in orders:
                cid, buyer = order["conversation_id"], payer_of[order["payment_id"]]
                for card in shop_cards(buyer, cid):
                    confirm = button(card, "order.confirm")
                    if confirm and confirm["value"] == order["id"]:
                        found.append((buyer, cid, card["id"], order["id"]))
            return found if len(found) == UNITS else None

        ready = await eventually(confirm_buttons, timeout=60, what="every buyer sees Confirm")
        confirms = [press(buyer, cid, mid, "order.confirm", oid) for buyer, cid, mid, oid in ready]
        assert len(confirms) == UNITS
        assert all(ack["ok"] for ack in await asyncio.gather(*confirms))

        async def completed():
            found = await shop_docs(db, "orders")
            return all(o["state"] == "completed" for o in found)

        await eventually(completed, timeout=120, what="every order completed")

        async def seller_usd():
            status, wallet = await merchant.api.get("/api/v1/wallet")
            assert status == 200, wallet
            usd = [b["amount"] for b in wallet["balances"] if b["currency"] == "USD"]
            return usd[0] if usd else 0

        # Each payout follows its order's completion (recorded first, then moved).
        await eventually(
            lambda: _equals(seller_usd(), UNITS * PRICE), timeout=60, what="the seller paid out"
        )
        assert await seller_usd() == UNITS * PRICE

        async def payouts_recorded():
            return all(o["payout"]["state"] == "sent" for o in await shop_docs(db, "orders"))

        await eventually(payouts_recorded, timeout=60, what="every payout recorded")
        assert await seller_usd() == UNITS * PRICE  # and not one more
        balances = await check_ledger(db)
        # The shop's escrow paid out everything it took in: nothing left, nothing overdrawn.
        assert balances[merchant_account("shop", "USD")] == 0
    finally:
        await close_all(everyone)


async def test_a_group_buy_fills_and_every_hold_is_captured_once(gateway):
    """Three friends join a team of three from the card in their group: each confirms a hold;
    the third fills the team, every hold is captured once, each gets an order; the card says
    so in place."""
    base = base_url(gateway)
    db = gateway.app[MESSAGING].db
    merchant, admin, *team = [await person(base) for _ in range(5)]
    try:
        await db.users.update_one({"_id": admin.user_id}, {"$set": {"role": "admin"}})
        await grant_merchant(admin, merchant)
        cid = await group(merchant, team, "Team buy")
        status, body = await merchant.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "shop"}
        )
        assert status in (200, 201), body
        await open_store(merchant, cid, "Team Store")
        product = await add_product(
            merchant, cid, title="Picnic Set", price=2000, stock=9, team_price=1500, team_size=3
        )
        card = await product_card_in(merchant, cid, "Picnic Set", product["id"])
        start = button(card, "groupbuy.start")
        assert (await press(team[0], cid, card["id"], "groupbuy.start", start["value"]))["ok"]

        def team_card():
            for message in shop_cards(team[0], cid):
                if button(message, "groupbuy.join") or "Team complete" in str(message["card"]):
                    return message
            return None

        joinable = await eventually(team_card, what="the group-buy card")
        join = button(joinable, "groupbuy.join")
        for member in team:
            # Asked once to show their name on the card (users.profile), they said yes
            # beforehand, as a person who had answered before (the host remembers it).
            answered = await member.socket.call(
                "miniapp.consent", {"app_id": "shop", "scope": "users.profile", "granted": True}
            )
            assert answered["ok"], answered
            await top_up(member, 2000)
            ack = await press(member, cid, joinable["id"], "groupbuy.join", join["value"])
            assert ack["ok"], ack
            ask = (await eventually(lambda m=member: asked_to_pay(m), what="the hold sheet"))[0]
            assert ask["capture"] is False and ask["amount"] == 1500
            confirmed = await member.socket.call("payment.confirm", {"payment_id": ask["id"]})
            assert confirmed["ok"] and confirmed["payment"]["status"] == "authorized", confirmed

        await eventually(
            lambda: "Team complete" in str((team_card() or {}).get("card")), what="team complete"
        )

        async def three_orders():
            orders = await shop_docs(db, "orders")
            return orders if len(orders) == 3 else None

        orders = await eventually(three_orders, what="an order for each member")
        assert {o["state"] for o in orders} == {"paid"}
        assert sorted(o["total"] for o in orders) == [1500] * 3
        for member in team:
            status, wallet = await member.api.get("/api/v1/wallet")
            usd = [b["amount"] for b in wallet["balances"] if b["currency"] == "USD"]
            assert usd == [500], (member.username, wallet)
        balances = await check_ledger(db)
        assert balances[merchant_account("shop", "USD")] == 3 * 1500
        [stock] = await shop_docs(db, "stock")
        assert stock["left"] == 9 - 3
    finally:
        await close_all([merchant, admin, *team])
