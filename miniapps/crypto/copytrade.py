"""Copy trade: ``/crypto share <order id>`` posts a trade card into the chat; another member
presses **Copy**, confirms, and gets their own order of the same side and pair through the normal
order flow. Paper money only.

- **Sharing.** Only your own order, and only one that traded or is still in the book (``open``;
  ``closed``; cancelled or expired after a partial fill): an order that never traded is
  ``not_shareable``. The card (``shares/<share id>``, the id a digest of the order and the chat:
  sharing the same order in the same chat again posts nothing new) says who traded what: side,
  amount, pair, the limit price (a market order: its average fill price), and has a **Copy**
  button.
- **What a copy is: the same order, the same amount** — same side, pair, type, limit price and
  time in force, for the amount the sharer traded (what was filled of a finished order; the whole
  amount of one still open); a market order is copied as a market order, filled at the market
  price of the moment. Not scaled to the copier's balance: a copy that needs more than they have
  free is refused like any order (``insufficient_funds``), nothing placed.
- **Their own confirmation.** **Copy** answers the presser alone and sends them a confirm card
  (**Confirm** / **Cancel**) in their chat with Crypto (a card shown to one person only is not
  kept, so its buttons could not be pressed): a service message, which they are asked to allow
  when they have not. Without service messages they confirm by typing ``/crypto copy <share id>``
  (the typed command is the confirmation). The web view may do the same with ``copy.preview`` and
  ``copy.place``.
- **Idempotent.** The copy's client order id is derived from the card and the copier
  (``copy-<share id>``; the exchange's order id hashes it with the copier), so a double tap, two
  devices or a retry place one order; confirming again shows that order. A ticket per copier and
  card (``copies/<share id>:<copier digest>``, status ``offered → placing → placed`` or
  ``declined``, conditional writes) makes **Cancel** final: a card cancelled is never placed from
  its buttons (typing the command afterwards is a new decision, and is placed).

Data: ``shares/<id>`` ``{id, order_id, owner, name, conversation_id, symbol, side, type, price,
amount, tif, average, status, created_at, message_id}``; ``copies/<share id>:<digest>``
``{share, user, status, order_id, updated_at}``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import clock
import exchange
import markets
import orders
from alerts import edit_doc
from exchange import ExchangeError
from league import member_name
from markets import dec
from texts import PAPER
from trading import ORDER_ID_RE, do_place, number, order_card, status_text

from sdk import Button, Card, Field, NotFound, Reply, ScopeDenied, ViewError

SHARES, COPIES = "shares", "copies"
SHARE_ID_RE = re.compile(r"^sh-[0-9a-f]{16}$")
SHARE_USAGE = "Usage: /crypto share <order id> (see /crypto orders)."
COPY_USAGE = "Usage: /crypto copy <share id> — the id on a shared trade's card."


class CopyError(Exception):
    """A refusal with a stable ``code`` and a ``message`` to show as is. Nothing written."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def private(content: str | Card) -> Reply:
    return Reply(ephemeral=content)


def share_id_of(order_id: str, conversation_id: str) -> str:
    digest = hashlib.sha256(f"{order_id}\0{conversation_id}".encode()).hexdigest()
    return "sh-" + digest[:16]


def ticket_key(share_id: str, user: str) -> str:
    return f"{share_id}:{hashlib.sha256(user.encode()).hexdigest()[:16]}"


def client_order_id(share_id: str) -> str:
    return f"copy-{share_id}"


# --- sharing ---------------------------------------------------------------------------------


def copy_amount(order: dict[str, Any]) -> str | None:
    """What a copy trades: the filled amount of a finished order, the amount of an open one;
    None when there is nothing to copy (it never traded)."""
    if order["status"] == "open":
        return order["amount"]
    if order["status"] in ("closed", "canceled", "expired") and dec(order.get("filled")) > 0:
        return order["filled"]
    return None


def order_title(share: dict[str, Any], locale: str | None) -> str:
    """``Buy 0.01 BTC at 60,000`` / ``Sell 0.5 ETH at market``."""
    base = share["symbol"].split("/")[0]
    where = f"at {number(share['price'], locale)}" if share.get("price") else "at market"
    return f"{share['side'].capitalize()} {number(share['amount'], locale)} {base} {where}"


