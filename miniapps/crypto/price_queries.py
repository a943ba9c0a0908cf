"""Prices asked from outside the chat's ``/crypto price``: the web view's calls
(``prices.quotes``, ``prices.history``) and the read-only ``price`` tool other apps of the chat
(the assistant) call — both answered from ``prices``' adapter."""

from __future__ import annotations

from typing import Any

from prices import (
    COINS,
    PriceError,
    Quote,
    _coin,
    card_and_quotes,
    coin_of,
    history,
    parse_coins,
    quote,
    quotes,
)
from texts import SIMULATED

from sdk import ViewError

# --- web view ----------------------------------------------------------------------------


async def view_quotes(ctx) -> dict:
    """``prices.quotes {coins?}``: ``{quotes: [Quote.to_json()], simulated}`` (every coin when
    ``coins`` is absent; a coin without a price left out); ``prices.quotes {coin}``: ``{quote}``
    (``prices_unavailable`` when it has none)."""
    try:
        if "coin" in ctx.params:
            return {"quote": (await quote(ctx, str(ctx.params["coin"]))).to_json()}
        wanted = ctx.params.get("coins", list(COINS))
        if not isinstance(wanted, list) or not all(isinstance(c, str) for c in wanted):
            raise PriceError("invalid_coins", "coins is a list of coin symbols")
        found = await quotes(ctx, parse_coins(wanted) if wanted else [])
    except PriceError as exc:
        raise ViewError(exc.code, exc.message) from None
    shown = list(found.values())
    return {
        "quotes": [q.to_json() for q in shown],
        "simulated": any(q.source == "simulated" for q in shown),
    }


async def view_history(ctx) -> dict:
    """``prices.history {coin}``: ``{coin, points: [str]}`` — the last 24 hours."""
    try:
        coin = _coin(str(ctx.params.get("coin", ""))).symbol
        points = await history(ctx, coin)
    except PriceError as exc:
        raise ViewError(exc.code, exc.message) from None
    return {"coin": coin, "points": [str(p) for p in points]}


# --- the assistant's tool ------------------------------------------------------------------

TOOL_COINS_MAX = 5
COINGECKO_LABEL = "CoinGecko (USD)"


def tool_row(q: Quote) -> dict[str, Any]:
    """One coin of the tool's result: exact decimal texts (``change_24h`` in percent)."""
    return {
        "coin": q.coin,
        "price": format(q.price, "f"),
        "currency": "USD",
        "change_24h": None if q.change_24h is None else format(q.change_24h, "f"),
        "stale": q.stale,
        "source_label": SIMULATED if q.source == "simulated" else COINGECKO_LABEL,
    }


async def tool_price(ctx) -> dict[str, Any]:
    """Tool ``price {coins: [1-5 symbols or names]}``, for the assistant: one row per coin
    asked (duplicates once, in order) — ``{coin, price, currency, change_24h, stale,
    source_label}``, or ``{coin, error}`` (``unknown_coin`` with the text as given;
    ``prices_unavailable`` when the provider has no price and none is cached) — and the
    ``/crypto price`` card of the known coins (its Watch buttons are a person's taps). Only
    reads: ``storage.get``/``storage.find`` and ``http.fetch`` (``card_and_quotes``'s
    ``read_only``). No known coin: no card."""
    asked: dict[str, str | None] = {}  # the key a coin is answered under → its symbol
    for text in ctx.arguments["coins"][:TOOL_COINS_MAX]:
        symbol = coin_of(text)
        asked.setdefault(symbol or text, symbol)
    symbols = [symbol for symbol in asked.values() if symbol]
    card, found, error = None, {}, "prices_unavailable"
    if symbols:
        try:
            card, found = await card_and_quotes(ctx, symbols, read_only=True)
        except PriceError as exc:  # no coin has a price now, or a bad provider setting
            error = exc.code
    result = [
        {"coin": key, "error": "unknown_coin"}
        if symbol is None
        else tool_row(found[symbol])
        if symbol in found
        else {"coin": symbol, "error": error}
        for key, symbol in asked.items()
    ]
    return {"result": result, "card": card}


TOOLS = {"price": tool_price}
VIEWS = {"prices.quotes": view_quotes, "prices.history": view_history}
