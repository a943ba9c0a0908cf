"""The paper exchange's matching engine: one order book per pair, pure Python, no I/O, no sdk.

``exchange`` stores a ``Book`` as one document (``Book.to_json``), runs ``submit``/``cancel`` on
it and writes it back at the version it read; the returned ``Event`` list is the pair's event log
that ``ledger.apply`` settles. Everything here is deterministic: the same book and the same
calls give the same events, so replaying the orders rebuilds the same book.

Rules
-----
* **Price-time priority.** Bids best (highest) first, asks best (lowest) first; within a price,
  first in, first out. A trade happens at the resting (maker) order's price, so an incoming
  order that crosses gets the better price.
* **Order types.** ``limit`` (a price on the tick; GTC rests its remainder, IOC expires it, FOK
  fills completely or not at all — checked before any fill, so an unfillable FOK changes
  nothing but emits its ``done``/``expired``/``fok_unfillable``) and ``market`` (no price; always
  IOC, or FOK when asked).
* **Market orders and their cap.** A market order walks the book only up to ``price_cap``, the
  worst price it accepts. Without a cap the engine sets one (on the order) from a basis price:
  ``reference_price`` when given, else the best opposite price on the book — ``basis * (1 ±
  MARKET_SLIPPAGE)`` (5 %), rounded to the tick towards the basis (``default_price_cap``).
  ``reservation`` already sets it from the reference price, so a market buy fills within
  exactly what it reserved. With no cap, no reference and an empty opposite side the order
  expires at once (``no_liquidity``); priced at the book, it may still be refused
  ``below_min_notional`` by ``submit`` (after its reservation: ``ledger.release`` it).
* **The house fill** (freqtrade's dry-run rule). When a market order has walked everything the
  book holds within its cap and some of it is left, and the caller passed a (fresh)
  ``reference_price``, the rest fills against the HOUSE — the outside market — at the reference
  price rounded to the tick (half-even), provided that price is within the cap. Such a trade
  has ``house=True``, ``maker_order``/``maker_user`` ``"house"``, no maker fee, the taker fee as
  usual. Without a reference price (none, or a stale one the caller withheld) the rest expires
  with reason ``no_liquidity``. Limit orders never fill against the house.
* **Fees** are charged in the quote asset on each trade's notional (price * amount): the maker
  pays ``maker_fee``, the taker ``taker_fee``, each quantized to ``QUOTE_STEP`` (8 decimal
  places) **rounding down** (``ROUND_DOWN``). Down, not half-even: a buy reserves
  ``price * amount * (1 + taker fee)`` before it is placed (``reservation``), and with half-even
  a buy filled in several pieces at its own limit could owe a few 1e-8 more than it reserved;
  rounding down keeps every payment within its reservation (so no balance can go negative) and
  never charges more than the posted rate. The fee moves from the payer to the fees account to
  the last unit, so conservation is exact.
* **Self-trade prevention** (Binance's modes). ``expire_maker`` (default): a resting order of the
  same user that would be matched is cancelled (``done``/``cancelled``/``self_trade``) and
  matching goes on; ``expire_taker``: the incoming order stops there and its remainder expires
  (``self_trade``); ``expire_both``: both.
* **Book size.** At most ``PairSpec.max_resting`` resting orders (the book is one stored document
  of at most 64 KiB): a GTC remainder that would exceed it expires with reason ``book_full``.
* **Events.** Every fill is a ``trade`` event and every order that finishes — filled, cancelled,
  expired — a ``done`` event; seqs are ``book.next_seq`` (from 1), contiguous, one per event.
  A limit order that rests without trading emits nothing (``order.remaining == order.amount``
  and it is in ``book.open_orders()``).
* **Arithmetic is exact.** Amounts and prices are ``Decimal`` (never float); sums and products
  run in a 60-digit context that traps inexact results, so a value that could not be
  represented exactly raises instead of rounding silently. Inputs are bounded (``MAX_AMOUNT``,
  ``MAX_PRICE``, ``MAX_NOTIONAL``, ``MAX_DIGITS``) so that never happens for a checked order.

``submit`` validates with ``check_order`` first and raises ``EngineError`` (``.code``,
``.message``) on bad input, with the book unchanged. It keeps (and updates: ``remaining``,
``seq``, ``price_cap``) the ``Order`` object it is given.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, fields
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)

HOUSE = "house"  # the outside market's side of a house fill (ledger.HOUSE_USER)
FEES = "fees"  # the account fees go to (ledger.FEES_USER)
RESERVED_USERS = (HOUSE, FEES)

QUOTE_STEP = Decimal("0.00000001")  # fees and quote reservations: 8 decimal places
MARKET_SLIPPAGE = Decimal("0.05")  # default market cap: 5 % worse than the basis price
MAX_AMOUNT = Decimal("1e12")
MAX_PRICE = Decimal("1e12")
MAX_NOTIONAL = Decimal("1e15")
MAX_DIGITS = 24  # significant digits of an amount or a price

SIDES = ("buy", "sell")
TYPES = ("limit", "market")
TIFS = ("GTC", "IOC", "FOK")
STP_MODES = ("expire_maker", "expire_taker", "expire_both")

# Exact arithmetic: any rounding raises (Inexact is trapped). Rounding is done on purpose only,
# with _ROUNDING passed explicitly.
_EXACT = Context(prec=60, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])
_ROUNDING = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow])


class EngineError(Exception):
    """Bad input for the engine: ``code`` is stable (invalid_amount, invalid_price, off_tick,
    off_lot, below_min_notional, unknown_side, unknown_type, unknown_tif, invalid_order,
    duplicate_order, book_full), ``message`` can be shown as is."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PairSpec:
    symbol: str  # "BTC/USDT"
    base: str  # "BTC"
    quote: str  # "USDT"
    tick: Decimal  # price step
    lot: Decimal  # amount step
    min_notional: Decimal  # price * amount at least
    maker_fee: Decimal  # rate, charged in the quote asset
    taker_fee: Decimal
    max_resting: int = 400  # resting orders per book

    def __post_init__(self) -> None:
        for name in ("tick", "lot"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise ValueError(f"PairSpec.{name} must be a positive Decimal")
        if not isinstance(self.min_notional, Decimal) or not self.min_notional >= 0:
            raise ValueError("PairSpec.min_notional must be a Decimal >= 0")
        for name in ("maker_fee", "taker_fee"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not Decimal(0) <= value < 1:
                raise ValueError(f"PairSpec.{name} must be a Decimal in [0, 1)")
        if not isinstance(self.max_resting, int) or self.max_resting < 1:
            raise ValueError("PairSpec.max_resting must be a positive int")


@dataclass
class Order:
    id: str
    user: str
    side: str  # "buy" | "sell"
    type: str  # "limit" | "market"
    amount: Decimal  # in base
    price: Decimal | None  # limit price (None for market)
    tif: str = "GTC"  # "GTC" | "IOC" | "FOK" (market: IOC unless FOK)
    client_order_id: str | None = None
    remaining: Decimal | None = None  # set by the engine
    seq: int = 0  # time priority, set by the engine when it rests
    price_cap: Decimal | None = None  # market orders: worst price accepted

    def to_json(self) -> dict:
        return _encode(self, _ORDER_DECIMALS)

    @classmethod
    def from_json(cls, data: dict) -> Order:
        return _decode(cls, data, _ORDER_DECIMALS)


@dataclass(frozen=True, slots=True)
class Trade:
    seq: int
    symbol: str
    price: Decimal
    amount: Decimal
    maker_order: str
    maker_user: str
    taker_order: str
    taker_user: str
    taker_side: str
    maker_fee: Decimal  # quote asset
    taker_fee: Decimal
    house: bool = False  # filled against the market reference price (no resting maker)

    def to_json(self) -> dict:
        return _encode(self, _TRADE_DECIMALS)

    @classmethod
    def from_json(cls, data: dict) -> Trade:
        return _decode(cls, data, _TRADE_DECIMALS)


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    kind: str  # "trade" | "done"
    order_id: str  # trade: the taker's order
    user: str  # trade: the taker
    trade: Trade | None = None
    status: str | None = None  # done: "filled" | "cancelled" | "expired" | "rejected"
    reason: str | None = None  # done: e.g. "fok_unfillable", "self_trade", "ioc_rest", ...

    def to_json(self) -> dict:
        data = _encode(self, ())
        data["trade"] = self.trade.to_json() if self.trade is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> Event:
        trade = data.get("trade")
        return _decode(cls, {**data, "trade": trade and Trade.from_json(trade)}, ())


_ORDER_DECIMALS = ("amount", "price", "remaining", "price_cap")
_TRADE_DECIMALS = ("price", "amount", "maker_fee", "taker_fee")


def _encode(obj, decimals: tuple[str, ...]) -> dict:
    """A dataclass as a JSON-able dict: the ``decimals`` fields as strings."""
    return {
        f.name: _text(getattr(obj, f.name)) if f.name in decimals else getattr(obj, f.name)
        for f in fields(obj)
    }


def _decode(cls, data: dict, decimals: tuple[str, ...]):
    """The inverse of ``_encode`` (fields missing from ``data`` take their defaults)."""
    return cls(
        **{
            f.name: _dec(data[f.name]) if f.name in decimals else data[f.name]
            for f in fields(cls)
            if f.name in data
        }
    )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _is_number(value: object) -> bool:
    return isinstance(value, Decimal) or (isinstance(value, int) and not isinstance(value, bool))


def _to_tick(value: Decimal, tick: Decimal, rounding: str) -> Decimal:
    steps = _ROUNDING.divide(Decimal(value), tick).to_integral_value(rounding=rounding)
    return _ROUNDING.multiply(steps, tick)


def _too_precise(value: Decimal | int) -> bool:
    return len(Decimal(value).as_tuple().digits) > MAX_DIGITS


def default_price_cap(spec: PairSpec, side: str, basis: Decimal) -> Decimal:
    """The cap of a market order without one: ``MARKET_SLIPPAGE`` worse than ``basis``, on the
    tick (rounded towards the basis), and at least one tick."""
    if side == "buy":
        cap = _to_tick(_ROUNDING.multiply(basis, 1 + MARKET_SLIPPAGE), spec.tick, ROUND_FLOOR)
    else:
        cap = _to_tick(_ROUNDING.multiply(basis, 1 - MARKET_SLIPPAGE), spec.tick, ROUND_CEILING)
    return max(cap, spec.tick)


def house_price(spec: PairSpec, reference_price: Decimal) -> Decimal:
    """The price of a house fill: the reference price rounded to the tick (half-even)."""
    return max(_to_tick(reference_price, spec.tick, ROUND_HALF_EVEN), spec.tick)


def _fee(notional: Decimal, rate: Decimal) -> Decimal:
    return _ROUNDING.multiply(notional, rate).quantize(
        QUOTE_STEP, rounding=ROUND_DOWN, context=_ROUNDING
    )


def check_order(spec: PairSpec, order: Order, reference_price: Decimal | None = None) -> None:
    """Raise ``EngineError`` unless ``order`` is a well-formed order for ``spec``.

    A limit order needs a price on the tick; a market order has no price, and an optional
    ``price_cap`` (> 0). Amount: > 0, on the lot. Notional (price * amount; for a market order
    the reference price, else the cap, * amount — when neither is known, ``submit`` checks it
    against the book) at least ``min_notional``. Ids and users are non-empty strings other
    than the reserved ``"house"``/``"fees"``.
    """
    with localcontext(_EXACT):
        _check_order(spec, order, reference_price)


def _check_order(spec: PairSpec, order: Order, reference_price: Decimal | None) -> None:
    if not isinstance(order.id, str) or not order.id or order.id == HOUSE:
        raise EngineError("invalid_order", "The order needs an id.")
    if not isinstance(order.user, str) or not order.user or order.user in RESERVED_USERS:
        raise EngineError("invalid_order", "The order needs a user.")
    if order.side not in SIDES:
        raise EngineError("unknown_side", f"Unknown side {order.side!r}: buy or sell.")
    if order.type not in TYPES:
        raise EngineError("unknown_type", f"Unknown order type {order.type!r}: limit or market.")
    if order.tif not in TIFS:
        raise EngineError("unknown_tif", f"Unknown time in force {order.tif!r}: GTC, IOC or FOK.")
    amount = order.amount
    if not _is_number(amount) or not Decimal(amount).is_finite() or amount <= 0:
        raise EngineError("invalid_amount", "The amount must be a number above zero.")
    if amount > MAX_AMOUNT or _too_precise(amount):
        raise EngineError("invalid_amount", "The amount is too large or too precise.")
    if amount % spec.lot != 0:
        raise EngineError("off_lot", f"The amount must be a multiple of {spec.lot} {spec.base}.")
    if reference_price is not None:
        _check_price(reference_price, "The reference price")
    if order.type == "limit":
        _check_price(order.price, "The price")
        if order.price % spec.tick != 0:
            raise EngineError("off_tick", f"The price must be a multiple of {spec.tick}.")
        basis = order.price
    else:
        if order.price is not None:
            raise EngineError(
                "invalid_price", "A market order has no price (it may have a price cap)."
            )
        if order.price_cap is not None:
            _check_price(order.price_cap, "The price cap")
        basis = reference_price if reference_price is not None else order.price_cap
    if basis is not None:
        _check_notional(spec, amount * basis)


def _check_price(price: object, what: str) -> None:
    if not _is_number(price) or not Decimal(price).is_finite() or price <= 0:
        raise EngineError("invalid_price", f"{what} must be a number above zero.")
    if price > MAX_PRICE or _too_precise(price):
        raise EngineError("invalid_price", f"{what} is too large or too precise.")


def _check_notional(spec: PairSpec, notional: Decimal) -> None:
    if notional < spec.min_notional:
        raise EngineError(
            "below_min_notional",
            f"The order is worth less than the minimum of {spec.min_notional} {spec.quote}.",
        )
    if notional > MAX_NOTIONAL:
        raise EngineError("invalid_amount", "The order is too large.")


def reservation(
    spec: PairSpec, order: Order, reference_price: Decimal | None
) -> tuple[str, Decimal]:
    """``(asset, amount)`` to reserve before submitting ``order``: a sell reserves its amount of
    base; a buy price * amount * (1 + fee) of quote, rounded up to ``QUOTE_STEP``, where price
    is the limit price (limit) or the price cap (market) and fee the larger of the taker and
    maker fees. A market order without a cap gets its cap here
    (``order.price_cap = default_price_cap(…, reference_price)``), so that ``submit`` fills
    within exactly what was reserved; a market buy with neither a cap nor a reference price
    raises ``EngineError("invalid_price")``.
    """
    check_order(spec, order, reference_price)
    with localcontext(_EXACT):
        if order.type == "market" and order.price_cap is None and reference_price is not None:
            order.price_cap = default_price_cap(spec, order.side, reference_price)
        if order.side == "sell":
            return spec.base, order.amount
        price = order.price if order.type == "limit" else order.price_cap
        if price is None:
            raise EngineError(
                "invalid_price", "A market buy needs a price cap or a current market price."
            )
        rate = max(spec.taker_fee, spec.maker_fee)
        amount = (price * order.amount * (1 + rate)).quantize(
            QUOTE_STEP, rounding=ROUND_UP, context=_ROUNDING
        )
        return spec.quote, amount


class Book:
    """One pair's order book. Bids and asks are price levels (a sorted list of prices beside a
    dict price → deque of orders, FIFO); ``_orders`` indexes the resting orders by id."""

    def __init__(self, spec: PairSpec) -> None:
        self.spec = spec
        self.next_seq = 1  # the next event's seq
        self.next_order_seq = 1  # the next resting order's time priority
        self._bids: dict[Decimal, deque[Order]] = {}
        self._asks: dict[Decimal, deque[Order]] = {}
        self._bid_prices: list[Decimal] = []  # ascending: best bid last
        self._ask_prices: list[Decimal] = []  # ascending: best ask first
        self._orders: dict[str, Order] = {}

    def __len__(self) -> int:
        return len(self._orders)

    # -- reading -----------------------------------------------------------------------------

    def order(self, order_id: str) -> Order | None:
        """The resting order ``order_id``, or None."""
        return self._orders.get(order_id)

    def open_orders(self, user: str | None = None) -> list[Order]:
        """Resting orders (of ``user``, or everyone's), oldest first."""
        orders = [o for o in self._orders.values() if user is None or o.user == user]
        return sorted(orders, key=lambda o: o.seq)

    def best_bid(self) -> Decimal | None:
        return self._bid_prices[-1] if self._bid_prices else None

    def best_ask(self) -> Decimal | None:
        return self._ask_prices[0] if self._ask_prices else None

    def depth(self, levels: int = 10) -> dict:
        """``{"bids": [[price, amount], …], "asks": …}``, best first, Decimals, ``levels`` each."""
        return {
            "bids": [
                [p, sum(o.remaining for o in self._bids[p])]
                for p in reversed(self._bid_prices[-levels:] if levels > 0 else [])
            ],
            "asks": [
                [p, sum(o.remaining for o in self._asks[p])] for p in self._ask_prices[:levels]
            ],
        }

    # -- persistence -------------------------------------------------------------------------

    def to_json(self) -> dict:
        """The book as JSON-able data, compact (the book is one stored document): each side a
        list of ``[price, [[id, user, remaining, amount, seq(, client_order_id)], …]]`` levels,
        best first, FIFO within a level. Decimals as strings; ``from_json`` restores it
        exactly, and ``to_json(from_json(d)) == d``."""

        def level(price: Decimal, orders: deque[Order]) -> list:
            rows = []
            for o in orders:
                row = [o.id, o.user, format(o.remaining, "f"), format(o.amount, "f"), o.seq]
                if o.client_order_id is not None:
                    row.append(o.client_order_id)
                rows.append(row)
            return [format(price, "f"), rows]

        return {
            "symbol": self.spec.symbol,
            "next_seq": self.next_seq,
            "next_order_seq": self.next_order_seq,
            "bids": [level(p, self._bids[p]) for p in reversed(self._bid_prices)],
            "asks": [level(p, self._asks[p]) for p in self._ask_prices],
        }

    @classmethod
    def from_json(cls, spec: PairSpec, data: dict) -> Book:
        if data.get("symbol") != spec.symbol:
            raise ValueError(f"a book of {data.get('symbol')!r}, not {spec.symbol!r}")
        book = cls(spec)
        book.next_seq = int(data["next_seq"])
        book.next_order_seq = int(data["next_order_seq"])
        orders = book._orders
        for side, key, levels, prices in (
            ("buy", "bids", book._bids, book._bid_prices),
            ("sell", "asks", book._asks, book._ask_prices),
        ):
            for price_text, rows in data[key]:
                price = Decimal(price_text)
                level = levels[price] = deque()
                prices.append(price)
                for row in rows:
                    order = Order(
                        row[0],  # id
                        row[1],  # user
                        side,
                        "limit",
                        Decimal(row[3]),  # amount
                        price,
                        "GTC",
                        row[5] if len(row) > 5 else None,  # client_order_id
                        Decimal(row[2]),  # remaining
                        row[4],  # seq
                    )
                    level.append(order)
                    orders[order.id] = order
            prices.sort()  # stored best first; kept ascending
        return book

    # -- internals ---------------------------------------------------------------------------

    def _append(self, order: Order) -> None:
        buy = order.side == "buy"
        levels = self._bids if buy else self._asks
        level = levels.get(order.price)
        if level is None:
            level = levels[order.price] = deque()
            bisect.insort(self._bid_prices if buy else self._ask_prices, order.price)
        level.append(order)
        self._orders[order.id] = order

    def _rest(self, order: Order) -> None:
        order.seq = self.next_order_seq
        self.next_order_seq += 1
        self._append(order)

    def _drop_level(self, side: str, price: Decimal) -> None:
        if side == "buy":
            del self._bids[price]
            prices = self._bid_prices
        else:
            del self._asks[price]
            prices = self._ask_prices
        del prices[bisect.bisect_left(prices, price)]

    def _remove(self, order: Order) -> None:
        level = (self._bids if order.side == "buy" else self._asks)[order.price]
        for i, resting in enumerate(level):
            if resting is order:
                del level[i]
                break
        if not level:
            self._drop_level(order.side, order.price)
        del self._orders[order.id]

    def _event(self, kind: str, order_id: str, user: str, **fields) -> Event:
        event = Event(self.next_seq, kind, order_id, user, **fields)
        self.next_seq += 1
        return event

    def _opposite(self, side: str, limit: Decimal):
        """The opposite side's prices an order of ``side`` limited at ``limit`` reaches, best
        first (for reading only: the book must not change while this is iterated)."""
        if side == "buy":
            for price in self._ask_prices:
                if price > limit:
                    return
                yield price, self._asks[price]
        else:
            for price in reversed(self._bid_prices):
                if price < limit:
                    return
                yield price, self._bids[price]

    def _fillable(self, taker: Order, limit: Decimal, stp: str, house: bool) -> bool:
        """Whether ``taker`` would fill completely (FOK), without changing anything."""
        available = Decimal(0)
        for _price, level in self._opposite(taker.side, limit):
            for maker in level:
                if maker.user == taker.user:
                    if stp == "expire_maker":
                        continue  # it would be cancelled, not traded
                    return False  # matching stops here, the rest expires
                available += maker.remaining
                if available >= taker.amount:
                    return True
        return house

    def _match(self, taker: Order, limit: Decimal, stp: str, events: list[Event]) -> bool:
        """Fill ``taker`` against the book up to ``limit``; False when self-trade prevention
        stopped it."""
        spec = self.spec
        buy = taker.side == "buy"
        maker_side = "sell" if buy else "buy"
        prices = self._ask_prices if buy else self._bid_prices
        levels = self._asks if buy else self._bids
        while taker.remaining > 0 and prices:
            price = prices[0] if buy else prices[-1]
            if (price > limit) if buy else (price < limit):
                break
            level = levels[price]
            while level and taker.remaining > 0:
                maker = level[0]
                if maker.user == taker.user:
                    if stp != "expire_taker":  # expire_maker, expire_both: cancel the maker
                        level.popleft()
                        del self._orders[maker.id]
                        events.append(
                            self._event(
                                "done",
                                maker.id,
                                maker.user,
                                status="cancelled",
                                reason="self_trade",
                            )
                        )
                    if stp != "expire_maker":  # expire_taker, expire_both: stop the taker
                        if not level:
                            self._drop_level(maker_side, price)
                        return False
                    continue
                amount = min(maker.remaining, taker.remaining)
                notional = price * amount
                events.append(
                    self._trade(
                        price,
                        amount,
                        maker.id,
                        maker.user,
                        taker,
                        _fee(notional, spec.maker_fee),
                        _fee(notional, spec.taker_fee),
                    )
                )
                maker.remaining -= amount
                taker.remaining -= amount
                if maker.remaining == 0:
                    level.popleft()
                    del self._orders[maker.id]
                    events.append(self._event("done", maker.id, maker.user, status="filled"))
            if not level:
                self._drop_level(maker_side, price)
        return True

    def _trade(
        self,
        price: Decimal,
        amount: Decimal,
        maker_order: str,
        maker_user: str,
        taker: Order,
        maker_fee: Decimal,
        taker_fee: Decimal,
        house: bool = False,
    ) -> Event:
        trade = Trade(
            self.next_seq,
            self.spec.symbol,
            price,
            amount,
            maker_order,
            maker_user,
            taker.id,
            taker.user,
            taker.side,
            maker_fee,
            taker_fee,
            house,
        )
        return self._event("trade", taker.id, taker.user, trade=trade)


def submit(
    book: Book,
    order: Order,
    *,
    reference_price: Decimal | None = None,
    stp: str = "expire_maker",
) -> list[Event]:
    """Match ``order`` against ``book`` and return the events (see the module docstring for
    the rules). Raises ``EngineError`` on bad input (book unchanged); ``ValueError`` for an
    unknown ``stp`` mode."""
    if stp not in STP_MODES:
        raise ValueError(f"unknown self-trade prevention mode {stp!r}")
    spec = book.spec
    with localcontext(_EXACT):
        _check_order(spec, order, reference_price)
        if order.id in book._orders:
            raise EngineError("duplicate_order", f"Order {order.id} is already on the book.")
        market = order.type == "market"
        if market:
            limit = order.price_cap
            if limit is None:
                basis = reference_price
                if basis is None:
                    basis = book.best_ask() if order.side == "buy" else book.best_bid()
                    if basis is not None:
                        _check_notional(spec, order.amount * basis)
                if basis is not None:
                    limit = default_price_cap(spec, order.side, basis)
            tif = "FOK" if order.tif == "FOK" else "IOC"
        else:
            limit, tif = order.price, order.tif

        order.remaining = order.amount
        if limit is None:  # a market order with no price to go by: nothing to fill against
            return [
                book._event("done", order.id, order.user, status="expired", reason="no_liquidity")
            ]
        if market:
            order.price_cap = limit
        house = None
        if market and reference_price is not None:
            house = house_price(spec, reference_price)
            if (house > limit) if order.side == "buy" else (house < limit):
                house = None  # the market is beyond the cap
        if tif == "FOK" and not book._fillable(order, limit, stp, house is not None):
            return [
                book._event("done", order.id, order.user, status="expired", reason="fok_unfillable")
            ]

        events: list[Event] = []
        matched = book._match(order, limit, stp, events)
        if matched and order.remaining > 0 and house is not None:
            amount = order.remaining
            taker_fee = _fee(house * amount, spec.taker_fee)
            events.append(
                book._trade(house, amount, HOUSE, HOUSE, order, Decimal(0), taker_fee, True)
            )
            order.remaining = Decimal(0)

        if order.remaining == 0:
            reason = None
        elif not matched:
            reason = "self_trade"
        elif market:
            reason = "no_liquidity"
        elif tif != "GTC":
            reason = "ioc_rest"
        elif len(book._orders) >= spec.max_resting:
            reason = "book_full"
        else:
            book._rest(order)
            return events
        status = "filled" if reason is None else "expired"
        events.append(book._event("done", order.id, order.user, status=status, reason=reason))
        return events


def cancel(book: Book, order_id: str, user: str) -> list[Event]:
    """Cancel ``user``'s resting order ``order_id``: its ``done``/``cancelled`` event, or ``[]``
    when it is not on the book (finished, unknown) or not ``user``'s."""
    order = book._orders.get(order_id)
    if order is None or order.user != user:
        return []
    book._remove(order)
    return [book._event("done", order.id, order.user, status="cancelled", reason="user")]
