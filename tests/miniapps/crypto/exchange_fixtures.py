"""Helpers for the exchange, trading and portfolio tests: the crypto app in the SDK simulator, its
clock tied to the simulator's (``clock.now_ms`` → ``sim.now``), traders in one group, and a
market price each test sets (``Market.set``: ``prices.quote``/``prices.quotes`` answer it, fresh
or stale) — so fills against the house happen at a known price.

``Exchange.snapshot()`` is every stored document (to check that a refused call wrote nothing);
``accounts()``, ``totals()`` (``ledger.totals`` over every account, fees and house included),
``log(symbol)`` (the stored event log, in seq order), ``book(symbol)`` (the stored ``Book``) and
``check_consistent()`` (the invariants of one pair after any mix of calls) read what is stored.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sdk.errors import ViewError
from sdk.simulator import SimConversation, Simulator, SimUser

CRYPTO_DIR = Path(__file__).resolve().parents[3] / "miniapps" / "crypto"
T0 = 1_803_859_200_000  # Monday 2027-03-01 00:00 UTC
SECOND = 1000
START_USDT = Decimal("10000")


def app_module(name: str):
    """One of the crypto app's own modules, as the loaded app imported it."""
    module = sys.modules[name]
    assert Path(module.__file__).resolve().parent == CRYPTO_DIR, module.__file__
    return module


class Market:
    """The market price each coin has for the app (``prices.quote``/``prices.quotes``)."""

    def __init__(self, sim: Simulator, monkeypatch) -> None:
        self.sim = sim
        self.prices: dict[str, tuple[Decimal, bool]] = {
            "btc": (Decimal("60000"), False),
            "eth": (Decimal("3000"), False),
            "sol": (Decimal("150"), False),
        }
        prices = app_module("prices")

        def make(coin: str):
            coin = prices.coin_of(coin) or coin
            if coin not in self.prices:
                raise prices.PriceError("prices_unavailable", f"no price of {coin}")
            price, stale = self.prices[coin]
            return prices.Quote(coin, price, None, sim.now, stale, "simulated")

        async def quote(ctx, coin):
            return make(coin)

        async def quotes(ctx, coins):
            return {q.coin: q for q in (make(c) for c in coins if c in self.prices)}

        monkeypatch.setattr(prices, "quote", quote)
        monkeypatch.setattr(prices, "quotes", quotes)

    def set(self, coin: str, price: str | Decimal, *, stale: bool = False) -> None:
        self.prices[coin] = (Decimal(str(price)), stale)


