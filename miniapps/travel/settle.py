"""Settling up through the wallet: a traveller pays what they owe by a wallet **transfer
request** (``payments.request_transfer``: the payer confirms on the wallet's sheet, the money goes
person to person, the app never holds it).

- **Asking** (``/trip settle Ben [20.00] [EUR]``, the group balances card's **Pay what I owe**
  (``settle.mine``: one request per person owed), the reader's ``settle.pay`` buttons, view
  ``settle.request``): the amount must be > 0 and at most what the reader owes that person in
  that currency now (the simplified transfers), less the requests they already have open to them
  (``exceeds_owed``; ``nothing_owed``; ``same_user``). The open requests of a payer live in one
  document (``settle_open/<trip_id>-<uid>``) changed conditionally, so two requests at once cannot
  both take the same debt. Then the settlement (``requested``) and the transfer request
  (``transfer_ref`` ``settle-<settlement_id>``).
- **The outcome**: the signed ``transfer_request.paid`` event records the settlement as an
  expense (key ``st-<settlement_id>``, create-only: paid by the payer, owed by the payee) and
  marks the settlement paid (conditionally: "Ana settled €20.00 with Ben" goes out once however
  often the event arrives); ``.declined`` / ``.expired`` only mark it and free the request.

Storage: ``settlements/<settlement_id>`` (``st`` + 10 hex) ``{id, trip_id, conversation_id,
from, to, amount, currency, status, payment_id, created_at, closed_at?}``;
``settle_open/<trip_id>-<uid>`` ``{requests: {settlement_id: {to, amount, currency}}}``.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

import clock
import fx
import store
from expenses import (
    EXPENSES,
    create_doc,
    edit_doc,
    ledger,
    money_param,
    name_of,
    people,
    refresh,
    resolve,
    trip_expenses,
)
from fx import format_money
from store import TravelError, answers, viewing

from sdk import HostError, InvalidSignature, Reply

log = logging.getLogger("travel.settle")

SETTLEMENTS, OPEN = "settlements", "settle_open"
TRANSFER_STATUS = {
    "transfer_request.paid": "paid",
    "transfer_request.declined": "declined",
    "transfer_request.expired": "expired",
}
_CODE = re.compile(r"^[A-Za-z]{3}$")
_NUMBER = re.compile(r"^\+?\d[\d.,]*$")


async def _owed(ctx, trip: dict[str, Any], to: str, currency: str | None):
    """``(currency, owed, names)``: what the reader owes ``to`` now (the simplified transfers);
    the currency, when not given, is the one they owe ``to`` in (the trip's if several/none)."""
    me = ctx.user_id
    if to == me:
        raise TravelError("same_user", "You cannot settle up with yourself.")
    expenses = await trip_expenses(ctx, trip["id"])
    _, transfers = ledger(expenses)
    names = people(trip, expenses)
    owing = {
        cur: sum(t["amount"] for t in moves if t["from"] == me and t["to"] == to)
        for cur, moves in transfers.items()
    }
    owing = {cur: amount for cur, amount in owing.items() if amount}
    if currency is None:
        currency = next(iter(owing)) if len(owing) == 1 else trip.get("currency") or fx.BASE
    if not owing.get(currency):
        raise TravelError("nothing_owed", f"You owe {name_of(names, to)} nothing in {currency}.")
    return currency, owing[currency], names


async def request_settlement(
    ctx, trip: dict[str, Any], to: str, amount: object, currency: str | None, minor: bool
) -> dict[str, Any]:
    """Check, then ask the reader's wallet to pay ``to``: the settlement (``requested``)."""
    me = ctx.user_id
    if currency is not None:
        currency = fx.require_currency(currency)
    currency, owed, names = await _owed(ctx, trip, to, currency)
    wanted = None if amount in (None, "") else money_param(amount, currency, minor)
    settlement_id = "st" + secrets.token_hex(5)
    to_name = name_of(names, to)

    def claim(doc: dict[str, Any]) -> int:
        requests = doc.setdefault("requests", {})
        doc |= {"trip_id": trip["id"], "from": me}
        pending = sum(
            r["amount"] for r in requests.values() if r["to"] == to and r["currency"] == currency
        )
        left = owed - pending
        if left <= 0:
            raise TravelError(
                "exceeds_owed",
                f"You already asked to pay {to_name} {fx.plain(pending, currency)} {currency}: "
                "confirm or decline that in your wallet first.",
            )
        if wanted is not None and wanted > left:
            raise TravelError(
                "exceeds_owed",
                f"You owe {to_name} {fx.plain(left, currency)} {currency} now"
                + (" (besides what you already asked to pay)" if pending else "")
                + ": settle at most that.",
            )
        chosen = left if wanted is None else wanted
        requests[settlement_id] = {"to": to, "amount": chosen, "currency": currency}
        return chosen

    open_key = f"{trip['id']}-{me}"
    chosen = await edit_doc(ctx, OPEN, open_key, claim)
    settlement = {
        "id": settlement_id,
        "trip_id": trip["id"],
        "conversation_id": trip.get("conversation_id"),
        "from": me,
        "to": to,
        "amount": chosen,
        "currency": currency,
        "status": "requested",
        "payment_id": None,
        "created_at": clock.now_ms(),
    }
    await ctx.storage_put(SETTLEMENTS, settlement_id, settlement)
    try:
        answer = await ctx.request_transfer(
            me,
            to,
            chosen,
            currency,
            transfer_ref=f"settle-{settlement_id}",
            note=f"Trip {trip.get('title') or ''}: settle up"[:200],
        )
    except HostError as exc:
        await _release(ctx, open_key, settlement_id)
        await ctx.storage_delete(SETTLEMENTS, settlement_id)
        raise _transfer_error(exc, to_name) from None
    settlement["payment_id"] = answer.get("payment_id")
    await ctx.storage_update(
        SETTLEMENTS, settlement_id, set={"payment_id": answer.get("payment_id")}
    )
    return settlement


def _transfer_error(exc: HostError, to_name: str) -> TravelError:
    messages = {
        "same_user": ("same_user", "You cannot settle up with yourself."),
        "not_found": ("unknown_person", f"{to_name} cannot receive wallet transfers here yet."),
        "unknown_currency": ("unknown_currency", "The wallet does not support that currency."),
        "amount_too_large": ("invalid_amount", "That amount is above the wallet's limit."),
    }
    code, message = messages.get(exc.code, ("transfer_failed", "The wallet refused: try again."))
    return TravelError(code, message)


async def _release(ctx, open_key: str, settlement_id: str) -> None:
    """Forget an open request (idempotent)."""

    def edit(doc: dict[str, Any]) -> None:
        (doc.get("requests") or {}).pop(settlement_id, None)

    await edit_doc(ctx, OPEN, open_key, edit)


async def on_transfer_event(ctx) -> None:
    """``transfer_request.paid|declined|expired`` for a ``settle-<settlement_id>``: verified,
    then the settlement moves from ``requested`` once; a paid one becomes an expense."""
    try:
        payment = ctx.verify_payment_event()
    except InvalidSignature:
        log.warning("a %s event with a bad signature was ignored", ctx.event_name)
        return
    ref = str(payment.get("transfer_ref") or payment.get("order_ref") or "")
    settlement_id = ref.removeprefix("settle-")
    settlement = await ctx.storage_get(SETTLEMENTS, settlement_id) if ref != settlement_id else None
    said = [payment.get(k) for k in ("user_id", "to_user_id", "amount", "currency")]
    if settlement is None or said != [settlement[k] for k in ("from", "to", "amount", "currency")]:
        log.warning("a %s event for an unknown settlement %r was ignored", ctx.event_name, ref)
        return
    status = TRANSFER_STATUS[ctx.event_name]
    if status == "paid":
        await _record_settlement(ctx, settlement)

    def edit(doc: dict[str, Any]) -> bool:
        if doc.get("status") != "requested":
            return False
        doc |= {
            "status": status,
            "payment_id": payment.get("payment_id"),
            "closed_at": clock.now_ms(),
        }
        return True

    changed = await edit_doc(ctx, SETTLEMENTS, settlement_id, edit)
    await _release(ctx, f"{settlement['trip_id']}-{settlement['from']}", settlement_id)
    if changed and status == "paid":
        trip = await store.load(ctx, settlement["trip_id"]) or {}
        names = people(trip)
        money = format_money(settlement["amount"], settlement["currency"], ctx.locale)
        who, whom = name_of(names, settlement["from"]), name_of(names, settlement["to"])
        await ctx.send_text(f"{who} settled {money} with {whom}")
        await refresh(ctx, settlement["trip_id"])


async def _record_settlement(ctx, settlement: dict[str, Any]) -> None:
    """The paid settlement as an expense (create-only: once, however often the event comes)."""
    key = f"st-{settlement['id']}"
    trip = await store.load(ctx, settlement["trip_id"]) or {}
    names = people(trip)
    payer, payee, amount = settlement["from"], settlement["to"], settlement["amount"]
    await create_doc(
        ctx,
        EXPENSES,
        key,
        {
            "id": key,
            "trip_id": settlement["trip_id"],
            "title": "Settle up",
            "amount": amount,
            "currency": settlement["currency"],
            "paid": {payer: amount},
            "parts": {payee: amount},
            "mode": "exact",
            "kind": "settlement",
            "booking_id": None,
            "settlement_id": settlement["id"],
            "created_by": payer,
            "created_at": clock.now_ms(),
            "names": {uid: names[uid] for uid in (payer, payee) if uid in names},
        },
    )


def _settle_words(args: list[str]) -> tuple[str, str | None, str | None]:
    """``Ben 20.00 EUR`` / ``"Ana Silva" 20`` / ``Ben`` → (name, amount, currency)."""
    words = list(args)
    currency = amount = None
    if (
        len(words) > 1
        and _CODE.match(words[-1])
        and (fx.currency_code(words[-1]) or words[-1].isupper())
    ):
        currency = words.pop()
    if len(words) > 1 and (_NUMBER.match(words[-1]) or words[-1].startswith("-")):
        amount = words.pop()
    if not words:
        raise TravelError("unknown_person", "Usage: /trip settle Ben 20.00 [EUR]")
    return " ".join(words), amount, currency


async def cmd_settle(ctx, args: list[str]) -> Reply:
    """``/trip settle Ben [20.00] [EUR]``: ask my wallet to pay Ben (all I owe, by default)."""
    trip = await store.require_trip(ctx)
    name, amount, currency = _settle_words(args)
    names = people(trip, await trip_expenses(ctx, trip["id"]))
    to = resolve(names, name, ctx.user_id)
    settlement = await request_settlement(ctx, trip, to, amount, currency, minor=False)
    return Reply(ephemeral=_asked(ctx, settlement, names))


def _asked(ctx, settlement: dict[str, Any], names: dict[str, str]) -> str:
    money = format_money(settlement["amount"], settlement["currency"], ctx.locale)
    return f"Confirm in your wallet: pay {name_of(names, settlement['to'])} {money}."


async def on_settle_press(ctx) -> Reply:
    """``settle.pay`` (value ``<trip_id>:<to_uid>:<amount>:<currency>``)."""
    pieces = str(ctx.value or "").split(":")
    if len(pieces) != 4 or not pieces[2].isdigit():
        raise TravelError("invalid_amount", "That button is out of date: open the balances again.")
    trip_id, to, amount, currency = pieces
    trip = await _trip_here(ctx, trip_id)
    settlement = await request_settlement(ctx, trip, to, int(amount), currency, minor=True)
    names = people(trip, await trip_expenses(ctx, trip_id))
    return Reply(ephemeral=_asked(ctx, settlement, names))


async def view_settle(ctx) -> dict[str, Any]:
    trip = await store.require_trip(ctx)
    to, currency = ctx.params.get("to"), ctx.params.get("currency")
    if not isinstance(to, str) or not to:
        raise TravelError("unknown_person", "to: give the id of the person you pay.")
    if currency is not None and not isinstance(currency, str):
        raise TravelError("unknown_currency", "currency: an ISO code like EUR.")
    minor = ctx.params.get("minor") is True
    settlement = await request_settlement(ctx, trip, to, ctx.params.get("amount"), currency, minor)
    return {"settlement": settlement}


async def _trip_here(ctx, trip_id: str) -> dict[str, Any]:
    """The trip a button names, if it is this chat's."""
    trip = await store.load(ctx, trip_id)
    if trip is None or trip.get("conversation_id") != ctx.conversation_id:
        raise TravelError("no_trip", "That trip no longer exists.")
    return trip


async def on_settle_mine(ctx) -> Reply:
    """The group balances card's Pay what I owe (value trip_id): a transfer request for all the
    presser owes each person, in each currency (those already asked for are skipped)."""
    trip = await _trip_here(ctx, str(ctx.value or ""))
    expenses = await trip_expenses(ctx, trip["id"])
    _, transfers = ledger(expenses)
    names = people(trip, expenses)
    mine = [(cur, m) for cur, moves in transfers.items() for m in moves if m["from"] == ctx.user_id]
    if not mine:
        raise TravelError("nothing_owed", "You owe nobody anything on this trip.")
    asked, skipped = [], []
    for currency, move in mine:
        try:
            settlement = await request_settlement(ctx, trip, move["to"], None, currency, False)
        except TravelError as exc:
            if exc.code != "exceeds_owed":
                raise
            skipped.append(name_of(names, move["to"]))
            continue
        money = format_money(settlement["amount"], currency, ctx.locale)
        asked.append(f"{name_of(names, move['to'])} {money}")
    if not asked:
        raise TravelError(
            "exceeds_owed",
            "You already asked your wallet to pay all you owe: confirm or decline it there.",
        )
    text = f"Confirm in your wallet: pay {', '.join(asked)}."
    if skipped:
        text += f" (Already asked: {', '.join(skipped)}.)"
    return Reply(ephemeral=text)


SUBCOMMANDS = {"settle": answers(cmd_settle)}
ACTIONS = {"settle.pay": answers(on_settle_press), "settle.mine": answers(on_settle_mine)}
EVENTS = dict.fromkeys(TRANSFER_STATUS, on_transfer_event)
VIEWS = {"settle.request": viewing(view_settle)}
