"""Orders: ``create_order`` (once per payment), the buyer's and the seller's actions, refunds,
``/shop orders``, ``/shop ship``, ``/shop refund`` and the order timers. The state machine, the
card and the settlement of money and stock are in order_state.py; reviews in reviews.py
(registered through this module's tables).

Someone else's order id answers "no such order", whether or not it exists.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

import money
import reviews
from order_state import (
    NO_SUCH_ORDER,
    announce,
    auto_complete_days,
    buyer_refusal,
    cancel_timers,
    change_order,
    label,
    load_order,
    now_ms,
    order_card,
    order_for,
    payout_text,
    price,
    refresh_card,
    schedule_delivered_timers,
    seller_refusal,
    settle,
    state_refusal,
    tell,
)

from sdk import Card, Conflict, Field, HostError, Reply
from sdk.cards import as_dict

log = logging.getLogger("app.shop.orders")

AMOUNT_RE = re.compile(r"[-+]?\d+(?:[.,]\d+)?")  # what /shop refund reads as an amount
TRACKING_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/-]{2,63}")
REASON_MAX = 500
LIST_LIMIT = 10  # orders per list in /shop orders
FINAL_STATES = ("completed", "cancelled", "refunded")


# --- creating an order -----------------------------------------------------------------------


def _check_lines(lines: Any) -> list[dict[str, Any]]:
    if not isinstance(lines, list) or not lines:
        raise ValueError("an order needs at least one line")
    clean = []
    for line in lines:
        if not isinstance(line, dict) or not line.get("product_id"):
            raise ValueError(f"bad order line {line!r}")
        qty, unit_price = line.get("qty"), line.get("unit_price")
        if not isinstance(qty, int) or qty < 1 or not isinstance(unit_price, int) or unit_price < 0:
            raise ValueError(f"bad order line {line!r}")
        clean.append(
            {
                "product_id": str(line["product_id"]),
                "variant_id": line.get("variant_id"),
                "variant_label": line.get("variant_label"),
                "qty": qty,
                "unit_price": unit_price,
                "title": str(line.get("title") or line["product_id"])[:120],
            }
        )
    return clean


async def create_order(
    ctx,
    *,
    buyer: str,
    store_id: str,
    lines: list[dict[str, Any]],
    total: int,
    currency: str,
    payment_id: str,
    conversation_id: str | None,
    source: str,
    source_ref: str | None = None,
) -> dict[str, Any]:
    """The order for a payment that succeeded (or a captured hold), created once per
    ``payment_id``: a second call with the same ``payment_id`` returns the existing order and
    does nothing else. ``lines``: ``[{product_id, variant_id, qty, unit_price, title}]``
    (``variant_label`` optional); ``source``: ``"cart"``, ``"buy"``, ``"groupbuy"``,
    ``"groupcart"``; ``source_ref``: the checkout or group buy it came from.

    The order is ``paid``. Its card is posted in ``conversation_id`` when that is the
    invocation's chat (else it has no chat card: the service messages carry it), buyer and
    seller get a service message, and a line whose product has a ``course_id`` emits
    ``shop.order_paid`` (for the buyer: see ``emit_course_events``). Returns the order (with its
    ``id``)."""
    clean = _check_lines(lines)
    # The once-only gate: the first caller names the order; the others find its name here.
    order_id = f"o-{secrets.token_hex(6)}"
    try:
        await ctx.storage_update(
            "payments",
            payment_id,
            {"order_id": order_id, "at": now_ms()},
            expected_version=0,
            upsert=True,
        )
    except Conflict:
        gate = await ctx.storage_get("payments", payment_id) or {}
        order_id = gate.get("order_id") or order_id
        existing, _ = await load_order(ctx, order_id)
        if existing is not None:
            return existing
        # The gate is there but not the order: its first caller is between its two writes (or
        # stopped there). Both now create the same order id, create-only: one write wins.
    store = await ctx.storage_get("stores", store_id) or {}
    seller = store.get("owner")
    if seller is None:
        product = await ctx.storage_get("products", clean[0]["product_id"]) or {}
        seller = product.get("owner")
    number = await ctx.storage_incr("counters", "orders", "last", 1)
    order = {
        "id": order_id,
        "number": number,
        "source": source,
        "source_ref": source_ref,
        "checkout_id": source_ref if source in ("cart", "buy") else None,
        "buyer": buyer,
        "store_id": store_id,
        "seller": seller,
        "lines": clean,
        "total": int(total),
        "currency": currency,
        "payment_id": payment_id,
        "state": "paid",
        "tracking_no": None,
        "conversation_id": conversation_id,
        "message_id": None,
        "locale": ctx.locale,
        "created_at": now_ms(),
        "delivered_at": None,
        "completed_at": None,
        "refund": None,
        "refund_seq": 0,
        "refunded_total": 0,
        "refund_window_closed": False,
        "restock": None,
        "payout": None,
        "payout_failed": False,
        "course_events": None,
        "history": [{"state": "paid", "at": now_ms()}],
    }
    try:
        await ctx.storage_update("orders", order_id, order, expected_version=0, upsert=True)
    except Conflict:
        existing, _ = await load_order(ctx, order_id)
        if existing is not None and existing["payment_id"] == payment_id:
            return existing
        raise
    if conversation_id and conversation_id == ctx.conversation_id:
        order["message_id"] = await ctx.send_card(order_card(order))
        await ctx.storage_update("orders", order_id, {"message_id": order["message_id"]})
    buyer_note = "Thank you! Your order is paid; the seller will ship it."
    for audience, note in (("buyer", buyer_note), ("seller", "New order: please ship it.")):
        card = as_dict(order_card(order, audience=audience))
        card["text"] = f"{note}\n{card['text']}"[:2000]
        await tell(ctx, order[audience], card=card)
    return await emit_course_events(ctx, order)


async def emit_course_events(ctx, order: dict[str, Any]) -> dict[str, Any]:
    """``shop.order_paid`` ``{order_id, product_id, course_id}`` for each line whose product is
    a course, emitted in an invocation *by the buyer*: the host names the user of an event by
    the invocation, so each app that accepts it sees the buyer under its own per-app id. When
    the order is paid in someone else's invocation (a group buy filled by another member's
    payment), the events wait (``course_events: "pending"``) until the buyer's next
    ``/shop orders``. At least once: a consumer keys on ``order_id``."""
    if order.get("course_events") in ("sent", "none"):
        return order
    courses = []
    for line in order["lines"]:
        product = await ctx.storage_get("products", line["product_id"]) or {}
        if product.get("course_id"):
            courses.append((line["product_id"], product["course_id"]))
    if not courses:
        status = "none"
    elif ctx.user_id != order["buyer"] or order["state"] in ("cancelled", "refunded"):
        status = "pending" if order["state"] not in ("cancelled", "refunded") else "none"
    else:
        for product_id, course_id in courses:
            payload = {"order_id": order["id"], "product_id": product_id, "course_id": course_id}
            try:
                await ctx.emit("shop.order_paid", payload)
            except HostError as exc:
                log.warning("order %s: shop.order_paid not emitted (%s)", order["id"], exc.code)
                return order
        status = "sent"
    if order.get("course_events") != status:
        await ctx.storage_update("orders", order["id"], {"course_events": status})
        order = {**order, "course_events": status}
    return order


# --- the actions -----------------------------------------------------------------------------


async def _with_order(ctx, order_id: Any, role_refusal=None):
    """The order for a press or command, or the reply refusing it (no such order, or
    ``role_refusal(ctx, order)``: not the buyer's or not the seller's)."""
    order = await order_for(ctx, order_id)
    if order is None:
        return None, Reply(ephemeral=NO_SUCH_ORDER)
    problem = role_refusal(ctx, order) if role_refusal else None
    if problem:
        return None, Reply(ephemeral=problem)
    return order, None


async def ship(ctx, order_id: Any, tracking_no: str) -> Reply:
    order, refusal = await _with_order(ctx, order_id, seller_refusal)
    if refusal:
        return refusal
    if not TRACKING_RE.fullmatch(tracking_no):
        return Reply(
            ephemeral="A tracking no. is 3-64 letters, digits, spaces or . _ / - characters."
        )

    def decide(current):
        return state_refusal(current, ("paid",), "only a paid order can be shipped") or {
            "state": "shipped",
            "tracking_no": tracking_no,
        }

    changed, refusal_text = await change_order(ctx, order["id"], decide)
    if refusal_text:
        return Reply(ephemeral=refusal_text)
    await announce(ctx, changed, f"Shipped · tracking no. {tracking_no}")
    return Reply(ephemeral=f"Order {changed['id']} is marked shipped.")


async def on_ship_press(ctx) -> Reply:
    order, refusal = await _with_order(ctx, ctx.value, seller_refusal)
    if refusal:
        return refusal
    problem = state_refusal(order, ("paid",), "only a paid order can be shipped")
    if problem:
        return Reply(ephemeral=problem)
    return Reply(ephemeral=f"Send the tracking no. with: /shop ship {order['id']} <tracking no.>")


async def on_delivered(ctx) -> Reply:
    order, refusal = await _with_order(ctx, ctx.value, seller_refusal)
    if refusal:
        return refusal

    def decide(current):
        return state_refusal(current, ("shipped",), "only a shipped order can be delivered") or {
            "state": "delivered",
            "delivered_at": now_ms(),
        }

    changed, refusal_text = await change_order(ctx, order["id"], decide)
    if refusal_text:
        return Reply(ephemeral=refusal_text)
    await schedule_delivered_timers(ctx, changed, refund_window=True)
    days = auto_complete_days(ctx)
    await announce(
        ctx, changed, f"Delivered · the order completes by itself in {days} days if all is well"
    )
    return Reply(ephemeral=f"Order {changed['id']} is marked delivered.")


async def complete(ctx, order_id: str, states: tuple[str, ...]) -> tuple[dict | None, str | None]:
    """``states`` → completed, with the payout journaled in the same write; then paid."""

    def decide(current):
        refusal = state_refusal(current, states, "it cannot be completed")
        if refusal:
            return refusal
        return {
            "state": "completed",
            "completed_at": now_ms(),
            "payout": {"state": "pending", "ref": f"po-{current['id']}", "attempt": 1},
        }

    changed, refusal = await change_order(ctx, order_id, decide)
    if refusal:
        return changed, refusal
    await cancel_timers(ctx, changed)
    changed = await settle(ctx, changed)
    paid_out = (changed.get("payout") or {}).get("state") in ("sent", "none")
    note = "the seller is paid" if paid_out else "the seller's payout waits for funds"
    await announce(ctx, changed, f"Completed · {note}")
    return changed, None


async def on_confirm(ctx) -> Reply:
    order, refusal = await _with_order(ctx, ctx.value, buyer_refusal)
    if refusal:
        return refusal
    changed, problem = await complete(ctx, order["id"], ("shipped", "delivered"))
    if problem:
        return Reply(ephemeral=problem)
    return Reply(ephemeral=f"Thanks! Order {changed['id']} is completed.")


async def on_cancel(ctx) -> Reply:
    order, refusal = await _with_order(ctx, ctx.value, buyer_refusal)
    if refusal:
        return refusal

    def decide(current):
        refusal = state_refusal(
            current, ("pending_payment", "paid"), "only an order not yet shipped can be cancelled"
        )
        if refusal:
            return refusal
        fields: dict[str, Any] = {"state": "cancelled", "restock": "pending"}
        left = current["total"] - current["refunded_total"]
        if current["state"] == "paid" and left > 0:
            seq = current["refund_seq"] + 1
            fields["refund_seq"] = seq
            fields["refund"] = {
                "seq": seq,
                "amount": left,
                "reason": "order cancelled",
                "state": "approving",
                "to": None,
            }
        return fields

    changed, problem = await change_order(ctx, order["id"], decide)
    if problem:
        return Reply(ephemeral=problem)
    changed = await settle(ctx, changed)
    await announce(ctx, changed, "Cancelled by the buyer · the payment is refunded in full")
    return Reply(ephemeral=f"Order {changed['id']} is cancelled; your payment is refunded.")


async def on_payout_press(ctx) -> Reply:
    order, refusal = await _with_order(ctx, ctx.value, seller_refusal)
    if refusal:
        return refusal
    problem = state_refusal(order, ("completed",), "there is no payout to retry")
    if problem:
        return Reply(ephemeral=problem)
    changed = await settle(ctx, order)
    if changed != order:
        await refresh_card(ctx, changed)
    return Reply(ephemeral=f"Payout: {payout_text(changed.get('payout') or {})}.")


# --- refunds ---------------------------------------------------------------------------------


REFUND_USAGE = "Usage: /shop refund <order> [amount] <reason>"


async def refund_command(ctx, args: list[str]) -> Reply:
    """``/shop refund <order> [amount] <reason>``: the buyer asks; the seller approves or
    declines on the card."""
    if len(args) < 2:
        return Reply(ephemeral=REFUND_USAGE)
    order, refusal = await _with_order(ctx, args[0], buyer_refusal)
    if refusal:
        return refusal
    rest = args[1:]
    amount = None
    if AMOUNT_RE.fullmatch(rest[0]):
        try:
            amount = money.parse_price(rest[0], order["currency"])
        except ValueError as exc:
            return Reply(ephemeral=f"Amount: {exc}")
        rest = rest[1:]
    reason = " ".join(rest).strip()
    if not reason:
        return Reply(ephemeral=f"Say why you want a refund. {REFUND_USAGE}")
    if len(reason) > REASON_MAX:
        return Reply(ephemeral=f"The reason is limited to {REASON_MAX} characters.")

    def decide(current):
        refusal = state_refusal(
            current, ("paid", "shipped", "delivered"), "a refund can no longer be asked"
        )
        if refusal:
            return refusal
        if current.get("refund_window_closed"):
            return "The 14-day refund window after delivery has closed."
        left = current["total"] - current["refunded_total"]
        asked = left if amount is None else amount
        if asked > left:
            return f"At most {price(left, current['currency'], ctx.locale)} can be refunded."
        seq = current["refund_seq"] + 1
        return {
            "state": "refund_requested",
            "refund_seq": seq,
            "refund": {
                "seq": seq,
                "amount": asked,
                "reason": reason,
                "state": "requested",
                "previous": current["state"],
            },
        }

    changed, problem = await change_order(ctx, order["id"], decide)
    if problem:
        return Reply(ephemeral=problem)
    asked = price(changed["refund"]["amount"], changed["currency"], ctx.locale)
    await announce(ctx, changed, f"Refund of {asked} asked: {reason}")
    return Reply(ephemeral=f"Refund of {asked} asked; the seller will answer.")


async def on_refund_press(ctx) -> Reply:
    order, refusal = await _with_order(ctx, ctx.value, buyer_refusal)
    if refusal:
        return refusal
    problem = state_refusal(
        order, ("paid", "shipped", "delivered"), "a refund can no longer be asked"
    )
    if problem:
        return Reply(ephemeral=problem)
    return Reply(ephemeral=f"Ask for a refund with: /shop refund {order['id']} [amount] <reason>")


async def on_refund_approve(ctx) -> Reply:
    order, refusal = await _with_order(ctx, ctx.value, seller_refusal)
    if refusal:
        return refusal

    def decide(current):
        refusal = state_refusal(current, ("refund_requested",), "there is no refund to approve")
        if refusal:
            return refusal
        refund = current["refund"]
        if refund["state"] == "approving":
            return None  # approved already, its money still on the way: settle finishes it
        full = current["refunded_total"] + refund["amount"] >= current["total"]
        return {
            "refund": {
                **refund,
                "state": "approving",
                "to": "refunded" if full else refund["previous"],
                "restock": full and refund["previous"] == "paid",
            }
        }

    changed, problem = await change_order(ctx, order["id"], decide)
    if problem:
        return Reply(ephemeral=problem)
    changed = await settle(ctx, changed)
    refund = changed["refund"]
    amount = price(refund["amount"], changed["currency"], ctx.locale)
    if refund["state"] != "approved":
        return Reply(ephemeral="The refund could not be made yet; press Approve again.")
    await announce(ctx, changed, f"Refund of {amount} approved and paid back")
    return Reply(ephemeral=f"Refunded {amount} on order {changed['id']}.")


async def on_refund_decline(ctx) -> Reply:
    order, refusal = await _with_order(ctx, ctx.value, seller_refusal)
    if refusal:
        return refusal

    def decide(current):
        refusal = state_refusal(current, ("refund_requested",), "there is no refund to decline")
        if refusal:
            return refusal
        refund = current["refund"]
        if refund["state"] != "requested":
            return "That refund is already approved."
        return {"state": refund["previous"], "refund": {**refund, "state": "declined"}}

    changed, problem = await change_order(ctx, order["id"], decide)
    if problem:
        return Reply(ephemeral=problem)
    if changed["state"] == "delivered":
        await schedule_delivered_timers(ctx, changed, refund_window=False)
    await announce(ctx, changed, "The seller declined the refund")
    return Reply(
        ephemeral=f"Refund declined; order {changed['id']} is back to "
        f"{label(changed['state']).lower()}."
    )


# --- commands --------------------------------------------------------------------------------


async def ship_command(ctx, args: list[str]) -> Reply:
    """``/shop ship <order> <tracking no.>`` (the seller)."""
    if len(args) < 2:
        return Reply(ephemeral="Usage: /shop ship <order> <tracking no.>")
    return await ship(ctx, args[0], " ".join(args[1:]).strip())


def _summary(order: dict[str, Any], locale: str | None) -> Field:
    items = sum(line["qty"] for line in order["lines"])
    total = price(order["total"], order["currency"], locale)
    return Field(
        f"{order['id']} · {label(order['state'])}",
        f"#{order['number']} · {items} item{'s' if items != 1 else ''} · {total}",
    )


async def orders_command(ctx, args: list[str]) -> Reply:
    """``/shop orders``: the invoker's orders and, for a merchant, their store's — newest first,
    by the indexed ``buyer``/``seller`` fields."""
    if args:
        return Reply(ephemeral="Usage: /shop orders")
    bought = await ctx.storage_page(
        "orders", {"buyer": ctx.user_id}, sort="number", order="desc", limit=LIST_LIMIT
    )
    fields = [_summary(item["value"], ctx.locale) for item in bought["items"]]
    for item in bought["items"]:
        if item["value"].get("course_events") == "pending":
            await emit_course_events(ctx, item["value"])
    text = [f"You bought: {len(bought['items'])}{'+' if bought['next'] else ''}"]
    if ctx.has_role("merchant"):
        sold = await ctx.storage_page(
            "orders", {"seller": ctx.user_id}, sort="number", order="desc", limit=LIST_LIMIT
        )
        fields += [
            Field(f"Sold: {f.label}", f.value)
            for f in (_summary(item["value"], ctx.locale) for item in sold["items"])
        ]
        text.append(f"your store sold: {len(sold['items'])}{'+' if sold['next'] else ''}")
    if not fields:
        return Reply(ephemeral="You have no orders yet. /shop opens the shop.")
    card = Card(title="Your orders", text=" · ".join(text) + " (newest first)", fields=fields)
    return Reply(ephemeral=card)


# --- timers ----------------------------------------------------------------------------------


async def on_autocomplete(ctx) -> None:
    order_id = (ctx.payload or {}).get("order_id")
    order, _ = await load_order(ctx, order_id)
    if order is None or order["state"] != "delivered":
        return  # confirmed, refunded or in a refund meanwhile: nothing to complete
    await complete(ctx, order_id, ("delivered",))


async def on_refund_window(ctx) -> None:
    order_id = (ctx.payload or {}).get("order_id")

    def close(current: dict) -> dict | None:
        if current.get("refund_window_closed") or current["state"] in FINAL_STATES:
            return None
        return {"refund_window_closed": True}

    changed, _ = await change_order(ctx, order_id, close)
    if changed is not None:
        await refresh_card(ctx, changed)


async def on_settle_retry(ctx) -> None:
    """``order.settle``: a refund or payout that failed before, tried again."""
    order, _ = await load_order(ctx, (ctx.payload or {}).get("order_id"))
    if order is None:
        return
    changed = await settle(ctx, order)
    if changed != order:
        await refresh_card(ctx, changed)


SUBCOMMANDS = {
    "orders": orders_command,
    "ship": ship_command,
    "refund": refund_command,
    **reviews.SUBCOMMANDS,
}
ACTIONS = {
    "order.ship": on_ship_press,
    "order.delivered": on_delivered,
    "order.confirm": on_confirm,
    "order.cancel": on_cancel,
    "order.refund": on_refund_press,
    "order.refund_approve": on_refund_approve,
    "order.refund_decline": on_refund_decline,
    "order.payout": on_payout_press,
    **reviews.ACTIONS,
}
TIMERS = {
    "order.autocomplete": on_autocomplete,
    "order.refund_window": on_refund_window,
    "order.settle": on_settle_retry,
}