@dataclass
class Exchange:
    sim: Simulator
    chat: SimConversation
    market: Market
    people: dict[str, SimUser] = field(default_factory=dict)

    def trader(self, name: str) -> SimUser:
        user = self.sim.user(name)
        self.sim.add_member(self.chat, user)
        self.people[name] = user
        return user

    # --- calls ------------------------------------------------------------------------------

    async def view(self, user: SimUser, name: str, params: dict | None = None) -> dict:
        return await self.sim.view(user, self.chat, name, params or {})

    async def refused(self, user: SimUser, name: str, params: dict | None = None) -> ViewError:
        """The ``ViewError`` the page would get (the test fails if the call succeeds)."""
        try:
            answer = await self.view(user, name, params)
        except ViewError as exc:
            return exc
        raise AssertionError(f"{name} was accepted: {answer}")

    async def place(
        self,
        user: SimUser,
        side: str,
        amount: Any,
        symbol: str = "BTC/USDT",
        price: Any = None,
        **extra,
    ) -> dict:
        """``order.place`` as the web view calls it: the order it answers."""
        params = {"symbol": symbol, "side": side, "amount": str(amount), **extra}
        params["type"] = extra.get("type", "limit" if price is not None else "market")
        if price is not None:
            params["price"] = str(price)
        return (await self.view(user, "order.place", params))["order"]

    async def command(self, user: SimUser, text: str) -> Any:
        """``user`` types ``text``; what they were shown privately (a text, or a card dict)."""
        before = len(self.sim.ephemeral(user))
        await self.sim.command(user, self.chat, text)
        shown = self.sim.ephemeral(user)
        assert len(shown) > before, f"{text!r} showed {user.name} nothing"
        return shown[-1].get("card", shown[-1].get("text"))

    async def run_as(self, user: SimUser, work):
        """``await work(ctx)`` inside a real invocation of the app for ``user`` (a view made
        for the test), e.g. to run one step of the exchange on its own."""
        name = f"test.run.{len(self.sim.app.views)}"

        async def handler(ctx):
            return {"result": await work(ctx)}

        self.sim.app.view(name)(handler)
        return (await self.view(user, name))["result"]

    # --- what is stored ---------------------------------------------------------------------

    def snapshot(self) -> dict:
        return copy.deepcopy({name: dict(items) for name, items in self.sim._storage.items()})

    def accounts(self) -> dict[str, dict]:
        return self.sim.storage("accounts")

    def balance(self, user: SimUser | str, asset: str) -> tuple[Decimal, Decimal]:
        """(free, reserved) of ``asset`` in the stored account."""
        name = user if isinstance(user, str) else user.id
        account = self.accounts()[name]
        return (
            Decimal(account["free"].get(asset, "0")),
            Decimal(account["reserved"].get(asset, "0")),
        )

    def totals(self) -> dict[str, Decimal]:
        return app_module("ledger").totals(self.accounts())

    def log(self, symbol: str = "BTC/USDT") -> list[dict]:
        prefix = symbol.replace("/", "-") + ":"
        events = self.sim.storage("events")
        return [events[k] for k in sorted(events) if k.startswith(prefix)]

    def book_doc(self, symbol: str = "BTC/USDT") -> dict:
        return self.sim.storage("books")[symbol.replace("/", "-")]

    def book(self, symbol: str = "BTC/USDT"):
        engine, markets = app_module("engine"), app_module("markets")
        return engine.Book.from_json(markets.PAIRS[symbol], self.book_doc(symbol)["book"])

    def order(self, order_id: str) -> dict:
        return self.sim.storage("orders")[order_id]

    def check_consistent(self, symbol: str = "BTC/USDT", *, deposits: Decimal = START_USDT):
        """The invariants of the pair after any mix of calls, with every pending event
        flushed: no crossed book, the log's seqs contiguous from 1 up to the book's, every
        asset conserved over all accounts (users at 10 000 USDT each to start, fees and house
        included), nobody but the house negative, nothing reserved for a finished order, and
        each stored order agreeing with the book."""
        doc = self.book_doc(symbol)
        assert doc["pending"] == [], doc["pending"]
        book = self.book(symbol)
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask, (bid, ask)
        seqs = [e["seq"] for e in self.log(symbol)]
        assert seqs == list(range(1, book.next_seq)), seqs
        accounts = self.accounts()
        users = [u for u in accounts if u not in ("fees", "house")]
        totals = self.totals()
        assert totals.get("USDT", Decimal(0)) == deposits * len(users), totals
        for asset, total in totals.items():
            if asset != "USDT":
                assert total == 0, (asset, total)  # every coin came from the house
        resting = {o.id for o in book.open_orders()}
        orders = self.sim.storage("orders")
        for user, account in accounts.items():
            if user == "house":
                continue
            for bucket in ("free", "reserved"):
                assert all(Decimal(v) >= 0 for v in account[bucket].values()), (user, account)
            for order_id, held in account["reservations"].items():
                assert order_id in resting or orders[order_id]["status"] in ("new", "open"), (
                    order_id,
                    held,
                    orders[order_id]["status"],
                )
            reserved = {}
            for held in account["reservations"].values():
                reserved[held["asset"]] = reserved.get(held["asset"], 0) + Decimal(held["amount"])
            for asset, amount in account["reserved"].items():
                assert Decimal(amount) == reserved.get(asset, 0), (user, asset, account)
        for order in orders.values():
            if order["symbol"] != symbol:
                continue
            if order["id"] in resting:
                assert order["status"] == "open", order
                rest = next(o for o in book.open_orders() if o.id == order["id"])
                assert Decimal(order["remaining"]) == rest.remaining, (order, rest)
            else:
                assert order["status"] in ("closed", "canceled", "expired", "rejected"), order
        return book


def open_exchange(monkeypatch, *, now: int = T0, **options: Any) -> Exchange:
    """The app in a simulator at ``now``, its clock tied to the simulator's, a market price
    per coin (BTC 60 000, ETH 3 000, SOL 150, all fresh) and an empty group chat."""
    sim = Simulator(CRYPTO_DIR, **options)
    sim.now = now
    monkeypatch.setattr(app_module("clock"), "now_ms", lambda: sim.now)
    market = Market(sim, monkeypatch)
    return Exchange(sim, sim.conversation(members=[], title="Traders"), market)
