"""The crypto exchange's matching engine, rule by rule: validation codes, price-time priority,
partial fills, IOC/FOK, self-trade prevention, market caps and the house fill, fees, the book's
size limit, cancels and the book's JSON round trip."""

from __future__ import annotations

import json
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest

# The app's own modules, imported as its runtime imports them.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "miniapps" / "crypto"))
import engine
from engine import Book, EngineError, Event, Order, PairSpec, cancel, check_order, submit

SPEC = PairSpec(
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    tick=D("0.01"),
    lot=D("0.0001"),
    min_notional=D("5"),
    maker_fee=D("0.001"),
    taker_fee=D("0.002"),
)
# The design's BTC/USDT: finer lot, so notionals have 7 decimal places.
FINE = PairSpec(
    "BTC/USDT", "BTC", "USDT", D("0.01"), D("0.00001"), D("0.5"), D("0.001"), D("0.002")
)


def limit(oid, user, side, amount, price, tif="GTC") -> Order:
    return Order(oid, user, side, "limit", D(amount), D(price), tif)


def market(oid, user, side, amount, cap=None, tif="IOC") -> Order:
    return Order(oid, user, side, "market", D(amount), None, tif, price_cap=cap and D(cap))


def fills(events: list[Event]) -> list[tuple[str, str, str]]:
    """(maker order, price, amount) of each trade."""
    return [
        (e.trade.maker_order, format(e.trade.price, "f"), format(e.trade.amount, "f"))
        for e in events
        if e.kind == "trade"
    ]


def dones(events: list[Event]) -> list[tuple[str, str, str | None]]:
    return [(e.order_id, e.status, e.reason) for e in events if e.kind == "done"]


def resting(book: Book) -> list[tuple[str, str, str]]:
    return [(o.id, format(o.price, "f"), format(o.remaining, "f")) for o in book.open_orders()]


@pytest.fixture
def book() -> Book:
    return Book(SPEC)


# -- bad input -------------------------------------------------------------------------------


BAD_ORDERS = [
    (Order("o", "u", "buy", "limit", D("-1"), D("100")), "invalid_amount"),
    (Order("o", "u", "buy", "limit", D("0"), D("100")), "invalid_amount"),
    (Order("o", "u", "buy", "limit", D("NaN"), D("100")), "invalid_amount"),
    (Order("o", "u", "buy", "limit", D("sNaN"), D("100")), "invalid_amount"),
    (Order("o", "u", "buy", "limit", D("Infinity"), D("100")), "invalid_amount"),
    (Order("o", "u", "buy", "limit", D("-Infinity"), D("100")), "invalid_amount"),
    (Order("o", "u", "buy", "limit", 0.5, D("100")), "invalid_amount"),  # a float
    (Order("o", "u", "buy", "limit", "0.5", D("100")), "invalid_amount"),
    (Order("o", "u", "buy", "limit", True, D("100")), "invalid_amount"),
    (Order("o", "u", "buy", "limit", D("1e13"), D("1")), "invalid_amount"),
    (Order("o", "u", "buy", "limit", D("1"), None), "invalid_price"),
    (Order("o", "u", "buy", "limit", D("1"), D("-100")), "invalid_price"),
    (Order("o", "u", "buy", "limit", D("1"), D("0")), "invalid_price"),
    (Order("o", "u", "buy", "limit", D("1"), D("NaN")), "invalid_price"),
    (Order("o", "u", "buy", "limit", D("1"), D("Infinity")), "invalid_price"),
    (Order("o", "u", "buy", "limit", D("1"), 100.0), "invalid_price"),
    (Order("o", "u", "buy", "limit", D("1"), D("1e13")), "invalid_price"),
    (Order("o", "u", "buy", "limit", D("1"), D("100.005")), "off_tick"),
    (Order("o", "u", "buy", "limit", D("0.00015"), D("100000")), "off_lot"),
    (Order("o", "u", "buy", "limit", D("0.0499"), D("100")), "below_min_notional"),
    (Order("o", "u", "long", "limit", D("1"), D("100")), "unknown_side"),
    (Order("o", "u", "buy", "stop", D("1"), D("100")), "unknown_type"),
    (Order("o", "u", "buy", "limit", D("1"), D("100"), "GTD"), "unknown_tif"),
    (Order("o", "u", "buy", "market", D("1"), D("100")), "invalid_price"),
    (Order("o", "u", "buy", "market", D("1"), None, price_cap=D("-1")), "invalid_price"),
    (Order("o", "u", "sell", "market", D("0.01"), None, price_cap=D("100")), "below_min_notional"),
    (Order("", "u", "buy", "limit", D("1"), D("100")), "invalid_order"),
    (Order("o", "", "buy", "limit", D("1"), D("100")), "invalid_order"),
    (Order("o", "house", "buy", "limit", D("1"), D("100")), "invalid_order"),
    (Order("o", "fees", "buy", "limit", D("1"), D("100")), "invalid_order"),
]


