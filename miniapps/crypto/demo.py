"""Demo traders: ``demo.seed {trader?}`` — called by each demo person — puts that person's demo
orders on the BTC/USDT and ETH/USDT books around the market price (the simulated market when
nothing is configured). Paper money only.

- ``ben`` (the default) makes the market: he first buys some of each coin at the market price
  (a market order, filled against the house), then offers it in three asks 0.3 %, 0.6 % and
  0.9 % above the price and bids 0.35 % and 0.7 % below it;
- ``dara`` bids: four bids 0.2 %, 0.5 %, 0.8 % and 1.1 % below the price.

Each order has a fixed client order id (``demo-<coin>-<role>-<n>``), so it is the same order
every time (the exchange's idempotency): seeding again places nothing new. Every resting order
is worth about ``LEVEL_NOTIONAL`` USDT.

``gateway/demo.py`` (``python run.py seed-demo``) calls it for its demo people ben and dara.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

import exchange
import markets
import orders
from engine import PairSpec
from exchange import ExchangeError
from texts import PAPER
from trading import market_price, view

COINS = ("btc", "eth")
BASE_NOTIONAL = Decimal("1500")  # USDT of each coin ben buys first
LEVEL_NOTIONAL = Decimal("250")  # USDT each resting order is worth
TRADERS: dict[str, dict[str, tuple[str, ...]]] = {
    "ben": {"asks": ("0.003", "0.006", "0.009"), "bids": ("0.0035", "0.007")},
    "dara": {"asks": (), "bids": ("0.002", "0.005", "0.008", "0.011")},
}


def _step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step


def plan(spec: PairSpec, trader: str, price: Decimal) -> list[dict[str, Any]]:
    """The trader's demo orders on the pair at market price ``price`` (in placing order)."""
    coin = markets.coin_of(spec.symbol)
    orders = []
    if TRADERS[trader]["asks"]:
        amount = _step(BASE_NOTIONAL / price, spec.lot, ROUND_DOWN)
        orders.append({"side": "buy", "type": "market", "amount": amount, "price": None})
        orders[-1]["client_order_id"] = f"demo-{coin}-base"
    for side, offsets in (("sell", TRADERS[trader]["asks"]), ("buy", TRADERS[trader]["bids"])):
        for n, offset in enumerate(offsets, 1):
            sign = 1 if side == "sell" else -1
            level = _step(price * (1 + sign * Decimal(offset)), spec.tick, ROUND_HALF_EVEN)
            amount = _step(LEVEL_NOTIONAL / level, spec.lot, ROUND_DOWN)
            orders.append(
                {
                    "side": side,
                    "type": "limit",
                    "amount": amount,
                    "price": level,
                    "client_order_id": f"demo-{coin}-{'ask' if side == 'sell' else 'bid'}-{n}",
                }
            )
    return orders


async def do_seed(ctx) -> dict[str, Any]:
    """``demo.seed {trader?: ben | dara}``: the invoker's demo orders, placed when they are not
    there yet. ``{created, orders, trader, summary, paper}``."""
    trader = ctx.params.get("trader", "ben")
    if trader not in TRADERS:
        raise ExchangeError("invalid_trader", f"trader: one of {', '.join(TRADERS)}.")
    created, placed = 0, []
    for coin in COINS:
        spec = markets.find_pair(coin)
        assert spec is not None
        price = await market_price(ctx, spec)
        if price is None:
            raise ExchangeError("stale_price", f"No fresh {spec.symbol} price to seed around.")
        for request in plan(spec, trader, price):
            order_id = exchange.order_id_for(ctx.user_id, request["client_order_id"])
            existing = await orders.get_order(ctx, order_id)
            if existing is not None:
                placed.append(existing["id"])
                continue
            order = await exchange.place(
                ctx,
                spec,
                side=request["side"],
                type=request["type"],
                amount=request["amount"],
                price=request["price"],
                tif="GTC",
                client_order_id=request["client_order_id"],
                reference_price=price if request["type"] == "market" else None,
            )
            placed.append(order["id"])
            created += 1
    summary = f"{trader}: {created} orders placed" if created else f"{trader}: already seeded"
    return {
        "created": created,
        "orders": placed,
        "trader": trader,
        "summary": summary,
        "paper": PAPER,
    }


VIEWS = {"demo.seed": view(do_seed)}
