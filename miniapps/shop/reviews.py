"""Reviews: stars and a text, by the buyer of a completed order, once per order line.

``/shop review <order> <line#> <stars 1-5> <text>`` writes ``reviews/<order_id>:<line index>``
create-only (``storage_update(expected_version=0, upsert=True)``: a second review of the same
line is a ``Conflict``, whatever the concurrency), then adds the stars to the product's
``rating_sum`` and 1 to its ``rating_count`` with ``storage_incr`` — so the product card's
rating is ``rating_sum / rating_count``. Registered through orders.py's tables.
"""

from __future__ import annotations

import re
import time

from sdk import Conflict, Reply

USAGE = "Usage: /shop review <order> <line#> <stars 1-5> <text>"
TEXT_MAX = 1000
ORDER_ID_RE = re.compile(r"o-[0-9a-f]{12}")


async def _buyers_completed_order(ctx, order_id: str) -> tuple[dict | None, str | None]:
    order = None
    if ORDER_ID_RE.fullmatch(order_id):
        order = await ctx.storage_get("orders", order_id)
    if order is None or ctx.user_id not in (order["buyer"], order["seller"]):
        return None, "No such order."
    if ctx.user_id != order["buyer"]:
        return None, "Only the buyer can review an order."
    if order["state"] != "completed":
        return None, "You can review an order once it is completed (Confirm receipt)."
    return order, None


async def review_command(ctx, args: list[str]) -> Reply:
    if len(args) < 4:
        return Reply(ephemeral=USAGE)
    order, problem = await _buyers_completed_order(ctx, args[0])
    if problem:
        return Reply(ephemeral=problem)
    line_no, stars = args[1].lstrip("#"), args[2]
    lines = order["lines"]
    if not line_no.isdigit() or not 1 <= int(line_no) <= len(lines):
        return Reply(ephemeral=f"The line# is 1 to {len(lines)} (as numbered on the order card).")
    if not stars.isdigit() or not 1 <= int(stars) <= 5:
        return Reply(ephemeral="Stars are a whole number from 1 to 5.")
    text = " ".join(args[3:]).strip()
    if not text:
        return Reply(ephemeral=f"Write a few words too. {USAGE}")
    if len(text) > TEXT_MAX:
        return Reply(ephemeral=f"A review is limited to {TEXT_MAX} characters.")
    index, stars_given = int(line_no) - 1, int(stars)
    line = lines[index]
    review = {
        "order_id": order["id"],
        "line": index,
        "product_id": line["product_id"],
        "variant_id": line.get("variant_id"),
        "store_id": order["store_id"],
        "buyer": ctx.user_id,
        "stars": stars_given,
        "text": text,
        "at": int(time.time() * 1000),
    }
    try:
        await ctx.storage_update(
            "reviews", f"{order['id']}:{index}", review, expected_version=0, upsert=True
        )
    except Conflict:
        return Reply(ephemeral=f"You already reviewed line {index + 1} of this order.")
    # After the review is in: a crash between leaves a review uncounted, never counted twice.
    await ctx.storage_incr("products", line["product_id"], "rating_sum", stars_given)
    await ctx.storage_incr("products", line["product_id"], "rating_count", 1)
    return Reply(ephemeral=f"Thanks! {'★' * stars_given} for {line['title']}.")


async def on_review_press(ctx) -> Reply:
    """The card's "Write a review" button explains the command (a card has no text input)."""
    order_id = ctx.value or ""
    order, problem = await _buyers_completed_order(ctx, order_id)
    if problem:
        return Reply(ephemeral=problem)
    numbered = "; ".join(
        f"{index}. {line['title']}" for index, line in enumerate(order["lines"], start=1)
    )
    return Reply(
        ephemeral=f"Review with: /shop review {order_id} <line#> <stars 1-5> <text> — {numbered}"[
            :4000
        ]
    )


SUBCOMMANDS = {"review": review_command}
ACTIONS = {"order.review": on_review_press}