@pytest.mark.parametrize(("order", "code"), BAD_ORDERS)
def test_bad_orders_are_refused_with_their_code_and_change_nothing(book, order, code):
    submit(book, limit("r1", "maker", "sell", "1", "100"))
    submit(book, limit("r2", "maker", "buy", "1", "99"))
    before = book.to_json()
    with pytest.raises(EngineError) as excinfo:
        check_order(SPEC, order)
    assert excinfo.value.code == code and excinfo.value.message
    with pytest.raises(EngineError) as excinfo:
        submit(book, order)
    assert excinfo.value.code == code
    assert book.to_json() == before
    assert order.remaining is None  # not touched either


def test_a_bad_reference_price_is_refused(book):
    order = market("m", "u", "buy", "1")
    for bad in (D("0"), D("-5"), D("NaN"), D("Infinity")):
        with pytest.raises(EngineError) as excinfo:
            submit(book, order, reference_price=bad)
        assert excinfo.value.code == "invalid_price"
    # A market order below the minimum notional at the reference price.
    with pytest.raises(EngineError) as excinfo:
        check_order(SPEC, market("m", "u", "buy", "0.01"), reference_price=D("100"))
    assert excinfo.value.code == "below_min_notional"


def test_an_order_id_already_on_the_book_is_refused(book):
    submit(book, limit("a", "u1", "sell", "1", "100"))
    with pytest.raises(EngineError) as excinfo:
        submit(book, limit("a", "u2", "sell", "1", "101"))
    assert excinfo.value.code == "duplicate_order"
    assert resting(book) == [("a", "100", "1")]


def test_an_unknown_self_trade_mode_is_a_programming_error(book):
    with pytest.raises(ValueError):
        submit(book, limit("a", "u1", "sell", "1", "100"), stp="allow")


def test_a_bad_pair_spec_is_refused():
    with pytest.raises(ValueError):
        PairSpec("X/Y", "X", "Y", D("0"), D("1"), D("1"), D("0"), D("0"))
    with pytest.raises(ValueError):
        PairSpec("X/Y", "X", "Y", D("1"), D("1"), D("1"), D("1"), D("0"))
    with pytest.raises(ValueError):
        PairSpec("X/Y", "X", "Y", D("1"), D("1"), D("1"), D("0"), D("0"), max_resting=0)


# -- price-time priority, partial fills ------------------------------------------------------


def test_price_then_time_priority_and_the_makers_price(book):
    assert submit(book, limit("a1", "s1", "sell", "1", "101")) == []
    assert submit(book, limit("a2", "s2", "sell", "1", "101")) == []
    assert submit(book, limit("a3", "s3", "sell", "1", "100.50")) == []
    assert submit(book, limit("a4", "s1", "sell", "1", "102")) == []
    assert book.best_ask() == D("100.50")

    events = submit(book, limit("b", "buyer", "buy", "2.5", "101.00"))
    # Best price first (100.50), then FIFO at 101: a1 before a2; each at the maker's price.
    assert fills(events) == [("a3", "100.50", "1"), ("a1", "101", "1"), ("a2", "101", "0.5")]
    assert dones(events) == [("a3", "filled", None), ("a1", "filled", None), ("b", "filled", None)]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert book.next_seq == 7
    assert resting(book) == [("a2", "101", "0.5"), ("a4", "102", "1")]
    assert book.depth() == {"bids": [], "asks": [[D("101"), D("0.5")], [D("102"), D("1")]]}


