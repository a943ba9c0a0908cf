"""Watchlists and price alerts: ``/crypto watch [add|remove <coins>]``, ``/crypto alert <coin>
>|< <price>``, ``/crypto alerts``.

- **Watchlist** (``watchlists/<user>``): the coins you follow; ``/crypto watch`` shows them with
  their prices (to you only); a price card's **Watch** button adds one.
- **Alerts** (``alerts/<id>``): ``btc > 100000`` (also ``>=``, ``<``, ``<=``, ``above``,
  ``below``), at most ``MAX_ALERTS`` armed per person. The same alert set twice is one alert
  (its id is a digest of owner, coin, operator and price). Set in a group, it fires into that
  group (a card); set in a direct chat or the service chat, it comes as a service message (the
  person is asked to allow them when they have not). ``/crypto alerts`` lists yours with a Cancel
  button each — on a card that is kept (a private answer is not, and its buttons could not be
  pressed): in the service chat, posted there; elsewhere sent there as a service message.
  ``/crypto alert cancel btc > 100000`` cancels by text.

**Checking: one timer per coin and conversation** (``alerts.check``, key
``alerts:<coin>:<conversation digest>``), re-armed at the next minute boundary while that
conversation has armed alerts on that coin. Why not one timer per alert: a thousand alerts on BTC
would be a thousand timers (the host keeps at most 10,000 per app) each reading the price; here
one firing reads the price once and checks every alert of its coin. Why not one sweeping timer
for everything: a group alert is posted with ``messages.send_card``, which posts into the
firing's own conversation — so a timer belongs to the conversation its alerts post to; and a
firing stays small (one coin, one chat) within the call deadline. Scheduling the key again at the
same minute boundary moves nothing, so new alerts never push a due check away.

**Fires exactly once**: the firing changes the alert ``armed → fired`` with a conditional write
and only the writer posts; concurrent firings (two nodes) post once. The post comes after the
write; a firing that failed in between is retried by the host and the retry (``ctx.attempt >
1``) delivers what was marked fired but not ``delivered``. **A stale price never fires an
alert** (prices.py: older than ``stale_after_minutes``, or the provider failing); the check
simply waits for a fresh one.

Data: ``watchlists/<user>`` ``{owner, coins}``; ``alerts/<id>`` ``{id, owner, coin, op, price
(str), status: armed|fired|cancelled, deliver: group|service, conversation_id, timer, locale,
time_zone, created_at, fired_at?, fired_price?, delivered?, cancelled_at?}``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import random
import re
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace
from typing import Any

import clock
import prices
from prices import PriceError
from texts import SIMULATED

from sdk import Button, Card, Field, HostError, NotFound, Reply, ScopeDenied
from sdk.documents import find_all

log = logging.getLogger("app.crypto.alerts")

WATCHLISTS, ALERTS = "watchlists", "alerts"
CHECK_TIMER = "alerts.check"
MAX_ALERTS = 10  # armed per person: each gets a Cancel button on one card (at most 10)
FIRE_BATCH = 25  # alerts fired by one firing; more met at once: checked again a second later
ATTEMPTS = 40
OPS = {">": "above", ">=": "at or above", "<": "below", "<=": "at or below"}
WORD_OPS = {"above": ">", "below": "<"}
ALERT_RE = re.compile(r"^([A-Za-z]+)\s*(>=|<=|>|<|above|below)\s*(\S+)$", re.IGNORECASE)
PRICE_RE = re.compile(r"^\$?(\d{1,12}(?:\.\d{1,12})?)$")
ALERT_ID_RE = re.compile(r"^al-[0-9a-f]{20}$")
WATCH_USAGE = "Usage: /crypto watch · /crypto watch add <coins> · /crypto watch remove <coins>"
ALERT_USAGE = "Usage: /crypto alert <coin> > <price> (or <), e.g. /crypto alert btc > 100000"


class AlertError(Exception):
    """A refusal with a stable ``code`` and a ``message`` to show as is."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def private(content: str | Card) -> Reply:
    return Reply(ephemeral=content)


