"""The paper accounts over the engine's events: reservations, settlement of trades and fees, the
house, releases, idempotence, and refusals that leave the account as it was."""

from __future__ import annotations

import copy
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest

# The app's own modules, imported as its runtime imports them.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "miniapps" / "crypto"))
import engine
import ledger
from engine import Book, Event, Order, PairSpec, Trade, submit
from ledger import FEES_USER, HOUSE_USER, LedgerError

SPEC = PairSpec("BTC/USDT", "BTC", "USDT", D("0.01"), D("0.0001"), D("5"), D("0.001"), D("0.002"))


def place(accounts: dict, book: Book, order: Order, reference_price=None) -> list[Event]:
    """What the exchange does: reserve, submit, settle everyone concerned."""
    asset, amount = engine.reservation(SPEC, order, reference_price)
    accounts[order.user] = ledger.reserve(accounts[order.user], order.id, asset, amount)
    events = submit(book, order, reference_price=reference_price)
    settle(accounts, events)
    return events


def settle(accounts: dict, events: list[Event]) -> None:
    for user in list(accounts):
        accounts[user] = ledger.apply(accounts[user], user, SPEC, events)


def start() -> dict:
    return {
        "ann": ledger.new_account({"USDT": D("10000")}),
        "bob": ledger.new_account({"BTC": D("2"), "USDT": "100"}),
        FEES_USER: ledger.new_account(),
        HOUSE_USER: ledger.new_account(),
    }


def balances(account: dict) -> dict:
    return {
        "free": {a: D(v) for a, v in account["free"].items() if D(v)},
        "reserved": {a: D(v) for a, v in account["reserved"].items() if D(v)},
    }


def test_reserve_moves_free_to_reserved_once_per_order():
    account = ledger.new_account({"USDT": D("100")})
    after = ledger.reserve(account, "o1", "USDT", D("60.5"))
    assert account == ledger.new_account({"USDT": D("100")})  # the input is not changed
    assert balances(after) == {"free": {"USDT": D("39.5")}, "reserved": {"USDT": D("60.5")}}
    assert after["reservations"] == {"o1": {"asset": "USDT", "amount": "60.5"}}
    assert ledger.reserve(after, "o1", "USDT", D("60.5")) == after  # a retry: no-op
    with pytest.raises(LedgerError) as excinfo:
        ledger.reserve(after, "o1", "BTC", D("1"))
    assert excinfo.value.code == "reservation_conflict"
    with pytest.raises(LedgerError) as excinfo:
        ledger.reserve(after, "o2", "USDT", D("39.50000001"))
    assert excinfo.value.code == "insufficient_funds" and "USDT" in excinfo.value.message
    with pytest.raises(LedgerError) as excinfo:
        ledger.reserve(after, "o3", "ETH", D("1"))
    assert excinfo.value.code == "insufficient_funds"
    for bad in (D("0"), D("-1"), D("NaN"), D("Infinity"), 5):
        with pytest.raises(LedgerError) as excinfo:
            ledger.reserve(after, "o4", "USDT", bad)
        assert excinfo.value.code == "invalid_amount"
    everything = ledger.reserve(after, "o5", "USDT", D("39.5"))
    assert ledger.free(everything, "USDT") == 0 and ledger.reserved(everything, "USDT") == 100


