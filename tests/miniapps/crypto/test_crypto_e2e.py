"""Crypto through the running platform: two gateway nodes sharing MongoDB and Redis, the crypto
app as a real sandboxed process on each, people over real Socket.IO and HTTP, and the local
CoinGecko stand-in (``coingecko_stub``) as the price provider.

- An administrator sets the app's ``price_provider`` to ``coingecko`` and ``price_api_url`` to
  the stub (the admin API); ``/crypto price btc`` in a group then posts a card with the stub's
  price — the app's ``http.fetch`` really went to the stub.
- Traders, half on each node (``TRADERS``), first buy some BTC at the market price (filled
  against the house at the stub's price), then all place crossing limit orders on BTC/USDT at
  once through the web view's call route. What is stored is one consistent book: no crossed
  book, the event log's seqs contiguous, every asset conserved over all accounts (fees and house
  included), no negative balance, each reservation backed by a live order, each stored order
  agreeing with the book.
- A group league (Join pressed on its card, the leaderboard refreshed by the platform's timer)
  and a copied trade: the confirm card comes to the copier's service chat, where Confirm places
  her order.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from decimal import Decimal

import pytest

from gateway.keys import MESSAGING
from messaging.actions import service_chats
from miniapps.host.store.app_storage import value_of
from tests.conftest import base_url, make_config, node_configs, start_nodes
from tests.helpers import eventually
from tests.messaging.chat_helpers import app_cards, close_all, group, people, person
from tests.miniapps.crypto.coingecko_stub import CoinGeckoStub
from tests.miniapps.shop.e2e_helpers import button, command, press, view

APP = "crypto"
# Traders placing at once, half on each node. Orders on one book are serialised (about 7 a second
# through the platform on this machine), so from about 18 at once the last ones pass the 3 s
# view deadline; 12 passed alone, 8 leaves room for a suite running in two processes.
TRADERS = 8
START_USDT = Decimal("10000")
BTC = "BTC/USDT"
STUB_BTC = Decimal("67187.34")  # coingecko_stub.DEFAULT_PRICES["bitcoin"]


async def stored(db, collection: str) -> dict[str, dict]:
    """Every document of the crypto app's ``collection``, by key, read straight from MongoDB."""
    found = db["app_storage"].find({"app_id": APP, "collection": collection})
    return {doc["key"]: value_of(doc) async for doc in found}


def best(levels: list) -> Decimal | None:
    return Decimal(levels[0][0]) if levels else None


def resting(book: dict) -> dict[str, Decimal]:
    """The book's resting orders: id → remaining."""
    rows = {}
    for side in ("bids", "asks"):
        for _price, orders in book[side]:
            for order_id, _user, remaining, *_rest in orders:
                rows[order_id] = Decimal(remaining)
    return rows


async def check_one_book(db, users: int) -> dict:
    """The BTC/USDT book and everything settled from it are consistent (see the module's doc);
    returns the stored book document."""
    doc = (await stored(db, "books"))["BTC-USDT"]
    assert doc["pending"] == [], doc["pending"]
    book = doc["book"]
    bid, ask = best(book["bids"]), best(book["asks"])
    assert bid is None or ask is None or bid < ask, (bid, ask)
    events = await stored(db, "events")
    seqs = sorted(e["seq"] for k, e in events.items() if k.startswith("BTC-USDT:"))
    assert seqs == list(range(1, book["next_seq"])), seqs

    accounts = await stored(db, "accounts")
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for account in accounts.values():
        for bucket in ("free", "reserved"):
            for asset, amount in account[bucket].items():
                totals[asset] += Decimal(amount)
    assert set(accounts) - {"fees", "house"} and len(accounts) - 2 == users, list(accounts)
    assert totals["USDT"] == START_USDT * users, totals  # fees and the house included
    assert totals["BTC"] == 0, totals  # every coin came from the house, which went short

    live = resting(book)
    orders = await stored(db, "orders")
    for user, account in accounts.items():
        if user != "house":
            for bucket in ("free", "reserved"):
                assert all(Decimal(v) >= 0 for v in account[bucket].values()), (user, account)
        held: dict[str, Decimal] = defaultdict(Decimal)
        for order_id, reservation in account["reservations"].items():
            assert order_id in live, (user, order_id, orders[order_id]["status"])
            held[reservation["asset"]] += Decimal(reservation["amount"])
        for asset, amount in account["reserved"].items():
            assert Decimal(amount) == held[asset], (user, asset, account)
    for order in orders.values():
        if order["id"] in live:
            assert order["status"] == "open", order
            assert Decimal(order["remaining"]) == live[order["id"]], order
        else:
            assert order["status"] in ("closed", "canceled", "expired", "rejected"), order
    return doc


