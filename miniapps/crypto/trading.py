"""Paper trading: ``/crypto buy|sell``, ``cancel``, ``orders``, ``balance``, ``book`` and the web
view's calls, over ``exchange`` (books, accounts, orders, settlement). Paper money only: every
card and answer says ``texts.PAPER``.

Commands (each answers the invoker only, with an ephemeral card):

- ``/crypto buy|sell <amount> <coin> [at <price>] [ioc|fok]``: a limit order with ``at``
  (good till cancelled, or IOC/FOK), else a market order (filled from the book up to 5 % through
  the market price, the rest against the market price itself — see ``exchange``). The card is
  the CCXT-shaped order: id, status, filled, average price, fee.
- ``/crypto cancel <order id>``; ``/crypto orders`` (open orders); ``/crypto balance`` (free and
  reserved per asset; 10 000 USDT to start with); ``/crypto book <coin>`` (the depth card: ten
  price levels a side).

Views: ``order.place {symbol, side, type, amount, price?, tif?, client_order_id?}`` →
``{order, paper}``; ``order.cancel {order_id}`` → ``{order, cancelled, paper}``;
``orders.mine`` → ``{open, recent, paper}``; ``balance`` → ``{balances: [{asset, free,
reserved, total}], paper}``; ``book {symbol}`` → ``{symbol, bids, asks, best_bid, best_ask,
paper}`` (prices and amounts as Decimal strings).

Bad input — an amount that is not a number above zero (negative, zero, NaN), a price off the
tick, an amount off the lot, an unknown pair, more than the free balance, someone else's order
(``not_found``) — is refused with a stable code and a short message; nothing is written.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import exchange
import markets
import orders
import prices
from babel.numbers import format_decimal
from engine import TIFS, PairSpec
from exchange import ExchangeError
from markets import fmt
from texts import PAPER

from sdk import Button, Card, Field, Reply, ViewError

BOOK_LEVELS = 10
ORDERS_SHOWN = 15  # fields of the orders card
CLIENT_ORDER_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,36}")
ORDER_ID_RE = re.compile(r"o-[0-9a-f]{20}")
USAGE = (
    "Usage: /crypto buy|sell <amount> <coin> [at <price>] [ioc|fok] — e.g. "
    "/crypto buy 0.01 btc at 60000 · /crypto sell 0.5 eth"
)


# --- input -----------------------------------------------------------------------------------


def pair_of(name: Any) -> PairSpec:
    spec = markets.find_pair(name)
    if spec is None:
        pairs = ", ".join(markets.PAIRS)
        raise ExchangeError("unknown_pair", f"Unknown pair {str(name)[:20]!r}: trade {pairs}.")
    return spec


def amount_of(value: Any) -> Decimal:
    amount = markets.parse_decimal(value)
    if amount is None:
        raise ExchangeError(
            "invalid_amount", f"The amount must be a number above zero, not {str(value)[:20]!r}."
        )
    return amount


def price_of(value: Any) -> Decimal:
    price = markets.parse_decimal(value)
    if price is None:
        raise ExchangeError(
            "invalid_price", f"The price must be a number above zero, not {str(value)[:20]!r}."
        )
    return price


def parse_order(side: str, args: list[str]) -> dict[str, Any]:
    """``<amount> <coin> [at <price>] [ioc|fok]`` → the request ``place`` takes."""
    words = [a for a in args if a]
    if len(words) < 2:
        raise ExchangeError("usage", USAGE)
    amount, spec, rest = amount_of(words[0]), pair_of(words[1]), words[2:]
    price, tif = None, "GTC"
    if rest and rest[0].lower() in ("at", "@"):
        if len(rest) < 2:
            raise ExchangeError("invalid_price", "Give the price after 'at', e.g. at 60000.")
        price, rest = price_of(rest[1]), rest[2:]
    if rest and rest[0].upper() in ("IOC", "FOK"):
        tif, rest = rest[0].upper(), rest[1:]
    if rest:
        raise ExchangeError("usage", f"Unexpected {rest[0][:20]!r}. {USAGE}")
    return {
        "spec": spec,
        "side": side,
        "type": "limit" if price is not None else "market",
        "amount": amount,
        "price": price,
        "tif": tif,
    }


def check_request(params: dict[str, Any]) -> dict[str, Any]:
    """The web view's ``order.place`` params, checked → the request ``place`` takes."""
    spec = pair_of(params.get("symbol"))
    side = params.get("side")
    if side not in ("buy", "sell"):
        raise ExchangeError("unknown_side", "side: buy or sell.")
    kind = params.get("type", "limit")
    if kind not in ("limit", "market"):
        raise ExchangeError("unknown_type", "type: limit or market.")
    amount = amount_of(params.get("amount"))
    price = params.get("price")
    if kind == "limit":
        price = price_of(price)
    elif price not in (None, ""):
        raise ExchangeError("invalid_price", "A market order has no price.")
    else:
        price = None
    tif = params.get("tif") or ("GTC" if kind == "limit" else "IOC")
    if not isinstance(tif, str) or tif.upper() not in TIFS:
        raise ExchangeError("unknown_tif", "tif: GTC, IOC or FOK.")
    client_order_id = params.get("client_order_id")
    if client_order_id is not None and (
        not isinstance(client_order_id, str) or not CLIENT_ORDER_ID_RE.fullmatch(client_order_id)
    ):
        raise ExchangeError(
            "invalid_client_order_id", "client_order_id: 1-36 of A-Z a-z 0-9 _ . : -"
        )
    return {
        "spec": spec,
        "side": side,
        "type": kind,
        "amount": amount,
        "price": price,
        "tif": tif.upper(),
        "client_order_id": client_order_id,
    }


