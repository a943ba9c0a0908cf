"""Portfolio: what a person holds on the paper exchange, what it cost, and how it is doing.

- **Positions** per asset: the account's holdings (free + in orders).
- **Average cost** per coin, from the person's own trades in the event log (``events/``, in
  seq order per pair): a buy adds its cost (price * amount + the fee it paid) to the position; a
  sell takes out the average cost of what it sold and **realises** the difference with what it
  brought in (price * amount - fee).
- **Unrealised P&L** at the current price (``prices.quote``): (price - average cost) * amount.
  A stale price is shown as such (it is never used to fill; here it is only shown).
- **Total**: cash (USDT) + each coin at its price, and its change from the starting balance.

``/crypto portfolio`` answers the invoker with a card; the view ``portfolio`` gives the same for
the web view's chart: ``{positions: [{asset, amount, average_cost, price, value, unrealised,
realised, stale}], cash, total_value, start_value, pnl, pnl_pct, simulated, paper}`` (Decimal
strings). Paper money only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import exchange
import markets
import prices
from markets import dec, fmt
from texts import PAPER, SIMULATED
from trading import command, number, view

from sdk import Button, Card, Field, Reply

CENT = Decimal("0.01")


def cost_basis(user: str, trades: list[dict[str, Any]]) -> dict[str, dict[str, Decimal]]:
    """Per base asset: ``{amount, cost, realised}`` from the person's trades (stored events,
    any order; applied per pair in seq order). ``cost`` is what the amount held cost."""
    books: dict[str, dict[str, Decimal]] = {}
    for event in sorted(trades, key=lambda e: (e["symbol"], e["seq"])):
        trade = event.get("trade") or {}
        taker = trade.get("taker_user") == user
        if not taker and trade.get("maker_user") != user:
            continue
        buyer = (trade["taker_side"] == "buy") == taker
        price, amount = dec(trade["price"]), dec(trade["amount"])
        fee = dec(trade["taker_fee"] if taker else trade["maker_fee"])
        base = event["symbol"].split("/")[0]
        book = books.setdefault(
            base, {"amount": Decimal(0), "cost": Decimal(0), "realised": Decimal(0)}
        )
        if buyer:
            book["amount"] += amount
            book["cost"] += price * amount + fee
            continue
        held = book["amount"]
        average = book["cost"] / held if held > 0 else price
        sold_cost = average * min(amount, held)
        book["realised"] += price * amount - fee - sold_cost
        book["cost"] -= sold_cost
        book["amount"] = held - amount
    return books


async def summary(ctx, user: str) -> dict[str, Any]:
    """The person's portfolio (the ``portfolio`` view's answer)."""
    account = await exchange.get_account(ctx, user)
    basis = cost_basis(user, await exchange.user_trades(ctx, user))
    coins = [markets.coin_of(spec.symbol) for spec in markets.PAIRS.values()]
    try:
        quotes = await prices.quotes(ctx, coins)
    except prices.PriceError:
        quotes = {}
    cash = exchange.held_by(account, markets.QUOTE)
    total = cash
    positions = []
    for spec in markets.PAIRS.values():
        asset = spec.base
        amount = exchange.held_by(account, asset)
        book = basis.get(asset, {})
        realised = book.get("realised", Decimal(0))
        if amount == 0 and not realised:
            continue
        quote = quotes.get(markets.coin_of(spec.symbol))
        cost = book.get("cost", Decimal(0))
        average = cost / book["amount"] if book.get("amount") else None
        value = amount * quote.price if quote else None
        unrealised = (
            (quote.price - average) * amount if quote and average is not None and amount else None
        )
        total += value or 0
        positions.append(
            {
                "asset": asset,
                "symbol": spec.symbol,
                "amount": fmt(amount),
                "average_cost": fmt(average.quantize(CENT)) if average is not None else None,
                "price": fmt(quote.price) if quote else None,
                "value": fmt(value.quantize(CENT)) if value is not None else None,
                "unrealised": fmt(unrealised.quantize(CENT)) if unrealised is not None else None,
                "realised": fmt(realised.quantize(CENT)),
                "stale": bool(quote and quote.stale),
            }
        )
    start = sum(markets.START.values(), Decimal(0))
    pnl = total - start
    return {
        "positions": positions,
        "cash": fmt(cash),
        "total_value": fmt(total.quantize(CENT)),
        "start_value": fmt(start),
        "pnl": fmt(pnl.quantize(CENT)),
        "pnl_pct": fmt((pnl / start * 100).quantize(CENT)) if start else None,
        "simulated": any(q.source == "simulated" for q in quotes.values()),
        "paper": PAPER,
    }


def signed(value: str | None, locale: str | None) -> str:
    if value is None:
        return "—"
    text = number(value, locale)
    return text if text.startswith("-") else f"+{text}"


def portfolio_card(data: dict[str, Any], locale: str | None) -> Card:
    quote = markets.QUOTE
    fields = [Field("Cash", f"{number(data['cash'], locale)} {quote}")]
    for p in data["positions"]:
        stale = " (stale price)" if p["stale"] else ""
        fields.append(
            Field(
                p["asset"],
                f"{number(p['amount'], locale)} · avg cost {number(p['average_cost'], locale)}"
                f" · now {number(p['price'], locale)}{stale} · value "
                f"{number(p['value'], locale)} {quote} · unrealised "
                f"{signed(p['unrealised'], locale)} · realised {signed(p['realised'], locale)}",
            )
        )
    text = (
        f"Worth {number(data['total_value'], locale)} {quote}: {signed(data['pnl'], locale)} "
        f"({signed(data['pnl_pct'], locale)} %) since the start. {PAPER}"
    )
    if data["simulated"]:
        text += f" {SIMULATED}"
    card = Card("Portfolio", text=text, fields=fields[:20])
    card.buttons.append(Button.webview("Chart", path="#portfolio"))
    return card


async def cmd_portfolio(ctx, args: list[str]) -> Reply:
    return Reply(ephemeral=portfolio_card(await summary(ctx, ctx.user_id), ctx.locale))


async def view_portfolio(ctx) -> dict[str, Any]:
    return await summary(ctx, ctx.user_id)


SUBCOMMANDS = {"portfolio": command(cmd_portfolio)}
VIEWS = {"portfolio": view(view_portfolio)}
