"""``/crypto buy|sell|cancel|orders|balance|book`` and the trading views in the simulator: the
CCXT-shaped order on an ephemeral card that says it is paper money, the web view's calls, every
kind of bad input refused with its code and nothing written, and the demo traders."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.miniapps.crypto.exchange_fixtures import open_exchange

PAPER = "Paper trading — no real money."
BTC = "BTC/USDT"


def fields(card: dict) -> dict[str, str]:
    return {f["label"]: f["value"] for f in card.get("fields", [])}


async def test_buy_and_sell_commands_answer_the_order_privately(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann = ex.trader("ann")

    card = await ex.command(ann, "/crypto buy 0.02 btc")
    assert card["title"] == "Buy 0.02 BTC at market"
    assert PAPER in card["text"]
    shown = fields(card)
    assert shown["Status"] == "closed"
    assert shown["Filled"] == "0.02 of 0.02"
    assert shown["Average price"] == "60,000 USDT"
    assert shown["Fee"] == "2.4 USDT"
    assert shown["Type"] == "market · BTC/USDT"
    assert shown["Order"].startswith("o-")
    assert ex.sim.messages(ex.chat) == []  # nothing posted in the group: only Ann saw it

    card = await ex.command(ann, "/crypto sell 0.01 btc at 61000")
    assert card["title"] == "Sell 0.01 BTC at 61,000"
    assert fields(card)["Status"] == "open" and fields(card)["Type"] == "limit GTC · BTC/USDT"
    card = await ex.command(ann, "/crypto sell 0.005 btc at 59000 ioc")
    assert fields(card)["Status"] == "expired (ioc rest)"
    card = await ex.command(ann, "/crypto buy 0.5 eth @ 2990 fok")
    assert fields(card)["Status"] == "expired (fok unfillable)"
    assert fields(card)["Type"] == "limit FOK · ETH/USDT"
    ex.check_consistent()


async def test_orders_balance_book_and_cancel_commands(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann = ex.trader("ann")
    await ex.command(ann, "/crypto buy 0.02 btc")
    ask = await ex.place(ann, "sell", "0.01", price="60500")
    bid = await ex.place(ann, "buy", "0.01", price="59500")

    card = await ex.command(ann, "/crypto orders")
    assert card["title"] == "Open orders" and PAPER in card["text"]
    assert set(fields(card)) == {"Sell 0.01 BTC at 60,500", "Buy 0.01 BTC at 59,500"}
    assert ask["id"] in fields(card)["Sell 0.01 BTC at 60,500"]

    card = await ex.command(ann, "/crypto balance")
    assert card["title"] == "Paper balance" and PAPER in card["text"]
    # 10 000 - 1 200 - 2.4 fee; 596.19 (59 500 * 0.01 * 1.002) held for the bid.
    assert fields(card)["USDT"] == "8,797.6 (free 8,201.41 · in orders 596.19)"
    assert fields(card)["BTC"] == "0.02 (free 0.01 · in orders 0.01)"

    card = await ex.command(ann, "/crypto book btc")
    assert card["title"] == "BTC/USDT order book" and PAPER in card["text"]
    assert fields(card)["Asks (BTC for sale)"] == "60,500: 0.01"
    assert fields(card)["Bids (BTC wanted)"] == "59,500: 0.01"
    assert fields(card)["Spread"] == "1,000 USDT"

    card = await ex.command(ann, f"/crypto cancel {bid['id']}")
    assert fields(card)["Status"] == "canceled (user)" and PAPER in card["text"]
    card = await ex.command(ann, f"/crypto cancel {bid['id']}")
    assert "already canceled" in card["text"]
    card = await ex.command(ann, "/crypto orders")
    assert list(fields(card)) == ["Sell 0.01 BTC at 60,500"]
    ex.check_consistent()


async def test_trading_views(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann, bea = ex.trader("ann"), ex.trader("bea")

    markets = await ex.view(ann, "markets")
    assert [p["symbol"] for p in markets["pairs"]] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert (
        markets["pairs"][0] | {"tick": "0.01", "lot": "0.00001", "min_notional": "5"}
        == (markets["pairs"][0])
    )
    balance = await ex.view(bea, "balance")
    assert balance == {
        "balances": [{"asset": "USDT", "free": "10000", "reserved": "0", "total": "10000"}],
        "paper": PAPER,
    }
    assert "accounts" not in ex.sim._storage  # reading a balance creates nothing

    answer = await ex.view(
        ann,
        "order.place",
        {
            "symbol": "ETH/USDT",
            "side": "buy",
            "type": "market",
            "amount": "1",
            "client_order_id": "page-1",
        },
    )
    assert answer["paper"] == PAPER
    assert answer["order"]["status"] == "closed" and answer["order"]["clientOrderId"] == "page-1"
    ask = (
        await ex.view(
            ann,
            "order.place",
            {"symbol": "eth", "side": "sell", "type": "limit", "amount": 0.5, "price": 3010},
        )
    )["order"]
    assert (ask["price"], ask["amount"], ask["status"]) == ("3010", "0.5", "open")

    book = await ex.view(bea, "book", {"symbol": "ETH/USDT"})
    assert book == {
        "symbol": "ETH/USDT",
        "bids": [],
        "asks": [["3010", "0.5"]],
        "best_bid": None,
        "best_ask": "3010",
        "paper": PAPER,
    }
    mine = await ex.view(ann, "orders.mine")
    assert [o["id"] for o in mine["open"]] == [ask["id"]]
    assert {o["clientOrderId"] for o in mine["recent"]} >= {"page-1"}
    assert "user" not in mine["open"][0] and mine["paper"] == PAPER

    cancelled = await ex.view(ann, "order.cancel", {"order_id": ask["id"]})
    assert cancelled["cancelled"] is True and cancelled["order"]["status"] == "canceled"
    assert (await ex.view(ann, "orders.mine"))["open"] == []
    ex.check_consistent("ETH/USDT")


GOOD = {"symbol": BTC, "side": "buy", "type": "limit", "amount": "0.01", "price": "60000"}
BAD_ORDERS = [
    ({"amount": "-1"}, "invalid_amount"),
    ({"amount": "0"}, "invalid_amount"),
    ({"amount": "NaN"}, "invalid_amount"),
    ({"amount": "Infinity"}, "invalid_amount"),
    ({"amount": "ten"}, "invalid_amount"),
    ({"amount": None}, "invalid_amount"),
    ({"amount": True}, "invalid_amount"),
    ({"amount": "1e40"}, "invalid_amount"),
    ({"amount": "0.000001"}, "off_lot"),
    ({"price": "60000.001"}, "off_tick"),
    ({"price": "-60000"}, "invalid_price"),
    ({"price": "nan"}, "invalid_price"),
    ({"price": None}, "invalid_price"),
    ({"amount": "0.00001"}, "below_min_notional"),
    ({"amount": "1"}, "insufficient_funds"),
    ({"side": "sell"}, "insufficient_funds"),
    ({"symbol": "DOGE/USDT"}, "unknown_pair"),
    ({"symbol": "FOO"}, "unknown_pair"),
    ({"symbol": 5}, "unknown_pair"),
    ({"side": "hold"}, "unknown_side"),
    ({"type": "stop"}, "unknown_type"),
    ({"tif": "GTD"}, "unknown_tif"),
    ({"type": "market", "price": "60000"}, "invalid_price"),
    (
        {"type": "market", "amount": "0.2", "price": None},
        "insufficient_funds",
    ),  # 5 % cap on 12 000 USDT
    ({"client_order_id": "no spaces!"}, "invalid_client_order_id"),
    ({"client_order_id": "x" * 37}, "invalid_client_order_id"),
]


@pytest.mark.parametrize(("change", "code"), BAD_ORDERS)
async def test_a_bad_order_is_refused_and_nothing_is_written(monkeypatch, change, code):
    ex = open_exchange(monkeypatch)
    ann = ex.trader("ann")
    await ex.place(ann, "buy", "0.02", symbol="ETH/USDT")  # an account, a book, an order
    before, timers = ex.snapshot(), ex.sim.pending_timers()

    refused = await ex.refused(ann, "order.place", {**GOOD, **change})

    assert refused.code == code, refused
    assert ex.snapshot() == before
    assert ex.sim.pending_timers() == timers


BAD_COMMANDS = [
    ("/crypto buy", "Usage: /crypto buy|sell"),
    ("/crypto buy -1 btc", "The amount must be a number above zero, not '-1'."),
    ("/crypto buy 0 btc", "The amount must be a number above zero, not '0'."),
    ("/crypto buy nan btc", "The amount must be a number above zero, not 'nan'."),
    ("/crypto sell 0.01 doge", "Unknown pair 'doge': trade BTC/USDT, ETH/USDT, SOL/USDT."),
    ("/crypto buy 0.01 btc at 60000.001", "The price must be a multiple of 0.01."),
    ("/crypto buy 0.000001 btc at 60000", "The amount must be a multiple of 0.00001 BTC."),
    ("/crypto buy 0.01 btc at", "Give the price after 'at'"),
    ("/crypto buy 0.01 btc at -3", "The price must be a number above zero, not '-3'."),
    ("/crypto buy 0.01 btc at 60000 gtd", "Unexpected 'gtd'."),
    ("/crypto buy 1 btc at 60000", "That needs 60120 USDT; you have 9398.8 USDT free."),
    ("/crypto sell 1 eth", "That needs 1 ETH; you have 0 ETH free."),
    ("/crypto cancel", "Usage: /crypto cancel <order id>"),
    ("/crypto cancel o-00000000000000000000", "You have no order 'o-00000000000000000000'."),
    ("/crypto book", "Usage: /crypto book <coin>"),
    ("/crypto book xrp", "Unknown pair 'xrp'"),
]


@pytest.mark.parametrize(("text", "said"), BAD_COMMANDS)
async def test_a_bad_command_is_answered_privately_and_nothing_is_written(monkeypatch, text, said):
    ex = open_exchange(monkeypatch)
    ann = ex.trader("ann")
    await ex.place(ann, "buy", "0.01")
    before, timers = ex.snapshot(), ex.sim.pending_timers()

    answer = await ex.command(ann, text)

    assert isinstance(answer, str) and said in answer, answer
    assert ex.snapshot() == before
    assert ex.sim.pending_timers() == timers
    assert ex.sim.messages(ex.chat) == []


async def test_someone_elses_order_cannot_be_cancelled(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann, bea = ex.trader("ann"), ex.trader("bea")
    bid = await ex.place(ann, "buy", "0.01", price="59000")
    before = ex.snapshot()
    for order_id in (bid["id"], "o-ffffffffffffffffffff", "../accounts/x", 42):
        refused = await ex.refused(bea, "order.cancel", {"order_id": order_id})
        assert refused.code == "not_found"
    answer = await ex.command(bea, f"/crypto cancel {bid['id']}")
    assert answer == f"You have no order {bid['id']!r}."
    assert ex.snapshot() == before
    assert ex.order(bid["id"])["status"] == "open"


async def test_demo_traders_put_orders_around_the_market_price_once(monkeypatch):
    ex = open_exchange(monkeypatch)
    ben, dara = ex.trader("ben"), ex.trader("dara")

    first = await ex.view(ben, "demo.seed", {"trader": "ben"})
    second = await ex.view(dara, "demo.seed", {"trader": "dara"})

    assert (first["created"], second["created"]) == (12, 8), (first, second)
    assert first["summary"] == "ben: 12 orders placed" and first["paper"] == PAPER
    for symbol, price in (("BTC/USDT", Decimal("60000")), ("ETH/USDT", Decimal("3000"))):
        book = ex.check_consistent(symbol)
        asks = [o for o in book.open_orders() if o.side == "sell"]
        bids = [o for o in book.open_orders() if o.side == "buy"]
        assert {o.user for o in asks} == {ben.id} and len(asks) == 3
        assert {o.user for o in bids} == {ben.id, dara.id} and len(bids) == 6
        assert price < book.best_ask() < price * Decimal("1.01")
        assert price * Decimal("0.99") < book.best_bid() < price

    # Seeding again places nothing new, whoever asks.
    before = ex.snapshot()
    again = await ex.view(ben, "demo.seed", {"trader": "ben"})
    assert again["created"] == 0 and again["summary"] == "ben: already seeded"
    assert sorted(again["orders"]) == sorted(first["orders"])
    assert (await ex.view(dara, "demo.seed", {"trader": "dara"}))["created"] == 0
    assert ex.snapshot() == before
    refused = await ex.refused(ben, "demo.seed", {"trader": "eve"})
    assert refused.code == "invalid_trader"
