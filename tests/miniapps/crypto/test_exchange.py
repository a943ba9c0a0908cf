"""The paper exchange's storage layer (``exchange.py``, ``orders.py``) in the simulator: matching
with fees, the house fill at the market price, the stale-price guard, idempotent client order
ids, 30 traders at once on one book, a cancel racing a fill, and crashes finished by the
``exchange.flush`` timer."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from tests.miniapps.crypto.exchange_fixtures import app_module, open_exchange

BTC = "BTC/USDT"


async def funded(ex, name: str, btc: str = "0.1"):
    """A trader who bought ``btc`` BTC at the market price (against the house)."""
    user = ex.trader(name)
    order = await ex.place(user, "buy", btc)
    assert order["status"] == "closed" and order["filled"] == btc, order
    return user


def kinds(log: list[dict]) -> list[tuple]:
    return [
        (e["kind"], e["status"]) if e["kind"] == "done" else ("trade", e["trade"]["price"])
        for e in log
    ]


async def test_limit_orders_match_at_the_makers_price_with_fees(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann = await funded(ex, "ann")
    bea = ex.trader("bea")
    ask = await ex.place(ann, "sell", "0.1", price="60100")
    assert ask["status"] == "open" and ask["remaining"] == "0.1", ask
    assert ex.balance(ann, "BTC") == (Decimal(0), Decimal("0.1"))

    bid = await ex.place(bea, "buy", "0.04", price="60200")

    # The taker gets the resting order's (better) price; fees in USDT: maker 0.1 %, taker 0.2 %.
    assert bid["status"] == "closed" and bid["filled"] == "0.04", bid
    assert bid["average"] == "60100" and bid["cost"] == "2404"
    assert bid["fee"] == {"currency": "USDT", "cost": "4.808"}
    assert set(bid) >= {"id", "clientOrderId", "timeInForce", "timestamp", "datetime", "remaining"}
    ask = ex.order(ask["id"])
    assert (ask["status"], ask["filled"], ask["remaining"]) == ("open", "0.04", "0.06")
    assert ask["fee"]["cost"] == "2.404"
    # Bea's reservation (60 200 * 0.04 * 1.002) is released down to what she paid.
    assert ex.balance(bea, "USDT") == (Decimal("10000") - Decimal("2404") - Decimal("4.808"), 0)
    assert ex.balance(bea, "BTC") == (Decimal("0.04"), 0)
    assert ex.balance(ann, "BTC") == (Decimal(0), Decimal("0.06"))
    assert ex.balance("fees", "USDT")[0] == Decimal("12") + Decimal("2.404") + Decimal("4.808")
    assert kinds(ex.log()) == [
        ("trade", "60000"),
        ("done", "filled"),
        ("trade", "60100"),
        ("done", "filled"),
    ]
    book = ex.check_consistent()
    assert book.best_ask() == Decimal("60100") and book.best_bid() is None


async def test_market_order_walks_the_book_then_fills_at_the_market_price(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann = await funded(ex, "ann", "0.01")
    await ex.place(ann, "sell", "0.01", price="60010")
    bea = ex.trader("bea")

    order = await ex.place(bea, "buy", "0.03")

    # 0.01 from Ann's ask, the rest from the house at the market price (freqtrade's rule).
    trades = [e["trade"] for e in ex.log() if e["kind"] == "trade"][1:]
    assert [(t["price"], t["amount"], t["house"]) for t in trades] == [
        ("60010", "0.01", False),
        ("60000", "0.02", True),
    ]
    assert order["status"] == "closed" and order["filled"] == "0.03"
    assert order["cost"] == "1800.1"
    assert ex.balance("house", "BTC")[0] == Decimal("-0.03")  # the outside market
    ex.check_consistent()


async def test_a_stale_price_is_never_used_to_fill(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann = await funded(ex, "ann", "0.01")
    ex.market.set("btc", "60000", stale=True)
    bea = ex.trader("bea")

    # An empty side and no fresh price: refused, nothing written.
    before = ex.snapshot()
    refused = await ex.refused(
        bea, "order.place", {"symbol": BTC, "side": "buy", "amount": "0.01", "type": "market"}
    )
    assert refused.code == "stale_price"
    assert ex.snapshot() == before

    # With an ask on the book the market order walks it (5 % through its best price) and the
    # rest expires instead of filling against a stale price.
    await ex.place(ann, "sell", "0.01", price="60050")
    order = await ex.place(bea, "buy", "0.03")
    assert (order["status"], order["filled"], order["reason"]) == (
        "expired",
        "0.01",
        "no_liquidity",
    )
    assert not any(e["trade"]["house"] for e in ex.log()[2:] if e["kind"] == "trade")
    ex.check_consistent()


async def test_a_retried_submit_with_the_same_client_order_id_is_one_order(monkeypatch):
    ex = open_exchange(monkeypatch)
    bea = ex.trader("bea")
    params = {"price": "59000", "client_order_id": "web-1"}
    first = await ex.place(bea, "buy", "0.01", **params)
    again = await ex.place(bea, "buy", "0.01", **params)
    assert again == first and first["clientOrderId"] == "web-1"
    # Several at once (a client retrying while the first is still on its way): still one.
    answers = await asyncio.gather(
        *(ex.place(bea, "buy", "0.02", price="58000", client_order_id="web-2") for _ in range(5))
    )
    assert len({a["id"] for a in answers}) == 1
    assert len(ex.sim.storage("orders")) == 2
    reserved = Decimal("59000") * Decimal("0.01") * Decimal("1.002") + Decimal("58000") * Decimal(
        "0.02"
    ) * Decimal("1.002")
    assert ex.balance(bea, "USDT") == (Decimal("10000") - reserved, reserved)
    assert len(ex.book().open_orders()) == 2

    # The same id for another order: refused, nothing written.
    before = ex.snapshot()
    refused = await ex.refused(
        bea,
        "order.place",
        {
            "symbol": BTC,
            "side": "buy",
            "amount": "0.03",
            "price": "59000",
            "client_order_id": "web-1",
        },
    )
    assert refused.code == "duplicate_client_order_id"
    assert ex.snapshot() == before
    ex.check_consistent()


async def test_thirty_traders_on_one_book_at_once_leave_one_consistent_book(monkeypatch):
    ex = open_exchange(monkeypatch)
    sellers = [await funded(ex, f"seller{i}", "0.05") for i in range(15)]
    buyers = [ex.trader(f"buyer{i}") for i in range(15)]
    ex.sim.calls.clear()

    orders = await asyncio.gather(
        *(ex.place(u, "sell", "0.03", price=str(59_900 + 10 * i)) for i, u in enumerate(sellers)),
        *(ex.place(u, "buy", "0.02", price=str(59_950 + 10 * i)) for i, u in enumerate(buyers)),
    )

    # They really raced: writers lost conditional writes and matched again.
    assert sum(c.get("error") == "conflict" for c in ex.sim.calls) > 0
    book = ex.check_consistent()  # not crossed, seqs contiguous, conservation, none negative
    trades = [e["trade"] for e in ex.log() if e["kind"] == "trade" and not e["trade"]["house"]]
    assert trades, "crossing orders traded"
    for order in orders:
        stored = ex.order(order["id"])
        fills = [t for t in trades if order["id"] in (t["maker_order"], t["taker_order"])]
        assert Decimal(stored["filled"]) == sum((Decimal(t["amount"]) for t in fills), Decimal(0))
    # Each trade is at the maker's price, within both limits.
    prices = {o["id"]: Decimal(o["price"]) for o in orders}
    for t in trades:
        buy, sell = (
            (t["taker_order"], t["maker_order"])
            if t["taker_side"] == "buy"
            else (t["maker_order"], t["taker_order"])
        )
        assert prices[sell] <= Decimal(t["price"]) <= prices[buy]
        assert Decimal(t["price"]) == prices[t["maker_order"]]
    resting = {o.id for o in book.open_orders()}
    assert all(ex.order(i)["status"] == "open" for i in resting)


async def after_yields(count: int, call):
    """``call`` once the event loop has run the others ``count`` times: staggering the start of
    two concurrent calls moves the point where their book writes meet."""
    for _ in range(count):
        await asyncio.sleep(0)
    return await call


async def test_a_cancel_racing_a_fill_resolves_one_way_or_the_other(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann = await funded(ex, "ann", "0.15")
    bea = ex.trader("bea")
    outcomes = []
    for round_, stagger in enumerate(range(0, 42, 3)):
        price = str(60_000 + round_)
        ask = await ex.place(ann, "sell", "0.01", price=price)
        cancelled, bid = await asyncio.gather(
            after_yields(stagger, ex.view(ann, "order.cancel", {"order_id": ask["id"]})),
            ex.place(bea, "buy", "0.01", price=price),
        )
        stored_ask, stored_bid = ex.order(ask["id"]), ex.order(bid["id"])
        if cancelled["cancelled"]:  # the cancel's book write landed first
            assert stored_ask["status"] == "canceled" and stored_ask["filled"] == "0"
            assert stored_bid["status"] == "open" and stored_bid["filled"] == "0"
            await ex.view(bea, "order.cancel", {"order_id": bid["id"]})
        else:  # the fill landed first: nothing left to cancel
            assert cancelled["order"]["status"] == "closed"
            assert stored_ask["status"] == "closed" and stored_ask["filled"] == "0.01"
            assert stored_bid["status"] == "closed" and stored_bid["filled"] == "0.01"
        outcomes.append(cancelled["cancelled"])
        ex.check_consistent()
    assert set(outcomes) == {True, False}, outcomes  # both orders of the race were played
    # Ann's BTC: what her filled asks sold, the rest back in free; nothing reserved.
    sold = Decimal("0.01") * outcomes.count(False)
    assert ex.balance(ann, "BTC") == (Decimal("0.15") - sold, 0)


async def test_cancel_after_a_partial_fill_releases_the_rest(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann = await funded(ex, "ann", "0.1")
    bea = ex.trader("bea")
    ask = await ex.place(ann, "sell", "0.05", price="60500")
    await ex.place(bea, "buy", "0.02", price="60500")
    answer = await ex.view(ann, "order.cancel", {"order_id": ask["id"]})
    assert answer["cancelled"] is True
    order = answer["order"]
    assert (order["status"], order["filled"], order["remaining"]) == ("canceled", "0.02", "0.03")
    assert ex.balance(ann, "BTC") == (Decimal("0.08"), 0)
    # Cancelling it again changes nothing.
    before = ex.snapshot()
    again = await ex.view(ann, "order.cancel", {"order_id": ask["id"]})
    assert again["cancelled"] is False and ex.snapshot() == before
    ex.check_consistent()


async def test_self_trade_prevention_cancels_the_resting_order(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann = await funded(ex, "ann", "0.1")
    bid = await ex.place(ann, "buy", "0.01", price="60000")
    ask = await ex.place(ann, "sell", "0.01", price="59990")
    stored = ex.order(bid["id"])
    assert (stored["status"], stored["reason"]) == ("canceled", "self_trade")
    assert ask["status"] == "open" and ask["filled"] == "0"
    assert [o.id for o in ex.book().open_orders()] == [ask["id"]]
    ex.check_consistent()


async def test_fok_fills_all_or_nothing_and_ioc_expires_its_rest(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann = await funded(ex, "ann", "0.1")
    bea = ex.trader("bea")
    await ex.place(ann, "sell", "0.02", price="60100")

    fok = await ex.place(bea, "buy", "0.03", price="60100", tif="FOK")
    assert (fok["status"], fok["filled"], fok["reason"]) == ("expired", "0", "fok_unfillable")
    ioc = await ex.place(bea, "buy", "0.03", price="60100", tif="IOC")
    assert (ioc["status"], ioc["filled"], ioc["reason"]) == ("expired", "0.02", "ioc_rest")
    # Both reservations released: Bea paid only for the 0.02 she got.
    paid = Decimal("60100") * Decimal("0.02") * Decimal("1.002")
    assert ex.balance(bea, "USDT") == (Decimal("10000") - paid, 0)
    ex.check_consistent()


async def test_fills_that_would_not_fit_in_the_book_document_are_refused(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann = await funded(ex, "ann", "0.1")
    bea = ex.trader("bea")
    for i in range(8):
        await ex.place(ann, "sell", "0.001", price=str(60_100 + i))
    exchange = app_module("exchange")
    monkeypatch.setattr(exchange, "BOOK_DOC_MAX", exchange._size(ex.book_doc()) + 2000)

    order = await ex.place(bea, "buy", "0.008", price="60200")

    assert (order["status"], order["filled"], order["reason"]) == (
        "rejected",
        "0",
        "too_many_fills",
    )
    assert len(ex.book().open_orders()) == 8
    assert ex.balance(bea, "USDT") == (Decimal("10000"), 0)
    ex.check_consistent()


# --- crashes ---------------------------------------------------------------------------------


async def start_order(ex, user, client_order_id: str, *, reserve: bool, submit: bool = False):
    """The first steps of ``exchange.place`` for a limit buy of 0.01 BTC at 60 000, run one by
    one in an invocation that then stops (a crash): arm the flush timer, store the order
    ``new``, reserve (when ``reserve``), submit to the book without flushing (``submit``)."""
    exchange, orders, engine = app_module("exchange"), app_module("orders"), app_module("engine")
    spec = app_module("markets").PAIRS[BTC]

    async def steps(ctx):
        order = engine.Order(
            id=exchange.order_id_for(ctx.user_id, client_order_id),
            user=ctx.user_id,
            side="buy",
            type="limit",
            amount=Decimal("0.01"),
            price=Decimal("60000"),
            client_order_id=client_order_id,
        )
        await ctx.schedule(
            "exchange.flush",
            delay=exchange.FLUSH_DELAY_S,
            key=f"flush.{order.id}",
            payload={"order_id": order.id, "symbol": BTC},
        )
        doc = orders.order_doc(order, BTC, ex.sim.now)
        assert await exchange.create_only(ctx, "orders", order.id, doc)
        if reserve:
            asset, need = engine.reservation(spec, order, None)
            assert await exchange.reserve(ctx, ctx.user_id, order.id, asset, need) == "reserved"
        if submit:
            assert await exchange.submit(ctx, spec, order, None)
        return order.id

    return await ex.run_as(user, steps)


async def test_a_crash_between_reserve_and_submit_is_finished_by_the_flush_timer(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann = await funded(ex, "ann", "0.1")
    await ex.place(ann, "sell", "0.004", price="60000")
    bea = ex.trader("bea")

    order_id = await start_order(ex, bea, "crash-1", reserve=True)

    assert ex.order(order_id)["status"] == "new"
    assert ex.balance(bea, "USDT")[1] == Decimal("601.2")  # reserved, not in the book
    assert [o.id for o in ex.book().open_orders()] != [order_id]
    fired = await ex.sim.advance(seconds=5)
    assert f"flush.{order_id}" in [f["key"] for f in fired if f["ok"]]
    order = ex.order(order_id)
    assert (order["status"], order["filled"], order["remaining"]) == ("open", "0.004", "0.006")
    assert order_id in [o.id for o in ex.book().open_orders()]
    ex.check_consistent()


async def test_a_retry_finishes_an_order_whose_placing_crashed(monkeypatch):
    ex = open_exchange(monkeypatch)
    bea = ex.trader("bea")
    order_id = await start_order(ex, bea, "crash-2", reserve=True)
    order = await ex.place(bea, "buy", "0.01", price="60000", client_order_id="crash-2")
    assert order["id"] == order_id and order["status"] == "open"
    await ex.sim.advance(seconds=5)  # the timer then finds nothing left to do
    assert ex.order(order_id)["status"] == "open"
    assert ex.balance(bea, "USDT")[1] == Decimal("601.2")  # reserved once
    ex.check_consistent()


async def test_a_crash_before_reserving_closes_the_order_and_a_retry_reserves_nothing(
    monkeypatch,
):
    ex = open_exchange(monkeypatch)
    bea = ex.trader("bea")
    order_id = await start_order(ex, bea, "crash-3", reserve=False)
    await ex.sim.advance(seconds=5)
    order = ex.order(order_id)
    assert (order["status"], order["reason"]) == ("rejected", "interrupted")
    again = await ex.place(bea, "buy", "0.01", price="60000", client_order_id="crash-3")
    assert again["id"] == order_id and again["status"] == "rejected"
    assert ex.balance(bea, "USDT") == (Decimal("10000"), 0)
    ex.check_consistent()


async def test_a_crash_after_the_book_write_is_flushed_by_the_timer(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann = await funded(ex, "ann", "0.1")
    await ex.place(ann, "sell", "0.01", price="60000")
    bea = ex.trader("bea")

    order_id = await start_order(ex, bea, "crash-4", reserve=True, submit=True)

    # Matched in the book, not yet logged nor settled.
    assert [e["kind"] for e in ex.book_doc()["pending"]] == ["trade", "done", "done"]
    assert ex.order(order_id)["status"] == "new"
    assert ex.balance(bea, "BTC") == (0, 0)
    await ex.sim.advance(seconds=5)
    order = ex.order(order_id)
    assert (order["status"], order["filled"]) == ("closed", "0.01")
    assert ex.balance(bea, "BTC") == (Decimal("0.01"), 0)
    ex.check_consistent()


async def test_cancelling_an_order_that_never_reached_the_book(monkeypatch):
    ex = open_exchange(monkeypatch)
    bea = ex.trader("bea")
    reserved = await start_order(ex, bea, "crash-5", reserve=True)
    unreserved = await start_order(ex, bea, "crash-6", reserve=False)
    for order_id in (reserved, unreserved):
        answer = await ex.view(bea, "order.cancel", {"order_id": order_id})
        assert answer["cancelled"] is True and answer["order"]["status"] == "canceled"
    assert ex.balance(bea, "USDT") == (Decimal("10000"), 0)  # released
    # A late retry of either, and the timers, put nothing in the book and reserve nothing.
    for key in ("crash-5", "crash-6"):
        again = await ex.place(bea, "buy", "0.01", price="60000", client_order_id=key)
        assert again["status"] == "canceled"
    await ex.sim.advance(seconds=5)
    assert ex.book().open_orders() == []
    assert ex.balance(bea, "USDT") == (Decimal("10000"), 0)
    ex.check_consistent()