def test_a_partial_fill_rests_the_remainder_at_its_price_behind_earlier_orders(book):
    submit(book, limit("b1", "u1", "buy", "1", "99"))
    submit(book, limit("s1", "u2", "sell", "0.4", "98"))
    assert resting(book) == [("b1", "99", "0.6")]
    events = submit(book, limit("b2", "u3", "sell", "1", "99"))
    assert fills(events) == [("b1", "99", "0.6")]
    assert dones(events) == [("b1", "filled", None)]
    assert resting(book) == [("b2", "99", "0.4")]  # the remainder rests, now an ask
    assert book.best_bid() is None and book.best_ask() == D("99")
    submit(book, limit("b3", "u4", "buy", "1", "98"))
    submit(book, limit("b4", "u5", "buy", "1", "98"))
    events = submit(book, limit("s2", "u6", "sell", "1.5", "98"))
    assert fills(events) == [("b3", "98", "1"), ("b4", "98", "0.5")]
    assert [o.seq for o in book.open_orders()] == sorted(o.seq for o in book.open_orders())


def test_depth_sums_each_level_best_first(book):
    for i, (price, amount) in enumerate([("99", "1"), ("98", "2"), ("99", "0.5"), ("97", "3")]):
        submit(book, limit(f"b{i}", f"u{i}", "buy", amount, price))
    assert book.depth(2) == {"bids": [[D("99"), D("1.5")], [D("98"), D("2")]], "asks": []}
    assert book.depth(0) == {"bids": [], "asks": []}


# -- time in force ---------------------------------------------------------------------------


def test_ioc_fills_what_it_can_and_the_rest_expires(book):
    submit(book, limit("a", "s", "sell", "1", "100"))
    submit(book, limit("c", "s2", "sell", "1", "102"))
    events = submit(book, limit("i", "b", "buy", "3", "101", "IOC"))
    assert fills(events) == [("a", "100", "1")]
    assert dones(events) == [("a", "filled", None), ("i", "expired", "ioc_rest")]
    assert resting(book) == [("c", "102", "1")]  # the IOC never rests
    events = submit(book, limit("j", "b", "buy", "1", "101", "IOC"))
    assert events == [Event(4, "done", "j", "b", status="expired", reason="ioc_rest")]


def test_fok_is_all_or_nothing_checked_before_any_fill(book):
    submit(book, limit("a", "s1", "sell", "1", "100"))
    submit(book, limit("b", "s2", "sell", "1", "101"))
    submit(book, limit("c", "s3", "sell", "5", "103"))
    before = book.to_json()
    events = submit(book, limit("f", "buyer", "buy", "2.5", "101", "FOK"))
    assert events == [Event(1, "done", "f", "buyer", status="expired", reason="fok_unfillable")]
    assert book.to_json() == {**before, "next_seq": 2}  # nothing filled, nothing rested

    events = submit(book, limit("g", "buyer", "buy", "2", "101", "FOK"))
    assert fills(events) == [("a", "100", "1"), ("b", "101", "1")]
    assert dones(events)[-1] == ("g", "filled", None)


def test_fok_does_not_count_the_takers_own_orders(book):
    submit(book, limit("mine", "u1", "sell", "1", "100"))
    submit(book, limit("theirs", "u2", "sell", "1", "100"))
    before = book.to_json()
    events = submit(book, limit("f", "u1", "buy", "2", "100", "FOK"))
    assert dones(events) == [("f", "expired", "fok_unfillable")]
    assert book.to_json()["asks"] == before["asks"]  # its own order was not cancelled either
    events = submit(book, limit("g", "u1", "buy", "1", "100", "FOK"))
    assert fills(events) == [("theirs", "100", "1")]
    assert dones(events) == [
        ("mine", "cancelled", "self_trade"),
        ("theirs", "filled", None),
        ("g", "filled", None),
    ]


# -- self-trade prevention -------------------------------------------------------------------


