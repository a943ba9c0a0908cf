"""Carts: a cart per person (``carts/<per-app id>``: its lines with the price each had when it
went in), ``/shop cart``, Add to cart, Remove, and the two ways to check out:

- ``cart.checkout`` checks out one store's lines of the cart (one store and one currency per
  checkout): every product is read again — hidden or deleted: refused, naming it; a price that
  changed since it went into the cart: the cart is re-priced and the buyer is shown the new
  total with a Confirm button — nothing is reserved until they confirm;
- ``product.buy`` checks out one unit of a product at today's price.

Both then go to checkout.py (reservation, payment, order); this module registers its tables.
Bounds: 1-99 of one item per line, at most 30 lines.
"""

from __future__ import annotations

import re
from typing import Any

import catalog
import checkout
import order_state
from checkout import (
    TIMES,
    change_cart,
    line_key,
    line_title,
    price,
    start_checkout,
    total_of,
)

from sdk import Button, Card, Field, Reply

QTY_MAX = 99  # per cart line
LINES_MAX = 30  # per cart
PRODUCT_REF_RE = re.compile(r"(p-[A-Za-z0-9_-]{1,40})(?::([A-Za-z0-9_-]{1,16}))?")
QTY_RE = re.compile(r"\d{1,2}")
USAGE = (
    "Usage: /shop cart · /shop cart add <product>[:<option>] [1-99] · "
    "/shop cart remove <product>[:<option>]"
)
NOT_YOURS = "That is someone else's cart: /shop cart shows yours."


def parse_product_ref(value: Any) -> tuple[str, str | None] | None:
    """``"p-abc"`` → ``("p-abc", None)``, ``"p-abc:v1"`` → ``("p-abc", "v1")``; else None."""
    match = PRODUCT_REF_RE.fullmatch(value) if isinstance(value, str) else None
    return (match.group(1), match.group(2)) if match else None


def parse_qty(text: str) -> int | None:
    """A quantity typed by a person: 1-99, else None."""
    return int(text) if QTY_RE.fullmatch(text) and 1 <= int(text) <= QTY_MAX else None


def line_ref(line: dict[str, Any]) -> str:
    pid, vid = line_key(line)
    return f"{pid}:{vid}" if vid else pid


# --- products and stock ----------------------------------------------------------------------


