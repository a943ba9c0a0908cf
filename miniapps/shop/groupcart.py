"""The shared group cart: one cart card per group chat where members put products and each pays
only their own lines; the card lists the lines by member and shows who has paid.

- ``/shop groupcart`` shows the chat's group cart (a fresh card at the bottom of the chat; the
  cart is created on first use), ``/shop groupcart new`` starts another one,
  ``/shop groupcart add <product id>[:<variant>] [qty]`` and
  ``/shop groupcart remove <product id>[:<variant>]`` change the invoker's own lines.
- Buttons: ``groupcart.add`` (value ``"p-xxx"`` / ``"p-xxx:v1"`` for the chat's current cart —
  the "Add to group cart" button of a product card — or ``"gc-xxx/p-xxx"`` for that cart: the
  card's "+ <product>" buttons, "me too") adds one; ``groupcart.pay`` (value the cart id) pays
  the presser's lines: their stock is reserved like a checkout's (15 minutes, timer
  ``groupcart.expire``), then ``request_payment(own total, order_ref="gc-<token>.<n>")``; paid →
  their order (``orders.create_order(source="groupcart")``) and "✓ paid" on the card.
- A member's lines are frozen while they pay and once they have paid; the others can still add.
  One store and one currency per cart (like a checkout), so one payment is one order.

Data: ``groupcarts`` key ``gc-<token>``: ``{conversation_id, message_id, creator, created_at,
seq, members: {per-app id: {name, joined, lines: [{product_id, variant_id, qty, unit_price,
title, store_id, currency}], state: open|paying|paid, pay: {n, lines, total, store_id,
currency, released} | None, payment_id, order_id}}}`` — one document, so every change is one
conditional write on its version (``update_doc``), bounded by ``MEMBERS_MAX`` and ``LINES_MAX``.
``groupcart_chats`` key ``<conversation id>``: ``{cart}``, the chat's current cart.

Exactly once: a payment attempt ``n`` moves the member ``open → paying`` (after its stock was
reserved); whoever moves it on — ``paying → paid`` (payment.succeeded) or ``paying → open``
(payment.failed, or the expiry timer) — does what follows, so the stock is given back once and
the order made once. A payment that succeeds after its reservation was released takes the stock
again if it is still there, else it is refunded in full.

The helpers at the top are shared with ``groupbuy`` (which imports them from here).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import money
import orders
from catalog import CatalogError, clip, get_product, parse_item, stock_key, variant_of

from sdk import Button, Card, Conflict, Field, HostError, Reply, ScopeDenied, documents

log = logging.getLogger("app.shop.groupcart")

# --- shared by the group features (groupbuy imports these) ----------------------------------

CAS_ATTEMPTS = 40  # re-reads after a Conflict before giving up (each Conflict: someone else won)
BUSY = "The shop is busy right now; try again in a moment."
GROUP_TYPES = ("group",)  # the conversation types where a group feature may start


def now_ms(ctx=None) -> int:
    """The time, epoch milliseconds: a timer's own due time inside a timer, else the clock (only
    shown on cards — deadlines themselves are timers)."""
    due_at = getattr(ctx, "due_at", None)
    return int(due_at) if isinstance(due_at, int) else int(time.time() * 1000)


def not_in_group(ctx, what: str) -> str | None:
    """Why ``what`` cannot happen in this chat (a direct or service chat), or None
    (``ctx.conversation_type``, named by the host in each invocation)."""
    if ctx.conversation_type in GROUP_TYPES:
        return None
    return f"{what} happen in groups: open this in a group chat."


async def member_name(ctx, fallback: str) -> str:
    """The invoker's display name for a group card (``users.profile``; ``fallback`` when they
    did not share it)."""
    try:
        profile = await ctx.get_profile()
    except (ScopeDenied, HostError):
        return fallback
    return clip(str(profile.get("display_name") or fallback), 40)


async def update_doc(ctx, collection: str, key: str, edit: Callable[[dict | None], Any]):
    """``sdk.documents.update_doc``: ``edit(doc)`` a copy, written only if nobody wrote in
    between, else redone; returns ``(outcome, doc)``."""
    return await documents.update_doc(ctx, collection, key, edit, attempts=CAS_ATTEMPTS, busy=BUSY)


async def reserve_stock(ctx, lines: list[dict]) -> dict | None:
    """Take each line's ``qty`` from its stock (``storage_incr``, never below 0); all or none:
    on the first line short of stock, give back what was taken and return that line (None when
    everything was reserved)."""
    taken: list[dict] = []
    for line in lines:
        try:
            await ctx.storage_incr(
                "stock", stock_key(line["product_id"], line["variant_id"]), "left", -line["qty"]
            )
        except HostError as exc:
            await release_stock(ctx, taken)
            if exc.code == "limit_reached":
                return line
            raise
        taken.append(line)
    return None


async def release_stock(ctx, lines: list[dict]) -> None:
    """Give each line's ``qty`` back to its stock."""
    for line in lines:
        key = stock_key(line["product_id"], line["variant_id"])
        await ctx.storage_incr("stock", key, "left", line["qty"])