def share_card(share: dict[str, Any], locale: str | None) -> Card:
    base, quote = share["symbol"].split("/")
    amount = f"{number(share['amount'], locale)} {base}"
    if share["status"] == "open":
        verb = "is buying" if share["side"] == "buy" else "is selling"
        title = f"{share['name']} {verb} {amount} at {number(share['price'], locale)}"
    else:
        icon, verb = ("📈", "bought") if share["side"] == "buy" else ("📉", "sold")
        title = f"{icon} {share['name']} {verb} {amount}"
    kind = "Market" if share["type"] == "market" else f"Limit {share['tif']}"
    fields = [Field("Order", f"{kind} · {share['symbol']}"), Field("Amount", amount)]
    if share.get("price"):
        fields.append(Field("Limit price", f"{number(share['price'], locale)} {quote}"))
    if share.get("average"):
        fields.append(Field("Filled at", f"{number(share['average'], locale)} {quote} (average)"))
    text = (
        "Copy places the same order — same side, pair, amount and price (a market order at the"
        f" market price then) — from your own paper balance, once you confirm. {PAPER}"
    )
    card = Card(title[:100], text=text, fields=fields)
    card.buttons.append(Button("copy.start", "Copy", value=share["id"], style="primary"))
    return card


async def do_share(ctx, order_id: str) -> tuple[str, dict[str, Any]]:
    """Post the invoker's order ``order_id`` as a trade card in this chat: ``("posted" |
    "shared_before", share)``. ``CopyError`` ``not_found``, ``not_shareable``,
    ``not_here`` — nothing written then."""
    if ctx.conversation_type not in ("group", "direct") or not ctx.conversation_id:
        raise CopyError("not_here", "Share a trade in a group or a chat with someone.")
    order = await orders.get_order(ctx, order_id) if ORDER_ID_RE.fullmatch(order_id) else None
    if order is None or order.get("user") != ctx.user_id:
        raise CopyError("not_found", f"You have no order {order_id[:40]!r}.")
    amount = copy_amount(order)
    if amount is None:
        raise CopyError(
            "not_shareable",
            f"Order {order_id} is {status_text(order)} and never traded: nothing to share.",
        )
    share_id = share_id_of(order_id, ctx.conversation_id)
    existing = await ctx.storage_get(SHARES, share_id)
    if existing is not None and existing.get("message_id"):
        return "shared_before", existing
    share = existing or {
        "id": share_id,
        "order_id": order_id,
        "owner": ctx.user_id,
        "name": await member_name(ctx),
        "conversation_id": ctx.conversation_id,
        "symbol": order["symbol"],
        "side": order["side"],
        "type": order["type"],
        "price": order.get("price"),
        "amount": amount,
        "tif": order["timeInForce"],
        "average": order.get("average"),
        "status": order["status"],
        "created_at": clock.now_ms(),
        "message_id": None,
    }
    if existing is None and not await exchange.create_only(ctx, SHARES, share_id, share):
        return "shared_before", await ctx.storage_get(SHARES, share_id) or share
    message_id = await ctx.send_card(share_card(share, ctx.locale))

    def posted(doc: dict) -> None:
        if doc:
            doc["message_id"] = message_id

    await edit_doc(ctx, SHARES, share_id, posted)
    return "posted", {**share, "message_id": message_id}


async def cmd_share(ctx, args: list[str]) -> Reply | None:
    if len(args) != 1:
        return private(SHARE_USAGE)
    try:
        outcome, _ = await do_share(ctx, args[0])
    except CopyError as exc:
        return private(exc.message)
    if outcome == "shared_before":
        return private("You shared this trade here already.")
    return None


# --- copying ---------------------------------------------------------------------------------