async def market_price(ctx, spec: PairSpec) -> Decimal | None:
    """The pair's market price when it is fresh; None when stale or unavailable (then it is
    never used to fill)."""
    try:
        quote = await prices.quote(ctx, markets.coin_of(spec.symbol))
    except prices.PriceError:
        return None
    return None if quote.stale else quote.price


async def do_place(ctx, request: dict[str, Any]) -> dict[str, Any]:
    """Place the checked request for ``ctx.user_id``: the stored order."""
    spec = request["spec"]
    reference = await market_price(ctx, spec) if request["type"] == "market" else None
    return await exchange.place(
        ctx,
        spec,
        side=request["side"],
        type=request["type"],
        amount=request["amount"],
        price=request["price"],
        tif=request["tif"],
        client_order_id=request.get("client_order_id"),
        reference_price=reference,
    )


# --- cards -----------------------------------------------------------------------------------


def number(value: Any, locale: str | None) -> str:
    """A Decimal string in the reader's locale, every digit kept (``60,000.5``)."""
    if value in (None, ""):
        return "—"
    return format_decimal(
        Decimal(str(value)), locale=prices.babel_locale(locale), decimal_quantization=False
    )


def order_title(order: dict[str, Any], locale: str | None) -> str:
    base, _ = order["symbol"].split("/")
    where = f" at {number(order['price'], locale)}" if order.get("price") else " at market"
    return f"{order['side'].capitalize()} {number(order['amount'], locale)} {base}{where}"


def status_text(order: dict[str, Any]) -> str:
    status = order["status"]
    if order.get("reason") and status != "closed":
        return f"{status} ({str(order['reason']).replace('_', ' ')})"
    return status


def order_card(order: dict[str, Any], locale: str | None, note: str | None = None) -> Card:
    quote = order["symbol"].split("/")[1]
    kind = order["type"] if order["type"] == "market" else f"limit {order['timeInForce']}"
    fields = [
        Field("Status", status_text(order)),
        Field("Filled", f"{number(order['filled'], locale)} of {number(order['amount'], locale)}"),
        Field("Average price", f"{number(order.get('average'), locale)} {quote}"),
        Field("Fee", f"{number(order['fee']['cost'], locale)} {order['fee']['currency']}"),
        Field("Type", f"{kind} · {order['symbol']}"),
        Field("Order", order["id"]),
        Field("Client order id", order.get("clientOrderId") or "—"),
    ]
    text = f"{note} {PAPER}" if note else PAPER
    card = Card(order_title(order, locale)[:100], text=text, fields=fields)
    card.buttons.append(Button.webview("My orders", path="#orders"))
    return card


