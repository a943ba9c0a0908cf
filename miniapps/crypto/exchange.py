"""The paper exchange's storage: accounts, order books, orders and the event log, over the pure
matching engine (``engine``) and accounting (``ledger``). Paper money only.

Documents (app storage):

- ``accounts/<user>``: the ledger account (``{free, reserved, reservations, applied}``, amounts
  as Decimal strings), created on first use with ``markets.START`` (10 000 USDT), create-only;
  plus ``orders_seen``: the ids of the person's last ``ORDERS_SEEN_MAX`` orders that reserved
  funds (or were refused before they could), so an order is never reserved twice — not by a
  retried submit, not after its reservation was released. ``fees`` and ``house``
  (``ledger.FEES_USER``/``HOUSE_USER``) are accounts too: they receive the fees and take the
  house side of a market order filled at the market price.
- ``books/<BASE-QUOTE>`` (e.g. ``books/BTC-USDT``): ``{symbol, book: Book.to_json(), pending:
  [events not yet settled], seen: {order id: book seq when it was submitted}}`` (``seen``: the
  last ``SEEN_MAX`` order ids, so a retried submit is a no-op).
- ``events/<BASE-QUOTE>:<seq, 12 digits>``: the pair's append-only event log (every fill and
  every finish of an order, in the engine's sequence), each created create-only.
- ``orders/<order id>``: the CCXT-shaped order (``orders.py``); the id is ``o-`` + a hash of
  (person, client order id), so the same client order id is the same order.

**One writer per pair, by conditional updates, not a lease.** Every submit and cancel reads the
book document, runs the engine on it and writes it back at the version it read
(``sdk.documents.update_doc``: ``expected_version``); the loser of a race — on this node or
another gateway node — reads the new book and matches again. A lease would need an expiry to
tune, would stall the pair for that long whenever a node dies holding it, and needs a clock the
nodes agree on; the app storage already gives compare-and-set on one document, which is all a
book needs, so two nodes can never both write a book from the same version.

**Order flow.** validate (engine ``check_order``, the balance) → the flush timer is armed
(``exchange.flush`` in ``FLUSH_DELAY_S``) → ``orders/<id>`` create-only (status ``new``) →
reserve the funds in the account (``ledger.reserve``, one conditional write) → submit to the
book (the engine's events are appended to the book's ``pending`` in the same write) → flush →
the order, as CCXT shapes it.

**Flush and settlement.** Whoever writes a book then flushes its ``pending`` events, in seq
order: (1) each into ``events/`` create-only (a copy already there is somebody else's flush of
the same event); (2) each order they touch is updated (``last_seq`` makes that idempotent);
(3) each person concerned — maker, taker, the owner of a finished order, ``fees``, ``house`` —
is settled with ``ledger.apply`` in one conditional write of their account (``applied[symbol]``
makes it idempotent); (4) only then are those events taken out of ``pending`` (conditional).
Settlement takes its events from ``pending``, which holds exactly what the log holds past the
last settled event: an event leaves ``pending`` only once it is logged and settled for
everyone, so any flusher's copy of ``pending`` starts at the first event not yet settled and a
person's events are always applied in order, none skipped — and nobody has to scan the log.
Several flushers of the same events (concurrent writers, or the timer) do the same writes; the
second finds each one done.

**Crashes.** A crash after the book write leaves events in ``pending``: the next writer of the
pair, or the ``exchange.flush`` timer, flushes them. A crash between the reservation and the
submit is finished by the timer: the order is still ``new`` and its funds are reserved, so it
is submitted then (``seen`` makes that once). A crash before the reservation: the timer closes
the order ``rejected`` (``interrupted``) and marks it in ``orders_seen``, so a late retry does
not reserve for it. An order the engine refuses, one whose fills would not fit in the book
document (``too_many_fills``), and one cancelled before it reached the book get their ``done``
event through the book all the same (a sequence number of the pair, in the log), which releases
the reservation like any other finish.

**A cancel racing a fill** is decided inside the one book write: whichever write lands first
wins — a fill takes the order out of the book, and the cancel then finds nothing to cancel (the
order ends ``closed``); a cancel takes it out first, and the taker matches the next order.
Settlement follows the events, so balances agree with the order's fate either way.

**Prices.** A market order needs the market price (``prices.quote``) for its protection price
(``price_cap``: 5 % through the price) and, when the book has nothing within it, fills against
the house at that price (freqtrade's dry-run rule, ``Trade.house``). A stale price is never used
to fill: the order then only walks the book (its cap 5 % through the best price there), and with
an empty book it is refused (``stale_price``).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import hashlib
import json
import secrets
import weakref
from decimal import Decimal
from typing import Any

import clock
import engine
import ledger
import markets
import orders
from engine import Book, EngineError, Event, Order, PairSpec
from markets import dec, fmt
from orders import FINAL, ORDERS, get_order
from texts import PAPER

from sdk import Conflict
from sdk.documents import find_all, update_doc

ACCOUNTS, BOOKS, EVENTS = "accounts", "books", "events"
SEEN_MAX = 400  # order ids a book remembers (a retried submit within them is a no-op)
BOOK_DOC_MAX = 60_000  # bytes of a book document (the storage takes 64 KiB a document)
ORDERS_SEEN_MAX = 300  # order ids an account remembers having reserved for
FLUSH_DELAY_S = 5  # the exchange.flush timer, after each order
FLUSH_ROUNDS = 4  # batches one flush takes out of pending at most
BOOK_ATTEMPTS = 200  # conditional writes of a book lost to other writers before "busy"
ACCOUNT_ATTEMPTS = 100
Events = list[Event] | None


class ExchangeError(Exception):
    """A refused request: ``code`` (stable) and ``message`` (for the person). Nothing written."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- numbers and names -----------------------------------------------------------------------