async def show(ctx, message_id: str | None, card: Card) -> None:
    """Update a group card in place; a card that is gone (recalled) is no reason to fail."""
    if not message_id:
        return
    try:
        await ctx.update_card(message_id, card)
    except HostError as exc:
        log.warning("card %s not updated (%s)", message_id, exc.code)


def price_of(product: dict, variant_id: str | None) -> int:
    variant = variant_of(product, variant_id)
    return int(variant["price"] if variant else product["price"])


# --- the group cart -------------------------------------------------------------------------

CARTS, CHATS = "groupcarts", "groupcart_chats"
CART_ID = re.compile(r"^gc-[0-9a-f]{12}$")
REF = re.compile(r"^gc-([0-9a-f]{12})\.([0-9]{1,6})$")
MEMBERS_MAX = 20  # members with lines in one cart (keeps the document and the card small)
LINES_MAX = 10  # lines per member
QTY_MAX = 99  # of one product, per member
ITEM_BUTTONS_MAX = 9  # "+ product" buttons (a card has 10, one is Pay)
RESERVATION = timedelta(minutes=15)
EXPIRE_TIMER = "groupcart.expire"
TEXT_MAX = 2000
USAGE = (
    "Usage: /shop groupcart · /shop groupcart new · /shop groupcart add <product id> [qty] · "
    "/shop groupcart remove <product id>"
)
NO_CART = "No such group cart in this chat."


def member_total(lines: list[dict]) -> int:
    return sum(line["qty"] * line["unit_price"] for line in lines)


def shown_lines(member: dict) -> list[dict]:
    """What a member is buying: the lines they pay(ing) for, else their cart lines."""
    if member["state"] in ("paying", "paid") and member.get("pay"):
        return member["pay"]["lines"]
    return member["lines"]


def cart_currency(cart: dict) -> tuple[str | None, str | None]:
    """The cart's store and currency: those of any line in it (None, None when empty)."""
    for member in cart["members"].values():
        for line in shown_lines(member):
            return line["store_id"], line["currency"]
    return None, None


def groupcart_card(cart_id: str, cart: dict, locale: str) -> Card:
    """The group cart: each member's lines and part, who has paid, the total; buttons Pay my
    part and "+ <product>" (one more of what someone has, for the presser)."""
    _, currency = cart_currency(cart)
    members = sorted(cart["members"].values(), key=lambda m: m["joined"])
    rows, items, total, paid, buyers = [], {}, 0, 0, 0
    for member in members:
        lines = shown_lines(member)
        if not lines:
            continue
        buyers += 1
        part = member_total(lines)
        total += part
        mark = {"paid": " ✓ paid", "paying": " ⏳ paying"}.get(member["state"], "")
        paid += member["state"] == "paid"
        goods = ", ".join(f"{line['qty']} x {line['title']}" for line in lines)
        rows.append(
            f"{member['name']}{mark}: {goods} — {money.format_price(part, currency, locale)}"
        )
        for line in lines:
            item = line["product_id"] + (f":{line['variant_id']}" if line["variant_id"] else "")
            items.setdefault(item, line["title"])
    if rows:
        text = "\n".join(rows)
        if len(text) > TEXT_MAX:
            text = text[: TEXT_MAX - 1] + "…"
        fields = [
            Field("Total", money.format_price(total, currency, locale)),
            Field("Paid", f"{paid} of {buyers}"),
        ]
    else:
        text = (
            "Empty. Add products with /shop groupcart add <product id> [qty] or a product "
            "card's Add to group cart. Each member pays only their own lines."
        )
        fields = []
    buttons = [Button("groupcart.pay", "Pay my part", value=cart_id, style="primary")]
    for item, title in list(items.items())[:ITEM_BUTTONS_MAX]:
        buttons.append(Button("groupcart.add", clip(f"+ {title}", 80), value=f"{cart_id}/{item}"))
    return Card(title="Group cart", text=text, fields=fields, buttons=buttons)


