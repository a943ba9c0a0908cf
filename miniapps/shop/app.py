"""Shop: a marketplace inside chats (``/shop …``). See README.md in this folder for its users.

This file only wires the handlers: each concern lives in its own module, which exports tables of
handlers that are registered here —

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

from sdk import App, InvalidSignature, Reply

app = App("shop")

MODULES = (catalog, cart, orders, groupbuy)
SUBCOMMANDS: dict = {}
for module in MODULES:
    SUBCOMMANDS.update(getattr(module, "SUBCOMMANDS", {}))
    for action_id, handler in getattr(module, "ACTIONS", {}).items():
        app.action(action_id)(handler)
    for name, handler in getattr(module, "EVENTS", {}).items():
        app.event(name)(handler)
    for name, handler in getattr(module, "TIMERS", {}).items():
        app.timer(name)(handler)
    for name, handler in getattr(module, "VIEWS", {}).items():
        app.view(name)(handler)
PAYMENTS: dict = {}
for module in MODULES:
    PAYMENTS.update(getattr(module, "PAYMENTS", {}))
PAYMENT_EVENT_NAMES = (
    "payment.succeeded",
    "payment.failed",
    "payment.authorized",
    "payment.captured",
    "payment.voided",
)


async def on_payment_event(ctx) -> None:
    """A payment event, checked, to the module whose ``order_ref`` prefix it carries."""
    try:
        payment = ctx.verify_payment_event()
    except InvalidSignature:
        app.log.warning("a payment event with a bad signature was ignored")
        return
    handler = PAYMENTS.get(str(payment.get("order_ref", "")).split("-", 1)[0])
    if handler is None:
        app.log.warning("a payment event for an unknown order_ref was ignored")
        return
    await handler(ctx, ctx.event_name, payment)


for _name in PAYMENT_EVENT_NAMES:
    app.event(_name)(on_payment_event)

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
