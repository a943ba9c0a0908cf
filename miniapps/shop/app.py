"""Shop: a marketplace inside chats (``/shop …``). See README.md in this folder for its users.

This file only wires the handlers (``sdk.tables.include``): each concern lives in its own module,
which exports tables of handlers that are registered here —

- ``SUBCOMMANDS``: ``/shop <name> …`` → ``async def handler(ctx, args) -> Reply | None``
- ``ACTIONS``: card button ``action_id`` → ``async def handler(ctx) -> Reply | None``
- ``EVENTS``: event name → ``async def handler(ctx) -> None``
- ``TIMERS``: timer name → ``async def handler(ctx) -> None``
- ``VIEWS``: web view call name → ``async def handler(ctx) -> dict`` (``@app.view``)
- ``PAYMENTS``: ``order_ref`` prefix (before the first ``-``) → ``async def handler(ctx, name,
  payment) -> None``: every payment event (``payment.succeeded``, ``.failed``, ``.authorized``,
  ``.captured``, ``.voided``) is verified here once and handed to the module that asked for it

Modules: ``catalog`` (stores, products, search, product cards), ``cart`` (carts, checkout, stock
reservations), ``orders`` (order state machine, escrow payouts, refunds, reviews), ``groupbuy``
(team purchase and the shared group cart). ``money`` formats prices for the reader's locale.
"""

from __future__ import annotations

import cart
import catalog
import groupbuy
import orders

from sdk import App, Reply
from sdk.tables import include

app = App("shop")

MODULES = (catalog, cart, orders, groupbuy)
SUBCOMMANDS = include(app, MODULES)

USAGE = (
    "Usage: /shop — the newest products · /shop search <words> · /shop store <name> · "
    "/shop cart [add <product> [qty] | remove <product>] · /shop orders · "
    "/shop ship <order> <tracking no.> · /shop refund <order> [amount] <reason> · "
    "/shop review <order> <line#> <1-5> <text> · /shop groupcart [new | add … | remove …]"
)


@app.command("shop")
async def shop(ctx) -> Reply | None:
    """``/shop`` alone opens the storefront; ``/shop <sub> …`` goes to the module's handler."""
    if not ctx.args:
        return await catalog.storefront(ctx)
    handler = SUBCOMMANDS.get(ctx.args[0].lower())
    if handler is None:
        return Reply(ephemeral=f"Unknown /shop command {ctx.args[0]!r}. {USAGE}")
    return await handler(ctx, ctx.args[1:])
