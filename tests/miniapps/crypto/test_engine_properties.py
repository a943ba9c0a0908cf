"""Hypothesis: random order streams through the engine and the ledger.

Each example is a stream of limit and market orders (GTC/IOC/FOK, with and without caps and
reference prices, every self-trade prevention mode) and cancels by three traders who often meet
themselves on the book. Every order is placed as the exchange places it: reservation, reserve,
submit, settle everyone the events concern. After every step:

* the fills are exactly those of a naive reference model (sort the eligible resting orders by
  price then arrival, walk them) — price-time priority, partial fills, IOC/FOK, STP, caps and
  the house fill;
* the book at rest is never crossed, its levels are ordered and FIFO by time priority, and it
  holds at most ``max_resting`` orders; event seqs are contiguous;
* per asset, the total over all accounts (traders, fees, house) is what it was at the start;
  no trader's free or reserved balance is negative; each trader's reservations are exactly its
  open orders, and what a resting buy still holds covers its remaining amount at its price
  plus the taker fee.

Then two replays must agree with the run: the same orders re-submitted to a fresh book that is
stored and re-read as JSON between every step (as the exchange does) give the same events, book
and balances; and fresh accounts settled from the JSON event log alone reach the same balances.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN
from decimal import Decimal as D
from itertools import pairwise
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

# The app's own modules, imported as its runtime imports them.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "miniapps" / "crypto"))
import engine
import ledger
from engine import Book, EngineError, Event, Order, PairSpec
from ledger import FEES_USER, HOUSE_USER, LedgerError

# Fees and lots chosen so fees need rounding (notionals have 5 places, fees 9).
SPEC = PairSpec(
    symbol="ABC/XYZ",
    base="ABC",
    quote="XYZ",
    tick=D("0.01"),
    lot=D("0.001"),
    min_notional=D("10"),
    maker_fee=D("0.0015"),
    taker_fee=D("0.0025"),
    max_resting=4,
)
TRADERS = ("ann", "bob", "cy")
START = {"ABC": D("6"), "XYZ": D("700")}
PRICES = [D("99.00") + i * D("0.13") for i in range(16)]  # on the tick
REFERENCES = [D("98.5") + i * D("0.1234") for i in range(26)]  # off the tick

submits = st.tuples(
    st.just("submit"),
    st.sampled_from(TRADERS),
    st.sampled_from(("buy", "sell")),
    st.sampled_from(("limit", "limit", "limit", "market")),
    st.sampled_from(("GTC", "GTC", "IOC", "FOK")),
    st.integers(0, 13),  # price: PRICES[i] to buy, PRICES[i + 2] to sell (books build up)
    st.integers(50, 3000),  # lots: 0.05 … 3 ABC (below the minimum notional sometimes)
    st.one_of(st.none(), st.sampled_from(REFERENCES)),
    st.one_of(st.none(), st.sampled_from(PRICES)),  # a market order's cap
    st.sampled_from(("expire_maker", "expire_maker", "expire_taker", "expire_both")),
)
cancels = st.tuples(st.just("cancel"), st.sampled_from(TRADERS), st.integers(0, 60))
streams = st.lists(st.one_of(submits, submits, submits, cancels), min_size=20, max_size=60)


# -- the reference model ---------------------------------------------------------------------


@dataclass
class Resting:
    id: str
    user: str
    side: str
    price: D
    remaining: D
    seq: int


class Model:
    """The rules, naively: a list of resting orders, sorted afresh for every incoming order."""

    def __init__(self) -> None:
        self.resting: list[Resting] = []
        self.seq = 0

    def best(self, side: str) -> D | None:
        prices = [r.price for r in self.resting if r.side == side]
        return (max if side == "buy" else min)(prices, default=None)

    def cancel(self, order_id: str, user: str) -> list[tuple]:
        for r in self.resting:
            if r.id == order_id and r.user == user:
                self.resting.remove(r)
                return [("done", order_id, "cancelled", "user")]
        return []

    def submit(self, order: Order, cap: D | None, reference: D | None, stp: str) -> list[tuple]:
        buy, market = order.side == "buy", order.type == "market"
        tif = ("FOK" if order.tif == "FOK" else "IOC") if market else order.tif
        limit = order.price
        if market:
            limit = cap
            if limit is None:
                basis = reference if reference is not None else self.best("sell" if buy else "buy")
                if basis is None:
                    return [("done", order.id, "expired", "no_liquidity")]
                limit = engine.default_price_cap(SPEC, order.side, basis)
        house = None
        if market and reference is not None:
            house = engine.house_price(SPEC, reference)
            if (house > limit) if buy else (house < limit):
                house = None
        eligible = [
            r
            for r in self.resting
            if r.side != order.side and (r.price <= limit if buy else r.price >= limit)
        ]
        eligible.sort(key=lambda r: (r.price if buy else -r.price, r.seq))

        if tif == "FOK":
            available, fillable, stopped = D(0), False, False
            for r in eligible:
                if r.user == order.user:
                    if stp == "expire_maker":
                        continue
                    stopped = True
                    break
                available += r.remaining
                if available >= order.amount:
                    fillable = True
                    break
            if not (fillable or (house is not None and not stopped)):
                return [("done", order.id, "expired", "fok_unfillable")]

        out: list[tuple] = []
        remaining, stopped = order.amount, False
        for r in eligible:
            if remaining == 0:
                break
            if r.user == order.user:
                if stp != "expire_taker":
                    self.resting.remove(r)
                    out.append(("done", r.id, "cancelled", "self_trade"))
                if stp != "expire_maker":
                    stopped = True
                    break
                continue
            amount = min(r.remaining, remaining)
            out.append(("trade", r.id, r.price, amount))
            r.remaining -= amount
            remaining -= amount
            if r.remaining == 0:
                self.resting.remove(r)
                out.append(("done", r.id, "filled", None))
        if remaining and not stopped and house is not None:
            out.append(("trade", "house", house, remaining))
            remaining = D(0)

        if remaining == 0:
            out.append(("done", order.id, "filled", None))
        elif stopped:
            out.append(("done", order.id, "expired", "self_trade"))
        elif market:
            out.append(("done", order.id, "expired", "no_liquidity"))
        elif tif != "GTC":
            out.append(("done", order.id, "expired", "ioc_rest"))
        elif len(self.resting) >= SPEC.max_resting:
            out.append(("done", order.id, "expired", "book_full"))
        else:
            self.seq += 1
            self.resting.append(
                Resting(order.id, order.user, order.side, order.price, remaining, self.seq)
            )
        return out


def summary(events: list[Event]) -> list[tuple]:
    return [
        ("trade", e.trade.maker_order, e.trade.price, e.trade.amount)
        if e.kind == "trade"
        else ("done", e.order_id, e.status, e.reason)
        for e in events
    ]


# -- the exchange, as the storage layer drives the engine ------------------------------------


def fresh_accounts() -> dict[str, dict]:
    accounts = {user: ledger.new_account(START) for user in TRADERS}
    accounts[FEES_USER] = ledger.new_account()
    accounts[HOUSE_USER] = ledger.new_account()
    return accounts


class Exchange:
    def __init__(self, *, through_json: bool = False) -> None:
        self.book = Book(SPEC)
        self.accounts = fresh_accounts()
        self.through_json = through_json
        self.log: list[Event] = []
        self.steps: list[tuple] = []  # what was accepted, for the replays

    def reload(self) -> None:
        """Store and re-read the book and the accounts, as the exchange does between calls."""
        if self.through_json:
            self.book = Book.from_json(SPEC, json.loads(json.dumps(self.book.to_json())))
            self.accounts = json.loads(json.dumps(self.accounts))

    def place(self, order: Order, reference: D | None, stp: str) -> list[Event] | None:
        """None when the order is refused (bad input, not enough funds): nothing changes."""
        self.reload()
        pristine = replace(order)
        try:
            asset, amount = engine.reservation(SPEC, order, reference)
        except EngineError as exc:
            assert exc.code in ("below_min_notional", "invalid_price")
            return None
        before = self.accounts[order.user]
        try:
            self.accounts[order.user] = ledger.reserve(before, order.id, asset, amount)
        except LedgerError as exc:
            assert exc.code == "insufficient_funds"
            return None
        try:
            events = engine.submit(self.book, order, reference_price=reference, stp=stp)
        except EngineError as exc:  # below the minimum at the book's price (no cap, no ref)
            assert exc.code == "below_min_notional"
            self.accounts[order.user] = ledger.release(self.accounts[order.user], order.id)
            self.steps.append(("refused", pristine, reference, stp, asset, amount, len(self.log)))
            return None
        self.settle(events)
        self.steps.append(("submit", pristine, reference, stp, asset, amount, len(self.log)))
        return events

    def cancel(self, order_id: str, user: str) -> list[Event]:
        self.reload()
        events = engine.cancel(self.book, order_id, user)
        self.settle(events)
        self.steps.append(("cancel", order_id, user, len(self.log)))
        return events

    def settle(self, events: list[Event]) -> None:
        self.log.extend(events)
        concerned = {FEES_USER} if any(e.kind == "trade" for e in events) else set()
        for e in events:
            concerned.add(e.user)
            if e.trade is not None:
                concerned.update((e.trade.maker_user, e.trade.taker_user))
        for user in concerned:
            self.accounts[user] = ledger.apply(self.accounts[user], user, SPEC, events)


# -- invariants ------------------------------------------------------------------------------

INITIAL = ledger.totals(fresh_accounts())


def check_book(book: Book, log: list[Event]) -> None:
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is None or ask is None or bid < ask, f"crossed book: {bid} >= {ask}"
    data = book.to_json()
    for key, better in (("bids", lambda a, b: a > b), ("asks", lambda a, b: a < b)):
        prices = [D(price) for price, _ in data[key]]
        assert all(better(a, b) for a, b in pairwise(prices))
        for _, rows in data[key]:
            seqs = [row[4] for row in rows]
            assert rows and seqs == sorted(seqs)  # FIFO by arrival within a level
            assert all(D(0) < D(row[2]) <= D(row[3]) for row in rows)
    assert len(book) <= SPEC.max_resting
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    assert book.next_seq == len(log) + 1


def check_accounts(exchange: Exchange) -> None:
    accounts, book = exchange.accounts, exchange.book
    assert ledger.totals(accounts) == INITIAL
    fees = sum((e.trade.maker_fee + e.trade.taker_fee for e in exchange.log if e.trade), D(0))
    assert ledger.free(accounts[FEES_USER], "XYZ") == fees
    for user in TRADERS:
        account = accounts[user]
        for bucket in ("free", "reserved"):
            assert all(D(v) >= 0 for v in account[bucket].values()), (user, account)
        held: dict[str, D] = {}
        for reservation in account["reservations"].values():
            held[reservation["asset"]] = held.get(reservation["asset"], D(0)) + D(
                reservation["amount"]
            )
        assert {a: v for a, v in held.items() if v} == {
            a: D(v) for a, v in account["reserved"].items() if D(v)
        }
        open_orders = {o.id: o for o in book.open_orders(user)}
        assert set(account["reservations"]) == set(open_orders)
        for order_id, order in open_orders.items():
            left = D(account["reservations"][order_id]["amount"])
            if order.side == "sell":
                assert left == order.remaining
            else:  # what is still held covers the rest, even if it all fills as a taker
                assert left >= order.price * order.remaining * (1 + SPEC.taker_fee)


def check_trades(events: list[Event], order: Order) -> None:
    for e in events:
        if e.trade is None:
            continue
        t = e.trade
        assert t.maker_user != t.taker_user  # self-trade prevention is always on
        assert t.taker_order == order.id and t.taker_side == order.side
        limit = order.price if order.type == "limit" else order.price_cap
        assert (t.price <= limit) if order.side == "buy" else (t.price >= limit)
        notional = t.price * t.amount
        maker_fee = (notional * SPEC.maker_fee).quantize(D("1e-8"), rounding=ROUND_DOWN)
        assert t.maker_fee == (0 if t.house else maker_fee)
        assert t.taker_fee == (notional * SPEC.taker_fee).quantize(D("1e-8"), rounding=ROUND_DOWN)


def run(stream) -> Exchange:
    exchange, model, placed = Exchange(), Model(), []
    for number, action in enumerate(stream):
        if action[0] == "cancel":
            _, user, target = action
            order_id = placed[target % len(placed)] if placed else "nothing"
            expected = model.cancel(order_id, user)
            assert summary(exchange.cancel(order_id, user)) == expected
            continue
        _, user, side, kind, tif, price_index, lots, reference, cap, stp = action
        price = PRICES[price_index if side == "buy" else price_index + 2]
        order = Order(
            f"o{number}",
            user,
            side,
            kind,
            lots * SPEC.lot,
            price if kind == "limit" else None,
            tif,
            price_cap=cap if kind == "market" else None,
        )
        events = exchange.place(order, reference, stp)
        if events is None:
            continue
        placed.append(order.id)
        assert summary(events) == model.submit(order, cap, reference, stp), action
        assert sorted((o.id, o.remaining, o.seq) for o in exchange.book.open_orders()) == sorted(
            (r.id, r.remaining, r.seq) for r in model.resting
        )
        check_trades(events, order)
        check_book(exchange.book, exchange.log)
        check_accounts(exchange)
    return exchange


def replay_orders(exchange: Exchange) -> Exchange:
    """The accepted orders and cancels again, on a fresh book stored as JSON between steps."""
    again = Exchange(through_json=True)
    for step in exchange.steps:
        if step[0] == "cancel":
            again.cancel(step[1], step[2])
            continue
        kind, order, reference, stp, asset, amount, _ = step
        events = again.place(replace(order), reference, stp)
        assert (events is None) == (kind == "refused")
        assert again.steps[-1][4:6] == (asset, amount)
    return again


def replay_log(exchange: Exchange) -> dict[str, dict]:
    """Fresh accounts settled from the stored event log alone: at each step the reservation the
    exchange placed, then the whole log up to that step applied to every account (what an
    account already applied is skipped by its seq)."""
    log = [Event.from_json(json.loads(json.dumps(e.to_json()))) for e in exchange.log]
    accounts = fresh_accounts()
    for step in exchange.steps:
        if step[0] != "cancel":
            kind, order, _, _, asset, amount, _ = step
            accounts[order.user] = ledger.reserve(accounts[order.user], order.id, asset, amount)
            if kind == "refused":
                accounts[order.user] = ledger.release(accounts[order.user], order.id)
        for user in accounts:
            accounts[user] = ledger.apply(accounts[user], user, SPEC, log[: step[-1]])
    return accounts


@settings(max_examples=150, deadline=None)
@given(streams)
def test_random_order_streams_keep_every_rule_and_replay_identically(stream):
    exchange = run(stream)

    again = replay_orders(exchange)
    assert again.log == exchange.log
    assert again.book.to_json() == exchange.book.to_json()
    assert balances_of(again.accounts) == balances_of(exchange.accounts)

    assert balances_of(replay_log(exchange)) == balances_of(exchange.accounts)


def balances_of(accounts: dict[str, dict]) -> dict:
    return {
        user: {
            bucket: {a: D(v) for a, v in account[bucket].items() if D(v)}
            for bucket in ("free", "reserved")
        }
        | {"reservations": {k: D(r["amount"]) for k, r in account["reservations"].items()}}
        for user, account in accounts.items()
    }


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(PRICES),
    st.lists(st.tuples(st.integers(0, 15), st.integers(110, 400)), min_size=1, max_size=8),
)
def test_a_buy_never_pays_more_than_it_reserved(limit_price, pieces):
    """Whatever the fills (any number of makers, at or under the limit), the buyer's payments
    stay within its reservation and every seller receives something non-negative."""
    book = Book(replace(SPEC, max_resting=400))
    for i, (price_index, lots) in enumerate(pieces):
        price = min(PRICES[price_index], limit_price)
        engine.submit(book, Order(f"s{i}", f"seller{i}", "sell", "limit", lots * SPEC.lot, price))
    amount = sum(lots for _, lots in pieces) * SPEC.lot
    order = Order("b", "buyer", "buy", "limit", amount, limit_price)
    asset, reserved = engine.reservation(book.spec, order, None)
    account = ledger.reserve(ledger.new_account({"XYZ": reserved}), "b", asset, reserved)
    events = engine.submit(book, order)
    assert events[-1].status == "filled"
    account = ledger.apply(account, "buyer", book.spec, events)
    assert ledger.free(account, "XYZ") >= 0 and ledger.free(account, "ABC") == amount
    for e in events:
        if e.trade:
            assert e.trade.price * e.trade.amount - e.trade.maker_fee >= 0
