"""Checkout: stock reservation, the checkout card, the payment and what its outcome does.

``start_checkout(ctx, lines, store_id, currency, source=…)`` (from cart.py's Check out and Buy):

1. each line's stock is reserved with ``storage_incr("stock", key, "left", -qty, min=0)``; when
   one line runs out, what this checkout took is given back and the buyer reads "sold out";
2. the ``checkouts`` document (``reserved``), its card (Pay / Cancel), the ``reservation.expire``
   timer (15 minutes, key = checkout id) and ``request_payment(order_ref=checkout id)``.

Then (``PAYMENTS["co"]``): ``payment.succeeded`` → ``reserved → paid`` by conditional update,
the order (``orders.create_order``, once per payment), the cart lines cleared once;
``payment.failed``, the timer or the Cancel button → ``reserved → released`` (the conditional
change is what makes the stock go back exactly once). A payment that succeeds after the
reservation was released takes the stock again if it is still there, else it is refunded in
full (``released → refunded``) and the buyer is told. cart.py registers this module's tables.
"""

from __future__ import annotations

import copy
import logging
import re
import secrets
import time
from datetime import timedelta
from typing import Any

import money
import order_state
import orders

from sdk import Button, Card, Conflict, Field, HostError, Reply

log = logging.getLogger("app.shop.checkout")

RESERVATION = timedelta(minutes=15)
ATTEMPTS = 25
CHECKOUT_ID_RE = re.compile(r"co-[0-9a-f]{16}")
NO_SUCH_CHECKOUT = "No such checkout."
TIMES = " \N{MULTIPLICATION SIGN} "  # "2 x Blue mug", with the multiplication sign


def price(amount: int, currency: str, locale: str | None) -> str:
    return money.format_price(amount, currency, locale)


def line_key(line: dict[str, Any]) -> tuple[str, str | None]:
    return line["product_id"], line.get("variant_id")


def line_title(line: dict[str, Any]) -> str:
    label = line.get("variant_label")
    return f"{line['title']} ({label})" if label else line["title"]


def total_of(lines: list[dict[str, Any]]) -> int:
    return sum(line["unit_price"] * line["qty"] for line in lines)