def order_id_for(user: str, client_order_id: str) -> str:
    """``o-`` + 20 hex digits of a hash of (user, client order id): one order per pair of them."""
    digest = hashlib.sha256(f"{user}\0{client_order_id}".encode()).hexdigest()
    return "o-" + digest[:20]


def new_client_order_id() -> str:
    return "c-" + secrets.token_hex(10)


def event_key(symbol: str, seq: int) -> str:
    return f"{markets.dashed(symbol)}:{seq:012d}"


async def create_only(ctx, collection: str, key: str, value: dict[str, Any]) -> bool:
    """Write ``value`` under ``key`` unless a document is there; True when this call wrote it."""
    try:
        await ctx.storage_update(collection, key, value, expected_version=0, upsert=True)
    except Conflict:
        return False
    return True


# --- events as stored ------------------------------------------------------------------------


def event_users(event: Event) -> list[str]:
    """Who an event concerns (whose account it changes)."""
    if event.kind == "trade" and event.trade is not None:
        return [event.trade.maker_user, event.trade.taker_user]
    return [event.user]


def event_json(symbol: str, event: Event) -> dict[str, Any]:
    """An engine event as stored (in ``pending`` and in ``events/``): ``Event.to_json`` and the
    pair, the people it concerns (``users``, for finding a person's trades) and when."""
    return {**event.to_json(), "symbol": symbol, "users": event_users(event), "at": clock.now_ms()}


def event_from(data: dict[str, Any]) -> Event:
    return Event.from_json(data)


# --- accounts --------------------------------------------------------------------------------


def new_account(start: dict[str, Decimal] | None = None) -> dict[str, Any]:
    return {**ledger.new_account(start), "orders_seen": []}


def _starting(user: str) -> dict[str, Decimal]:
    return {} if user in (ledger.FEES_USER, ledger.HOUSE_USER) else markets.START


async def get_account(ctx, user: str) -> dict[str, Any]:
    """The account as stored, or the one ``user`` would start with (nothing is written)."""
    account = await ctx.storage_get(ACCOUNTS, user)
    return account if account is not None else new_account(_starting(user))


async def ensure_account(ctx, user: str) -> None:
    """Create ``accounts/<user>`` with its starting balance unless it is there (create-only)."""
    if await ctx.storage_get(ACCOUNTS, user) is None:
        await create_only(ctx, ACCOUNTS, user, new_account(_starting(user)))


def _ledger_step(doc: dict[str, Any], step) -> None:
    """Run ``step(account)`` (a ledger function) on ``doc`` in place, keeping this module's own
    fields (``orders_seen``) whatever the ledger returns."""
    extra = {"orders_seen": list(doc.get("orders_seen") or [])}
    result = step(doc)
    if result is not None and result is not doc:
        doc.clear()
        doc.update(result)
    doc.update(extra)


def free_balance(account: dict[str, Any], asset: str) -> Decimal:
    return dec((account.get("free") or {}).get(asset))