async def get_cart(ctx, cart_id: str) -> dict | None:
    """The group cart ``cart_id`` of this chat, or None."""
    if not isinstance(cart_id, str) or not CART_ID.match(cart_id):
        return None
    cart = await ctx.storage_get(CARTS, cart_id)
    if cart is None or cart.get("conversation_id") != ctx.conversation_id:
        return None
    return cart


async def current_cart_id(ctx) -> str | None:
    """The id of this chat's current group cart, or None."""
    return (await current_cart(ctx))[0]


async def current_cart(ctx) -> tuple[str | None, int]:
    """This chat's current group cart id (None: none) and the version of the chat's pointer."""
    pointer, version = await ctx.storage_get_versioned(CHATS, ctx.conversation_id)
    cart_id = (pointer or {}).get("cart")
    return (cart_id if await get_cart(ctx, cart_id) is not None else None), version


async def post_card(ctx, cart_id: str) -> str:
    """Post the cart's card at the bottom of the chat and make it the live one (the previous
    card says where it went)."""
    cart = await ctx.storage_get(CARTS, cart_id)
    message_id = await ctx.send_card(groupcart_card(cart_id, cart, ctx.locale))
    await ctx.storage_update(CARTS, cart_id, {"message_id": message_id})
    if cart.get("message_id"):
        moved = Card(title="Group cart", text="This group cart moved to a newer card below.")
        await show(ctx, cart["message_id"], moved)
    return message_id


async def new_cart(ctx, pointer_version: int | None = None) -> str:
    """A new, empty group cart for this chat, made its current one and posted. With
    ``pointer_version``, only if the chat's pointer is still at that version (``Conflict``:
    someone else started one meanwhile)."""
    cart_id = f"gc-{secrets.token_hex(6)}"
    cart = {
        "conversation_id": ctx.conversation_id,
        "message_id": None,
        "creator": ctx.user_id,
        "created_at": now_ms(),
        "seq": 0,
        "members": {},
    }
    await ctx.storage_update(CARTS, cart_id, cart, expected_version=0, upsert=True)
    try:
        await ctx.storage_update(
            CHATS,
            ctx.conversation_id,
            {"cart": cart_id},
            expected_version=pointer_version,
            upsert=True,
        )
    except Conflict:
        await ctx.storage_delete(CARTS, cart_id)
        raise
    await post_card(ctx, cart_id)
    return cart_id


async def ensure_cart(ctx) -> str:
    """This chat's current group cart, started (and posted) when there is none — once, however
    many members start one at the same moment."""
    cart_id, version = await current_cart(ctx)
    if cart_id is not None:
        return cart_id
    try:
        return await new_cart(ctx, version)
    except Conflict:
        cart_id = await current_cart_id(ctx)
        if cart_id is None:
            raise
        return cart_id


async def command(ctx, args: list[str]) -> Reply | None:
    """``/shop groupcart [new | add <product> [qty] | remove <product>]``."""
    refusal = not_in_group(ctx, "Group carts")
    if refusal:
        return Reply(ephemeral=refusal)
    if not args:
        cart_id = await current_cart_id(ctx)
        if cart_id is None:
            await ensure_cart(ctx)
        else:
            await post_card(ctx, cart_id)
        return None
    verb, rest = args[0].lower(), args[1:]
    if verb == "new" and not rest:
        await new_cart(ctx)
        return None
    if verb == "add" and 1 <= len(rest) <= 2:
        qty = parse_qty(rest[1]) if len(rest) == 2 else 1
        if isinstance(qty, str):
            return Reply(ephemeral=qty)
        return await add_item(ctx, None, rest[0], qty)
    if verb == "remove" and len(rest) == 1:
        return await remove_item(ctx, rest[0])
    return Reply(ephemeral=USAGE)


def parse_qty(text: str) -> int | str:
    """A quantity typed by a person, or why it is not one."""
    if not text.isdigit():
        return f"Quantity {clip(text, 20)!r} is not a whole number: use 1 to {QTY_MAX}."
    qty = int(text)
    if not 1 <= qty <= QTY_MAX:
        return f"Quantity must be 1 to {QTY_MAX}."
    return qty