def test_a_limit_trade_settles_both_sides_and_the_fees_exactly():
    accounts, book = start(), Book(SPEC)
    sell = Order("s1", "bob", "sell", "limit", D("1.5"), D("60000"))
    assert place(accounts, book, sell) == []
    assert balances(accounts["bob"]) == {
        "free": {"BTC": D("0.5"), "USDT": D("100")},
        "reserved": {"BTC": D("1.5")},
    }
    buy = Order("b1", "ann", "buy", "limit", D("0.1"), D("60500"))
    events = place(accounts, book, buy)
    assert [(e.kind, e.order_id) for e in events] == [("trade", "b1"), ("done", "b1")]
    # ann reserved 0.1 * 60500 * 1.002 = 6062.1 and paid 6000 + 12 (taker fee): 50.1 back.
    assert balances(accounts["ann"]) == {
        "free": {"USDT": D("3988"), "BTC": D("0.1")},
        "reserved": {},
    }
    assert accounts["ann"]["reservations"] == {} and accounts["ann"]["finished"] == ["b1"]
    # bob sold at his price and paid the maker fee 6.
    assert balances(accounts["bob"]) == {
        "free": {"BTC": D("0.5"), "USDT": D("6094")},
        "reserved": {"BTC": D("1.4")},
    }
    assert accounts["bob"]["reservations"]["s1"]["amount"] == "1.4"
    assert balances(accounts[FEES_USER]) == {"free": {"USDT": D("18")}, "reserved": {}}
    assert all(a["applied"] == {"BTC/USDT": 2} for a in accounts.values())
    assert ledger.totals(accounts) == {"USDT": D("10100"), "BTC": D("2")}

    # bob cancels: the rest of his reservation comes back.
    settle(accounts, engine.cancel(book, "s1", "bob"))
    assert balances(accounts["bob"]) == {
        "free": {"BTC": D("1.9"), "USDT": D("6094")},
        "reserved": {},
    }
    assert accounts["bob"]["reservations"] == {} and ledger.totals(accounts)["BTC"] == 2


def test_apply_is_idempotent_and_ignores_other_users_events():
    accounts, book = start(), Book(SPEC)
    place(accounts, book, Order("s1", "bob", "sell", "limit", D("1"), D("100")))
    events = place(accounts, book, Order("b1", "ann", "buy", "limit", D("0.5"), D("100")))
    again = {user: ledger.apply(a, user, SPEC, events) for user, a in accounts.items()}
    assert again == accounts
    # An account that is not concerned only moves its applied seq.
    carl = ledger.new_account({"USDT": D("5")})
    after = ledger.apply(carl, "carl", SPEC, events)
    assert after == {**carl, "applied": {"BTC/USDT": events[-1].seq}}
    assert ledger.apply(after, "carl", SPEC, []) == after


def test_reserving_a_finished_order_again_is_a_no_op():
    accounts, book = start(), Book(SPEC)
    order = Order("b1", "ann", "buy", "limit", D("1"), D("50"), "IOC")
    events = place(accounts, book, order)
    assert events[-1].status == "expired"
    assert balances(accounts["ann"]) == {"free": {"USDT": D("10000")}, "reserved": {}}
    # A retried placement after the order finished cannot reserve again.
    asset, amount = engine.reservation(SPEC, order, None)
    assert ledger.reserve(accounts["ann"], "b1", asset, amount) == accounts["ann"]


def test_the_house_takes_the_other_side_and_may_go_negative():
    accounts, book = start(), Book(SPEC)
    order = Order("m1", "ann", "buy", "market", D("0.1"), None)
    events = place(accounts, book, order, reference_price=D("60000"))
    (trade,) = [e.trade for e in events if e.kind == "trade"]
    assert trade.house and trade.price == D("60000") and trade.taker_fee == D("12")
    assert balances(accounts[HOUSE_USER]) == {
        "free": {"BTC": D("-0.1"), "USDT": D("6000")},
        "reserved": {},
    }
    assert balances(accounts["ann"]) == {
        "free": {"USDT": D("3988"), "BTC": D("0.1")},
        "reserved": {},
    }
    assert ledger.totals(accounts) == {"USDT": D("10100"), "BTC": D("2")}
    # and back: bob sells to the house at a lower reference price
    events = place(accounts, book, Order("m2", "bob", "sell", "market", D("0.5"), None), D("59000"))
    assert events[0].trade.house and events[0].trade.taker_side == "sell"
    assert balances(accounts["bob"])["free"] == {"BTC": D("1.5"), "USDT": D("29541")}
    assert ledger.totals(accounts) == {"USDT": D("10100"), "BTC": D("2")}


