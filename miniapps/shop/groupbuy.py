"""Group buys (拼团): a product's team price for a team of ``team_size`` members of one group
chat — the group is the team, there are no share links. With the shared group cart
(``groupcart``), whose tables this module hands to app.py along with its own.

- ``groupbuy.start`` (a product card's "Start group buy", in a group chat; value the product
  id): reserves ``team_size`` units of stock (none left → "sold out", nothing written), posts the
  group-buy card — product, team price against the normal price, "0 / N joined", "ends in 23 h"
  (the countdown is worked out at each update; the deadline is ``DEADLINE``) and a Join button —
  and sets the timer ``groupbuy.deadline``. One open group buy per product and chat.
- ``groupbuy.join`` (value the group-buy id): the member is asked to authorize a hold of the team
  price (``authorize_payment``, ``order_ref = "gb-<token>.<n>"``, ``n`` the join's sequence
  number). They are in the team once the hold is authorized (``payment.authorized``); the card
  names who joined and who is confirming.
- The team fills when ``team_size`` holds are authorized: every hold is captured and each member
  gets an order (``orders.create_order(source="groupbuy")``, no order card in the group: it is in
  their ``/shop orders`` and service chat); the card says "Team complete ✓". At the deadline
  without a full team every hold is voided and the stock goes back ("Not enough people").

Data: ``groupbuys`` key ``gb-<token>``: ``{conversation_id, message_id, starter, product_id,
variant_id, store_id, title, image, currency, price, team_price, team_size, stock_key,
created_at, deadline_at, closed_at, state: open|filled|failed, asked, members: {per-app id: {n,
name, state: pending|held|paid|voided|cancelled|lost, reason, payment_id, order_id}}}``;
``groupbuy_open`` key ``<conversation id>:<stock key>``: ``{gb}``, the chat's open group buy of a
product.

**Exactly once per hold.** Everything that decides — a join (adds a member), an authorized hold
(``pending → held``, and for the ``team_size``-th hold also ``open → filled``), the deadline
(``open → failed``) — is one conditional write on the group buy's one document (``update_doc``:
``expected_version``, re-read on ``Conflict``), so they happen in one order. A hold held when the
group buy closed is settled by the closing side (captured when filled, voided when failed); a
hold authorized after it closed is voided by its own ``payment.authorized`` handler. The last
join racing the deadline is just two writes on one document: the first wins, the loser does
nothing but void its own late hold. Settling runs in batches (``SETTLE_BATCH`` holds per
invocation, the rest in the ``groupbuy.settle`` timer, which also retries a batch that failed
half-way: a capture with the same amount and ``create_order`` are idempotent). The stock goes
back once: by whoever wrote ``open → failed``.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta

import groupcart
import money
import orders
from catalog import CatalogError, clip, get_product, parse_item, stock_key, variant_of
from groupcart import member_name, not_in_group, now_ms, price_of, show, update_doc

from sdk import Button, Card, Conflict, Field, HostError, Reply

log = logging.getLogger("app.shop.groupbuy")

GROUPBUYS, LOCKS = "groupbuys", "groupbuy_open"
GB_ID = re.compile(r"^gb-[0-9a-f]{12}$")
REF = re.compile(r"^gb-([0-9a-f]{12})\.([0-9]{1,6})$")
DEADLINE = timedelta(hours=24)
DEADLINE_TIMER, SETTLE_TIMER = "groupbuy.deadline", "groupbuy.settle"
SETTLE_BATCH = 10  # holds captured (and orders made) or voided per invocation
SETTLE_AGAIN = timedelta(seconds=1)
TEAM_SIZE_MIN, TEAM_SIZE_MAX = 2, 50
JOINS_PER_SEAT = 3  # join attempts (cancelled sheets included) a group buy takes per seat
JOINED = ("held", "paid")
NO_GROUPBUY = "No such group buy in this chat."
ENDED = "This group buy has ended."
FULL = "The team is already full."


def joined(gb: dict) -> list[dict]:
    """The members in the team (hold authorized, or captured), in the order they joined."""
    return sorted((m for m in gb["members"].values() if m["state"] in JOINED), key=lambda m: m["n"])


def countdown(left_ms: int) -> str:
    """``"ends in 23 h"``, ``"ends in 42 min"`` … for what is left until the deadline."""
    minutes = left_ms // 60_000
    if left_ms <= 0:
        return "ending now"
    if minutes >= 60:
        return f"ends in {minutes // 60} h"
    if minutes >= 1:
        return f"ends in {minutes} min"
    return "ends in less than a minute"


def groupbuy_card(gb_id: str, gb: dict, locale: str, now: int) -> Card:
    """The group buy as its card shows it: team price against the normal price, "k / N
    joined", the countdown or the outcome, who joined and who is confirming, and Join while
    open."""
    currency, size = gb["currency"], gb["team_size"]
    team_price = money.format_price(gb["team_price"], currency, locale)
    price = money.format_price(gb["price"], currency, locale)
    team = joined(gb)
    fields = [
        Field("Team price", f"{team_price} each (normally {price})"),
        Field("Team", f"{len(team)} / {size} joined"),
    ]
    buttons = []
    if gb["state"] == "open":
        fields.append(Field("Deadline", countdown(gb["deadline_at"] - now)))
        lines = [
            f"Join to hold {team_price}: you pay only if {size} people join in time; "
            "otherwise your hold is released."
        ]
        buttons = [Button("groupbuy.join", "Join", value=gb_id, style="primary")]
    elif gb["state"] == "filled":
        fields.append(Field("Status", "Team complete ✓"))
        lines = ["Team complete ✓ Each member's hold is captured and their order placed."]
    else:
        fields.append(Field("Status", "Ended"))
        lines = ["Not enough people — everyone's hold was released."]
    if team:
        lines.append("Joined: " + ", ".join(f"✓ {m['name']}" for m in team))
    confirming = sorted(
        (m for m in gb["members"].values() if m["state"] == "pending"), key=lambda m: m["n"]
    )
    if confirming and gb["state"] == "open":
        lines.append("Confirming: " + ", ".join(m["name"] for m in confirming))
    text = "\n".join(lines)
    return Card(
        title=clip(f"Group buy · {gb['title']}", 100),
        text=text if len(text) <= 2000 else text[:1999] + "…",
        fields=fields,
        image=gb.get("image"),
        buttons=buttons,
    )


async def refresh(ctx, gb_id: str, gb: dict) -> None:
    await show(ctx, gb.get("message_id"), groupbuy_card(gb_id, gb, ctx.locale, now_ms(ctx)))


async def get_groupbuy(ctx, gb_id: str) -> dict | None:
    """The group buy ``gb_id`` of this chat, or None."""
    if not isinstance(gb_id, str) or not GB_ID.match(gb_id):
        return None
    gb = await ctx.storage_get(GROUPBUYS, gb_id)
    if gb is None or gb.get("conversation_id") != ctx.conversation_id:
        return None
    return gb


# --- starting -------------------------------------------------------------------------------


def team_refusal(product: dict, variant_id: str | None) -> str | None:
    """Why this product (or variant) cannot be bought in a group buy, or None."""
    team_price, team_size = product.get("team_price"), product.get("team_size")
    if not isinstance(team_price, int) or not isinstance(team_size, int):
        return "This product has no team price: it cannot be bought in a group buy."
    if product.get("variants") and variant_id is None:
        return "This product comes in options: a group buy is for one option at a time."
    if not TEAM_SIZE_MIN <= team_size <= TEAM_SIZE_MAX or team_price <= 0:
        return "This product's group buy is not set up right: ask its merchant."
    if team_price >= price_of(product, variant_id):
        return "This product's team price is not below its price: ask its merchant."
    return None


async def on_start(ctx) -> Reply | None:
    """``groupbuy.start`` (value ``"p-xxx"`` or ``"p-xxx:v1"``): a group buy of the product in
    this group chat."""
    checked = await check_start(ctx)
    if isinstance(checked, str):
        return Reply(ephemeral=checked)
    return await do_start(ctx, *checked)


async def check_start(ctx) -> tuple[dict, str | None, int] | str:
    """``(product, variant id, version of the chat's lock for it)``, or why no group buy of it
    can start here."""
    refusal = not_in_group(ctx, "Group buys")
    if refusal:
        return refusal
    try:
        product_id, variant_id = parse_item(ctx.value)
    except CatalogError as exc:
        return exc.message
    product = await get_product(ctx, product_id)
    if product is None:
        return "That product is not for sale (any more)."
    if variant_id is not None and variant_of(product, variant_id) is None:
        return "That product does not exist."
    refusal = team_refusal(product, variant_id)
    if refusal:
        return refusal
    lock_key = f"{ctx.conversation_id}:{stock_key(product_id, variant_id)}"
    lock, lock_version = await ctx.storage_get_versioned(LOCKS, lock_key)
    if lock is not None:
        other = await ctx.storage_get(GROUPBUYS, lock["gb"])
        if other is not None and other["state"] == "open":
            return "A group buy of this product is open in this chat: join it."
    return product, variant_id, lock_version


async def do_start(ctx, product: dict, variant_id: str | None, lock_version: int) -> Reply | None:
    """Reserve a team's stock, take the chat's lock for the product, set the deadline, record
    the group buy and post its card — or give everything back."""
    stock, size = stock_key(product["id"], variant_id), product["team_size"]
    try:
        await ctx.storage_incr("stock", stock, "left", -size)
    except HostError as exc:
        if exc.code == "limit_reached":
            return Reply(ephemeral=f"Sold out: fewer than {size} left for a team.")
        raise
    gb_id = f"gb-{secrets.token_hex(6)}"
    try:
        lock_key = f"{ctx.conversation_id}:{stock}"
        await ctx.storage_update(
            LOCKS, lock_key, {"gb": gb_id}, expected_version=lock_version, upsert=True
        )
        # The timer knows the stock: a start cut short before the group buy is recorded
        # still gives it back (on_timer).
        timer = await ctx.schedule(
            DEADLINE_TIMER, delay=DEADLINE, key=gb_id, payload={"stock_key": stock, "qty": size}
        )
    except HostError as exc:  # Conflict among them
        await ctx.storage_incr("stock", stock, "left", size)
        if isinstance(exc, Conflict):
            return Reply(ephemeral="Someone just started a group buy of this product: join it.")
        raise
    variant = variant_of(product, variant_id)
    title = product["title"] + (f" · {variant['label']}" if variant else "")
    photos = product.get("photos") or []
    gb = {
        "conversation_id": ctx.conversation_id,
        "message_id": None,
        "starter": ctx.user_id,
        "product_id": product["id"],
        "variant_id": variant_id,
        "store_id": product["store_id"],
        "title": clip(title, 120),
        "image": photos[0] if photos else None,
        "currency": product["currency"],
        "price": price_of(product, variant_id),
        "team_price": product["team_price"],
        "team_size": size,
        "stock_key": stock,
        "created_at": now_ms(),
        "deadline_at": timer["due_at"],
        "closed_at": None,
        "state": "open",
        "asked": 0,
        "members": {},
    }
    try:
        await ctx.storage_update(GROUPBUYS, gb_id, gb, expected_version=0, upsert=True)
        card = groupbuy_card(gb_id, gb, ctx.locale, now_ms())
        gb["message_id"] = await ctx.send_card(card)
        await ctx.storage_update(GROUPBUYS, gb_id, {"message_id": gb["message_id"]})
    except HostError:
        if await ctx.cancel_schedule(gb_id):  # not started after all: all back
            await ctx.storage_delete(GROUPBUYS, gb_id)
            await ctx.storage_incr("stock", stock, "left", size)
        raise
    return None


# --- joining --------------------------------------------------------------------------------

PENDING = "pending"  # join_refusal: joined, hold not authorized yet


def join_refusal(gb: dict, user_id: str, now: int) -> str | None:
    """Why ``user_id`` cannot join now (``PENDING``: they asked already), or None."""
    member = gb["members"].get(user_id)
    state = (member or {}).get("state")
    if state in JOINED:
        return "You already joined this team ✓"
    if gb["state"] == "filled":
        return FULL
    if gb["state"] != "open" or now >= gb["deadline_at"]:
        return ENDED
    if state == "pending":
        return PENDING
    if gb["asked"] >= gb["team_size"] * JOINS_PER_SEAT:
        return "This group buy takes no more tries to join."
    return None


async def ask_hold(ctx, gb_id: str, gb: dict, n: int) -> dict:
    description = f"Group buy: {gb['title']} (team of {gb['team_size']})"
    order_ref = f"{gb_id}.{n}"
    return await ctx.authorize_payment(gb["team_price"], gb["currency"], description, order_ref)


def hold_text(gb: dict, locale: str) -> str:
    team_price = money.format_price(gb["team_price"], gb["currency"], locale)
    return (
        f"Confirm the hold of {team_price} in the payment sheet. You pay only if the team of "
        f"{gb['team_size']} fills in time; otherwise the hold is released."
    )


async def on_join(ctx) -> Reply | None:
    """``groupbuy.join`` (value the group-buy id): ask the presser for a hold of the team price."""
    gb_id = ctx.value or ""
    gb = await get_groupbuy(ctx, gb_id)
    if gb is None:
        return Reply(ephemeral=NO_GROUPBUY)
    now = now_ms()
    refusal = join_refusal(gb, ctx.user_id, now)
    if refusal == PENDING:  # asked again: the same order_ref shows the same payment again
        await ask_hold(ctx, gb_id, gb, gb["members"][ctx.user_id]["n"])
        return Reply(ephemeral="You already joined. " + hold_text(gb, ctx.locale))
    if refusal:
        return Reply(ephemeral=refusal)
    name = await member_name(ctx, "A member")

    def add_member(doc: dict) -> str | None:
        refusal = join_refusal(doc, ctx.user_id, now)
        if refusal:
            return "You already joined." if refusal == PENDING else refusal
        doc["asked"] += 1
        doc["members"][ctx.user_id] = {
            "n": doc["asked"],
            "name": name,
            "state": "pending",
            "reason": None,
            "payment_id": None,
            "order_id": None,
        }
        return None

    refusal, gb = await update_doc(ctx, GROUPBUYS, gb_id, add_member)
    if refusal:
        return Reply(ephemeral=refusal)
    n = gb["members"][ctx.user_id]["n"]
    try:
        await ask_hold(ctx, gb_id, gb, n)
    except HostError as exc:
        log.warning("group buy %s: hold not asked (%s)", gb_id, exc.code)

        def take_back(doc: dict) -> None:
            member = doc["members"].get(ctx.user_id)
            if member is not None and member["n"] == n and member["state"] == "pending":
                del doc["members"][ctx.user_id]

        _, gb = await update_doc(ctx, GROUPBUYS, gb_id, take_back)
        return Reply(ephemeral="The hold could not be asked, so you did not join; try again.")
    try:  # their order will reach them in their service chat with the shop
        await ctx.request_subscription()
    except HostError as exc:
        log.info("subscription not asked (%s)", exc.code)
    await refresh(ctx, gb_id, gb)
    return Reply(ephemeral=hold_text(gb, ctx.locale))


# --- holds: payment events ------------------------------------------------------------------


async def on_payment(ctx, name: str, payment: dict) -> None:
    """PAYMENTS["gb"]: the events of a member's hold (``gb-<token>.<n>``)."""
    match = REF.match(str(payment.get("order_ref", "")))
    if match is None:
        log.warning("a group buy payment event with a bad order_ref was ignored")
        return
    gb_id, n = f"gb-{match.group(1)}", int(match.group(2))
    if name == "payment.authorized":
        await authorized(ctx, gb_id, n, payment)
    elif name == "payment.failed":
        await hold_refused(ctx, gb_id, n, payment)
    elif name == "payment.voided":
        await hold_voided(ctx, gb_id, n, payment)
    # payment.captured: the capture was ours (settle), and it recorded it already.


async def authorized(ctx, gb_id: str, n: int, payment: dict) -> None:
    """A member's hold is authorized: they are in the team (``pending → held``) — the
    ``team_size``-th fills it (``open → filled``) — or, when the group buy closed first, the
    hold is voided at once. Once per hold, however often the event comes."""
    user_id, payment_id = payment["user_id"], payment["payment_id"]
    now = now_ms()

    def count_hold(gb: dict | None) -> str:
        member = (gb or {"members": {}})["members"].get(user_id)
        if member is None or member["n"] != n:
            return "stray"
        if member["payment_id"] == payment_id and member["state"] != "pending":
            return "again"
        if member["state"] != "pending":
            return "stray"
        member["payment_id"] = payment_id
        if gb["state"] != "open":
            reason = "full" if gb["state"] == "filled" else "ended"
            member.update(state="voided", reason=reason)
            return reason
        member["state"] = "held"
        if len(joined(gb)) < gb["team_size"]:
            return "held"
        gb.update(state="filled", closed_at=now)
        return "filled"

    outcome, gb = await update_doc(ctx, GROUPBUYS, gb_id, count_hold)
    if outcome == "again":
        return
    if outcome in ("stray", "full", "ended"):
        await void(ctx, payment_id)
        told = {
            "full": "The team was full before your hold came through",
            "ended": "This group buy ended before your hold came through",
        }.get(outcome, "That hold is not part of a group buy")
        await tell(ctx, f"{told}: it was released, nothing was charged.")
        if outcome == "stray":
            return
    elif outcome == "filled":
        try:  # settling goes on by timer (this moves the deadline's): a safety net for below
            await ctx.schedule(SETTLE_TIMER, delay=SETTLE_AGAIN, key=gb_id)
        except HostError as exc:
            log.warning("group buy %s: settle timer not set (%s)", gb_id, exc.code)
        await refresh(ctx, gb_id, gb)
        await settle(ctx, gb_id)
        return
    else:
        await tell(ctx, f"You're in: {len(joined(gb))} / {gb['team_size']} joined.")
    await refresh(ctx, gb_id, gb)


async def hold_refused(ctx, gb_id: str, n: int, payment: dict) -> None:
    """The member declined the hold (or let the sheet expire): not in the team; they may join
    again while it is open."""

    def cancel(gb: dict | None) -> bool:
        member = (gb or {"members": {}})["members"].get(payment["user_id"])
        if member is None or member["n"] != n or member["state"] != "pending":
            return False
        member.update(state="cancelled", reason=payment.get("reason"))
        return True

    changed, gb = await update_doc(ctx, GROUPBUYS, gb_id, cancel)
    if changed:
        await refresh(ctx, gb_id, gb)


async def hold_voided(ctx, gb_id: str, n: int, payment: dict) -> None:
    """A hold was voided. Ours are recorded already; one that ran out (the host's hold expiry)
    while the group buy is open frees its seat. In a closed group buy, ``settle`` finds out."""

    def free_seat(gb: dict | None) -> bool:
        member = (gb or {"members": {}})["members"].get(payment["user_id"])
        if gb is None or gb["state"] != "open" or member is None or member["n"] != n:
            return False
        if member["state"] != "held" or member["payment_id"] != payment["payment_id"]:
            return False
        member.update(state="voided", reason=payment.get("reason") or "voided")
        return True

    changed, gb = await update_doc(ctx, GROUPBUYS, gb_id, free_seat)
    if changed:
        await refresh(ctx, gb_id, gb)


async def void(ctx, payment_id: str) -> None:
    """Void a hold (again is fine: the same answer)."""
    try:
        await ctx.void_payment(payment_id)
    except HostError as exc:
        if exc.code not in ("not_authorized", "not_found"):
            raise
        log.warning("hold %s not voided (%s)", payment_id, exc.code)


async def tell(ctx, text: str) -> None:
    try:
        await ctx.reply_ephemeral(text)
    except HostError as exc:
        log.info("not told (%s)", exc.code)


# --- the deadline and settling --------------------------------------------------------------


async def on_timer(ctx) -> None:
    """``groupbuy.deadline``: without a full team, ``open → failed`` (the stock goes back, by
    whoever wrote that); then, like ``groupbuy.settle``, settle the holds of a closed group buy."""
    gb_id = ctx.timer_key
    gb = await ctx.storage_get(GROUPBUYS, gb_id)
    if gb is None:
        payload = ctx.payload or {}
        if ctx.timer_name == DEADLINE_TIMER and payload.get("stock_key"):
            # A start cut short after reserving: its stock goes back.
            await ctx.storage_incr("stock", payload["stock_key"], "left", int(payload["qty"]))
        return
    if ctx.timer_name == DEADLINE_TIMER:
        closed_at = now_ms(ctx)

        def fail(gb: dict) -> bool:
            if gb["state"] != "open":
                return False
            gb.update(state="failed", closed_at=closed_at)
            return True

        failed, gb = await update_doc(ctx, GROUPBUYS, gb_id, fail)
        if failed:
            await ctx.storage_incr("stock", gb["stock_key"], "left", gb["team_size"])
            await refresh(ctx, gb_id, gb)
    await settle(ctx, gb_id)


async def settle(ctx, gb_id: str) -> None:
    """Settle up to ``SETTLE_BATCH`` holds of a closed group buy — filled: capture and order,
    failed: void — and record them; the ``groupbuy.settle`` timer does the rest. Idempotent."""
    gb = await ctx.storage_get(GROUPBUYS, gb_id)
    if gb is None or gb["state"] == "open":
        return
    held = sorted(
        ((user_id, m) for user_id, m in gb["members"].items() if m["state"] == "held"),
        key=lambda item: item[1]["n"],
    )
    batch = held[:SETTLE_BATCH]
    results = {}
    for user_id, member in batch:
        if gb["state"] == "filled":
            results[user_id] = await capture(ctx, gb_id, gb, user_id, member)
        else:
            await void(ctx, member["payment_id"])
            results[user_id] = {"state": "voided", "reason": "ended"}

    def record(doc: dict) -> int:
        lost = 0
        for user_id, result in results.items():
            member = doc["members"][user_id]
            if member["state"] == "held":
                member.update(result)
                lost += result["state"] == "lost"
        return lost

    lost, gb = await update_doc(ctx, GROUPBUYS, gb_id, record)
    if lost:  # holds gone before their capture: their units go back to the stock
        await ctx.storage_incr("stock", gb["stock_key"], "left", lost)
    if len(held) > len(batch):
        await ctx.schedule(SETTLE_TIMER, delay=SETTLE_AGAIN, key=gb_id)
    if results:
        await refresh(ctx, gb_id, gb)


async def capture(ctx, gb_id: str, gb: dict, user_id: str, member: dict) -> dict:
    """Capture one member's hold and make their order; what to record for them."""
    payment_id = member["payment_id"]
    try:
        await ctx.capture_payment(payment_id, gb["team_price"])
    except HostError as exc:
        if exc.code not in ("not_authorized", "not_found"):
            raise  # e.g. payment_in_progress: the settle timer tries again
        log.warning("group buy %s: hold %s lost (%s)", gb_id, payment_id, exc.code)
        return {"state": "lost", "reason": exc.code}
    line = {
        "product_id": gb["product_id"],
        "variant_id": gb["variant_id"],
        "qty": 1,
        "unit_price": gb["team_price"],
        "title": gb["title"],
    }
    order = await orders.create_order(
        ctx,
        buyer=user_id,
        store_id=gb["store_id"],
        lines=[line],
        total=gb["team_price"],
        currency=gb["currency"],
        payment_id=payment_id,
        conversation_id=None,  # N order cards would flood the group: /shop orders has them
        source="groupbuy",
        source_ref=gb_id,
    )
    return {"state": "paid", "order_id": order["id"]}


SUBCOMMANDS = {**groupcart.SUBCOMMANDS}
ACTIONS = {"groupbuy.start": on_start, "groupbuy.join": on_join, **groupcart.ACTIONS}
TIMERS = {DEADLINE_TIMER: on_timer, SETTLE_TIMER: on_timer, **groupcart.TIMERS}
PAYMENTS = {"gb": on_payment, **groupcart.PAYMENTS}