def test_expire_maker_cancels_the_own_resting_order_and_matching_goes_on(book):
    submit(book, limit("own", "u1", "sell", "1", "100"))
    submit(book, limit("other", "u2", "sell", "1", "100"))
    events = submit(book, limit("b", "u1", "buy", "1.5", "100"))
    assert [(e.kind, e.order_id, e.status, e.reason) for e in events] == [
        ("done", "own", "cancelled", "self_trade"),
        ("trade", "b", None, None),
        ("done", "other", "filled", None),
    ]
    assert fills(events) == [("other", "100", "1")]
    assert all(e.trade.maker_user != e.trade.taker_user for e in events if e.kind == "trade")
    assert resting(book) == [("b", "100", "0.5")]


def test_expire_taker_stops_the_incoming_order(book):
    submit(book, limit("other", "u2", "sell", "1", "99"))
    submit(book, limit("own", "u1", "sell", "1", "100"))
    submit(book, limit("later", "u3", "sell", "1", "100"))
    events = submit(book, limit("b", "u1", "buy", "3", "100"), stp="expire_taker")
    assert fills(events) == [("other", "99", "1")]
    assert dones(events) == [("other", "filled", None), ("b", "expired", "self_trade")]
    assert resting(book) == [("own", "100", "1"), ("later", "100", "1")]


def test_expire_both_cancels_the_maker_and_stops_the_taker(book):
    submit(book, limit("own", "u1", "sell", "1", "100"))
    submit(book, limit("later", "u3", "sell", "1", "100"))
    events = submit(book, limit("b", "u1", "buy", "2", "100"), stp="expire_both")
    assert fills(events) == []
    assert dones(events) == [("own", "cancelled", "self_trade"), ("b", "expired", "self_trade")]
    assert resting(book) == [("later", "100", "1")]


# -- market orders, caps, the house ----------------------------------------------------------


def test_a_market_order_walks_the_book_up_to_its_cap(book):
    submit(book, limit("a", "s1", "sell", "1", "100"))
    submit(book, limit("b", "s2", "sell", "1", "104"))
    submit(book, limit("c", "s3", "sell", "1", "106"))
    events = submit(book, market("m", "buyer", "buy", "3", cap="105"))
    assert fills(events) == [("a", "100", "1"), ("b", "104", "1")]
    assert dones(events)[-1] == ("m", "expired", "no_liquidity")
    assert resting(book) == [("c", "106", "1")]  # beyond the cap: untouched


def test_a_market_sell_without_cap_takes_one_from_the_book(book):
    submit(book, limit("b1", "u1", "buy", "1", "100"))
    submit(book, limit("b2", "u2", "buy", "1", "95"))
    submit(book, limit("b3", "u3", "buy", "1", "94.99"))
    order = market("m", "seller", "sell", "3")
    events = submit(book, order)
    # No reference price: the cap is 5 % under the best bid (100 -> 95.00).
    assert order.price_cap == D("95.00")
    assert fills(events) == [("b1", "100", "1"), ("b2", "95", "1")]
    assert dones(events)[-1] == ("m", "expired", "no_liquidity")


def test_a_market_order_with_nothing_to_go_by_expires(book):
    events = submit(book, market("m", "u", "buy", "1"))
    assert events == [Event(1, "done", "m", "u", status="expired", reason="no_liquidity")]
    submit(book, limit("a", "s", "sell", "1", "100"))
    with pytest.raises(EngineError) as excinfo:  # below the minimum at the book's price
        submit(book, market("n", "u", "buy", "0.01"))
    assert excinfo.value.code == "below_min_notional"
    assert resting(book) == [("a", "100", "1")]


def test_the_house_fills_the_rest_at_the_reference_price_rounded_to_the_tick(book):
    submit(book, limit("a", "s1", "sell", "0.5", "100"))
    order = market("m", "buyer", "buy", "2")
    events = submit(book, order, reference_price=D("100.456"))
    assert order.price_cap == D("105.47")  # 100.456 * 1.05 = 105.4788, down to the tick
    assert fills(events) == [("a", "100", "0.5"), ("house", "100.46", "1.5")]
    house = events[2].trade
    assert house.house and house.maker_user == "house" and house.maker_order == "house"
    assert house.maker_fee == 0 and house.taker_fee == D("0.30138000")  # 150.69 * 0.002
    assert dones(events) == [("a", "filled", None), ("m", "filled", None)]
    assert book.open_orders() == []