async def priced_line(
    ctx, product_id: str, variant_id: str | None, name: str | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """One unit of a product (or its option ``variant_id``) at today's price — or why it cannot
    be bought (hidden, deleted, unknown option), naming it."""
    product = await catalog.get_product(ctx, product_id)
    if product is None or product.get("deleted") or product.get("visible") is False:
        return None, f"{name or product_id} is no longer available."
    title = str(product.get("title") or product_id)
    variants = product.get("variants") or []
    label = None
    unit_price = product.get("price")
    if variants:
        variant = next((v for v in variants if v.get("id") == variant_id), None)
        if variant_id is None:
            return None, f"{title} comes in options: pick one on its card."
        if variant is None:
            return None, f"{title} has no option {variant_id!r}."
        label = variant.get("label")
        unit_price = variant.get("price", unit_price)
    elif variant_id is not None:
        return None, f"{title} has no options."
    if not isinstance(unit_price, int) or unit_price <= 0:
        return None, f"{title} has no price yet."
    return {
        "product_id": product_id,
        "variant_id": variant_id,
        "variant_label": label,
        "qty": 1,
        "unit_price": unit_price,
        "currency": product["currency"],
        "store_id": product["store_id"],
        "title": title[:120],
    }, None


def checkout_line(line: dict[str, Any]) -> dict[str, Any]:
    """A cart line as a checkout's (and an order's) line."""
    keys = ("product_id", "variant_id", "variant_label", "qty", "unit_price", "title")
    return {key: line[key] for key in keys}


async def stock_left(ctx, line: dict[str, Any]) -> int:
    """Units left now (a read for the buyer's information; reservations use ``storage_incr``)."""
    stock = await ctx.storage_get("stock", order_state.stock_key(*line_key(line)))
    return int((stock or {}).get("left") or 0)


# --- the cart --------------------------------------------------------------------------------


async def cart_lines(ctx) -> list[dict[str, Any]]:
    return ((await ctx.storage_get("carts", ctx.user_id)) or {}).get("lines") or []


def groups_of(lines: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The cart's lines by (store, currency): each group checks out on its own."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for line in lines:
        groups.setdefault((line["store_id"], line["currency"]), []).append(line)
    return groups


async def store_names(ctx, lines: list[dict[str, Any]]) -> dict[str, str]:
    names = {}
    for store_id in {line["store_id"] for line in lines}:
        store = await ctx.storage_get("stores", store_id) or {}
        names[store_id] = str(store.get("name") or store_id)
    return names


def cart_card(
    owner: str,
    lines: list[dict[str, Any]],
    names: dict[str, str],
    locale: str | None,
    *,
    title: str = "Your cart",
    note: str | None = None,
    confirm: tuple[str, str] | None = None,
) -> Card:
    """The cart: numbered lines, a total per store, Check out per store, Remove per line (as many
    as fit). ``confirm`` (store, currency): the re-priced total of that store with a Confirm
    button instead."""
    text = [note] if note else []
    buttons: list[Button] = []
    fields: list[Field] = []
    number = 0
    for (store_id, currency), group in groups_of(lines).items():
        text.append(f"{names.get(store_id, store_id)}:")
        for line in group:
            number += 1
            amount = price(line["unit_price"] * line["qty"], currency, locale)
            text.append(f"{number}. {line['qty']}{TIMES}{line_title(line)} — {amount}")
        total = price(total_of(group), currency, locale)
        fields.append(Field(f"Total · {names.get(store_id, store_id)}"[:100], total))
        base = f"{owner}|{store_id}|{currency}"
        if confirm == (store_id, currency):
            label = f"Confirm new total {total}"
            value = f"{base}|{total_of(group)}"
            buttons.insert(0, Button("cart.checkout", label[:80], value, "primary"))
        elif confirm is None and len(buttons) < 3:
            label = f"Check out {names.get(store_id, store_id)[:40]} · {total}"
            buttons.append(Button("cart.checkout", label[:80], base, "primary"))
    if confirm is None:
        for line in lines:
            if len(buttons) >= 10:
                break
            label = f"Remove {line_title(line)}"[:80]
            buttons.append(Button("cart.remove", label, f"{owner}|{line_ref(line)}", "secondary"))
    return Card(title=title, text="\n".join(text)[:2000], fields=fields[:20], buttons=buttons)


async def show_cart(ctx, *, note: str | None = None) -> Reply:
    lines = await cart_lines(ctx)
    if not lines:
        return Reply(ephemeral=note or "Your cart is empty. /shop opens the shop.")
    names = await store_names(ctx, lines)
    return Reply(card=cart_card(ctx.user_id, lines, names, ctx.locale, note=note))


async def add_to_cart(ctx, product_id: str, variant_id: str | None, qty: int) -> Reply:
    line, problem = await priced_line(ctx, product_id, variant_id)
    if problem:
        return Reply(ephemeral=problem)
    left = await stock_left(ctx, line)

    def add(lines: list[dict[str, Any]]) -> str | None:
        existing = next((x for x in lines if line_key(x) == line_key(line)), None)
        wanted = qty + (existing["qty"] if existing else 0)
        if wanted > QTY_MAX:
            return f"At most {QTY_MAX} of one item in a cart."
        if left <= 0:
            return f"{line_title(line)} is sold out."
        if wanted > left:
            return f"Only {left} of {line_title(line)} left."
        if existing:
            existing["qty"] = wanted
            return None
        if len(lines) >= LINES_MAX:
            return f"A cart holds at most {LINES_MAX} different items."
        lines.append({**line, "qty": qty})
        return None

    lines, problem = await change_cart(ctx, add)
    if problem:
        return Reply(ephemeral=problem)
    in_cart = next(x["qty"] for x in lines if line_key(x) == line_key(line))
    group = groups_of(lines)[(line["store_id"], line["currency"])]
    total = price(total_of(group), line["currency"], ctx.locale)
    return Reply(
        ephemeral=f"Added {line_title(line)} — {in_cart} in your cart ({total} from this store)."
        " /shop cart to check out."
    )


async def remove_from_cart(ctx, product_id: str, variant_id: str | None) -> str | None:
    def remove(lines: list[dict[str, Any]]) -> str | None:
        kept = [x for x in lines if line_key(x) != (product_id, variant_id)]
        if len(kept) == len(lines):
            return "That item is not in your cart."
        lines[:] = kept
        return None

    _, problem = await change_cart(ctx, remove)
    return problem


async def cart_command(ctx, args: list[str]) -> Reply:
    """``/shop cart`` · ``/shop cart add <product>[:<option>] [qty]`` · ``/shop cart remove
    <product>[:<option>]``."""
    if not args:
        return await show_cart(ctx)
    verb, rest = args[0].lower(), args[1:]
    if verb not in ("add", "remove") or not 1 <= len(rest) <= (2 if verb == "add" else 1):
        return Reply(ephemeral=USAGE)
    ref = parse_product_ref(rest[0])
    if ref is None:
        return Reply(ephemeral=f"{rest[0]!r} is not a product id (like p-abc123 or p-abc123:v1).")
    if verb == "remove":
        problem = await remove_from_cart(ctx, *ref)
        return Reply(ephemeral=problem) if problem else await show_cart(ctx, note="Removed.")
    qty = parse_qty(rest[1]) if len(rest) == 2 else 1
    if qty is None:
        return Reply(ephemeral=f"Quantity must be a whole number from 1 to {QTY_MAX}.")
    return await add_to_cart(ctx, *ref, qty)


async def on_add(ctx) -> Reply:
    ref = parse_product_ref(ctx.value)
    if ref is None:
        return Reply(ephemeral="That is not a product.")
    return await add_to_cart(ctx, *ref, 1)


def _owned(ctx, value: Any, parts: tuple[int, ...]) -> list[str] | str:
    """A cart card's button value ``owner|…`` split, or the refusal."""
    fields = value.split("|") if isinstance(value, str) else []
    if len(fields) not in parts:
        return "That button is not a cart's."
    if fields[0] != ctx.user_id:
        return NOT_YOURS
    return fields[1:]


async def on_remove(ctx) -> Reply:
    fields = _owned(ctx, ctx.value, (2,))
    if isinstance(fields, str):
        return Reply(ephemeral=fields)
    ref = parse_product_ref(fields[0])
    if ref is None:
        return Reply(ephemeral="That is not a product.")
    problem = await remove_from_cart(ctx, *ref)
    if problem:
        return Reply(ephemeral=problem)
    lines = await cart_lines(ctx)
    if not lines:
        return Reply.update(ctx.message_id, Card("Your cart", text="Your cart is empty."))
    names = await store_names(ctx, lines)
    return Reply.update(ctx.message_id, cart_card(ctx.user_id, lines, names, ctx.locale))


# --- checkout --------------------------------------------------------------------------------


async def on_checkout(ctx) -> Reply:
    """Check out one store's lines of the cart (value ``owner|store|currency``), or confirm a
    re-priced total (``…|total``)."""
    fields = _owned(ctx, ctx.value, (3, 4))
    if isinstance(fields, str):
        return Reply(ephemeral=fields)
    store_id, currency = fields[0], fields[1]
    confirming = len(fields) == 3  # the Confirm button of a re-priced total
    confirmed = int(fields[2]) if confirming and fields[2].isdigit() else None
    lines = groups_of(await cart_lines(ctx)).get((store_id, currency))
    if not lines:
        return Reply(ephemeral="Nothing from that store is in your cart any more.")
    fresh: list[dict[str, Any]] = []
    for line in lines:
        now, problem = await priced_line(ctx, *line_key(line), name=line_title(line))
        if problem:
            return Reply(ephemeral=f"{problem} Remove it from your cart to check out.")
        if now["currency"] != currency:
            return Reply(
                ephemeral=f"{line_title(line)} is now sold in {now['currency']}: remove it and"
                " add it again."
            )
        fresh.append({**line, "unit_price": now["unit_price"], "title": now["title"]})
    repriced = any(a["unit_price"] != b["unit_price"] for a, b in zip(lines, fresh, strict=True))
    if repriced or (confirming and confirmed != total_of(fresh)):
        return await _ask_to_confirm(ctx, store_id, currency, lines, fresh)
    lines = [checkout_line(line) for line in fresh]
    return await start_checkout(ctx, lines, store_id, currency, source="cart")


async def _ask_to_confirm(ctx, store_id, currency, lines, fresh) -> Reply:
    """Prices moved: write them into the cart and show the new total with a Confirm button."""
    new_prices = {line_key(line): line["unit_price"] for line in fresh}

    def reprice(cart: list[dict[str, Any]]) -> None:
        for line in cart:
            if line_key(line) in new_prices and line["store_id"] == store_id:
                line["unit_price"] = new_prices[line_key(line)]

    cart, problem = await change_cart(ctx, reprice)
    if problem:
        return Reply(ephemeral=problem)
    changes = [
        f"{line_title(old)}: {price(old['unit_price'], currency, ctx.locale)} → "
        f"{price(new['unit_price'], currency, ctx.locale)}"
        for old, new in zip(lines, fresh, strict=True)
        if old["unit_price"] != new["unit_price"]
    ]
    if changes:
        note = "Prices changed since you added them: " + "; ".join(changes)
    else:
        note = "Your cart changed since: check the new total."
    group = groups_of(cart).get((store_id, currency))
    if not group:
        return Reply(ephemeral="Nothing from that store is in your cart any more.")
    names = await store_names(ctx, cart)
    card = cart_card(
        ctx.user_id,
        group,
        names,
        ctx.locale,
        title="Confirm the new total",
        note=note,
        confirm=(store_id, currency),
    )
    return Reply.update(ctx.message_id, card) if ctx.message_id else Reply(card=card)


async def on_buy(ctx) -> Reply:
    """``product.buy`` (value ``p-…`` or ``p-…:v1``): a one-line checkout of one unit."""
    ref = parse_product_ref(ctx.value)
    if ref is None:
        return Reply(ephemeral="That is not a product.")
    line, problem = await priced_line(ctx, *ref)
    if problem:
        return Reply(ephemeral=problem)
    lines = [checkout_line(line)]
    return await start_checkout(ctx, lines, line["store_id"], line["currency"], source="buy")


SUBCOMMANDS = {"cart": cart_command}
ACTIONS = {
    "cart.add": on_add,
    "cart.remove": on_remove,
    "cart.checkout": on_checkout,
    "product.buy": on_buy,
    **checkout.ACTIONS,
}
TIMERS = checkout.TIMERS
PAYMENTS = checkout.PAYMENTS
