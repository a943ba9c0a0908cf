"""An app made of modules, each exporting tables of handlers (how the built-in services are
written): ``include(app, modules)`` registers them all once.

Each module may export

- ``ACTIONS`` (card button ``action_id`` → handler), ``EVENTS`` (event name → handler),
  ``TIMERS`` (timer name → handler), ``VIEWS`` (web view call name → handler): registered as
  ``@app.action`` / ``@app.event`` / ``@app.timer`` / ``@app.view``; ``TOOLS`` (tool name →
  handler, declared in the manifest's ``tools``): ``@app.tool``;
- ``SUBCOMMANDS`` (``/<command> <name> …`` → ``async def handler(ctx, args)``): merged and
  returned, for the app's one command to dispatch;
- ``PAYMENTS`` (an ``order_ref`` prefix, the part before the first ``-`` → ``async def
  handler(ctx, event_name, payment)``): every payment event is verified once
  (``ctx.verify_payment_event()``; a bad signature is logged and dropped) and handed to the
  module whose prefix its ``order_ref`` carries.

::

    app = App("shop")
    SUBCOMMANDS = include(app, (catalog, cart, orders))
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any

from sdk.app import App
from sdk.errors import InvalidSignature

# The payment events a module's PAYMENTS handler may be given.
PAYMENT_EVENT_NAMES = (
    "payment.succeeded",
    "payment.failed",
    "payment.authorized",
    "payment.captured",
    "payment.voided",
)
_REGISTERS = (("ACTIONS", "action"), ("EVENTS", "event"), ("TIMERS", "timer"), ("VIEWS", "view"))
# Read-only tools other apps call (manifest ``tools``): ``TOOLS`` (tool name → handler).
_REGISTERS += (("TOOLS", "tool"),)


def include(app: App, modules: Iterable[ModuleType]) -> dict[str, Any]:
    """Register every module's handler tables on ``app``; returns the merged ``SUBCOMMANDS``."""
    subcommands: dict[str, Any] = {}
    payments: dict[str, Any] = {}
    for module in modules:
        subcommands.update(getattr(module, "SUBCOMMANDS", {}))
        payments.update(getattr(module, "PAYMENTS", {}))
        for table, register in _REGISTERS:
            for name, handler in getattr(module, table, {}).items():
                getattr(app, register)(name)(handler)
    if payments:

        async def on_payment_event(ctx) -> None:
            try:
                payment = ctx.verify_payment_event()
            except InvalidSignature:
                app.log.warning("a payment event with a bad signature was ignored")
                return
            handler = payments.get(str(payment.get("order_ref", "")).split("-", 1)[0])
            if handler is None:
                app.log.warning("a payment event for an unknown order_ref was ignored")
                return
            await handler(ctx, ctx.event_name, payment)

        for name in PAYMENT_EVENT_NAMES:
            app.event(name)(on_payment_event)
    return subcommands
