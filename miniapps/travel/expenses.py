"""Expenses: who paid what on a trip, the balances, "simplify debts" and settling up through the
wallet, Splitwise-style.

**Adding** (``/trip expense add 42.50 EUR "Dinner at Ramiro" [paid by Ana] [split equal | exact
Ana=20,Ben=22.50 | shares Ana=2,Ben=1] [among Ana,Ben]``, view ``expense.add``): people are named
by their traveller display name (any case, a unique prefix will do, ``me`` is you); the currency
defaults to the trip's, the payer to you, the split to equal among every traveller. Everything
is checked first (``build``) and nothing is written for bad input. Then: an id ``e<n>`` from the
trip's counter (``storage.incr``), the expense written create-only, ``trip.spent`` raised through
``store.update`` (conditional: ten people adding at once all count), the trip card redrawn and
one short text in the group ("Ana paid €42.50 for Dinner at Ramiro, split 3 ways"). A view
``request_id`` makes a retried add answer the first one (``expense_requests/…`` points at it).

**Balances** come from every expense of the trip (``splits.balances``; a paid settlement is an
expense too: paid by the payer, owed by the payee) and are simplified per currency
(``splits.simplify``: at most N - 1 transfers). ``/trip balances`` and the trip card's Balances
button show the reader an ephemeral card: each currency's balances, "You owe Ben €23.40" with a
``settle.pay`` button per transfer they owe, and amounts in the reader's currency ("≈ $25.27",
``fx``) when it differs and a rate is known.

**Settling** (``settle.pay``, ``/trip settle Ben 20.00 [EUR]``, view ``settle.request``): the
amount must be > 0 and at most what the reader owes that person in that currency now, less the
requests they already have open to them (``exceeds_owed``; ``nothing_owed``). The open requests
of a payer live in one document (``settle_open/<trip_id>-<uid>``) changed conditionally, so two
requests at once cannot both take the same debt. Then the settlement (``requested``) and the
wallet's transfer request (``transfer_ref`` ``settle-<settlement_id>``). The signed
``transfer_request.paid`` event records the settlement expense (key ``st-<settlement_id>``,
create-only) and marks the settlement paid (conditionally: the text "Ana settled €20.00 with Ben"
goes out once however often the event arrives); ``.declined`` / ``.expired`` only mark it.

**Deleting** (``/trip expense delete e4``): by whoever added or paid it; a booking's or a
settlement's expense stays (money moved). The expense is kept, marked ``deleted_at`` (by one
conditional write: a second delete finds it gone), and ``trip.spent`` lowered.

Storage: ``expenses/<key>`` (``<trip_id>-e<n>`` for an added expense, ``bk-<booking_id>`` for a
booking, ``st-<settlement_id>`` for a settlement; the doc's ``id`` is ``e<n>`` / the key) —
``{id, trip_id, title, amount, currency, paid, parts, mode, kind, booking_id, settlement_id,
created_by, created_at, names, shares?, deleted_at?, deleted_by?}`` (``names``: uid → name when
added, for people who leave the trip later); ``settlements/<settlement_id>`` (``st`` + 10 hex);
``expense_counters/<trip_id>`` ``{n}``; ``expense_requests/<digest>`` ``{key}``;
``settle_open/<trip_id>-<uid>`` ``{requests: {settlement_id: {to, amount, currency}}}``.
``format_money`` lives in ``fx`` and is this module's ``format_money`` too.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import clock
import fx
import splits
import store
from babel.dates import format_skeleton
from fx import format_money
from splits import SplitError
from store import TravelError, answers, viewing

from sdk import Button, Card, Conflict, HostError, Reply
from sdk.documents import find_all

__all__ = ["format_money", "record_booking"]

log = logging.getLogger("travel.expenses")

EXPENSES, SETTLEMENTS = "expenses", "settlements"
COUNTERS, REQUESTS, OPEN = "expense_counters", "expense_requests", "settle_open"
MAX_EXPENSES = 1000  # added by hand, per trip (bookings and settlements come on top)
LIST_MAX = 20  # lines of /trip expense list
VIEW_LIST_BYTES = 150_000  # of expenses in a view's answer (at most 256 KiB in all)
TITLE_MAX = 100
ATTEMPTS = 40
KEYWORDS = ("paid", "split", "among")
ME = ("me", "i", "myself")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_CODE = re.compile(r"^[A-Za-z]{3}$")
_NUMBER = re.compile(r"^\+?\d[\d.,]*$")
USAGE_ADD = (
    'Usage: /trip expense add 42.50 EUR "Dinner" [paid by Ana] '
    "[split equal | exact Ana=20,Ben=22.50 | shares Ana=2,Ben=1] [among Ana,Ben]"
)
USAGE = (
    f"{USAGE_ADD} · /trip expense list · /trip expense delete e4 · /trip balances · "
    "/trip settle Ben 20.00 [EUR]"
)


# --- reading ----------------------------------------------------------------------------------


async def trip_expenses(ctx, trip_id: str) -> list[dict[str, Any]]:
    """The trip's expenses (not deleted), oldest first."""
    items = await find_all(ctx, EXPENSES, {"trip_id": trip_id}, cap=MAX_EXPENSES * 3)
    found = [item["value"] for item in items if not item["value"].get("deleted_at")]
    return sorted(found, key=lambda e: (e.get("created_at", 0), e["id"]))