async def get_share(ctx, share_id: Any) -> dict[str, Any]:
    """The shared trade ``share_id``, copyable by the invoker; ``CopyError`` ``not_found``,
    ``own_trade``."""
    share = None
    if isinstance(share_id, str) and SHARE_ID_RE.fullmatch(share_id):
        share = await ctx.storage_get(SHARES, share_id)
    if share is None:
        raise CopyError("not_found", "No such shared trade (it may have been mistyped).")
    if share["owner"] == ctx.user_id:
        raise CopyError("own_trade", "That is your own trade.")
    return share


def confirm_card(share: dict[str, Any], locale: str | None, note: str | None = None) -> Card:
    lead = f"{note} " if note else ""
    text = (
        f"{lead}Copy {share['name']}'s trade with your own paper balance? This places the order"
        f" above for you. {PAPER}"
    )
    card = Card(f"Copy: {order_title(share, locale)}"[:100], text=text)
    card.fields.append(Field("Pair", share["symbol"]))
    card.buttons.append(Button("copy.confirm", "Confirm", value=share["id"], style="primary"))
    card.buttons.append(Button("copy.cancel", "Cancel", value=share["id"], style="secondary"))
    return card


def preview_text(ctx, share: dict[str, Any]) -> str:
    return f"Copy {share['name']}'s trade: {order_title(share, ctx.locale)}."


async def do_copy(ctx, share_id: Any, *, from_card: bool) -> dict[str, Any]:
    """Place the invoker's copy of ``share_id`` (idempotent: the same order every time); the
    stored order. ``from_card``: a Confirm press, refused after a Cancel (a typed command is
    a decision of its own). ``CopyError`` / ``ExchangeError`` — nothing placed then."""
    share = await get_share(ctx, share_id)
    key, now = ticket_key(share["id"], ctx.user_id), clock.now_ms()
    order_id = exchange.order_id_for(ctx.user_id, client_order_id(share["id"]))

    def claim(doc: dict) -> str:
        status = doc.get("status")
        if status == "declined" and from_card:
            return "declined"
        if status not in ("placing", "placed"):
            doc.update(share=share["id"], user=ctx.user_id, status="placing", updated_at=now)
        doc["order_id"] = order_id
        return "go"

    outcome, _ = await edit_doc(ctx, COPIES, key, claim)
    if outcome == "declined":
        raise CopyError("declined", "You cancelled this copy.")
    spec = markets.PAIRS[share["symbol"]]
    request = {
        "spec": spec,
        "side": share["side"],
        "type": share["type"],
        "amount": dec(share["amount"]),
        "price": dec(share["price"]) if share.get("price") else None,
        "tif": share["tif"],
        "client_order_id": client_order_id(share["id"]),
    }
    try:
        order = await do_place(ctx, request)
    except ExchangeError:

        def release(doc: dict) -> None:
            if doc.get("status") == "placing":
                doc["status"] = "offered"

        await edit_doc(ctx, COPIES, key, release)
        raise

    def placed(doc: dict) -> None:
        doc.update(status="placed", updated_at=now)

    await edit_doc(ctx, COPIES, key, placed)
    return order


async def on_copy(ctx) -> Reply:
    """**Copy** on a shared trade's card: the confirm card in the presser's chat with Crypto."""
    try:
        share = await get_share(ctx, ctx.value)
    except CopyError as exc:
        return private(exc.message)
    ticket = await ctx.storage_get(COPIES, ticket_key(share["id"], ctx.user_id)) or {}
    if ticket.get("status") == "placed":
        order = await orders.get_order(ctx, ticket.get("order_id"))
        if order is not None:
            return private(order_card(order, ctx.locale, "You copied this trade already."))

    def offer(doc: dict) -> None:
        if doc.get("status") in (None, "declined"):
            doc.update(
                share=share["id"], user=ctx.user_id, status="offered", updated_at=clock.now_ms()
            )

    await edit_doc(ctx, COPIES, ticket_key(share["id"], ctx.user_id), offer)
    typed = f"/crypto copy {share['id']}"
    try:
        await ctx.send_service_message(ctx.user_id, card=confirm_card(share, ctx.locale))
    except (ScopeDenied, NotFound):
        asked = await ctx.request_subscription()
        how = (
            "Allow Crypto's messages to confirm copies in your chat with it"
            if asked == "asked"
            else "Crypto's messages are off for you"
        )
        return private(f"{preview_text(ctx, share)} {how} — or confirm now: {typed}. {PAPER}")
    return private(
        f"{preview_text(ctx, share)} Confirm it in your chat with Crypto (or: {typed}). {PAPER}"
    )