def balance_rows(account: dict[str, Any]) -> list[dict[str, str]]:
    assets = sorted(
        set(account.get("free") or {}) | set(account.get("reserved") or {}),
        key=lambda a: (a != markets.QUOTE, a),
    )
    rows = []
    for asset in assets:
        free = exchange.free_balance(account, asset)
        total = exchange.held_by(account, asset)
        if total == 0 and asset != markets.QUOTE:
            continue
        rows.append(
            {"asset": asset, "free": fmt(free), "reserved": fmt(total - free), "total": fmt(total)}
        )
    return rows


def balance_card(account: dict[str, Any], locale: str | None) -> Card:
    fields = [
        Field(
            row["asset"],
            f"{number(row['total'], locale)} "
            f"(free {number(row['free'], locale)} · in orders {number(row['reserved'], locale)})",
        )
        for row in balance_rows(account)
    ]
    card = Card("Paper balance", text=PAPER, fields=fields[:20])
    card.buttons.append(Button.webview("Open Crypto", path="#trade"))
    return card


def orders_card(orders: list[dict[str, Any]], locale: str | None) -> Card:
    if not orders:
        return Card("Open orders", text=f"No open orders. {PAPER}")
    fields = [
        Field(
            order_title(o, locale)[:100],
            f"{o['id']} · filled {number(o['filled'], locale)} · {status_text(o)}",
        )
        for o in orders[:ORDERS_SHOWN]
    ]
    more = len(orders) - ORDERS_SHOWN
    text = f"{more} more in the web view. {PAPER}" if more > 0 else PAPER
    card = Card("Open orders", text=text, fields=fields)
    card.buttons.append(Button.webview("My orders", path="#orders"))
    return card


def depth_of(book, levels: int = BOOK_LEVELS) -> dict[str, Any]:
    depth = book.depth(levels)
    return {
        "bids": [[fmt(p), fmt(a)] for p, a in depth["bids"]],
        "asks": [[fmt(p), fmt(a)] for p, a in depth["asks"]],
        "best_bid": fmt(book.best_bid()),
        "best_ask": fmt(book.best_ask()),
    }


def book_card(spec: PairSpec, depth: dict[str, Any], locale: str | None) -> Card:
    def lines(rows: list[list[str]]) -> str:
        return "\n".join(f"{number(p, locale)}: {number(a, locale)}" for p, a in rows) or "—"

    spread = "—"
    if depth["best_bid"] and depth["best_ask"]:
        spread = number(fmt(Decimal(depth["best_ask"]) - Decimal(depth["best_bid"])), locale)
    fields = [
        Field(f"Asks ({spec.base} for sale)", lines(depth["asks"][::-1])),
        Field("Spread", f"{spread} {spec.quote}"),
        Field(f"Bids ({spec.base} wanted)", lines(depth["bids"])),
    ]
    card = Card(f"{spec.symbol} order book", text=PAPER, fields=fields)
    card.buttons.append(Button.webview("Trade", path=f"#trade={markets.coin_of(spec.symbol)}"))
    return card


# --- commands --------------------------------------------------------------------------------


def private(content: str | Card) -> Reply:
    return Reply(ephemeral=content)


def command(do):
    """A subcommand answering an ``ExchangeError`` to the invoker alone."""

    async def handler(ctx, args: list[str]) -> Reply:
        try:
            return await do(ctx, args)
        except ExchangeError as exc:
            return private(exc.message)

    handler.__name__ = getattr(do, "__name__", "command")
    return handler


def view(do):
    """A view answering an ``ExchangeError`` as a ``ViewError`` (same code and message)."""

    async def handler(ctx) -> dict[str, Any]:
        try:
            return await do(ctx)
        except ExchangeError as exc:
            raise ViewError(exc.code, exc.message) from None

    handler.__name__ = getattr(do, "__name__", "view")
    return handler