def ledger(expenses: Iterable[dict[str, Any]]) -> tuple[dict, dict]:
    """``(balances, transfers)``: per currency, uid → paid minus owed, and the simplified
    transfers ``[{from, to, amount}]`` that settle them."""
    balances = splits.balances(
        {k: e[k] for k in ("amount", "currency", "paid", "parts")} for e in expenses
    )
    transfers = {
        currency: [{"from": a, "to": b, "amount": n} for a, b, n in splits.simplify(balance)]
        for currency, balance in balances.items()
    }
    return balances, transfers


def people(trip: dict[str, Any], expenses: Iterable[dict[str, Any]] = ()) -> dict[str, str]:
    """uid → name: the travellers', and for people who left, the name an expense kept."""
    found: dict[str, str] = {}
    for expense in expenses:
        found.update(expense.get("names") or {})
    for uid, traveller in (trip.get("travellers") or {}).items():
        found[uid] = traveller.get("name") or "Traveller"
    return found


def name_of(names: dict[str, str], uid: str) -> str:
    return names.get(uid) or "A former traveller"


def and_list(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def resolve(names: dict[str, str], text: str, me: str | None) -> str:
    """The uid ``text`` names: ``me``, a name (any case), or a unique prefix of one; else
    ``TravelError("unknown_person")``."""
    wanted = " ".join(str(text).split()).casefold()
    if wanted in ME and me:
        return me
    exact = [uid for uid, name in names.items() if name.casefold() == wanted]
    matches = exact or [u for u, n in names.items() if wanted and n.casefold().startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        choices = and_list(sorted(names[uid] for uid in matches))
        raise TravelError("unknown_person", f'"{text}" could be {choices}: write more of the name.')
    listed = ", ".join(sorted(names.values())) or "nobody yet"
    raise TravelError("unknown_person", f'No traveller called "{text}" (travellers: {listed}).')


# --- checking an expense (no writes) ------------------------------------------------------------


def build(
    trip: dict[str, Any],
    me: str | None,
    *,
    title: object,
    amount: int,
    currency: str,
    paid: dict[str, int] | None = None,
    mode: object = "equal",
    among: list[str] | None = None,
    exact: dict[str, int] | None = None,
    shares: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The checked fields of a new expense (``TravelError`` for anything wrong)."""
    store.require_traveller(trip, me)
    travellers = trip.get("travellers") or {}
    title = " ".join(title.split()) if isinstance(title, str) else ""
    if not title or len(title) > TITLE_MAX:
        raise TravelError("invalid_title", f"Give the expense a title of 1-{TITLE_MAX} characters.")
    paid = {me: amount} if paid is None else {uid: v for uid, v in paid.items() if v}
    if sum(paid.values()) != amount:
        raise TravelError(
            "exact_mismatch",
            f"What the payers paid adds up to {fx.plain(sum(paid.values()), currency)}, "
            f"not {fx.plain(amount, currency)} {currency}.",
        )
    if any(uid not in travellers for uid in paid):
        raise TravelError("not_a_traveller", "Only the trip's travellers can pay for its expenses.")
    if mode not in splits.MODES:
        raise TravelError("unknown_mode", "Split equal, exact (Ana=20,Ben=22.50) or by shares.")
    if among is None:
        among = list(exact or shares or travellers) if mode != "equal" else list(travellers)
    try:
        parts = splits.split(
            amount, among, str(mode), exact=exact, shares=shares, travellers=set(travellers)
        )
    except SplitError as exc:
        raise _split_error(exc, trip, amount, currency, exact) from None
    names = {uid: travellers[uid].get("name") or "Traveller" for uid in {*paid, *parts}}
    doc = {"title": title, "amount": amount, "currency": currency, "paid": paid}
    doc |= {"parts": parts, "mode": mode, "names": names}
    if mode == "shares":
        doc["shares"] = dict(shares or {})
    return doc


def _split_error(
    exc: SplitError, trip: dict, amount: int, currency: str, exact: dict | None
) -> TravelError:
    if exc.code == "not_a_traveller":
        return TravelError(
            "not_a_traveller", "Only the trip's travellers can share an expense: " + exc.message
        )
    if exc.code == "exact_mismatch":
        total = sum((exact or {}).values())
        return TravelError(
            "exact_mismatch",
            f"The exact amounts add up to {fx.plain(total, currency)}, "
            f"not {fx.plain(amount, currency)} {currency}.",
        )
    message = exc.message
    for uid, name in people(trip).items():  # ids mean nothing to people
        message = message.replace(uid, name)
    return TravelError(exc.code, message)


def _assignments(text: str, code: str, example: str) -> list[tuple[str, str]]:
    pairs = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        name, sep, value = piece.rpartition("=")
        if not sep or not name.strip() or not value.strip():
            raise TravelError(code, f"Write them like {example} (a dot for decimals).")
        pairs.append((name.strip(), value.strip()))
    if not pairs:
        raise TravelError(code, f"Write them like {example}.")
    return pairs


def _per_person(pairs, names, me, code: str, value) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, text in pairs:
        uid = resolve(names, name, me)
        if uid in found:
            raise TravelError(code, f"{names.get(uid, name)} is named twice.")
        found[uid] = value(text)
    return found


def _share_count(text: str) -> int:
    if not text.isdigit():
        raise TravelError("invalid_shares", f"{text[:12]} is not a whole number of shares.")
    return int(text)


def parse_add(trip: dict[str, Any], me: str | None, args: list[str]) -> dict[str, Any]:
    """``/trip expense add …``'s words → ``build``'s checked fields."""
    if not args:
        raise TravelError("invalid_amount", USAGE_ADD)
    amount_text, rest = args[0], list(args[1:])
    currency = trip.get("currency") or fx.BASE
    if rest and _CODE.match(rest[0]) and (fx.currency_code(rest[0]) or rest[0].isupper()):
        currency = fx.require_currency(rest.pop(0))
    head: list[str] = []
    clauses: dict[str, list[str]] = {}
    current: str | None = None
    for word in rest:
        key = word.casefold()
        if key in KEYWORDS:
            if key in clauses:
                raise TravelError("usage", f"'{key}' comes once. {USAGE_ADD}")
            current, clauses[key] = key, []
        elif current == "paid" and not clauses["paid"] and key == "by":
            continue
        else:
            (clauses[current] if current else head).append(word)
    amount = fx.parse_amount(amount_text, currency)
    names = people(trip)
    fields: dict[str, Any] = {"title": " ".join(head), "amount": amount, "currency": currency}
    if "paid" in clauses:
        payer = " ".join(clauses["paid"])
        if "=" in payer:
            pairs = _assignments(payer, "exact_mismatch", "paid by Ana=20,Ben=22.50")
            fields["paid"] = _per_person(
                pairs, names, me, "exact_mismatch", lambda t: fx.parse_amount(t, currency, True)
            )
        else:
            fields["paid"] = {resolve(names, payer, me): amount}
    if "split" in clauses:
        words = clauses["split"]
        mode = words[0].casefold() if words else ""
        if mode not in splits.MODES:
            raise TravelError("unknown_mode", f"Split equal, exact or shares. {USAGE_ADD}")
        fields["mode"] = mode
        given = " ".join(words[1:])
        if mode == "equal" and given:
            raise TravelError("usage", f"An equal split takes no amounts. {USAGE_ADD}")
        if mode == "exact":
            pairs = _assignments(given, "invalid_exact", "exact Ana=20,Ben=22.50")
            fields["exact"] = _per_person(
                pairs, names, me, "invalid_exact", lambda t: fx.parse_amount(t, currency, True)
            )
        if mode == "shares":
            pairs = _assignments(given, "invalid_shares", "shares Ana=2,Ben=1")
            fields["shares"] = _per_person(pairs, names, me, "invalid_shares", _share_count)
    if "among" in clauses:
        fields["among"] = _among(" ".join(clauses["among"]), names, me)
    return build(trip, me, **fields)


def _among(text: str, names: dict[str, str], me: str | None) -> list[str]:
    chosen: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        try:
            found = [resolve(names, piece, me)]
        except TravelError:
            if " " not in piece:
                raise
            found = [resolve(names, word, me) for word in piece.split()]  # among Ana Ben
        chosen.extend(uid for uid in found if uid not in chosen)
    if not chosen:
        raise TravelError("no_participants", f"Name who shares it. {USAGE_ADD}")
    return chosen


def money_param(value: object, currency: str, minor: bool, zero_ok: bool = False) -> int:
    """A view's amount: a string like "42.50", or with ``minor`` a whole number of minor units."""
    if minor:
        if zero_ok and value == 0 and not isinstance(value, bool):
            return 0
        return fx.check_minor(value)
    if not isinstance(value, str):
        raise TravelError("invalid_amount", 'Give amounts as text like "42.50".')
    return fx.parse_amount(value, currency, zero_ok)


def parse_view_add(trip: dict[str, Any], me: str | None, params: dict) -> dict[str, Any]:
    """``expense.add``'s params → ``build``'s checked fields."""
    currency = params.get("currency")
    currency = fx.require_currency(currency) if currency else trip.get("currency") or fx.BASE
    minor = params.get("minor") is True
    amount = money_param(params.get("amount"), currency, minor)
    fields: dict[str, Any] = {"title": params.get("title"), "amount": amount, "currency": currency}
    fields["mode"] = params.get("mode") or "equal"
    if params.get("paid") is not None:
        fields["paid"] = _uid_map(params["paid"], "exact_mismatch", "paid")
        fields["paid"] = {
            uid: money_param(v, currency, minor, True) for uid, v in fields["paid"].items()
        }
    elif params.get("payer") is not None:
        if not isinstance(params["payer"], str):
            raise TravelError("not_a_traveller", "payer: give a traveller's id.")
        fields["paid"] = {params["payer"]: amount}
    among = params.get("among")
    if among is not None:
        if not isinstance(among, list) or not all(isinstance(u, str) for u in among):
            raise TravelError("invalid_participant", "among: give a list of traveller ids.")
        fields["among"] = among
    if fields["mode"] == "exact":
        exact = _uid_map(params.get("exact"), "invalid_exact", "exact")
        fields["exact"] = {u: money_param(v, currency, minor, True) for u, v in exact.items()}
    if fields["mode"] == "shares":
        shares = _uid_map(params.get("shares"), "invalid_shares", "shares")
        fields["shares"] = {
            uid: _share_count(v) if isinstance(v, str) else v for uid, v in shares.items()
        }
    return build(trip, me, **fields)


def _uid_map(value: object, code: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise TravelError(code, f"{what}: give an object of traveller id → value.")
    return dict(value)


# --- writing ------------------------------------------------------------------------------------


async def create_doc(ctx, collection: str, key: str, doc: dict[str, Any]) -> bool:
    """Write ``doc`` only if ``key`` holds nothing yet; False when it already did."""
    try:
        await ctx.storage_update(collection, key, set=doc, expected_version=0, upsert=True)
    except Conflict:
        return False
    return True


async def edit_doc(ctx, collection: str, key: str, edit) -> Any:
    """``edit(doc)`` on a copy of ``key`` (``{}`` when absent) written only if nobody wrote in
    between (else redone on the fresh one); an unchanged copy writes nothing. ``TravelError``
    from ``edit`` writes nothing."""
    for _ in range(ATTEMPTS):
        current, version = await ctx.storage_get_versioned(collection, key)
        doc = copy.deepcopy(current) if isinstance(current, dict) else {}
        outcome = edit(doc)
        if doc == (current or {}):
            return outcome
        removed = [k for k in current or {} if k not in doc]
        try:
            await ctx.storage_update(
                collection,
                key,
                set=doc or None,
                unset=removed or None,
                expected_version=version,
                upsert=True,
            )
        except Conflict:
            continue
        return outcome
    raise TravelError("busy", "Busy: please try again.")


async def _add_spent(ctx, trip_id: str, currency: str, delta: int) -> None:
    """``trip.spent[currency] += delta`` (conditional, redone after a lost race), then the card."""

    def edit(trip: dict[str, Any]) -> None:
        spent = dict(trip.get("spent") or {})
        spent[currency] = spent.get(currency, 0) + delta
        if not spent[currency]:
            del spent[currency]
        trip["spent"] = spent

    await store.update(ctx, trip_id, edit)
    await refresh(ctx, trip_id)


async def refresh(ctx, trip_id: str) -> None:
    # The latest trip, read now: a card drawn from an older copy could undo a newer drawing.
    trip = await store.load(ctx, trip_id)
    if trip is None:
        return
    try:
        await store.refresh_card(ctx, trip)
    except HostError as exc:  # the card is gone or the chat left: the expense still stands
        log.warning("could not redraw the trip card of %s: %s", trip_id, exc)
    import balances  # (late: balances imports this module)

    await balances.refresh_group_card(ctx, trip)


def expense_key(trip_id: str, expense_id: str) -> str:
    return expense_id if expense_id.startswith(("bk-", "st-")) else f"{trip_id}-{expense_id}"


async def add_expense(
    ctx, trip: dict[str, Any], fields: dict[str, Any], request_id: str | None = None
) -> tuple[dict[str, Any], bool]:
    """Store a checked expense (``build``) → ``(expense, created)``; with ``request_id`` a
    retried add answers the first (``created`` False) instead of adding again."""
    trip_id, me = trip["id"], ctx.user_id
    pointer_key, key = None, None
    if request_id is not None:
        digest = hashlib.sha256(f"{trip_id}\0{me}\0{request_id}".encode()).hexdigest()[:40]
        pointer_key = f"rq-{digest}"
        pointer = await ctx.storage_get(REQUESTS, pointer_key)
        if pointer:
            key = pointer["key"]
            existing = await ctx.storage_get(EXPENSES, key)
            if existing is not None:
                return existing, False
    if key is None:
        try:
            number = await ctx.storage_incr(COUNTERS, trip_id, "n", 1, max=MAX_EXPENSES)
        except HostError as exc:
            if exc.code == "limit_reached":
                raise TravelError(
                    "too_many_expenses", f"A trip holds at most {MAX_EXPENSES} expenses."
                ) from None
            raise
        key = f"{trip_id}-e{number}"
        if pointer_key and not await create_doc(ctx, REQUESTS, pointer_key, {"key": key}):
            key = (await ctx.storage_get(REQUESTS, pointer_key))["key"]  # a twin retry won
    expense = {
        "id": key.rsplit("-", 1)[1],
        "trip_id": trip_id,
        **fields,
        "kind": "expense",
        "booking_id": None,
        "settlement_id": None,
        "created_by": me,
        "created_at": clock.now_ms(),
    }
    if not await create_doc(ctx, EXPENSES, key, expense):
        return await ctx.storage_get(EXPENSES, key), False
    await _add_spent(ctx, trip_id, expense["currency"], expense["amount"])
    await ctx.send_text(_added_text(ctx, expense))
    return expense, True


def _added_text(ctx, expense: dict[str, Any]) -> str:
    names = expense["names"]
    payers = and_list([name_of(names, uid) for uid in expense["paid"]])
    money = format_money(expense["amount"], expense["currency"], ctx.locale)
    parts = list(expense["parts"])
    how = f"split {len(parts)} ways" if len(parts) > 1 else f"for {name_of(names, parts[0])}"
    return f"{payers} paid {money} for {expense['title']}, {how}"


async def record_booking(ctx, booking: dict[str, Any]) -> dict[str, Any]:
    """The booked total as the trip's expense: each traveller paid, and owes, their share
    (``paid = parts = booking.shares``, kind ``booking``). Idempotent: key ``bk-<booking_id>``,
    created once, ``trip.spent`` raised once."""
    key = f"bk-{booking['id']}"
    existing = await ctx.storage_get(EXPENSES, key)
    if existing is not None:
        return existing
    total, shares = booking["total"], dict(booking["shares"])
    try:  # each share paid and owed: the shares must add up to the total
        splits.balances([{**total, "paid": shares, "parts": shares}])
    except SplitError as exc:
        raise TravelError("invalid_booking", f"Booking {booking['id']}: {exc.message}") from None
    trip = await store.load(ctx, booking["trip_id"]) or {}
    names = people(trip)
    expense = {
        "id": key,
        "trip_id": booking["trip_id"],
        "title": str(booking.get("title") or "Booking")[:TITLE_MAX],
        "amount": total["amount"],
        "currency": total["currency"],
        "paid": shares,
        "parts": shares,
        "mode": "exact",
        "kind": "booking",
        "booking_id": booking["id"],
        "settlement_id": None,
        "created_by": booking.get("started_by"),
        "created_at": clock.now_ms(),
        "names": {uid: names[uid] for uid in shares if uid in names},
    }
    if not await create_doc(ctx, EXPENSES, key, expense):
        return await ctx.storage_get(EXPENSES, key)
    try:
        await _add_spent(ctx, booking["trip_id"], total["currency"], total["amount"])
    except TravelError as exc:  # the trip is gone: the booking still happened
        log.warning("booking %s: trip.spent not raised (%s)", booking["id"], exc.code)
    return expense


async def delete_expense(ctx, trip: dict[str, Any], expense_id: object) -> dict[str, Any]:
    """Mark the expense deleted (its adder or a payer; not a booking's or a settlement's)."""
    if not isinstance(expense_id, str) or not expense_id.strip():
        raise TravelError("unknown_expense", "Which expense? e.g. /trip expense delete e4")
    expense_id = expense_id.strip().lower()
    key = expense_key(trip["id"], expense_id)
    me = ctx.user_id

    def edit(doc: dict[str, Any]) -> dict[str, Any]:
        if not doc or doc.get("trip_id") != trip["id"] or doc.get("deleted_at"):
            raise TravelError("unknown_expense", f"This trip has no expense {expense_id}.")
        if doc.get("kind") == "booking":
            raise TravelError("cannot_delete", "A booking's expense stays: the money was paid.")
        if doc.get("kind") == "settlement":
            raise TravelError("cannot_delete", "A settlement stays: the money moved.")
        if me != doc.get("created_by") and me not in (doc.get("paid") or {}):
            raise TravelError("not_yours", "Only whoever added or paid an expense can delete it.")
        doc |= {"deleted_at": clock.now_ms(), "deleted_by": me}
        return doc

    if len(key) > 256:
        raise TravelError("unknown_expense", "This trip has no such expense.")
    expense = await edit_doc(ctx, EXPENSES, key, edit)
    await _add_spent(ctx, trip["id"], expense["currency"], -expense["amount"])
    money = format_money(expense["amount"], expense["currency"], ctx.locale)
    who = name_of(people(trip), me)
    await ctx.send_text(f"{who} deleted the expense {expense['title']} ({money})")
    return expense


def list_card(ctx, trip: dict[str, Any], expenses: list[dict[str, Any]]) -> Card:
    """The last ``LIST_MAX`` expenses, newest first (ephemeral)."""
    names = people(trip, expenses)
    card = Card(f"Expenses · {trip.get('title') or 'Trip'}"[:100])
    lines = []
    zone = _zone(ctx)
    for expense in list(reversed(expenses))[:LIST_MAX]:
        money = format_money(expense["amount"], expense["currency"], ctx.locale)
        when = datetime.fromtimestamp(expense["created_at"] / 1000, UTC).astimezone(zone)
        day = format_skeleton("MMMd", when, tzinfo=zone, locale=fx.locale_of(ctx.locale))
        if expense["kind"] == "settlement":
            payer, payee = next(iter(expense["paid"])), next(iter(expense["parts"]))
            lines.append(
                f"{day} · {name_of(names, payer)} settled {money} with {name_of(names, payee)}"
            )
            continue
        payers = and_list([name_of(names, uid) for uid in expense["paid"]])
        how = "booking" if expense["kind"] == "booking" else f"split {len(expense['parts'])} ways"
        lines.append(
            f"{expense['id']} · {day} · {expense['title']} · {money} · {payers} paid · {how}"
        )
    if not lines:
        lines.append('No expenses yet: /trip expense add 42.50 EUR "Dinner"')
    elif len(expenses) > LIST_MAX:
        lines.append(f"…and {len(expenses) - LIST_MAX} earlier. Open the trip for all of them.")
    text = "\n".join(lines)
    card.text = text if len(text) <= 2000 else text[:1999] + "…"
    card.buttons.append(Button("expense.balances", "Balances", value=trip["id"]))
    return card


def _zone(ctx) -> ZoneInfo:
    try:
        return ZoneInfo(ctx.time_zone or "UTC")
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


async def _summary(ctx, trip: dict[str, Any]) -> dict[str, Any]:
    import balances  # (late: balances imports this module)

    return await balances.summary(ctx, trip)


# --- commands and views ----------------------------------------------------------------------


async def cmd_expense(ctx, args: list[str]) -> Reply | None:
    """``/trip expense add … | list | delete e4``."""
    trip = await store.require_trip(ctx)
    sub = args[0].lower() if args else "list"
    if sub == "add":
        await add_expense(ctx, trip, parse_add(trip, ctx.user_id, args[1:]))
        return None
    if sub == "list":
        return Reply(ephemeral=list_card(ctx, trip, await trip_expenses(ctx, trip["id"])))
    if sub == "delete" and len(args) == 2:
        await delete_expense(ctx, trip, args[1])
        return None
    return Reply(ephemeral=USAGE)


async def view_add(ctx) -> dict[str, Any]:
    trip = await store.require_trip(ctx)
    request_id = ctx.params.get("request_id")
    if request_id is not None and (
        not isinstance(request_id, str) or not _REQUEST_ID.match(request_id)
    ):
        raise TravelError("invalid_request_id", "request_id: 1-64 characters of [A-Za-z0-9_.:-].")
    expense, _ = await add_expense(
        ctx, trip, parse_view_add(trip, ctx.user_id, ctx.params), request_id
    )
    return {**await _summary(ctx, trip), "expense": expense}


async def view_delete(ctx) -> dict[str, Any]:
    trip = await store.require_trip(ctx)
    await delete_expense(ctx, trip, ctx.params.get("expense_id"))
    return await _summary(ctx, trip)


SUBCOMMANDS = {"expense": answers(cmd_expense), "expenses": answers(cmd_expense)}
VIEWS = {"expense.add": viewing(view_add), "expense.delete": viewing(view_delete)}