async def on_add(ctx) -> Reply | None:
    """``groupcart.add``: one more of a product for the presser — value ``"p-xxx[:v1]"`` (the
    chat's current cart) or ``"gc-xxx/p-xxx[:v1]"`` (that cart)."""
    refusal = not_in_group(ctx, "Group carts")
    if refusal:
        return Reply(ephemeral=refusal)
    cart_id, _, item = (ctx.value or "").rpartition("/")
    return await add_item(ctx, cart_id or None, item, 1)


def lines_refusal(member: dict | None) -> str | None:
    """Why a member may not change their lines now, or None."""
    state = (member or {}).get("state")
    if state == "paid":
        return "You have paid for your lines; they cannot change (the others can still add)."
    if state == "paying":
        return "You are paying for your lines: finish or cancel that payment first."
    return None


async def add_item(ctx, cart_id: str | None, value: str, qty: int) -> Reply:
    """Add ``qty`` of a product (``"p-xxx"`` or ``"p-xxx:v1"``) to the invoker's lines."""
    try:
        product_id, variant_id = parse_item(value)
    except CatalogError as exc:
        return Reply(ephemeral=exc.message)
    product = await get_product(ctx, product_id)
    if product is None:
        return Reply(ephemeral="That product is not for sale (any more).")
    if variant_id is not None and variant_of(product, variant_id) is None:
        return Reply(ephemeral="That product does not exist.")
    if product.get("variants") and variant_id is None:
        options = ", ".join(f"{product_id}:{v['id']} ({v['label']})" for v in product["variants"])
        return Reply(ephemeral=clip(f"Choose an option: /shop groupcart add {options}", 2000))
    if cart_id is not None:
        if await get_cart(ctx, cart_id) is None:
            return Reply(ephemeral=NO_CART)
    else:
        cart_id = await current_cart_id(ctx)
    line = {
        "product_id": product_id,
        "variant_id": variant_id,
        "qty": qty,
        "unit_price": price_of(product, variant_id),
        "title": clip(product["title"], 60),
        "store_id": product["store_id"],
        "currency": product["currency"],
    }
    if cart_id is not None:  # refuse before asking for a name or starting anything
        cart = await ctx.storage_get(CARTS, cart_id)
        refusal = add_refusal(cart, ctx.user_id, line)
        if refusal:
            return Reply(ephemeral=refusal)
        name = cart["members"].get(ctx.user_id, {}).get("name")
    else:
        name = None
    if name is None:
        name = await member_name(ctx, "A member")
    if cart_id is None:
        cart_id = await ensure_cart(ctx)

    def put_line(cart: dict | None) -> str | None:
        if cart is None:
            return NO_CART
        refusal = add_refusal(cart, ctx.user_id, line)
        if refusal:
            return refusal
        member = cart["members"].setdefault(
            ctx.user_id,
            {
                "name": name,
                "joined": now_ms(),
                "lines": [],
                "state": "open",
                "pay": None,
                "payment_id": None,
                "order_id": None,
            },
        )
        same = next((x for x in member["lines"] if same_item(x, line)), None)
        if same is None:
            member["lines"].append(dict(line))
        else:
            same.update(qty=same["qty"] + qty, unit_price=line["unit_price"], title=line["title"])
        return None

    refusal, cart = await update_doc(ctx, CARTS, cart_id, put_line)
    if refusal:
        return Reply(ephemeral=refusal)
    await show(ctx, cart["message_id"], groupcart_card(cart_id, cart, ctx.locale))
    mine = member_total(cart["members"][ctx.user_id]["lines"])
    part = money.format_price(mine, line["currency"], ctx.locale)
    return Reply(ephemeral=f"Added {qty} x {line['title']} to the group cart (your part: {part}).")


def same_item(a: dict, b: dict) -> bool:
    return (a["product_id"], a["variant_id"]) == (b["product_id"], b["variant_id"])


def add_refusal(cart: dict, user_id: str, line: dict) -> str | None:
    """Why ``line`` cannot go into ``user_id``'s lines of ``cart``, or None."""
    member = cart["members"].get(user_id)
    refusal = lines_refusal(member)
    if refusal:
        return refusal
    store_id, currency = cart_currency(cart)
    if store_id is not None and (store_id, currency) != (line["store_id"], line["currency"]):
        return (
            "This group cart holds another store's products; one cart pays one store. "
            "Start another with /shop groupcart new."
        )
    if member is None and len(cart["members"]) >= MEMBERS_MAX:
        return f"A group cart has at most {MEMBERS_MAX} members; start another one."
    lines = (member or {}).get("lines") or []
    same = next((x for x in lines if same_item(x, line)), None)
    if same is None and len(lines) >= LINES_MAX:
        return f"You have {LINES_MAX} products in this group cart already: that is the limit."
    if same is not None and same["qty"] + line["qty"] > QTY_MAX:
        return f"At most {QTY_MAX} of one product (you have {same['qty']})."
    return None