async def cmd_buy(ctx, args: list[str]) -> Reply:
    order = await do_place(ctx, parse_order("buy", args))
    return private(order_card(order, ctx.locale))


async def cmd_sell(ctx, args: list[str]) -> Reply:
    order = await do_place(ctx, parse_order("sell", args))
    return private(order_card(order, ctx.locale))


async def cmd_cancel(ctx, args: list[str]) -> Reply:
    if len(args) != 1:
        raise ExchangeError("usage", "Usage: /crypto cancel <order id> (see /crypto orders).")
    order, cancelled = await exchange.cancel(ctx, args[0])
    note = None if cancelled else f"It was already {status_text(order)}: nothing to cancel."
    return private(order_card(order, ctx.locale, note))


async def cmd_orders(ctx, args: list[str]) -> Reply:
    return private(orders_card(await orders.open_orders(ctx, ctx.user_id), ctx.locale))


async def cmd_balance(ctx, args: list[str]) -> Reply:
    return private(balance_card(await exchange.get_account(ctx, ctx.user_id), ctx.locale))


async def cmd_book(ctx, args: list[str]) -> Reply:
    if len(args) != 1:
        raise ExchangeError("usage", "Usage: /crypto book <coin>, e.g. /crypto book btc")
    spec = pair_of(args[0])
    book = await exchange.load_book(ctx, spec)
    return private(book_card(spec, depth_of(book), ctx.locale))


# --- views -----------------------------------------------------------------------------------


async def view_place(ctx) -> dict[str, Any]:
    order = await do_place(ctx, check_request(ctx.params))
    return {"order": orders.public_order(order), "paper": PAPER}


async def view_cancel(ctx) -> dict[str, Any]:
    order_id = ctx.params.get("order_id")
    if not isinstance(order_id, str) or not ORDER_ID_RE.fullmatch(order_id):
        raise ExchangeError("not_found", f"You have no order {str(order_id)[:40]!r}.")
    order, cancelled = await exchange.cancel(ctx, order_id)
    return {"order": orders.public_order(order), "cancelled": cancelled, "paper": PAPER}


async def view_orders(ctx) -> dict[str, Any]:
    recent = await orders.recent_orders(ctx, ctx.user_id)
    return {
        "open": [orders.public_order(o) for o in await orders.open_orders(ctx, ctx.user_id)],
        "recent": [orders.public_order(o) for o in recent],
        "paper": PAPER,
    }


async def view_balance(ctx) -> dict[str, Any]:
    account = await exchange.get_account(ctx, ctx.user_id)
    return {"balances": balance_rows(account), "paper": PAPER}


async def view_book(ctx) -> dict[str, Any]:
    spec = pair_of(ctx.params.get("symbol"))
    book = await exchange.load_book(ctx, spec)
    return {"symbol": spec.symbol, **depth_of(book), "paper": PAPER}


async def view_markets(ctx) -> dict[str, Any]:
    """``markets``: the pairs and their rules, for the order form."""
    return {
        "pairs": [
            {
                "symbol": s.symbol,
                "coin": markets.coin_of(s.symbol),
                "base": s.base,
                "quote": s.quote,
                "tick": fmt(s.tick),
                "lot": fmt(s.lot),
                "min_notional": fmt(s.min_notional),
                "maker_fee": fmt(s.maker_fee),
                "taker_fee": fmt(s.taker_fee),
            }
            for s in markets.PAIRS.values()
        ],
        "paper": PAPER,
    }


SUBCOMMANDS = {
    "buy": command(cmd_buy),
    "sell": command(cmd_sell),
    "cancel": command(cmd_cancel),
    "orders": command(cmd_orders),
    "balance": command(cmd_balance),
    "book": command(cmd_book),
}
TIMERS = {"exchange.flush": exchange.on_flush_timer}
VIEWS = {
    "order.place": view(view_place),
    "order.cancel": view(view_cancel),
    "orders.mine": view(view_orders),
    "balance": view(view_balance),
    "book": view(view_book),
    "markets": view(view_markets),
}