def held_by(account: dict[str, Any], asset: str) -> Decimal:
    """Free + reserved of ``asset``."""
    return free_balance(account, asset) + dec((account.get("reserved") or {}).get(asset))


async def reserve(ctx, user: str, order_id: str, asset: str, amount: Decimal) -> str:
    """Reserve for the order, once ever: ``"reserved"`` (now or earlier, still held),
    ``"blocked"`` (it reserved and was released, or was closed before it could: do not submit),
    ``"insufficient"`` (not enough free: marked blocked too)."""
    await ensure_account(ctx, user)

    def edit(doc: dict[str, Any] | None) -> str:
        if doc is None:
            raise ExchangeError("busy", "Your account is being created: please try again.")
        if order_id in (doc.get("reservations") or {}):
            return "reserved"
        seen = list(doc.get("orders_seen") or [])
        if order_id in seen:
            return "blocked"
        before = copy.deepcopy(doc)
        try:
            _ledger_step(doc, lambda a: ledger.reserve(a, order_id, asset, amount))
            # The ledger's own memory of released orders may also refuse it (no change).
            outcome = "reserved" if order_id in doc["reservations"] else "blocked"
        except ledger.LedgerError:
            doc.clear()
            doc.update(before)
            outcome = "insufficient"
        doc["orders_seen"] = [*seen, order_id][-ORDERS_SEEN_MAX:]
        return outcome

    outcome, _ = await update_doc(ctx, ACCOUNTS, user, edit, attempts=ACCOUNT_ATTEMPTS)
    return outcome


async def block(ctx, user: str, order_id: str) -> None:
    """Make sure the order never reserves from now on (it is being closed before the book)."""
    await ensure_account(ctx, user)

    def edit(doc: dict[str, Any] | None) -> None:
        if doc is None:
            return
        seen = list(doc.get("orders_seen") or [])
        if order_id not in seen:
            doc["orders_seen"] = [*seen, order_id][-ORDERS_SEEN_MAX:]

    await update_doc(ctx, ACCOUNTS, user, edit, attempts=ACCOUNT_ATTEMPTS)


async def settle(ctx, spec: PairSpec, user: str, events: list[Event]) -> None:
    """Apply ``events`` (a run of the pair's log, in seq order) to ``user``'s account, in one
    conditional write; events applied before are skipped by ``applied[symbol]``."""
    await ensure_account(ctx, user)

    def edit(doc: dict[str, Any] | None) -> None:
        if doc is None:
            return
        _ledger_step(doc, lambda a: ledger.apply(a, user, spec, events))

    await update_doc(ctx, ACCOUNTS, user, edit, attempts=ACCOUNT_ATTEMPTS)


# --- books -----------------------------------------------------------------------------------


def empty_book(spec: PairSpec) -> dict[str, Any]:
    return {"symbol": spec.symbol, "book": Book(spec).to_json(), "pending": [], "seen": {}}


async def load_book(ctx, spec: PairSpec) -> Book:
    """The pair's book as stored now (empty when none)."""
    doc = await ctx.storage_get(BOOKS, markets.dashed(spec.symbol))
    return Book.from_json(spec, doc["book"]) if doc else Book(spec)


async def ensure_book(ctx, spec: PairSpec) -> None:
    key = markets.dashed(spec.symbol)
    if await ctx.storage_get(BOOKS, key) is None:
        await create_only(ctx, BOOKS, key, empty_book(spec))


def _remember(doc: dict[str, Any], order_id: str, seq: int) -> None:
    seen = dict(doc.get("seen") or {})
    seen[order_id] = seq
    if len(seen) > SEEN_MAX:
        keep = sorted(seen.items(), key=lambda item: item[1])[-SEEN_MAX:]
        seen = dict(keep)
    doc["seen"] = seen


def _book_write(spec: PairSpec, doc: dict[str, Any], book: Book, events: list[Event]) -> None:
    doc["book"] = book.to_json()
    doc["pending"] = list(doc.get("pending") or []) + [event_json(spec.symbol, e) for e in events]


def _finish_event(book: Book, order_id: str, user: str, status: str, reason: str) -> Event:
    """A ``done`` event for an order that never rested in the book (refused by it, or closed
    before it got there): it takes the pair's next sequence number like any other event."""
    seq = book.next_seq
    book.next_seq = seq + 1
    return Event(seq=seq, kind="done", order_id=order_id, user=user, status=status, reason=reason)


class _FlushFirst(Exception):
    """The book document would outgrow its size with the events still pending: flush them."""