def test_a_trade_beyond_its_reservation_is_refused_and_nothing_changes():
    account = ledger.reserve(ledger.new_account({"USDT": D("100")}), "b1", "USDT", D("10"))
    trade = Trade(
        1, "BTC/USDT", D("100"), D("0.1"), "s1", "bob", "b1", "ann", "buy", D("0"), D("0.02")
    )
    with pytest.raises(LedgerError) as excinfo:  # 10 + 0.02 > 10 reserved
        ledger.apply(account, "ann", SPEC, [Event(1, "trade", "b1", "ann", trade)])
    assert excinfo.value.code == "negative_balance"
    assert account["applied"] == {} and ledger.reserved(account, "USDT") == 10
    bob = ledger.new_account({"BTC": D("1")})  # the seller never reserved
    with pytest.raises(LedgerError) as excinfo:
        ledger.apply(bob, "bob", SPEC, [Event(1, "trade", "b1", "ann", trade)])
    assert excinfo.value.code == "missing_reservation"


def test_events_apply_in_seq_order_and_only_once():
    accounts, book = start(), Book(SPEC)
    place(accounts, book, Order("s1", "bob", "sell", "limit", D("1"), D("100")))
    events = submit(book, Order("b1", "ann", "buy", "limit", D("1"), D("100")))
    # ann's reservation was skipped on purpose to show the order does not matter: reserve now.
    accounts["ann"] = ledger.reserve(accounts["ann"], "b1", "USDT", D("100.2"))
    shuffled = list(reversed(events))
    first = ledger.apply(accounts["ann"], "ann", SPEC, shuffled)
    assert first == ledger.apply(accounts["ann"], "ann", SPEC, events)
    assert balances(first) == {"free": {"USDT": D("9899.8"), "BTC": D("1")}, "reserved": {}}
    # Half of the log, then all of it: the first half is not applied twice.
    half = ledger.apply(accounts["ann"], "ann", SPEC, events[:1])
    assert ledger.apply(half, "ann", SPEC, events) == first


def test_totals_add_free_and_reserved():
    a = ledger.reserve(ledger.new_account({"USDT": D("10"), "BTC": "1"}), "o", "BTC", D("0.25"))
    b = ledger.new_account({"USDT": D("-3.5")})
    assert ledger.totals({"a": a, "b": b}) == {"USDT": D("6.5"), "BTC": D("1")}
    assert ledger.totals({}) == {}


def test_fees_never_overdraw_a_buy_filled_in_many_pieces_at_its_limit():
    """Fees round down: a buy filled in pieces at its own price pays at most its reservation
    (half-even rounding would owe 1e-8 more here)."""
    spec = PairSpec(
        "BTC/USDT", "BTC", "USDT", D("0.01"), D("0.00001"), D("0.5"), D("0"), D("0.002")
    )
    book, buyer = Book(spec), ledger.new_account({"USDT": D("10")})
    for i in range(5):
        submit(book, Order(f"s{i}", f"seller{i}", "sell", "limit", D("0.00001"), D("60000.29")))
    order = Order("b", "ann", "buy", "limit", D("0.00005"), D("60000.29"))
    asset, amount = engine.reservation(spec, order, None)
    assert amount == D("3.00601453")  # 3.0000145 * 1.002 = 3.006014529, rounded up
    buyer = ledger.reserve(buyer, "b", asset, amount)
    events = submit(book, order)
    assert len([e for e in events if e.kind == "trade"]) == 5
    paid = sum(e.trade.price * e.trade.amount + e.trade.taker_fee for e in events if e.trade)
    assert paid == D("3.0060145")  # five fees of 0.00120000 (exactly 0.0012000058 each)
    buyer = ledger.apply(buyer, "ann", spec, events)
    assert ledger.free(buyer, "USDT") == D("10") - paid and ledger.reserved(buyer, "USDT") == 0


def test_new_accounts_and_copies_do_not_share_state():
    account = ledger.new_account({"USDT": "1"})
    other = copy.deepcopy(account)
    after = ledger.reserve(account, "o", "USDT", D("1"))
    assert account == other and after["reservations"] and not account["reservations"]