async def on_confirm(ctx) -> Reply:
    """**Confirm** on the confirm card: the copy is placed; the card becomes the order. A
    refused order (no funds, no fresh price) keeps the card, saying why, to confirm later."""
    try:
        order = await do_copy(ctx, ctx.value, from_card=True)
    except CopyError as exc:
        return private(exc.message)
    except ExchangeError as exc:
        share = await ctx.storage_get(SHARES, ctx.value)
        note = f"Not placed: {exc.message}"
        reply = Reply.update(ctx.message_id, confirm_card(share, ctx.locale, note))
        reply.ephemeral = exc.message
        return reply
    return Reply.update(ctx.message_id, order_card(order, ctx.locale, "Copied."))


async def on_cancel(ctx) -> Reply:
    """**Cancel** on the confirm card: nothing is placed (unless Confirm got there first)."""
    try:
        share = await get_share(ctx, ctx.value)
    except CopyError as exc:
        return private(exc.message)

    def decline(doc: dict) -> str:
        if doc.get("status") in ("placing", "placed"):
            return "placed"
        doc.update(share=share["id"], user=ctx.user_id, status="declined")
        return "declined"

    outcome, ticket = await edit_doc(ctx, COPIES, ticket_key(share["id"], ctx.user_id), decline)
    if outcome == "placed" and ticket is not None:
        order = await orders.get_order(ctx, ticket.get("order_id"))
        if order is not None:
            note = f"Already placed: to undo it, /crypto cancel {order['id']}."
            return Reply.update(ctx.message_id, order_card(order, ctx.locale, note))
        return private("It is being placed.")
    card = Card(
        f"Not copied: {order_title(share, ctx.locale)}"[:100], text=f"Nothing placed. {PAPER}"
    )
    return Reply.update(ctx.message_id, card)


async def cmd_copy(ctx, args: list[str]) -> Reply:
    """``/crypto copy <share id>``: the typed confirmation (answered with the order)."""
    if len(args) != 1:
        return private(COPY_USAGE)
    try:
        order = await do_copy(ctx, args[0], from_card=False)
    except (CopyError, ExchangeError) as exc:
        return private(exc.message)
    return private(order_card(order, ctx.locale, "Copied."))


# --- web view --------------------------------------------------------------------------------


def public_share(share: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "symbol", "side", "type", "price", "amount", "tif", "average")
    return {key: share.get(key) for key in keys}


async def view_preview(ctx) -> dict[str, Any]:
    """``copy.preview {share_id}``: ``{share, copied: order | null, paper}``."""
    try:
        share = await get_share(ctx, ctx.params.get("share_id"))
    except CopyError as exc:
        raise ViewError(exc.code, exc.message) from None
    ticket = await ctx.storage_get(COPIES, ticket_key(share["id"], ctx.user_id)) or {}
    order = None
    if ticket.get("status") == "placed":
        order = await orders.get_order(ctx, ticket.get("order_id"))
    return {
        "share": public_share(share),
        "copied": orders.public_order(order) if order else None,
        "paper": PAPER,
    }


async def view_place(ctx) -> dict[str, Any]:
    """``copy.place {share_id}``: the page's confirmation — ``{order, paper}``."""
    try:
        order = await do_copy(ctx, ctx.params.get("share_id"), from_card=False)
    except (CopyError, ExchangeError) as exc:
        raise ViewError(exc.code, exc.message) from None
    return {"order": orders.public_order(order), "paper": PAPER}


SUBCOMMANDS = {"share": cmd_share, "copy": cmd_copy}
ACTIONS = {"copy.start": on_copy, "copy.confirm": on_confirm, "copy.cancel": on_cancel}
VIEWS = {"copy.preview": view_preview, "copy.place": view_place}