async def remove_item(ctx, value: str) -> Reply:
    """Take a product off the invoker's lines of the chat's current cart."""
    try:
        product_id, variant_id = parse_item(value)
    except CatalogError as exc:
        return Reply(ephemeral=exc.message)
    cart_id = await current_cart_id(ctx)
    if cart_id is None:
        return Reply(ephemeral="This chat has no group cart: start one with /shop groupcart.")
    item = {"product_id": product_id, "variant_id": variant_id}

    def take_line(cart: dict | None) -> str | None:
        member = (cart or {"members": {}})["members"].get(ctx.user_id)
        if member is None or not any(same_item(x, item) for x in member["lines"]):
            return "That product is not among your lines of this group cart."
        refusal = lines_refusal(member)
        if refusal:
            return refusal
        member["lines"] = [x for x in member["lines"] if not same_item(x, item)]
        if not member["lines"] and member.get("pay") is None:
            del cart["members"][ctx.user_id]  # nothing left of them on the card
        return None

    refusal, cart = await update_doc(ctx, CARTS, cart_id, take_line)
    if refusal:
        return Reply(ephemeral=refusal)
    await show(ctx, cart["message_id"], groupcart_card(cart_id, cart, ctx.locale))
    return Reply(ephemeral="Removed from your lines of the group cart.")


# --- paying one's part ----------------------------------------------------------------------