@pytest.mark.xdist_group("heavy")  # CPU-heavy: never beside another heavy test
async def test_stub_prices_and_concurrent_orders_from_two_nodes_make_one_book(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path
):
    configs = node_configs(mongo_url, mongo_db_name, tmp_path, redis_url, jobs_interval=0.05)
    nodes = await start_nodes(aiohttp_server, configs)
    bases = [base_url(node) for node in nodes]
    db = nodes[0].app[MESSAGING].db
    stub = CoinGeckoStub()
    await stub.start()
    admin = await person(bases[0])
    traders = list(await asyncio.gather(*(person(bases[i % 2]) for i in range(TRADERS))))
    try:
        # The operator's step: an administrator; then the app's settings in the admin API.
        await db.users.update_one({"_id": admin.user_id}, {"$set": {"role": "admin"}})
        status, body = await admin.api.request(
            "PUT",
            f"/api/v1/admin/miniapps/{APP}/config",
            json={"values": {"price_provider": "coingecko", "price_api_url": stub.url}},
        )
        assert status == 200, body
        cid = await group(admin, traders, "Trading floor")
        status, body = await admin.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": APP}
        )
        assert status in (200, 201), body

        # /crypto price btc (from node b) posts the stub's price, fetched from the stub.
        await command(traders[1], cid, "/crypto price btc")

        def price_card():
            cards = [m["card"] for m in app_cards(traders[0], cid, APP)]
            return [c for c in cards if c["title"].startswith("BTC ")]

        [card] = await eventually(price_card, what="the BTC price card")
        assert card["title"] == "BTC $67,187.34"
        assert "Prices: CoinGecko (USD)." in card["text"]
        assert card["fields"][0]["value"].startswith("$67,187.34 · ")
        assert any(r["path"] == "/api/v3/simple/price" for r in stub.requests), stub.requests
        asked = next(r for r in stub.requests if r["path"] == "/api/v3/simple/price")
        assert "bitcoin" in asked["query"]["ids"].split(",")

        sellers, buyers = traders[: TRADERS // 2], traders[TRADERS // 2 :]  # both on both nodes
        assert {s.api.base_url for s in sellers} == {b.api.base_url for b in buyers} == set(bases)

        async def place(trader, params: dict) -> dict:
            answer = await view(trader, cid, "order.place", {"symbol": BTC, **params}, app=APP)
            assert answer["paper"] == "Paper trading — no real money."
            return answer["order"]

        # The sellers' coins: market buys, filled against the house at the stub's price.
        seeded = await asyncio.gather(
            *(place(s, {"side": "buy", "type": "market", "amount": "0.02"}) for s in sellers)
        )
        for order in seeded:
            assert order["status"] == "closed", order
            assert Decimal(order["filled"]) == Decimal("0.02")
            assert Decimal(order["average"]) == STUB_BTC, order

        # All at once, from both nodes: asks 67,000-67,090 and bids 67,100-67,010 (crossing).
        asks = [
            place(s, {"side": "sell", "amount": "0.01", "price": str(67000 + 10 * n)})
            for n, s in enumerate(sellers)
        ]
        bids = [
            place(b, {"side": "buy", "amount": "0.01", "price": str(67100 - 10 * n)})
            for n, b in enumerate(buyers)
        ]
        placed = await asyncio.gather(*asks, *bids)
        assert all(o["status"] in ("open", "closed") for o in placed), placed
        assert any(o["status"] == "closed" for o in placed)  # orders did cross

        # Anything a placing left pending is flushed by the next writer or the flush timer.
        async def flushed():
            return (await stored(db, "books"))["BTC-USDT"]["pending"] == []

        await eventually(flushed, timeout=30, what="the book's pending events settled")
        doc = await check_one_book(db, users=TRADERS)

        # What each trader's order says agrees with the log: fills on both sides match.
        events = await stored(db, "events")
        trades = [e["trade"] for e in events.values() if e["kind"] == "trade"]
        market = [t for t in trades if t["house"]]
        assert len(market) == len(sellers) and {Decimal(t["price"]) for t in market} == {STUB_BTC}
        book_trades = [t for t in trades if not t["house"]]
        assert book_trades
        orders = await stored(db, "orders")
        for trade in book_trades:
            assert orders[trade["maker_order"]]["trades"] >= 1
            assert orders[trade["taker_order"]]["trades"] >= 1
        filled_sells = sum(Decimal(o["filled"]) for o in orders.values() if o["side"] == "sell")
        filled_buys = sum(
            Decimal(o["filled"]) for o in orders.values() if o["side"] == "buy" and o["price"]
        )
        assert filled_sells == filled_buys == sum(Decimal(t["amount"]) for t in book_trades)
        left = resting(doc["book"])
        for order in placed:  # GTC limits of different people: each rests or is filled
            status = orders[order["id"]]["status"]
            assert status in ("open", "closed"), orders[order["id"]]
            assert (status == "open") == (order["id"] in left)
    finally:
        await close_all([admin, *traders])
        await stub.close()


async def test_a_league_and_a_copied_trade_through_the_platform(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    """A league card with Join, its leaderboard refreshed by the platform's timer; a trade
    card shared into the group, copied by a friend who confirms on the card that came to her
    service chat with Crypto (its buttons pressed there, as on any card). The simulated market
    (the app's default provider) prices it all."""
    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", jobs_interval=0.05)
    [node] = await start_nodes(aiohttp_server, [config])
    ann, bea = await people(base_url(node), 2)
    try:
        cid = await group(ann, [bea], "Desk")
        status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
        assert status in (200, 201), body

        for someone in (ann, bea):  # they let Crypto show their names on its cards
            answered = await someone.socket.call(
                "miniapp.consent", {"app_id": APP, "scope": "users.profile", "granted": True}
            )
            assert answered["ok"], answered

        def card_titled(someone, chat: str, title: str):
            found = [m for m in app_cards(someone, chat, APP) if m["card"]["title"] == title]
            return found[-1] if found else None

        await command(ann, cid, "/crypto league start 2h")
        league = await eventually(
            lambda: card_titled(bea, cid, "🏆 Trading league"), what="the league card"
        )
        for someone in (bea, ann):
            join = button(league, "league.join")
            ack = await press(someone, cid, league["id"], "league.join", join["value"])
            assert ack["ok"], ack

        order = await view(
            ann,
            cid,
            "order.place",
            {"symbol": BTC, "side": "buy", "type": "market", "amount": "0.001"},
            app=APP,
        )
        assert order["order"]["status"] == "closed"
        await command(ann, cid, f"/crypto share {order['order']['id']}")
        trade = await eventually(
            lambda: (
                card_titled(bea, cid, f"📈 {ann.username.capitalize()} bought 0.001 BTC")
                or card_titled(bea, cid, f"📈 {ann.username} bought 0.001 BTC")
            ),
            what="the trade card, with her name",
        )
        answered = await bea.socket.call(
            "miniapp.consent", {"app_id": APP, "scope": "notifications", "granted": True}
        )
        assert answered["ok"], answered
        copy = button(trade, "copy.start")
        assert (await press(bea, cid, trade["id"], "copy.start", copy["value"]))["ok"]
        service = service_chats.service_chat_id(bea.user_id, APP)
        confirm = await eventually(
            lambda: card_titled(bea, service, "Copy: Buy 0.001 BTC at market"),
            what="the confirm card in her chat with Crypto",
        )
        ok = button(confirm, "copy.confirm")
        assert (await press(bea, service, confirm["id"], "copy.confirm", ok["value"]))["ok"]
        copied = await eventually(
            lambda: card_titled(bea, service, "Buy 0.001 BTC at market"), what="her copied order"
        )
        assert copied["id"] == confirm["id"]  # the confirm card became the order
        assert copied["card"]["text"] == "Copied. Paper trading — no real money."
        mine = await view(bea, cid, "orders.mine", app=APP)
        [recent] = mine["recent"]
        assert (recent["status"], recent["clientOrderId"]) == ("closed", f"copy-{copy['value']}")
        # Meanwhile the platform's timer refreshed the leaderboard (within 5 s of the joins).
        await eventually(
            lambda: len(card_titled(bea, cid, "🏆 Trading league")["card"].get("fields", [])) == 2,
            what="the leaderboard with both traders",
        )
    finally:
        await close_all([ann, bea])