def _size(doc: dict[str, Any]) -> int:
    return len(json.dumps(doc, separators=(",", ":")).encode())


async def submit(ctx, spec: PairSpec, order: Order, reference: Decimal | None) -> Events:
    """Submit the order to its book in one conditional write: the engine's events (None when the
    book has seen this order already: a retry). An order the engine refuses, or whose fills
    would not fit in the book document (``too_many_fills``: more than about a hundred makers at
    once), gets its ``done``/``rejected`` event instead, which releases its reservation."""
    await ensure_book(ctx, spec)

    def edit(doc: dict[str, Any] | None) -> Events:
        if doc is None or order.id in (doc.get("seen") or {}):
            return None
        original, pending = doc["book"], list(doc.get("pending") or [])
        book = Book.from_json(spec, original)
        if book.order(order.id) is not None:
            return None  # resting there since before ``seen``'s memory
        seq = book.next_seq
        try:
            events = engine.submit(book, dataclasses.replace(order), reference_price=reference)
        except EngineError as exc:
            book = Book.from_json(spec, original)
            events = [_finish_event(book, order.id, order.user, "rejected", exc.code)]
        _book_write(spec, doc, book, events)
        if _size(doc) > BOOK_DOC_MAX:
            if pending:
                raise _FlushFirst
            book = Book.from_json(spec, original)
            events = [_finish_event(book, order.id, order.user, "rejected", "too_many_fills")]
            doc["pending"] = pending
            _book_write(spec, doc, book, events)
        _remember(doc, order.id, seq)
        return events

    for _ in range(FLUSH_ROUNDS):
        try:
            events, _ = await update_doc(
                ctx, BOOKS, markets.dashed(spec.symbol), edit, attempts=BOOK_ATTEMPTS
            )
            return events
        except _FlushFirst:
            await flush(ctx, spec)
    raise ExchangeError("busy", f"The {spec.symbol} book is busy: please try again.")


async def close_unbooked(ctx, spec: PairSpec, order_id: str, user: str, status: str, reason: str):
    """Close an order that may not be in the book: cancelled there if it rests, else (never
    submitted) finished with a ``done`` event of ``status``; nothing when it already finished."""
    await ensure_book(ctx, spec)

    def edit(doc: dict[str, Any] | None) -> list[Event]:
        if doc is None:
            return []
        book = Book.from_json(spec, doc["book"])
        if book.order(order_id) is not None:
            events = engine.cancel(book, order_id, user) if status == "cancelled" else []
        elif order_id in (doc.get("seen") or {}):
            events = []  # it was in the book and has finished
        else:
            events = [_finish_event(book, order_id, user, status, reason)]
            _remember(doc, order_id, events[0].seq)
        if events:
            _book_write(spec, doc, book, events)
        return events

    events, _ = await update_doc(
        ctx, BOOKS, markets.dashed(spec.symbol), edit, attempts=BOOK_ATTEMPTS
    )
    return events


# --- flush -----------------------------------------------------------------------------------


async def _log(ctx, batch: list[dict[str, Any]]) -> None:
    for data in batch:  # in seq order: the log never has a hole behind its last event
        # Already there: logged by another flush of the same event.
        await create_only(ctx, EVENTS, event_key(data["symbol"], data["seq"]), data)


# One flush of a pair at a time in this process: concurrent flushers of one node would do the
# same work (each settles the same pending events), and together they passed the sandbox's
# limit of calls in flight (``rate_limited``). Flushers on other nodes still race safely: every
# step is idempotent or conditional. Process state of the app, not of the platform; kept per
# event loop (a lock belongs to its loop; tests run each in a loop of its own).
_FLUSH_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _flush_lock(symbol: str) -> asyncio.Lock:
    locks = _FLUSH_LOCKS.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(symbol, asyncio.Lock())


async def flush(ctx, spec: PairSpec) -> int:
    """Log, apply and settle the pair's pending events, then take them out of ``pending``;
    the number of events this call took out (one call at a time per pair in this process)."""
    async with _flush_lock(spec.symbol):
        return await _flush(ctx, spec)


