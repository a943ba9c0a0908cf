"""Crypto: prices in chat, watchlists and alerts, and a paper-trading exchange (``/crypto …``).
Paper money only. See README.md in this folder for its users.

This file only wires the handlers (``sdk.tables.include``): each concern lives in its own module,
which exports tables of handlers registered here — ``SUBCOMMANDS`` (``/crypto <name> …`` →
``handler(ctx, args)``), ``ACTIONS``, ``TIMERS``, ``VIEWS`` — as in the other built-in apps.

Modules: ``prices`` (the price provider: CoinGecko's API shape or the simulated market),
``price_queries`` (the web view's price calls and the assistant's read-only ``price`` tool),
``alerts`` (watchlist, price alerts), ``trading`` (orders, balances; over ``exchange``, the
storage of books, accounts and the event log, and ``engine``/``ledger``, the pure matching
engine and accounting), ``portfolio``, ``demo``.
"""

from __future__ import annotations

import alerts
import copytrade
import demo
import league
import portfolio
import price_queries
import prices
import trading
from texts import PAPER

from sdk import App, Button, Card, Reply
from sdk.tables import include

app = App("crypto")

MODULES = (prices, price_queries, alerts, trading, portfolio, league, copytrade, demo)
SUBCOMMANDS = include(app, MODULES)

USAGE = (
    "Usage: /crypto price <coins> · /crypto watch · /crypto alert <coin> > <price> · "
    "/crypto buy|sell <amount> <coin> [at <price>] [ioc|fok] · /crypto cancel <order> · "
    "/crypto orders · /crypto balance · /crypto portfolio · /crypto book <coin> · "
    "/crypto league [start <2h|3d>] · /crypto share <order> · /crypto copy <share>"
)


def welcome() -> Reply:
    card = Card("Crypto", text=f"Prices, alerts and a paper-trading exchange. {PAPER}")
    card.buttons.append(Button.webview("Open Crypto", path="#home"))
    return Reply(card=card)


@app.command("crypto")
async def crypto(ctx) -> Reply | None:
    """``/crypto`` alone: what it does and the web view; ``/crypto <sub> …``: the module's."""
    if not ctx.args:
        return welcome()
    handler = SUBCOMMANDS.get(ctx.args[0].lower())
    if handler is None:
        return Reply(ephemeral=f"Unknown /crypto command {ctx.args[0]!r}. {USAGE}")
    return await handler(ctx, ctx.args[1:])