async def on_pay(ctx) -> Reply | None:
    """``groupcart.pay`` (value: the cart id): the presser pays their own lines."""
    cart_id = ctx.value or ""
    cart = await get_cart(ctx, cart_id)
    if cart is None:
        return Reply(ephemeral=NO_CART)
    member = cart["members"].get(ctx.user_id)
    if member is None or (not member["lines"] and member["state"] == "open"):
        return Reply(ephemeral="You have nothing in this group cart: add something first.")
    if member["state"] == "paid":
        return Reply(ephemeral="You have paid for your lines already ✓")
    if member["state"] == "paying":
        pay = member["pay"]
        await ask_payment(ctx, cart_id, pay)  # the same order_ref: the same payment, shown again
        total = money.format_price(pay["total"], pay["currency"], ctx.locale)
        return Reply(ephemeral=f"Confirm the payment of {total} in the payment sheet.")
    lines = member["lines"]
    repriced, problem = await current_prices(ctx, lines)
    if problem:
        return Reply(ephemeral=problem)
    if repriced != lines:
        return await reprice(ctx, cart_id, lines, repriced)
    short = await reserve_stock(ctx, lines)
    if short is not None:
        return Reply(ephemeral=f"Not enough {short['title']} left for your {short['qty']}.")
    store_id, currency = lines[0]["store_id"], lines[0]["currency"]
    pay = {"lines": lines, "total": member_total(lines), "store_id": store_id}
    pay |= {"currency": currency, "released": False}

    def start_paying(cart: dict | None) -> str | None:
        now = (cart or {"members": {}})["members"].get(ctx.user_id)
        refusal = lines_refusal(now)  # paying already: a second press raced this one
        if refusal:
            return refusal
        if now is None or now["lines"] != lines:
            return "Your lines changed meanwhile: press Pay my part again."
        cart["seq"] += 1
        now.update(state="paying", pay={**pay, "n": cart["seq"]})
        return None

    try:
        refusal, cart = await update_doc(ctx, CARTS, cart_id, start_paying)
    except HostError:
        await release_stock(ctx, lines)
        raise
    if refusal:
        await release_stock(ctx, lines)
        return Reply(ephemeral=refusal)
    pay = cart["members"][ctx.user_id]["pay"]
    try:
        await ctx.schedule(
            EXPIRE_TIMER,
            delay=RESERVATION,
            key=f"{cart_id}.{pay['n']}",
            payload={"cart": cart_id, "user": ctx.user_id, "n": pay["n"]},
        )
        await ask_payment(ctx, cart_id, pay)
    except HostError as exc:
        log.warning("group cart %s: payment not asked (%s)", cart_id, exc.code)
        await stop_paying(ctx, cart_id, ctx.user_id, pay["n"])
        return Reply(ephemeral="The payment could not be started; nothing was charged.")
    await show(ctx, cart["message_id"], groupcart_card(cart_id, cart, ctx.locale))
    total = money.format_price(pay["total"], pay["currency"], ctx.locale)
    minutes = int(RESERVATION.total_seconds() // 60)
    return Reply(ephemeral=f"Confirm the payment of {total}: your items are kept {minutes} min.")


async def ask_payment(ctx, cart_id: str, pay: dict) -> dict:
    token = cart_id.removeprefix("gc-")
    count = sum(line["qty"] for line in pay["lines"])
    description = f"Group cart: your {count} item{'s' if count != 1 else ''}"
    return await ctx.request_payment(
        pay["total"], pay["currency"], description, f"gc-{token}.{pay['n']}"
    )


async def current_prices(ctx, lines: list[dict]) -> tuple[list[dict], str | None]:
    """The lines at today's prices, or why they cannot be bought (a product gone)."""
    repriced = []
    for line in lines:
        product = await get_product(ctx, line["product_id"])
        gone = product is None or (
            line["variant_id"] is not None and variant_of(product, line["variant_id"]) is None
        )
        if gone:
            item = line["product_id"] + (f":{line['variant_id']}" if line["variant_id"] else "")
            return lines, (
                f"{line['title']} is not for sale any more: take it off with "
                f"/shop groupcart remove {item}"
            )
        repriced.append({**line, "unit_price": price_of(product, line["variant_id"])})
    return repriced, None


async def reprice(ctx, cart_id: str, lines: list[dict], repriced: list[dict]) -> Reply:
    """Prices changed since the lines were added: the lines take the new prices and the member
    confirms the new total by pressing Pay again (nothing is reserved yet)."""

    def set_prices(cart: dict | None) -> str | None:
        member = (cart or {"members": {}})["members"].get(ctx.user_id)
        if member is None or member["state"] != "open" or member["lines"] != lines:
            return "Your lines changed meanwhile: press Pay my part again."
        member["lines"] = repriced
        return None

    refusal, cart = await update_doc(ctx, CARTS, cart_id, set_prices)
    if refusal:
        return Reply(ephemeral=refusal)
    await show(ctx, cart["message_id"], groupcart_card(cart_id, cart, ctx.locale))
    total = money.format_price(member_total(repriced), repriced[0]["currency"], ctx.locale)
    return Reply(ephemeral=f"Prices changed: your part is now {total}. Press Pay my part again.")


async def stop_paying(ctx, cart_id: str, user_id: str, n: int) -> bool:
    """Payment attempt ``n`` is over without a payment: ``paying → open``; whoever makes that
    change gives the stock back and cancels the expiry timer. True when it was this call."""

    def release(cart: dict | None) -> bool:
        member = (cart or {"members": {}})["members"].get(user_id)
        if member is None or member["state"] != "paying" or member["pay"]["n"] != n:
            return False
        member["state"] = "open"
        member["pay"] = {**member["pay"], "released": True}
        return True

    released, cart = await update_doc(ctx, CARTS, cart_id, release)
    if not released:
        return False
    await release_stock(ctx, cart["members"][user_id]["pay"]["lines"])
    try:
        await ctx.cancel_schedule(f"{cart_id}.{n}")
    except HostError as exc:
        log.warning("group cart %s: expiry timer not cancelled (%s)", cart_id, exc.code)
    await show(ctx, cart["message_id"], groupcart_card(cart_id, cart, ctx.locale))
    return True


async def on_expire(ctx) -> None:
    """``groupcart.expire``: a member did not pay within ``RESERVATION``: their stock goes back."""
    payload = ctx.payload
    await stop_paying(ctx, payload["cart"], payload["user"], int(payload["n"]))


async def on_payment(ctx, name: str, payment: dict) -> None:
    """PAYMENTS["gc"]: a member's payment for their lines (``gc-<token>.<n>``)."""
    match = REF.match(str(payment.get("order_ref", "")))
    if match is None:
        log.warning("a group cart payment event with a bad order_ref was ignored")
        return
    cart_id, n, user_id = f"gc-{match.group(1)}", int(match.group(2)), payment["user_id"]
    cart = await ctx.storage_get(CARTS, cart_id)
    if cart is None:
        log.warning("payment %s names no group cart", payment["payment_id"])
        return
    if name == "payment.failed":
        await stop_paying(ctx, cart_id, user_id, n)
    elif name == "payment.succeeded":
        await paid(ctx, cart_id, user_id, n, payment)


async def paid(ctx, cart_id: str, user_id: str, n: int, payment: dict) -> None:
    """A member paid attempt ``n``: ``paying → paid`` then their order (both once); a payment
    whose reservation was released meanwhile takes the stock again, or is refunded."""
    payment_id = payment["payment_id"]

    def mark_paid(cart: dict | None) -> str:
        member = (cart or {"members": {}})["members"].get(user_id)
        pay = (member or {}).get("pay") or {}
        if member is None or pay.get("n") != n:
            return "stray"
        if member["state"] == "paid":
            return "again" if member["payment_id"] == payment_id else "stray"
        if member["state"] == "paying":
            member.update(state="paid", payment_id=payment_id)
            return "paid"
        return "late"  # released (expired or cancelled) before the money came

    outcome, cart = await update_doc(ctx, CARTS, cart_id, mark_paid)
    if outcome == "late":
        outcome, cart = await retake(ctx, cart_id, user_id, n, payment_id)
    if outcome == "stray":
        await refund(ctx, payment)
        return
    if outcome == "paid":
        try:
            await ctx.cancel_schedule(f"{cart_id}.{n}")
        except HostError as exc:
            log.warning("group cart %s: expiry timer not cancelled (%s)", cart_id, exc.code)
    member = cart["members"][user_id]
    if member.get("order_id") is None:  # also for a repeated event: the order is made once
        pay = member["pay"]
        order = await orders.create_order(
            ctx,
            buyer=user_id,
            store_id=pay["store_id"],
            lines=[{k: line[k] for k in ORDER_LINE} for line in pay["lines"]],
            total=pay["total"],
            currency=pay["currency"],
            payment_id=payment_id,
            conversation_id=cart["conversation_id"],
            source="groupcart",
            source_ref=cart_id,
        )

        def note_order(cart: dict) -> None:
            cart["members"][user_id]["order_id"] = order["id"]

        _, cart = await update_doc(ctx, CARTS, cart_id, note_order)
    await show(ctx, cart["message_id"], groupcart_card(cart_id, cart, ctx.locale))


ORDER_LINE = ("product_id", "variant_id", "qty", "unit_price", "title")


async def retake(ctx, cart_id: str, user_id: str, n: int, payment_id: str):
    """The payment of attempt ``n`` came after its reservation was released: take its stock
    again and mark it paid — or ``"stray"`` (refund) when the stock or the member moved on."""
    cart = await ctx.storage_get(CARTS, cart_id)
    pay = cart["members"][user_id]["pay"]
    if await reserve_stock(ctx, pay["lines"]) is not None:
        return "stray", cart

    def mark_paid(cart: dict) -> str:
        member = cart["members"][user_id]
        if member["state"] != "open" or (member.get("pay") or {}).get("n") != n:
            return "stray"  # paying again (another attempt) or paid meanwhile
        member.update(state="paid", payment_id=payment_id, lines=member["pay"]["lines"])
        return "paid"

    outcome, cart = await update_doc(ctx, CARTS, cart_id, mark_paid)
    if outcome != "paid":
        await release_stock(ctx, pay["lines"])
    return outcome, cart


async def refund(ctx, payment: dict) -> None:
    """Give back in full a payment that bought nothing: it came after its items were released
    and they sold out meanwhile, or the member had paid another way (once: ``refund_ref``)."""
    try:
        await ctx.refund_payment(payment["payment_id"], payment["amount"], refund_ref="unused")
    except HostError as exc:
        log.warning("payment %s not refunded (%s)", payment["payment_id"], exc.code)
        return
    try:
        await ctx.reply_ephemeral(
            "Your group cart payment came after your items were released and could not be "
            "used: it was refunded in full."
        )
    except HostError as exc:
        log.warning("refund of %s not told (%s)", payment["payment_id"], exc.code)


SUBCOMMANDS = {"groupcart": command}
ACTIONS = {"groupcart.add": on_add, "groupcart.pay": on_pay}
TIMERS = {EXPIRE_TIMER: on_expire}
PAYMENTS = {"gc": on_payment}