async def _flush(ctx, spec: PairSpec) -> int:
    key = markets.dashed(spec.symbol)
    done = 0
    for _ in range(FLUSH_ROUNDS):
        doc = await ctx.storage_get(BOOKS, key)
        batch = sorted((doc or {}).get("pending") or [], key=lambda e: e["seq"])
        if not batch:
            break
        await _log(ctx, batch)
        events = [event_from(e) for e in batch]
        touched = {e.order_id for e in events} | {
            e.trade.maker_order for e in events if e.trade is not None and not e.trade.house
        }
        users = {u for e in events for u in event_users(e)}
        if any(e.kind == "trade" for e in events):
            users.add(ledger.FEES_USER)
        if any(e.trade is not None and e.trade.house for e in events):
            users.add(ledger.HOUSE_USER)
        await asyncio.gather(
            *(orders.update_order(ctx, order_id, events) for order_id in sorted(touched)),
            *(settle(ctx, spec, user, events) for user in sorted(users)),
        )
        upto = batch[-1]["seq"]

        def drop(doc: dict[str, Any] | None, upto: int = upto) -> int:
            if doc is None:
                return 0
            pending = doc.get("pending") or []
            doc["pending"] = [e for e in pending if e["seq"] > upto]
            return len(pending) - len(doc["pending"])

        taken, _ = await update_doc(ctx, BOOKS, key, drop, attempts=BOOK_ATTEMPTS)
        done += taken
    return done


# --- placing and cancelling ------------------------------------------------------------------


def _same_request(doc: dict[str, Any], order: Order, symbol: str) -> bool:
    return (
        doc.get("symbol") == symbol
        and doc.get("side") == order.side
        and doc.get("type") == order.type
        and dec(doc.get("amount")) == order.amount
        and (dec(doc["price"]) if doc.get("price") else None) == order.price
        and doc.get("timeInForce") == order.tif
    )


async def place(
    ctx,
    spec: PairSpec,
    *,
    side: str,
    type: str,
    amount: Decimal,
    price: Decimal | None = None,
    tif: str = "GTC",
    client_order_id: str | None = None,
    reference_price: Decimal | None = None,
) -> dict[str, Any]:
    """Place ``ctx.user_id``'s order on the pair; the stored order once the book has it and its
    events are settled. ``reference_price``: the market price when fresh (None when stale or
    unknown: never used to fill). Refused with ``ExchangeError`` before anything is written:
    the engine's codes (``invalid_amount``, ``off_tick``, ``off_lot``, ``below_min_notional``
    …), ``insufficient_funds``, ``stale_price`` (a market order, no fresh price, an empty
    book), ``duplicate_client_order_id`` (the id named another order). The same client order
    id again answers the same order (a retry)."""
    user = ctx.user_id
    client_order_id = client_order_id or new_client_order_id()
    order_id = order_id_for(user, client_order_id)
    if type == "market" and tif != "FOK":
        tif = "IOC"  # a market order never rests
    order = Order(
        id=order_id,
        user=user,
        side=side,
        type=type,
        amount=amount,
        price=price if type == "limit" else None,
        tif=tif,
        client_order_id=client_order_id,
    )
    existing = await get_order(ctx, order_id)
    if existing is not None:
        return await _retry(ctx, spec, existing, order)
    if type == "market":
        book = await load_book(ctx, spec)
        best = book.best_ask() if side == "buy" else book.best_bid()
        basis = reference_price if reference_price is not None else best
        if basis is None:
            raise ExchangeError(
                "stale_price",
                f"No fresh market price for {spec.symbol} and nothing on its book: "
                "a market order cannot be filled now. Try a limit order.",
            )
        order = dataclasses.replace(order, price_cap=engine.default_price_cap(spec, side, basis))
    try:
        engine.check_order(spec, order, reference_price)
    except EngineError as exc:
        raise ExchangeError(exc.code, exc.message) from None
    asset, need = engine.reservation(spec, order, reference_price)
    account = await get_account(ctx, user)
    have = free_balance(account, asset)
    if need > have:
        raise ExchangeError(
            "insufficient_funds",
            f"That needs {fmt(need)} {asset}; you have {fmt(have)} {asset} free. {PAPER}",
        )
    now = clock.now_ms()
    await ctx.schedule(
        "exchange.flush",
        delay=FLUSH_DELAY_S,
        key=f"flush.{order_id}",
        payload={"order_id": order_id, "symbol": spec.symbol},
    )
    if not await create_only(
        ctx, ORDERS, order_id, orders.order_doc(order, spec.symbol, now, reference_price)
    ):
        return await _retry(ctx, spec, await get_order(ctx, order_id) or {}, order)
    return await _continue(ctx, spec, order, asset, need, reference_price)