async def edit_doc(ctx, collection: str, key: str, edit) -> tuple[Any, dict | None]:
    """Read ``key``, let ``edit(doc)`` change it in place (``{}`` when there is none) and return
    an outcome; write the change only if nobody wrote in between (read again and redo
    otherwise). Nothing is written when ``doc`` is left as it was. ``(outcome, doc)``."""
    for attempt in range(ATTEMPTS):
        current, version = await ctx.storage_get_versioned(collection, key)
        current = current if isinstance(current, dict) else None
        doc = copy.deepcopy(current) if current else {}
        outcome = edit(doc)
        if doc == (current or {}):
            return outcome, current
        changed = {k: v for k, v in doc.items() if current is None or current.get(k) != v}
        removed = [k for k in current or {} if k not in doc]
        try:
            await ctx.storage_update(
                collection,
                key,
                set=changed or None,
                unset=removed or None,
                expected_version=version,
                upsert=True,
            )
        except HostError as exc:
            if exc.code != "conflict":
                raise
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
            continue
        return outcome, doc
    raise HostError("Busy: please try again.", code="busy")


def reader(locale: str | None, time_zone: str | None) -> SimpleNamespace:
    """What prices' formatting reads of a ctx: a stored person's locale and zone."""
    return SimpleNamespace(locale=locale or "en", time_zone=time_zone or "UTC")