def test_the_house_fills_a_market_sell_and_only_within_the_cap(book):
    events = submit(book, market("m", "seller", "sell", "1"), reference_price=D("50"))
    assert fills(events) == [("house", "50", "1")]
    assert events[0].trade.taker_side == "sell" and events[0].trade.house
    # The market is beyond the cap: no house fill, the order expires.
    events = submit(book, market("n", "seller", "sell", "1", cap="51"), reference_price=D("50"))
    assert fills(events) == [] and dones(events) == [("n", "expired", "no_liquidity")]
    # A limit order never fills against the house.
    events = submit(book, limit("l", "seller", "sell", "1", "50", "IOC"), reference_price=D("50"))
    assert dones(events) == [("l", "expired", "ioc_rest")]


def test_a_market_fok_counts_the_house(book):
    submit(book, limit("a", "s1", "sell", "1", "100"))
    events = submit(book, market("m", "u", "buy", "2", cap="101", tif="FOK"))
    assert dones(events) == [("m", "expired", "fok_unfillable")]
    assert resting(book) == [("a", "100", "1")]
    events = submit(
        book, market("n", "u", "buy", "2", cap="101", tif="FOK"), reference_price=D("100")
    )
    assert fills(events) == [("a", "100", "1"), ("house", "100", "1")]


def test_a_market_order_treats_gtc_as_ioc(book):
    submit(book, limit("a", "s1", "sell", "1", "100"))
    events = submit(book, market("m", "u", "buy", "2", cap="101", tif="GTC"))
    assert dones(events)[-1] == ("m", "expired", "no_liquidity")
    assert book.open_orders() == []


# -- fees ------------------------------------------------------------------------------------


def test_fees_are_rounded_down_to_eight_places_in_the_quote():
    book = Book(FINE)
    submit(book, Order("a", "s", "sell", "limit", D("0.00001"), D("60000.29")))
    events = submit(book, Order("b", "u", "buy", "limit", D("0.00001"), D("60000.29")))
    trade = events[0].trade
    # notional 0.6000029: maker 0.0006000029 -> 0.00060000; taker 0.0012000058 -> 0.00120000
    # (half-even would give 0.00120001).
    assert trade.maker_fee == D("0.00060000") and trade.taker_fee == D("0.00120000")
    assert trade.taker_fee.as_tuple().exponent == -8


# -- book size -------------------------------------------------------------------------------


def test_a_gtc_remainder_beyond_max_resting_expires_book_full():
    spec = PairSpec("X/Y", "X", "Y", D("1"), D("1"), D("1"), D("0"), D("0"), max_resting=2)
    book = Book(spec)
    submit(book, Order("a", "u1", "sell", "limit", D("1"), D("10")))
    submit(book, Order("b", "u2", "sell", "limit", D("1"), D("11")))
    before = book.to_json()
    events = submit(book, Order("c", "u3", "sell", "limit", D("1"), D("12")))
    assert dones(events) == [("c", "expired", "book_full")]
    assert book.to_json() == {**before, "next_seq": before["next_seq"] + 1}
    events = submit(book, Order("d", "u4", "buy", "limit", D("1"), D("9")))
    assert dones(events) == [("d", "expired", "book_full")]
    # A taker that fills a maker frees its place: its remainder may rest.
    events = submit(book, Order("e", "u5", "buy", "limit", D("3"), D("10")))
    assert fills(events) == [("a", "10", "1")]
    assert dones(events) == [("a", "filled", None)]
    assert [(o.id, o.remaining) for o in book.open_orders()] == [("b", 1), ("e", 2)]


# -- cancel ----------------------------------------------------------------------------------


def test_cancel_own_order_only(book):
    submit(book, limit("a", "u1", "sell", "1", "100"))
    submit(book, limit("b", "u1", "sell", "1", "100"))
    before = book.to_json()
    assert cancel(book, "a", "u2") == []  # someone else's: nothing, no seq used
    assert cancel(book, "nope", "u1") == []
    assert book.to_json() == before
    assert cancel(book, "a", "u1") == [
        Event(1, "done", "a", "u1", status="cancelled", reason="user")
    ]
    assert cancel(book, "a", "u1") == []  # twice: already gone
    assert resting(book) == [("b", "100", "1")] and book.order("a") is None
    assert cancel(book, "b", "u1")[0].seq == 2
    assert book.best_ask() is None and book.to_json()["asks"] == []


