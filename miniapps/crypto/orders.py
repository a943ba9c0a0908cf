"""Orders as stored: ``orders/<order id>``, the CCXT-shaped order of the paper exchange.

Fields: ``id`` (``o-`` + a hash of the person and the client order id), ``clientOrderId``,
``symbol``, ``type`` (limit | market), ``side``, ``price`` (None for market), ``amount``,
``filled``, ``remaining``, ``cost`` (quote spent or received), ``average`` (price), ``fee``
(``{currency, cost}``), ``status`` (``new`` until the book has it, then ``open``, ``closed``
(filled), ``canceled``, ``expired`` or ``rejected``), ``timeInForce``, ``timestamp``,
``datetime``, ``lastTradeTimestamp``, ``trades`` (fills) — and the exchange's own: ``user``,
``reason`` (why it finished: ``self_trade``, ``no_liquidity``, ``fok_unfillable`` …),
``price_cap``, ``reference_price`` and ``last_seq`` (the last event of the pair applied to it:
each event changes an order once, whoever flushes it). Amounts are Decimal strings.

An order changes only through the pair's events (``apply_to_order``) and two marks
(``mark_open``: in the book; ``mark_rejected``: refused before it), each a conditional write.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import clock
import markets
from engine import Event, Order
from markets import dec, fmt

from sdk.documents import find_all, update_doc

ORDERS = "orders"
ATTEMPTS = 100  # conditional writes of one order lost to others before "busy"
ORDER_STATUS = {  # a "done" event's status → the CCXT order status
    "filled": "closed",
    "cancelled": "canceled",
    "expired": "expired",
    "rejected": "rejected",
}
FINAL = ("closed", "canceled", "expired", "rejected")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def order_doc(
    order: Order, symbol: str, now: int, reference_price: Decimal | None = None
) -> dict[str, Any]:
    """A new order as stored (``new``: not in the book yet)."""
    return {
        "id": order.id,
        "clientOrderId": order.client_order_id,
        "symbol": symbol,
        "type": order.type,
        "side": order.side,
        "price": fmt(order.price),
        "amount": fmt(order.amount),
        "filled": "0",
        "remaining": fmt(order.amount),
        "cost": "0",
        "average": None,
        "fee": {"currency": markets.PAIRS[symbol].quote, "cost": "0"},
        "status": "new",
        "timeInForce": order.tif,
        "timestamp": now,
        "datetime": iso(now),
        "lastTradeTimestamp": None,
        "trades": 0,
        "user": order.user,
        "reason": None,
        "price_cap": fmt(order.price_cap),
        "reference_price": fmt(reference_price),
        "last_seq": 0,
    }


def engine_order(doc: dict[str, Any]) -> Order:
    """The engine's order for a stored order (to submit it again after a crash)."""
    return Order(
        id=doc["id"],
        user=doc["user"],
        side=doc["side"],
        type=doc["type"],
        amount=dec(doc["amount"]),
        price=dec(doc["price"]) if doc.get("price") else None,
        tif=doc["timeInForce"],
        client_order_id=doc.get("clientOrderId"),
        price_cap=dec(doc["price_cap"]) if doc.get("price_cap") else None,
    )


def public_order(doc: dict[str, Any]) -> dict[str, Any]:
    """The order as the person sees it (CCXT's fields, and why it finished)."""
    keys = (
        "id",
        "clientOrderId",
        "symbol",
        "type",
        "side",
        "price",
        "amount",
        "filled",
        "remaining",
        "cost",
        "average",
        "fee",
        "status",
        "timeInForce",
        "timestamp",
        "datetime",
        "lastTradeTimestamp",
        "trades",
        "reason",
    )
    return {key: doc.get(key) for key in keys}


def apply_to_order(doc: dict[str, Any], events: list[Event], now: int) -> None:
    """Update a stored order from the events of its pair (in seq order; each once)."""
    last = int(doc.get("last_seq") or 0)
    filled, cost, fee = dec(doc.get("filled")), dec(doc.get("cost")), dec(doc["fee"]["cost"])
    trades, touched = int(doc.get("trades") or 0), False
    for event in events:
        if event.seq <= last:
            continue
        trade = event.trade
        if event.kind == "trade" and trade is not None:
            if trade.taker_order == doc["id"]:
                fee += trade.taker_fee
            elif trade.maker_order == doc["id"]:
                fee += trade.maker_fee
            else:
                continue
            filled += trade.amount
            cost += trade.price * trade.amount
            trades += 1
            doc["lastTradeTimestamp"] = now
        elif event.kind == "done" and event.order_id == doc["id"]:
            if doc["status"] not in FINAL:
                doc["status"] = ORDER_STATUS.get(event.status or "", "canceled")
                doc["reason"] = event.reason
        else:
            continue
        last, touched = event.seq, True
    if not touched:
        return
    if doc["status"] == "new":
        doc["status"] = "open"  # it has events: it is in the book
    doc.update(
        filled=fmt(filled),
        remaining=fmt(dec(doc["amount"]) - filled),
        cost=fmt(cost),
        average=fmt((cost / filled).quantize(Decimal("1e-8"))) if filled else None,
        fee={"currency": doc["fee"]["currency"], "cost": fmt(fee)},
        trades=trades,
        last_seq=last,
    )


async def update_order(ctx, order_id: str, events: list[Event]) -> None:
    """Apply the pair's ``events`` to the stored order (one conditional write; each event once)."""
    now = clock.now_ms()

    def edit(doc: dict[str, Any] | None) -> None:
        if doc is not None:
            apply_to_order(doc, events, now)

    await update_doc(ctx, ORDERS, order_id, edit, attempts=ATTEMPTS)


async def mark_open(ctx, order_id: str) -> None:
    """The order is in the book: ``new`` → ``open`` (unless events said more already)."""

    def edit(doc: dict[str, Any] | None) -> None:
        if doc is not None and doc["status"] == "new":
            doc["status"] = "open"

    await update_doc(ctx, ORDERS, order_id, edit, attempts=ATTEMPTS)


async def mark_rejected(ctx, order_id: str, reason: str) -> None:
    """Refused before it reached the book (no funds any more): ``new`` → ``rejected``."""

    def edit(doc: dict[str, Any] | None) -> None:
        if doc is not None and doc["status"] == "new":
            doc.update(status="rejected", reason=reason)

    await update_doc(ctx, ORDERS, order_id, edit, attempts=ATTEMPTS)


async def get_order(ctx, order_id: Any) -> dict[str, Any] | None:
    """The stored order (None for none, or for anything that is not an order id)."""
    if not isinstance(order_id, str) or not 1 <= len(order_id) <= 64:
        return None
    return await ctx.storage_get(ORDERS, order_id)


async def open_orders(ctx, user: str, *, cap: int = 500) -> list[dict[str, Any]]:
    """The person's orders not finished, newest first."""
    found = await find_all(ctx, ORDERS, {"user": user, "status": {"$in": ["new", "open"]}}, cap=cap)
    items = [item["value"] for item in found]
    return sorted(items, key=lambda o: o.get("timestamp") or 0, reverse=True)


async def recent_orders(ctx, user: str, *, limit: int = 50) -> list[dict[str, Any]]:
    """The person's orders (any status), newest first, at most ``limit``."""
    items = await find_all(ctx, ORDERS, {"user": user}, cap=1000)
    found = sorted((i["value"] for i in items), key=lambda o: o.get("timestamp") or 0)
    return found[::-1][:limit]