def next_minute(now: int) -> int:
    """The next minute boundary at least a second away (a time the host still finds ahead
    when the call reaches it)."""
    return ((now + 1000) // prices.MINUTE_MS + 1) * prices.MINUTE_MS


# --- watchlist -----------------------------------------------------------------------------


async def watchlist(ctx, owner: str) -> list[str]:
    doc = await ctx.storage_get(WATCHLISTS, owner)
    coins = doc.get("coins") if isinstance(doc, dict) else None
    return [c for c in coins or [] if c in prices.COINS]


async def do_watch_add(ctx, coins: list[str]) -> tuple[list[str], list[str]]:
    """Add ``coins`` (valid symbols) to the invoker's watchlist: ``(added, already there)``."""
    owner = ctx.user_id

    def add(doc: dict) -> tuple[list[str], list[str]]:
        present = list(doc.get("coins") or [])
        added = [c for c in coins if c not in present]
        if added:
            doc.update(owner=owner, coins=present + added)
        return added, [c for c in coins if c in present]

    outcome, _ = await edit_doc(ctx, WATCHLISTS, owner, add)
    return outcome


async def do_watch_remove(ctx, coins: list[str]) -> tuple[list[str], list[str]]:
    """Remove ``coins`` from the invoker's watchlist: ``(removed, were not there)``."""
    owner = ctx.user_id

    def remove(doc: dict) -> tuple[list[str], list[str]]:
        present = list(doc.get("coins") or [])
        removed = [c for c in coins if c in present]
        if removed:
            doc["coins"] = [c for c in present if c not in removed]
        return removed, [c for c in coins if c not in present]

    outcome, _ = await edit_doc(ctx, WATCHLISTS, owner, remove)
    return outcome


def _names(coins: list[str]) -> str:
    return ", ".join(c.upper() for c in coins)


async def watchlist_card(ctx, note: str | None = None) -> Card:
    coins = await watchlist(ctx, ctx.user_id)
    lead = f"{note} " if note else ""
    if not coins:
        return Card("Your watchlist", text=f"{lead}It is empty: /crypto watch add btc eth")
    try:
        found = await prices.quotes(ctx, coins)
    except PriceError:
        found = {}
    fields = [
        Field(
            prices.coin_label(c),
            prices.quote_line(found[c], ctx) if c in found else "price unavailable",
        )
        for c in coins
    ]
    # Shown to you only, and such a card is not kept: no button to press on it.
    text = f"{lead}{prices.notes(ctx, list(found.values()))} Remove: /crypto watch remove <coin>."
    return Card("Your watchlist", text=text, fields=fields)


async def cmd_watch(ctx, args: list[str]) -> Reply:
    """``/crypto watch``, ``/crypto watch add <coins>``, ``/crypto watch remove <coins>``."""
    if not args:
        return private(await watchlist_card(ctx))
    verb = args[0].lower()
    if verb not in ("add", "remove") or len(args) < 2:
        return private(WATCH_USAGE)
    try:
        coins = prices.parse_coins(args[1:])
    except PriceError as exc:
        return private(exc.message)
    if verb == "add":
        added, present = await do_watch_add(ctx, coins)
        said = [f"Added {_names(added)} to your watchlist."] if added else []
        if present:
            said.append(f"{_names(present)} {'is' if len(present) == 1 else 'are'} already on it.")
        return private(" ".join(said))
    removed, absent = await do_watch_remove(ctx, coins)
    said = [f"Removed {_names(removed)} from your watchlist."] if removed else []
    if absent:
        said.append(f"{_names(absent)} {'was' if len(absent) == 1 else 'were'} not on it.")
    return private(" ".join(said))


async def on_watch_add(ctx) -> Reply:
    """**Watch <coin>** on a price card: add it to the presser's watchlist."""
    coin = prices.coin_of(ctx.value or "")
    if coin is None:
        return private("Unknown coin.")
    added, _ = await do_watch_add(ctx, [coin])
    if added:
        return private(f"Added {coin.upper()} to your watchlist (/crypto watch).")
    return private(f"{coin.upper()} is already on your watchlist.")


# --- alerts --------------------------------------------------------------------------------


def check_alert(args: list[str]) -> tuple[str, str, Decimal]:
    """``(coin, op, price)`` of ``/crypto alert`` args; ``AlertError`` / ``PriceError``."""
    match = ALERT_RE.match(" ".join(args).strip())
    if match is None:
        raise AlertError("invalid_alert", ALERT_USAGE)
    word, op, amount = match.groups()
    coin = prices.coin_of(word)
    if coin is None:
        raise AlertError(
            "unknown_coin", f"Unknown coin {word[:20]!r}. Known coins: {prices.known_coins()}."
        )
    op = WORD_OPS.get(op.lower(), op)
    number = PRICE_RE.match(amount)
    try:
        price = Decimal(number.group(1)) if number else None
    except InvalidOperation:
        price = None
    if price is None or not price.is_finite() or price <= 0:
        raise AlertError(
            "invalid_price",
            f"{amount[:30]!r} is not a price: give a positive number in USD, like 100000 or 0.25.",
        )
    return coin, op, price


def alert_id(owner: str, coin: str, op: str, price: Decimal) -> str:
    text = f"{owner}\0{coin}\0{op}\0{format(price.normalize(), 'f')}"
    return "al-" + hashlib.sha256(text.encode()).hexdigest()[:20]


def timer_key(coin: str, conversation_id: str | None) -> str:
    digest = hashlib.sha256((conversation_id or "-").encode()).hexdigest()[:16]
    return f"alerts:{coin}:{digest}"


def condition(alert: dict, locale: str | None) -> str:
    """``BTC > $100,000``."""
    target = prices.format_usd(Decimal(alert["price"]), locale)
    return f"{alert['coin'].upper()} {alert['op']} {target}"


def met(alert: dict, price: Decimal) -> bool:
    target = Decimal(alert["price"])
    return {
        ">": price > target,
        ">=": price >= target,
        "<": price < target,
        "<=": price <= target,
    }[alert["op"]]


async def armed_of(ctx, owner: str) -> list[dict]:
    items = await find_all(ctx, ALERTS, {"owner": owner, "status": "armed"}, cap=100)
    return sorted((i["value"] for i in items), key=lambda a: (a["created_at"], a["id"]))


async def do_add_alert(ctx, coin: str, op: str, price: Decimal) -> tuple[str, dict]:
    """Arm the invoker's alert: ``("created" | "exists", alert)``. ``AlertError``
    ``too_many_alerts``, ``notifications_declined`` — nothing written then."""
    owner = ctx.user_id
    key = alert_id(owner, coin, op, price)
    mine = await armed_of(ctx, owner)
    if len(mine) >= MAX_ALERTS and all(a["id"] != key for a in mine):
        raise AlertError(
            "too_many_alerts",
            f"You have {MAX_ALERTS} alerts already: cancel one first (/crypto alerts).",
        )
    deliver = "group" if ctx.conversation_type == "group" else "service"
    subscription = None
    if deliver == "service":
        subscription = await ctx.request_subscription()
        if subscription == "declined":
            raise AlertError(
                "notifications_declined",
                "Alerts set here come as service messages, which you turned off: allow Crypto's"
                " messages, or set the alert in a group.",
            )
    now = clock.now_ms()
    fresh = {
        "id": key,
        "owner": owner,
        "coin": coin,
        "op": op,
        "price": format(price.normalize(), "f"),
        "status": "armed",
        "deliver": deliver,
        "conversation_id": ctx.conversation_id,
        "timer": timer_key(coin, ctx.conversation_id),
        "locale": ctx.locale,
        "time_zone": ctx.time_zone,
        "created_at": now,
    }

    def arm(doc: dict) -> str:
        if doc.get("status") == "armed":
            return "exists"
        doc.clear()
        doc.update(fresh)
        return "created"

    # The check first: a timer that finds nothing armed ends quietly, an alert without one
    # would never be checked.
    try:
        await ctx.schedule(
            CHECK_TIMER, at=next_minute(now), key=fresh["timer"], payload={"coin": coin}
        )
    except HostError as exc:
        if exc.code != "too_many_timers":
            raise
        raise AlertError("busy", "Too many alerts are being checked; try again later.") from None
    outcome, doc = await edit_doc(ctx, ALERTS, key, arm)
    assert doc is not None
    return outcome, {**doc, "subscription": subscription}


async def cmd_alert(ctx, args: list[str]) -> Reply:
    """``/crypto alert <coin> >|< <price>``; ``/crypto alert cancel <coin> >|< <price>``."""
    if args and args[0].lower() == "cancel":
        return await cmd_cancel(ctx, args[1:])
    try:
        coin, op, price = check_alert(args)
        outcome, alert = await do_add_alert(ctx, coin, op, price)
    except (AlertError, PriceError) as exc:
        return private(exc.message)
    what = condition(alert, ctx.locale)
    if outcome == "exists":
        return private(f"You already have this alert: {what}.")
    where = (
        "I'll post in this group" if alert["deliver"] == "group" else "You'll get a service message"
    )
    said = [f"🔔 Alert set: {what}. {where} when it is met (checked every minute)."]
    if alert.get("subscription") == "asked":
        said.append("Allow Crypto's messages to receive it.")
    try:
        now = await prices.quote(ctx, coin)
        said.append(f"{coin.upper()} is {prices.format_usd(now.price, ctx.locale)} now.")
        if met(alert, now.price) and not now.stale:
            said.append("That is met already: it fires at the next check.")
    except PriceError:
        pass
    return private(" ".join(said))


def alerts_card(ctx, alerts: list[dict], note: str | None = None, *, buttons: bool = True) -> Card:
    """The list of ``alerts``, with a Cancel button each (``buttons``: a card that is kept)."""
    lead = f"{note} " if note else ""
    if not alerts:
        return Card("Your price alerts", text=f"{lead}None: /crypto alert btc > 100000")
    card = Card("Your price alerts")
    for alert in alerts[:MAX_ALERTS]:
        what = condition(alert, ctx.locale)
        where = "posts in the group" if alert["deliver"] == "group" else "service message"
        since = prices.format_moment(alert["created_at"], ctx)
        card.fields.append(Field(what, f"armed · {where} · set {since}"))
        if buttons:
            card.buttons.append(
                Button("alert.cancel", f"Cancel {what}"[:80], value=alert["id"], style="danger")
            )
    hint = "" if buttons else " Cancel one: /crypto alert cancel btc > 100000."
    card.text = f"{lead}Checked every minute; a stale price never fires an alert.{hint}"
    return card


async def cmd_alerts(ctx, args: list[str]) -> Reply:
    """``/crypto alerts``: the invoker's armed alerts with a Cancel button each — on a card
    that is kept, so its buttons can be pressed: posted in the service chat when asked there,
    else sent there as a service message; shown here without buttons when that cannot be."""
    if args:
        return private("Usage: /crypto alerts")
    mine = await armed_of(ctx, ctx.user_id)
    if not mine:
        return private(alerts_card(ctx, mine))
    if ctx.conversation_type == "service":
        return Reply(card=alerts_card(ctx, mine))
    try:
        await ctx.send_service_message(ctx.user_id, card=alerts_card(ctx, mine))
    except (ScopeDenied, NotFound):
        return private(alerts_card(ctx, mine, buttons=False))
    return private(
        f"Your {len(mine)} alert{'s' if len(mine) > 1 else ''} (with Cancel buttons) are in your"
        " chat with Crypto."
    )


async def do_cancel(ctx, key: str) -> tuple[str, dict | None]:
    """Cancel the invoker's alert ``key``: ``("cancelled" | "fired" | "cancelled_before",
    alert)``; ``AlertError`` ``unknown_alert`` for someone else's or none."""
    if not ALERT_ID_RE.match(key or ""):
        raise AlertError("unknown_alert", "No such alert of yours.")
    owner, now = ctx.user_id, clock.now_ms()

    def cancel(doc: dict) -> str:
        if doc.get("owner") != owner:
            return "unknown"
        if doc.get("status") != "armed":
            return "fired" if doc.get("status") == "fired" else "cancelled_before"
        doc.update(status="cancelled", cancelled_at=now)
        return "cancelled"

    outcome, alert = await edit_doc(ctx, ALERTS, key, cancel)
    if outcome == "unknown":
        raise AlertError("unknown_alert", "No such alert of yours.")
    return outcome, alert


def cancel_note(ctx, outcome: str, alert: dict) -> str:
    what = condition(alert, ctx.locale)
    return {
        "cancelled": f"Cancelled {what}.",
        "fired": f"{what} has fired already.",
        "cancelled_before": f"{what} was cancelled already.",
    }[outcome]


async def on_cancel(ctx) -> Reply:
    """**Cancel** on the alerts card (value: the alert id): the card is updated in place."""
    try:
        outcome, alert = await do_cancel(ctx, ctx.value or "")
    except AlertError as exc:
        return private(exc.message)
    assert alert is not None
    note = cancel_note(ctx, outcome, alert)
    reply = Reply.update(ctx.message_id, alerts_card(ctx, await armed_of(ctx, ctx.user_id), note))
    reply.ephemeral = note
    return reply


async def cmd_cancel(ctx, args: list[str]) -> Reply:
    """``/crypto alert cancel <coin> >|< <price>``: the alert named as it was set."""
    try:
        coin, op, price = check_alert(args)
        outcome, alert = await do_cancel(ctx, alert_id(ctx.user_id, coin, op, price))
    except (AlertError, PriceError) as exc:
        return private(exc.message)
    assert alert is not None
    return private(cancel_note(ctx, outcome, alert))


# --- checking ------------------------------------------------------------------------------


def fired_quote(alert: dict) -> prices.Quote:
    """The quote an alert fired on, as stored with it."""
    change = alert.get("fired_change")
    return prices.Quote(
        coin=alert["coin"],
        price=Decimal(alert["fired_price"]),
        change_24h=None if change is None else Decimal(change),
        at_ms=int(alert["fired_quote_at"]),
        stale=False,
        source=alert.get("fired_source", "simulated"),
    )


def fired_card(alert: dict) -> Card:
    person = reader(alert.get("locale"), alert.get("time_zone"))
    coin, q = alert["coin"], fired_quote(alert)
    target = prices.format_usd(Decimal(alert["price"]), person.locale)
    lines = [f"Your alert {condition(alert, person.locale)} is met."]
    if q.source == "simulated":
        lines.append(SIMULATED)
    return Card(
        f"🔔 {coin.upper()} {OPS[alert['op']]} {target}"[:100],
        text=" ".join(lines),
        fields=[Field(prices.coin_label(coin), prices.quote_line(q, person))],
        buttons=[Button("watch.add", f"Watch {coin.upper()}", value=coin)],
    )


async def deliver(ctx, alert: dict) -> None:
    """Post a fired alert: into the group it was set in (this firing's conversation), or as a
    service message to its owner. Then note it delivered."""
    card = fired_card(alert)
    if alert["deliver"] == "group" and alert.get("conversation_id") == ctx.conversation_id:
        await ctx.send_card(card)
        outcome = "posted"
    else:
        try:
            await ctx.send_service_message(alert["owner"], card=card)
            outcome = "sent"
        except (ScopeDenied, NotFound) as exc:  # not opted in: fired all the same, once
            log.info("alert %s not delivered: %s", alert["id"], exc.code)
            outcome = exc.code
    await edit_doc(
        ctx, ALERTS, alert["id"], lambda doc: doc.update(delivered=True, delivery=outcome)
    )


async def fire(ctx, alert: dict, q: prices.Quote) -> bool:
    """``armed → fired`` by a conditional write; only its writer delivers. Whether it fired."""
    now = clock.now_ms()

    def mark(doc: dict) -> bool:
        if doc.get("status") != "armed":
            return False
        doc.update(
            status="fired",
            fired_at=now,
            fired_price=str(q.price),
            fired_change=None if q.change_24h is None else str(q.change_24h),
            fired_quote_at=q.at_ms,
            fired_source=q.source,
            delivered=False,
        )
        return True

    won, doc = await edit_doc(ctx, ALERTS, alert["id"], mark)
    if won and doc is not None:
        await deliver(ctx, doc)
    return bool(won)


async def on_check(ctx) -> None:
    """``alerts.check`` for one coin and conversation: fire the armed alerts the current (fresh)
    price meets, then check again next minute while some remain armed."""
    coin = prices.coin_of(str((ctx.payload or {}).get("coin", "")))
    key = ctx.timer_key
    if coin is None or not key:
        return
    armed = [i["value"] for i in await find_all(ctx, ALERTS, {"timer": key, "status": "armed"})]
    q = None
    if armed:
        try:
            q = await prices.quote(ctx, coin)
        except PriceError as exc:
            log.info("alerts on %s not checked: %s", coin, exc.code)
    fired = 0
    if q is not None and not q.stale:  # a stale price never fires an alert
        for alert in sorted(armed, key=lambda a: (a["created_at"], a["id"])):
            if fired >= FIRE_BATCH:
                break
            if met(alert, q.price) and await fire(ctx, alert, q):
                fired += 1
    if ctx.attempt > 1:
        # An earlier firing marked these fired and failed before posting them.
        undelivered = {"timer": key, "status": "fired", "delivered": False}
        for item in await find_all(ctx, ALERTS, undelivered):
            await deliver(ctx, item["value"])
    remaining = await find_all(ctx, ALERTS, {"timer": key, "status": "armed"}, cap=1)
    if remaining:
        now = clock.now_ms()
        at = now + 1000 if fired >= FIRE_BATCH else next_minute(now)
        await ctx.schedule(CHECK_TIMER, at=at, key=key, payload={"coin": coin})


# --- web view ------------------------------------------------------------------------------


async def view_mine(ctx) -> dict:
    """``alerts.mine``: ``{watchlist: [coin], alerts: [{id, coin, op, price, deliver,
    created_at}]}`` of the person who opened the view."""
    keep = ("id", "coin", "op", "price", "deliver", "created_at")
    return {
        "watchlist": await watchlist(ctx, ctx.user_id),
        "alerts": [{k: a[k] for k in keep} for a in await armed_of(ctx, ctx.user_id)],
    }


SUBCOMMANDS = {"watch": cmd_watch, "alert": cmd_alert, "alerts": cmd_alerts}
ACTIONS = {"watch.add": on_watch_add, "alert.cancel": on_cancel}
TIMERS = {CHECK_TIMER: on_check}
VIEWS = {"alerts.mine": view_mine}