# -- reservation -----------------------------------------------------------------------------


def test_reservation_per_order_kind(book):
    assert engine.reservation(SPEC, limit("s", "u", "sell", "0.5", "100"), None) == (
        "BTC",
        D("0.5"),
    )
    assert engine.reservation(SPEC, limit("b", "u", "buy", "0.5", "100"), None) == (
        "USDT",
        D("50.1"),
    )
    # Rounded up to 8 places: 60000.03 * 0.00009 * 1.002 = 5.41080270540...
    order = Order("b", "u", "buy", "limit", D("0.00009"), D("60000.03"))
    assert engine.reservation(FINE, order, None) == ("USDT", D("5.41080271"))
    capped = market("m", "u", "buy", "1", cap="110")
    assert engine.reservation(SPEC, capped, D("100")) == ("USDT", D("110.22"))
    uncapped = market("m", "u", "buy", "1")
    with pytest.raises(EngineError) as excinfo:
        engine.reservation(SPEC, uncapped, None)
    assert excinfo.value.code == "invalid_price"
    # With a reference price the order gets its cap here, and submit keeps it.
    assert engine.reservation(SPEC, uncapped, D("100")) == ("USDT", D("105.21"))
    assert uncapped.price_cap == D("105")
    with pytest.raises(EngineError):
        engine.reservation(SPEC, limit("x", "u", "buy", "0", "100"), None)


# -- persistence -----------------------------------------------------------------------------


def test_the_book_round_trips_through_json_and_matches_the_same_afterwards(book):
    submit(book, limit("a", "u1", "sell", "1", "100.10"))
    submit(book, Order("b", "u2", "sell", "limit", D("0.5"), D("100.1"), client_order_id="my-1"))
    submit(book, limit("c", "u3", "buy", "2", "99"))
    submit(book, limit("d", "u4", "sell", "0.3", "99"))
    data = json.loads(json.dumps(book.to_json()))
    copy = Book.from_json(SPEC, data)
    assert copy.to_json() == book.to_json()
    assert json.dumps(copy.to_json(), sort_keys=True) == json.dumps(book.to_json(), sort_keys=True)
    assert copy.order("b").client_order_id == "my-1"
    later = [limit("e", "u5", "buy", "1.2", "100.10"), limit("f", "u1", "sell", "3", "98")]
    events_a = [submit(book, Order(**vars(o))) for o in later]
    events_b = [submit(copy, Order(**vars(o))) for o in later]
    assert events_a == events_b
    assert copy.to_json() == book.to_json()
    with pytest.raises(ValueError):
        Book.from_json(FINE.__class__(**{**vars(FINE), "symbol": "ETH/USDT"}), data)


def test_events_round_trip_through_json(book):
    submit(book, limit("a", "u1", "sell", "1", "100"))
    events = submit(book, market("m", "u2", "buy", "2"), reference_price=D("101"))
    assert any(e.trade and e.trade.house for e in events)
    assert [engine.Event.from_json(json.loads(json.dumps(e.to_json()))) for e in events] == events
    order = market("x", "u", "buy", "1", cap="3")
    assert engine.Order.from_json(json.loads(json.dumps(order.to_json()))) == order


def test_a_full_book_fits_one_stored_document():
    book = Book(SPEC)
    for i in range(SPEC.max_resting):
        side = "buy" if i % 2 else "sell"
        price = D("60000.00") + (D(i) if side == "sell" else -D(i)) * D("0.37")
        order = Order(
            f"o-{i:016x}", f"{i % 37:024x}", side, "limit", D("0.1234"), price.quantize(D("0.01"))
        )
        submit(book, order)
    assert len(book) == SPEC.max_resting
    assert len(json.dumps(book.to_json(), separators=(",", ":"))) < 64 * 1024
    events = submit(book, limit("late", "u", "sell", "1", "70000"))
    assert dones(events) == [("late", "expired", "book_full")]