async def _retry(ctx, spec: PairSpec, existing: dict[str, Any], order: Order) -> dict[str, Any]:
    """The same client order id again: the same order — carried on from where it is when its
    first placing has not finished (both do the same idempotent steps)."""
    if existing.get("user") != order.user or not _same_request(existing, order, spec.symbol):
        raise ExchangeError(
            "duplicate_client_order_id",
            f"Client order id {order.client_order_id!r} was used for another order.",
        )
    if existing["status"] != "new":
        await flush(ctx, spec)
        return await get_order(ctx, existing["id"]) or existing
    stored = orders.engine_order(existing)
    reference = dec(existing["reference_price"]) if existing.get("reference_price") else None
    asset, need = engine.reservation(spec, stored, reference)
    return await _continue(ctx, spec, stored, asset, need, reference)


async def _continue(
    ctx,
    spec: PairSpec,
    order: Order,
    asset: str,
    need: Decimal,
    reference_price: Decimal | None,
) -> dict[str, Any]:
    """Reserve → submit → flush, for an order stored ``new``."""
    outcome = await reserve(ctx, order.user, order.id, asset, need)
    if outcome == "insufficient":
        await orders.mark_rejected(ctx, order.id, "insufficient_funds")
        raise ExchangeError(
            "insufficient_funds",
            f"Not enough {asset} free any more (another order took it). {PAPER}",
        )
    if outcome == "reserved":
        events = await submit(ctx, spec, order, reference_price)
        if events is not None:
            await orders.mark_open(ctx, order.id)
    await flush(ctx, spec)
    stored = await get_order(ctx, order.id)
    if stored is not None and stored["status"] == "new":
        # Not in the book and not reserving ("blocked": the timer or a cancel closed it first).
        await resume(ctx, spec, stored)
        stored = await get_order(ctx, order.id)
    return stored or {}


async def resume(ctx, spec: PairSpec, doc: dict[str, Any]) -> None:
    """Finish an order stored ``new`` (its placing call crashed, or a retry): submit it when
    its funds are reserved (once: ``seen``), else close it ``rejected`` (``interrupted``)."""
    user, order_id = doc["user"], doc["id"]
    account = await ctx.storage_get(ACCOUNTS, user) or {}
    if order_id in (account.get("reservations") or {}):
        reference = dec(doc["reference_price"]) if doc.get("reference_price") else None
        events = await submit(ctx, spec, orders.engine_order(doc), reference)
        if events is not None:
            await orders.mark_open(ctx, order_id)
    else:
        await block(ctx, user, order_id)
        await close_unbooked(ctx, spec, order_id, user, "rejected", "interrupted")
    await flush(ctx, spec)


async def cancel(ctx, order_id: str) -> tuple[dict[str, Any], bool]:
    """Cancel ``ctx.user_id``'s order: ``(order, cancelled_now)`` — False when it had finished
    already (filled first, or closed). Someone else's order, or none: ``not_found``."""
    doc = await get_order(ctx, order_id)
    if doc is None or doc.get("user") != ctx.user_id:
        raise ExchangeError("not_found", f"You have no order {str(order_id)[:40]!r}.")
    if doc["status"] in FINAL:
        return doc, False
    spec = markets.PAIRS[doc["symbol"]]
    if doc["status"] == "new":
        await block(ctx, ctx.user_id, order_id)  # not reserved yet: it never will be
    events = await close_unbooked(ctx, spec, order_id, ctx.user_id, "cancelled", "user")
    await flush(ctx, spec)
    stored = await get_order(ctx, order_id) or doc
    cancelled = any(e.kind == "done" and e.order_id == order_id for e in events)
    return stored, cancelled and stored["status"] == "canceled"


async def on_flush_timer(ctx) -> None:
    """``exchange.flush``: finish what a crash left of one order and flush its pair."""
    payload = ctx.payload or {}
    spec = markets.PAIRS.get(payload.get("symbol"))
    if spec is None:
        return
    doc = await get_order(ctx, payload.get("order_id"))
    if doc is not None and doc["status"] == "new":
        await resume(ctx, spec, doc)
    else:
        await flush(ctx, spec)


async def user_trades(ctx, user: str, *, cap: int = 1000) -> list[dict[str, Any]]:
    """The person's trades from the event log (stored events), by pair then seq."""
    items = await find_all(ctx, EVENTS, {"users": user, "kind": "trade"}, cap=cap)
    return [item["value"] for item in items]
