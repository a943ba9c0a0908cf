"""The order's state machine, its card and its settlement — the core that orders.py's
handlers (and create_order) build on.

Orders are born ``paid`` (``orders.create_order``, once per payment); ``pending_payment`` is the
checkout's own ``reserved`` stage (cart.py), kept in the table for the shape of the machine.
Every change is one ``storage_update`` with ``expected_version`` that re-reads and re-checks on
``Conflict`` (``change_order``), and only a pair in ``ALLOWED`` is ever written::

    paid → shipped → delivered → completed        (seller, seller, buyer or the timer)
    shipped → completed                            (the buyer confirms receipt early)
    paid → cancelled                               (buyer; full refund, stock back)
    paid | shipped | delivered → refund_requested  (buyer, /shop refund)
    refund_requested → refunded | the state before (seller approves: full | partial; declines)

Money is journaled so that a crash or a race never pays twice: the change is written first
(``refund.state = "approving"``, ``payout.state = "pending"``), then the idempotent host call
(``refund_ref`` / ``payout_ref``), then the outcome — and ``settle`` finishes whatever is left
on the next press or timer. The seller's payout is ``total - refunded_total`` with
``payout_ref = f"po-{order_id}"`` (``.2``, ``.3`` … only after ``insufficient_merchant_funds``,
which the host guarantees moved nothing).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta
from typing import Any

import money

from sdk import Button, Card, Conflict, Field, HostError, NotFound, ScopeDenied
from sdk.cards import as_dict

log = logging.getLogger("app.shop.orders")

ATTEMPTS = 25  # re-reads after a Conflict before giving up ("busy, try again")
ORDER_ID_RE = re.compile(r"o-[0-9a-f]{12}")
REFUND_WINDOW = timedelta(days=14)
DEFAULT_AUTO_COMPLETE_DAYS = 7
SETTLE_RETRY = timedelta(hours=1)
CARD_LINES = 12  # order lines written on a card

STATES = (
    "pending_payment",
    "paid",
    "shipped",
    "delivered",
    "completed",
    "cancelled",
    "refund_requested",
    "refunded",
)
STATE_LABELS = {
    "pending_payment": "Waiting for payment",
    "paid": "Paid · waiting for shipment",
    "shipped": "Shipped",
    "delivered": "Delivered",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "refund_requested": "Refund requested",
    "refunded": "Refunded",
}
# Every (from, to) an order may take; nothing else is ever written.
ALLOWED = {
    ("pending_payment", "paid"),
    ("pending_payment", "cancelled"),
    ("paid", "cancelled"),
    ("paid", "shipped"),
    ("shipped", "delivered"),
    ("shipped", "completed"),
    ("delivered", "completed"),
    ("paid", "refund_requested"),
    ("shipped", "refund_requested"),
    ("delivered", "refund_requested"),
    ("refund_requested", "refunded"),
    ("refund_requested", "paid"),
    ("refund_requested", "shipped"),
    ("refund_requested", "delivered"),
}
NO_SUCH_ORDER = "No such order."
BUSY = "That order is busy right now; try again."
TIMES = " \N{MULTIPLICATION SIGN} "  # "2 x Blue mug", with the multiplication sign


def now_ms() -> int:
    """Wall-clock epoch milliseconds, for records (deadlines use the host's timers)."""
    return int(time.time() * 1000)


def label(state: str) -> str:
    return STATE_LABELS.get(state, state)


def price(amount: int, currency: str, locale: str | None) -> str:
    return money.format_price(amount, currency, locale)


def stock_key(product_id: str, variant_id: str | None) -> str:
    """The ``stock`` document of a product or one of its variants."""
    return f"{product_id}:{variant_id or '-'}"


# --- reading ---------------------------------------------------------------------------------


async def load_order(ctx, order_id: Any) -> tuple[dict[str, Any] | None, int]:
    """``(order, version)``; ``(None, 0)`` for a malformed or unknown id."""
    if not isinstance(order_id, str) or not ORDER_ID_RE.fullmatch(order_id):
        return None, 0
    return await ctx.storage_get_versioned("orders", order_id)


async def order_for(ctx, order_id: Any) -> dict[str, Any] | None:
    """The order if the invoker is its buyer or its seller, else None — someone else's order is
    as unknown as a missing one."""
    order, _ = await load_order(ctx, order_id)
    if order is None or ctx.user_id not in (order["buyer"], order["seller"]):
        return None
    return order


def seller_refusal(ctx, order: dict[str, Any]) -> str | None:
    """Why the invoker may not act as this order's seller (None: they may)."""
    if ctx.user_id != order["seller"]:
        return "Only the seller can do that."
    if not ctx.has_role("merchant"):
        return "Only merchants can do that: your merchant role is not active."
    return None


def buyer_refusal(ctx, order: dict[str, Any]) -> str | None:
    return None if ctx.user_id == order["buyer"] else "Only the buyer can do that."


# --- the order card --------------------------------------------------------------------------


def _line_text(line: dict[str, Any], currency: str, locale: str | None) -> str:
    variant = f" ({line['variant_label']})" if line.get("variant_label") else ""
    amount = price(line["unit_price"] * line["qty"], currency, locale)
    return f"{line['qty']}{TIMES}{line['title']}{variant} — {amount}"


def order_buttons(order: dict[str, Any], audience: str | None = None) -> list[Button]:
    """The buttons for the order's state: the buyer's and the seller's (``audience`` None: both,
    as on the chat card, where each press checks who pressed)."""
    state, oid = order["state"], order["id"]
    buyer: list[Button] = []
    seller: list[Button] = []
    if state == "paid":
        seller.append(Button("order.ship", "Mark shipped (seller)", oid, "primary"))
        buyer.append(Button("order.cancel", "Cancel order", oid, "danger"))
    if state == "shipped":
        seller.append(Button("order.delivered", "Mark delivered (seller)", oid, "primary"))
    if state in ("shipped", "delivered"):
        buyer.append(Button("order.confirm", "Confirm receipt", oid, "primary"))
    if state in ("paid", "shipped", "delivered") and not order.get("refund_window_closed"):
        buyer.append(Button("order.refund", "Ask for a refund", oid, "secondary"))
    if state == "refund_requested":
        seller.append(Button("order.refund_approve", "Approve refund (seller)", oid, "primary"))
        seller.append(Button("order.refund_decline", "Decline refund (seller)", oid, "danger"))
    if state == "completed":
        buyer.append(Button("order.review", "Write a review", oid, "secondary"))
        if order.get("payout_failed"):
            seller.append(Button("order.payout", "Retry payout (seller)", oid, "secondary"))
    if audience == "buyer":
        return buyer
    if audience == "seller":
        return seller
    return seller + buyer


def order_card(
    order: dict[str, Any], locale: str | None = None, audience: str | None = None
) -> Card:
    """The order's card: state, lines, total, refunds, tracking, payout, and the buttons for its
    state (see ``order_buttons``). The same card is posted in the chat where it was bought,
    updated in place on every change, and sent to buyer and seller as a service message."""
    currency = order["currency"]
    locale = locale or order.get("locale")
    lines = order["lines"]
    text = [
        f"{index}. {_line_text(line, currency, locale)}"
        for index, line in enumerate(lines[:CARD_LINES], start=1)
    ]
    if len(lines) > CARD_LINES:
        text.append(f"… and {len(lines) - CARD_LINES} more")
    fields = [Field("Total", price(order["total"], currency, locale))]
    if order.get("refunded_total"):
        fields.append(Field("Refunded", price(order["refunded_total"], currency, locale)))
    if order.get("tracking_no"):
        fields.append(Field("Tracking no.", order["tracking_no"]))
    refund = order.get("refund")
    if order["state"] == "refund_requested" and refund:
        fields.append(
            Field(
                "Refund asked",
                f"{price(refund['amount'], currency, locale)} · {refund['reason']}",
            )
        )
    if order["state"] == "completed":
        payout = order.get("payout") or {}
        fields.append(Field("Seller payout", payout_text(payout)))
    return Card(
        title=f"Order {order['id']} · {label(order['state'])}",
        text="\n".join(text),
        fields=fields,
        buttons=order_buttons(order, audience),
    )


def payout_text(payout: dict[str, Any]) -> str:
    state = payout.get("state")
    if state == "sent":
        return "paid to the seller"
    if state == "none":
        return "nothing to pay (fully refunded)"
    if state == "failed":
        return "waiting for funds · retried automatically"
    return "being paid"


async def refresh_card(ctx, order: dict[str, Any]) -> None:
    """Update the order's card in the chat where it was bought — again while the order kept
    changing, so the last update shows the latest state when presses race."""
    for _ in range(3):
        message_id = order.get("message_id")
        if not message_id:
            return
        card = order_card(order)
        try:
            # The chat where it was bought, also from a seller's service chat or a timer.
            await ctx.update_card(message_id, card, conversation_id=order["conversation_id"])
        except HostError as exc:
            log.warning("order %s: card not updated (%s)", order["id"], exc.code)
            return
        latest, _ = await load_order(ctx, order["id"])
        if latest is None or latest == order:
            return
        order = latest


async def tell(ctx, user_id: str | None, *, text: str | None = None, card: Any = None) -> None:
    """A service message to ``user_id``; skipped quietly when they did not opt in."""
    if not user_id:
        return
    try:
        await ctx.send_service_message(user_id, text=text, card=card)
    except (ScopeDenied, NotFound):
        return
    except HostError as exc:
        log.warning("service message not sent (%s)", exc.code)


async def announce(ctx, order: dict[str, Any], note: str) -> None:
    """After a change: the chat card in place, then a service message to buyer and seller."""
    await refresh_card(ctx, order)
    for audience in ("buyer", "seller"):
        card = as_dict(order_card(order, audience=audience))
        card["text"] = f"{note}\n{card['text']}".strip()[:2000]
        await tell(ctx, order[audience], card=card)


# --- changing an order -----------------------------------------------------------------------


async def change_order(ctx, order_id: str, decide) -> tuple[dict[str, Any] | None, str | None]:
    """Read the order, ``decide(order)`` → the fields to set (``state`` among them for a
    transition), ``None`` (nothing to do) or a refusal (``str``); write with
    ``expected_version``; on ``Conflict`` read again and decide again. Returns ``(order,
    refusal)``: the order as written (or as read), and the refusal or None."""
    for _ in range(ATTEMPTS):
        order, version = await load_order(ctx, order_id)
        if order is None:
            return None, NO_SUCH_ORDER
        outcome = decide(order)
        if isinstance(outcome, str):
            return order, outcome
        if not outcome:
            return order, None
        target = outcome.get("state", order["state"])
        if target != order["state"]:
            if (order["state"], target) not in ALLOWED:
                return order, f"An order that is {label(order['state']).lower()} cannot change."
            outcome["history"] = [*order["history"], {"state": target, "at": now_ms()}]
        try:
            await ctx.storage_update("orders", order_id, outcome, expected_version=version)
        except Conflict:
            continue
        return {**order, **outcome}, None
    return None, BUSY


def state_refusal(order: dict[str, Any], states: tuple[str, ...], what: str) -> str | None:
    if order["state"] in states:
        return None
    return f"Order {order['id']} is {label(order['state']).lower()}: {what}."


async def settle(ctx, order: dict[str, Any]) -> dict[str, Any]:
    """Finish what a change left to do, each step once: the refund being approved, the stock
    of a cancelled order, the seller's payout of a completed one."""
    order = await _settle_refund(ctx, order)
    order = await _settle_restock(ctx, order)
    return await _settle_payout(ctx, order)


async def _settle_refund(ctx, order: dict[str, Any]) -> dict[str, Any]:
    refund = order.get("refund")
    if not refund or refund.get("state") != "approving":
        return order
    ref = f"{order['id']}.r{refund['seq']}"
    try:
        await ctx.refund_payment(order["payment_id"], refund["amount"], refund_ref=ref)
    except HostError as exc:
        log.warning("order %s: refund %s not made yet (%s)", order["id"], ref, exc.code)
        await schedule_retry(ctx, order)
        return order

    def done(current: dict[str, Any]) -> dict[str, Any] | None:
        now = current.get("refund") or {}
        if now.get("state") != "approving" or now.get("seq") != refund["seq"]:
            return None
        fields: dict[str, Any] = {
            "refund": {**now, "state": "approved"},
            "refunded_total": current["refunded_total"] + now["amount"],
        }
        if now.get("to") and now["to"] != current["state"]:
            fields["state"] = now["to"]
        if now.get("restock"):
            fields["restock"] = "pending"
        return fields

    changed, _ = await change_order(ctx, order["id"], done)
    if changed is not None and changed.get("state") == "delivered":
        await schedule_delivered_timers(ctx, changed, refund_window=False)
    return changed or order


async def _settle_restock(ctx, order: dict[str, Any]) -> dict[str, Any]:
    if order.get("restock") != "pending":
        return order
    # Marked done first (whoever writes it restocks): a crash in between leaves the stock
    # short, never oversold.
    claimed = [False]

    def claim(current: dict[str, Any]) -> dict[str, Any] | None:
        claimed[0] = current.get("restock") == "pending"
        return {"restock": "done"} if claimed[0] else None

    changed, _ = await change_order(ctx, order["id"], claim)
    if changed is None or not claimed[0]:
        return changed or order
    for line in order["lines"]:
        key = stock_key(line["product_id"], line.get("variant_id"))
        await ctx.storage_incr("stock", key, "left", line["qty"])
    return changed


async def _settle_payout(ctx, order: dict[str, Any]) -> dict[str, Any]:
    payout = order.get("payout") or {}
    if order["state"] != "completed" or payout.get("state") not in ("pending", "failed"):
        return order
    amount = order["total"] - order["refunded_total"]
    ref = payout["ref"]
    if amount <= 0:
        outcome: dict[str, Any] = {"payout": {**payout, "state": "none"}, "payout_failed": False}
    else:
        try:
            result = await ctx.payout(order["seller"], amount, order["currency"], ref)
        except HostError as exc:
            log.warning("order %s: payout %s failed (%s)", order["id"], ref, exc.code)
            attempt = payout["attempt"]
            if exc.code == "insufficient_merchant_funds":
                # Nothing moved and that ref stays refused: the next try takes a new one.
                attempt += 1
                next_ref = f"po-{order['id']}.{attempt}"
            else:  # unknown outcome (in progress, timeout…): retry the same ref
                next_ref = ref
            outcome = {
                "payout": {
                    **payout,
                    "state": "failed",
                    "ref": next_ref,
                    "attempt": attempt,
                    "error": exc.code,
                },
                "payout_failed": True,
            }
            await schedule_retry(ctx, order)
        else:
            outcome = {
                "payout": {
                    **payout,
                    "state": "sent",
                    "payout_id": result["payout_id"],
                    "amount": result["amount"],
                    "fee": result["fee"],
                    "error": None,
                },
                "payout_failed": False,
            }

    def record(current: dict[str, Any]) -> dict[str, Any] | None:
        return outcome if (current.get("payout") or {}).get("ref") == ref else None

    changed, _ = await change_order(ctx, order["id"], record)
    return changed or order


async def schedule_retry(ctx, order: dict[str, Any]) -> None:
    """Have ``settle`` try again in an hour (timer ``order.settle``): a refund or a payout the
    host could not make now (no funds yet, a hiccup)."""
    try:
        await ctx.schedule(
            "order.settle", delay=SETTLE_RETRY, key=f"settle-{order['id']}", payload=_ref(order)
        )
    except HostError as exc:
        log.warning("order %s: retry not scheduled (%s)", order["id"], exc.code)


def _ref(order: dict[str, Any]) -> dict[str, str]:
    return {"order_id": order["id"]}


def auto_complete_days(ctx) -> int:
    """``auto_complete_days`` from the app's settings (1-90), else 7."""
    raw = (ctx.config or {}).get("auto_complete_days")
    try:
        days = int(str(raw).strip())
    except (TypeError, ValueError):
        return DEFAULT_AUTO_COMPLETE_DAYS
    return days if 1 <= days <= 90 else DEFAULT_AUTO_COMPLETE_DAYS


async def schedule_delivered_timers(ctx, order: dict[str, Any], *, refund_window: bool) -> None:
    """Auto-complete ``auto_complete_days`` after delivery (or after a declined refund brought
    the order back to delivered) and, at delivery, close the refund window after 14 days."""
    oid = order["id"]
    timers = [("order.autocomplete", timedelta(days=auto_complete_days(ctx)), f"ac-{oid}")]
    if refund_window:
        timers.append(("order.refund_window", REFUND_WINDOW, f"rw-{oid}"))
    for name, delay, key in timers:
        try:
            await ctx.schedule(name, delay=delay, key=key, payload=_ref(order))
        except HostError as exc:
            log.error("order %s: timer %s not scheduled (%s)", oid, name, exc.code)


async def cancel_timers(ctx, order: dict[str, Any]) -> None:
    for key in (f"ac-{order['id']}", f"rw-{order['id']}"):
        try:
            await ctx.cancel_schedule(key)
        except HostError as exc:
            log.warning("timer %s not cancelled (%s)", key, exc.code)