async def reserve_lines(ctx, lines: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Take each line's ``qty`` from its stock, atomically per line (never below 0). All or
    nothing: when a line runs out, what was taken is given back and that line is returned
    (None: all reserved). Usable by the group features too."""
    taken: list[dict[str, Any]] = []
    for line in lines:
        key = order_state.stock_key(*line_key(line))
        try:
            await ctx.storage_incr("stock", key, "left", -line["qty"])
        except HostError as exc:
            await release_lines(ctx, taken)
            if exc.code != "limit_reached":
                raise
            return line
        taken.append(line)
    return None


async def release_lines(ctx, lines: list[dict[str, Any]]) -> None:
    """Give the lines' stock back (call it once per reservation: the caller's conditional state
    change decides that). Usable by the group features too."""
    for line in lines:
        await ctx.storage_incr("stock", order_state.stock_key(*line_key(line)), "left", line["qty"])


async def change_cart(
    ctx, change, owner: str | None = None
) -> tuple[list[dict[str, Any]] | None, str | None]:
    """Apply ``change(lines)`` (edits in place; returns a refusal or None) to the cart of
    ``owner`` (default: the invoker) with ``expected_version``, again on ``Conflict``.
    ``(lines, None)`` or ``(None, refusal)``."""
    owner = owner or ctx.user_id
    for _ in range(ATTEMPTS):
        cart, version = await ctx.storage_get_versioned("carts", owner)
        lines = copy.deepcopy((cart or {}).get("lines") or [])
        problem = change(lines)
        if problem:
            return None, problem
        try:
            await ctx.storage_update(
                "carts", owner, {"lines": lines}, expected_version=version, upsert=True
            )
        except Conflict:
            continue
        return lines, None
    return None, "Your cart is busy; try again."


def checkout_card(checkout: dict[str, Any], locale: str | None) -> Card:
    currency, state, cid = checkout["currency"], checkout["state"], checkout["id"]
    text = [
        f"{line['qty']}{TIMES}{line_title(line)} — "
        + price(line["unit_price"] * line["qty"], currency, locale)
        for line in checkout["lines"][:15]
    ]
    titles = {
        "reserved": "Checkout · reserved for 15 minutes",
        "paid": "Checkout · paid",
        "released": "Checkout · reservation released",
        "refunded": "Checkout · refunded",
    }
    buttons: list[Button] = []
    if state == "reserved":
        text.append("Confirm the payment to buy; the items are kept for you until then.")
        buttons = [
            Button("checkout.pay", "Pay", cid, "primary"),
            Button("checkout.cancel", "Cancel", cid, "danger"),
        ]
    elif state == "paid":
        text.append(f"Order {', '.join(checkout.get('order_ids') or [])}".strip())
    elif state == "released":
        why = {
            "reservation_expired": "the 15 minutes ran out",
            "expired": "the payment expired",
            "cancelled": "cancelled",
        }.get(checkout.get("released_because") or "", "the payment did not go through")
        text.append(f"Nothing was bought: {why}.")
    elif state == "refunded":
        text.append(
            "Paid after the reservation ran out, and it sold out meanwhile: refunded in full."
        )
    return Card(
        title=titles.get(state, "Checkout"),
        text="\n".join(text)[:2000],
        fields=[Field("Total", price(checkout["total"], currency, locale))],
        buttons=buttons,
    )


async def start_checkout(
    ctx, lines: list[dict[str, Any]], store_id: str, currency: str, *, source: str
) -> Reply:
    """Reserve, record, time and ask for the payment (see the module's docstring)."""
    total = total_of(lines)
    sold_out = await reserve_lines(ctx, lines)
    if sold_out is not None:
        return Reply(ephemeral=f"Sold out: {line_title(sold_out)}. Nothing was reserved.")
    checkout_id = f"co-{secrets.token_hex(8)}"
    items = sum(line["qty"] for line in lines)
    description = (
        f"Shop: {lines[0]['qty']}{TIMES}{line_title(lines[0])}"
        if len(lines) == 1
        else f"Shop: {items} items"
    )[:200]
    checkout = {
        "id": checkout_id,
        "buyer": ctx.user_id,
        "conversation_id": ctx.conversation_id,
        "store_id": store_id,
        "source": source,
        "lines": lines,
        "total": total,
        "currency": currency,
        "description": description,
        "state": "reserved",
        "payment_id": None,
        "message_id": None,
        "created_at": int(time.time() * 1000),
        "expires_at": None,
        "order_ids": [],
        "cart_cleared": False,
        "released_because": None,
    }
    try:
        checkout["message_id"] = await ctx.send_card(checkout_card(checkout, ctx.locale))
        timer = await ctx.schedule(
            "reservation.expire",
            delay=RESERVATION,
            key=checkout_id,
            payload={"checkout_id": checkout_id},
        )
        checkout["expires_at"] = timer["due_at"]
        await ctx.storage_update(
            "checkouts", checkout_id, checkout, expected_version=0, upsert=True
        )
    except HostError:
        await release_lines(ctx, lines)
        raise
    try:
        payment = await ctx.request_payment(total, currency, description, order_ref=checkout_id)
    except HostError as exc:
        await release(ctx, checkout_id, "failed")
        return Reply(
            ephemeral=f"The payment could not be asked ({exc.message}); nothing was reserved."
        )
    await ctx.storage_update("checkouts", checkout_id, {"payment_id": payment["payment_id"]})
    try:
        await ctx.request_subscription()  # order updates come as service messages
    except HostError as exc:
        log.info("no subscription asked (%s)", exc.code)
    return Reply(
        ephemeral="Reserved for 15 minutes: confirm the payment of "
        f"{price(total, currency, ctx.locale)}."
    )


async def load_checkout(ctx, checkout_id: Any) -> tuple[dict[str, Any] | None, int]:
    if not isinstance(checkout_id, str) or not CHECKOUT_ID_RE.fullmatch(checkout_id):
        return None, 0
    return await ctx.storage_get_versioned("checkouts", checkout_id)


async def change_checkout(ctx, checkout_id: str, decide) -> tuple[dict[str, Any] | None, bool]:
    """``decide(checkout)`` → fields to set or None; written with ``expected_version`` (again
    after a ``Conflict``). ``(checkout, written)``."""
    for _ in range(ATTEMPTS):
        checkout, version = await load_checkout(ctx, checkout_id)
        if checkout is None:
            return None, False
        fields = decide(checkout)
        if not fields:
            return checkout, False
        try:
            await ctx.storage_update("checkouts", checkout_id, fields, expected_version=version)
        except Conflict:
            continue
        return {**checkout, **fields}, True
    raise Conflict(f"checkout {checkout_id} kept changing")


async def update_checkout_card(ctx, checkout: dict[str, Any]) -> None:
    if not checkout.get("message_id"):
        return
    try:
        await ctx.update_card(
            checkout["message_id"],
            checkout_card(checkout, ctx.locale),
            conversation_id=checkout["conversation_id"],
        )
    except HostError as exc:
        log.warning("checkout %s: card not updated (%s)", checkout["id"], exc.code)


async def release(ctx, checkout_id: str, because: str) -> bool:
    """``reserved → released`` and the stock back — once, whoever calls (payment failed, timer,
    Cancel). True when this call released it."""

    def decide(checkout):
        if checkout["state"] != "reserved":
            return None
        return {"state": "released", "released_because": because}

    checkout, written = await change_checkout(ctx, checkout_id, decide)
    if not written:
        return False
    await release_lines(ctx, checkout["lines"])
    if because != "reservation_expired":  # the timer itself is firing
        try:
            await ctx.cancel_schedule(checkout_id)
        except HostError as exc:
            log.warning("timer %s not cancelled (%s)", checkout_id, exc.code)
    await update_checkout_card(ctx, checkout)
    return True


async def on_cancel(ctx) -> Reply:
    checkout, _ = await load_checkout(ctx, ctx.value)
    if checkout is None or checkout["buyer"] != ctx.user_id:
        return Reply(ephemeral=NO_SUCH_CHECKOUT)
    if not await release(ctx, checkout["id"], "cancelled"):
        return Reply(ephemeral="That checkout is already closed.")
    return Reply(ephemeral="Cancelled: nothing was bought and the items are back in stock.")


async def on_pay(ctx) -> Reply:
    """Open the payment again (same ``order_ref``: the same payment, never a second one)."""
    checkout, _ = await load_checkout(ctx, ctx.value)
    if checkout is None or checkout["buyer"] != ctx.user_id:
        return Reply(ephemeral=NO_SUCH_CHECKOUT)
    if checkout["state"] == "paid":
        return Reply(ephemeral="Already paid.")
    if checkout["state"] != "reserved":
        return Reply(
            ephemeral="This checkout is closed; buy again from the product card or your cart."
        )
    try:
        payment = await ctx.request_payment(
            checkout["total"],
            checkout["currency"],
            checkout["description"],
            order_ref=checkout["id"],
        )
    except HostError as exc:
        return Reply(ephemeral=f"The payment could not be opened: {exc.message}")
    if payment["status"] == "paid":
        return Reply(ephemeral="Already paid.")
    if payment["status"] != "pending":
        return Reply(ephemeral=f"That payment was {payment['status']}; buy again.")
    return Reply(ephemeral="Confirm the payment in the window that just opened.")


async def on_reservation_expire(ctx) -> None:
    checkout_id = (ctx.payload or {}).get("checkout_id") or ctx.timer_key
    await release(ctx, checkout_id, "reservation_expired")


# --- the payment ------------------------------------------------------------------------------


async def on_checkout_payment(ctx, name: str, payment: dict[str, Any]) -> None:
    """``PAYMENTS["co"]``: a verified payment event for a checkout."""
    checkout, _ = await load_checkout(ctx, payment.get("order_ref"))
    if checkout is None:
        log.warning("a payment event for an unknown checkout was ignored")
        return
    if (payment.get("amount"), payment.get("currency")) != (
        checkout["total"],
        checkout["currency"],
    ):
        log.error("checkout %s: a payment for another amount was ignored", checkout["id"])
        return
    if name == "payment.succeeded":
        await paid(ctx, checkout["id"], payment["payment_id"])
    elif name == "payment.failed":
        await release(ctx, checkout["id"], str(payment.get("reason") or "failed"))


async def paid(ctx, checkout_id: str, payment_id: str) -> None:
    """The checkout's payment succeeded (maybe again: events may come twice)."""
    for _ in range(ATTEMPTS):
        checkout, version = await load_checkout(ctx, checkout_id)
        if checkout is None:
            return
        state = checkout["state"]
        if state == "paid":
            break
        if state == "refunded":
            await _refund(ctx, checkout, payment_id)  # idempotent: finishes a cut-short refund
            return
        fields = {"state": "paid", "payment_id": payment_id}
        retaken = False
        if state == "released":
            # Paid after the reservation ran out: take the stock again if it is still there.
            sold_out = await reserve_lines(ctx, checkout["lines"])
            if sold_out is not None:
                fields = {"state": "refunded", "payment_id": payment_id}
            retaken = sold_out is None
        try:
            await ctx.storage_update("checkouts", checkout_id, fields, expected_version=version)
        except Conflict:
            if retaken:
                await release_lines(ctx, checkout["lines"])
            continue
        if fields["state"] == "refunded":
            checkout = {**checkout, **fields}
            await _refund(ctx, checkout, payment_id)
            await update_checkout_card(ctx, checkout)
            text = (
                "Your payment came after the 15-minute reservation and the item sold out"
                " meanwhile: it is refunded in full."
            )
            await ctx.reply_ephemeral(text)
            await order_state.tell(ctx, checkout["buyer"], text=text)
            return
        break
    else:
        raise Conflict(f"checkout {checkout_id} kept changing")
    await fulfil(ctx, checkout_id, payment_id)


async def _refund(ctx, checkout: dict[str, Any], payment_id: str) -> None:
    try:
        await ctx.refund_payment(
            payment_id, checkout["total"], refund_ref=f"{checkout['id']}.refund"
        )
    except HostError as exc:
        log.error("checkout %s: refund failed (%s)", checkout["id"], exc.code)


async def fulfil(ctx, checkout_id: str, payment_id: str) -> None:
    """A paid checkout: its order (once per payment), the cart lines cleared (once), the card."""
    try:
        await ctx.cancel_schedule(checkout_id)
    except HostError as exc:
        log.warning("timer %s not cancelled (%s)", checkout_id, exc.code)
    checkout, _ = await load_checkout(ctx, checkout_id)
    order = await orders.create_order(
        ctx,
        buyer=checkout["buyer"],
        store_id=checkout["store_id"],
        lines=checkout["lines"],
        total=checkout["total"],
        currency=checkout["currency"],
        payment_id=payment_id,
        conversation_id=checkout["conversation_id"],
        source=checkout["source"],
        source_ref=checkout_id,
    )

    clears = [False]  # whoever writes cart_cleared clears the cart: once

    def record(current):
        fields: dict[str, Any] = {}
        if current.get("order_ids") != [order["id"]]:
            fields["order_ids"] = [order["id"]]
        clears[0] = current["source"] == "cart" and not current.get("cart_cleared")
        if clears[0]:
            fields["cart_cleared"] = True
        return fields or None

    checkout, written = await change_checkout(ctx, checkout_id, record)
    if written and clears[0]:
        await _clear_cart_lines(ctx, checkout)
    if written:
        await update_checkout_card(ctx, checkout)


async def _clear_cart_lines(ctx, checkout: dict[str, Any]) -> None:
    """Take the bought quantities out of the buyer's cart (they may have added more since)."""
    bought = {line_key(line): line["qty"] for line in checkout["lines"]}

    def clear(lines: list[dict[str, Any]]) -> None:
        for line in lines:
            line["qty"] -= bought.get(line_key(line), 0)
        lines[:] = [line for line in lines if line["qty"] > 0]

    await change_cart(ctx, clear, owner=checkout["buyer"])


ACTIONS = {"checkout.pay": on_pay, "checkout.cancel": on_cancel}
TIMERS = {"reservation.expire": on_reservation_expire}
PAYMENTS = {"co": on_checkout_payment}
