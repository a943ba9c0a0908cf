"""Balances: what each traveller paid minus what they owe, per currency, the simplified
transfers that settle them ("simplify debts": at most N - 1), and the cards that show them.

- ``summary`` — ``expenses.get``'s answer (the web view's Money tab): the expenses, balances,
  transfers, names, and every balance converted into the reader's currency (``fx``).
- The **group balances card** — the trip card's Balances button posts it in the group (an older
  one says it moved): each currency's balances by name and who pays whom, with **Pay what I owe**
  (``settle.mine``, settle.py: one wallet transfer request per person the presser owes) and
  **Open Money** (the web view). It is the same for everyone, so it never says "you"; it is
  redrawn in place after every expense, deletion and paid settlement (``refresh_group_card``).
  The presser also gets their own position as a short text, in their currency.
- ``/trip balances`` — the reader's own card (ephemeral): "You owe Ben €23.40 (≈ $25.27)" and a
  Pay button per debt (``settle.pay``) for clients that show buttons on ephemeral cards.

Storage: ``balance_cards/<trip_id>`` → ``{message_id}`` (the latest group balances card).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import fx
import store
from expenses import VIEW_LIST_BYTES, ledger, name_of, people, trip_expenses
from fx import format_money
from store import TravelError, answers, viewing

from sdk import Button, Card, Field, HostError, Reply

log = logging.getLogger("travel.balances")

CARDS = "balance_cards"


async def summary(ctx, trip: dict[str, Any]) -> dict[str, Any]:
    """``expenses.get``'s answer: the expenses (newest first), balances, transfers, names and
    the reader's currency with every balance converted into it (null when a rate is missing)."""
    expenses = await trip_expenses(ctx, trip["id"])
    balances, transfers = ledger(expenses)
    mine = fx.reader_currency(ctx, trip)
    totals: dict[str, int] | None = {}
    for currency, balance in balances.items():
        for uid, value in balance.items():
            converted = fx.convert(ctx, value, currency, mine)
            if converted is None:
                totals = None
                break
            totals[uid] = totals.get(uid, 0) + converted
        if totals is None:
            break
    rates = fx.rates(ctx)
    return {
        "trip_id": trip["id"],
        "currency": trip.get("currency"),
        "me": ctx.user_id,
        "expenses": _newest(expenses),
        "expense_count": len(expenses),
        "balances": balances,
        "transfers": transfers,
        "names": people(trip, expenses),
        "reader_currency": mine,
        "totals_in_reader": totals,
        "rates_label": rates.label,
    }


def _newest(expenses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest expenses, as many as fit ``VIEW_LIST_BYTES`` of JSON."""
    chosen, size = [], 0
    for expense in reversed(expenses):
        size += len(json.dumps(expense))
        if size > VIEW_LIST_BYTES:
            break
        chosen.append(expense)
    return chosen


def _approx(ctx, amount: int, currency: str, mine: str) -> str:
    """ " (≈ $25.27)" when the reader reads another currency and a rate is known."""
    if currency == mine:
        return ""
    converted = fx.convert(ctx, amount, currency, mine)
    return "" if converted is None else f" (≈ {format_money(converted, mine, ctx.locale)})"


def balances_card(ctx, trip: dict[str, Any], data: dict[str, Any], *, group: bool = False) -> Card:
    """The balances card: each currency's balances by name and the simplified transfers. For the
    reader (ephemeral): "You owe Ben €23.40 (≈ $25.27)" with a Pay button per debt. For the group
    (``group``): the same for everyone — who pays whom — with Pay what I owe and Open Money."""
    me = None if group else ctx.user_id
    names, mine = data["names"], data["reader_currency"]
    card = Card(f"Balances · {trip.get('title') or 'Trip'}"[:100])
    lines: list[str] = []
    converted = False
    for currency, balance in data["balances"].items():
        if len(card.fields) >= 20:
            break
        shown = []
        for uid, value in sorted(balance.items(), key=lambda kv: (-kv[1], name_of(names, kv[0]))):
            money = format_money(abs(value), currency, ctx.locale)
            state = "gets back " + money if value > 0 else "owes " + money if value < 0 else "even"
            shown.append(f"{name_of(names, uid)} {state}")
        card.fields.append(Field(currency, " · ".join(shown)[:1000] or "even"))
        for move in data["transfers"][currency]:
            money = format_money(move["amount"], currency, ctx.locale)
            payer, payee = name_of(names, move["from"]), name_of(names, move["to"])
            if group:
                lines.append(f"{payer} pays {payee} {money}")
                continue
            approx = _approx(ctx, move["amount"], currency, mine)
            converted = converted or bool(approx)
            if move["from"] == me:
                lines.append(f"You owe {payee} {money}{approx}")
                if len(card.buttons) < 10:
                    value = f"{trip['id']}:{move['to']}:{move['amount']}:{currency}"
                    label = f"Pay {payee} {money}"[:80]
                    card.buttons.append(Button("settle.pay", label, value=value, style="primary"))
            elif move["to"] == me:
                lines.append(f"{payer} owes you {money}{approx}")
            else:
                lines.append(f"{payer} owes {payee} {money}")
    settled = not any(data["transfers"].values())
    if not data["balances"]:
        lines.append('No expenses yet: /trip expense add 42.50 EUR "Dinner"')
    elif settled:
        lines.append("Everyone is settled up.")
    elif card.buttons:
        first = next(m for c in data["transfers"].values() for m in c if m["from"] == me)
        lines.append(f"Or type /trip settle {name_of(names, first['to'])} <amount>.")
    if converted and data.get("rates_label"):
        lines.append(f"≈: {data['rates_label']}.")
    text = "\n".join(lines)
    card.text = text if len(text) <= 2000 else text[:1999] + "…"
    if group:
        if not settled:
            card.buttons.append(
                Button("settle.mine", "Pay what I owe", value=trip["id"], style="primary")
            )
        card.buttons.append(Button.webview("Open Money", path="#money"))
    return card


def position_text(ctx, data: dict[str, Any]) -> str:
    """The reader's own position in a few lines, in their currency too ("You owe Ana €20.00
    (≈ $21.60)"), for a short answer that every client shows."""
    me, names, mine = ctx.user_id, data["names"], data["reader_currency"]
    lines = []
    for currency, moves in data["transfers"].items():
        for move in moves:
            money = format_money(move["amount"], currency, ctx.locale)
            money += _approx(ctx, move["amount"], currency, mine)
            if move["from"] == me:
                lines.append(f"You owe {name_of(names, move['to'])} {money}.")
            elif move["to"] == me:
                lines.append(f"{name_of(names, move['from'])} owes you {money}.")
    return " ".join(lines) or "You are settled up."


async def post_group_card(ctx, trip: dict[str, Any]) -> str:
    """Post the group balances card at the bottom of the chat (the previous one says it moved)
    → its message id."""
    card = balances_card(ctx, trip, await summary(ctx, trip), group=True)
    message_id = await ctx.send_card(card)
    old = (await ctx.storage_get(CARDS, trip["id"]) or {}).get("message_id")
    await ctx.storage_put(CARDS, trip["id"], {"message_id": message_id})
    if old and old != message_id:
        moved = Card(card.title, text="These balances moved: see the card further down.")
        try:
            await ctx.update_card(old, moved, conversation_id=trip["conversation_id"])
        except HostError as exc:
            log.warning("could not mark the old balances card %s moved: %s", old, exc)
    return message_id


async def refresh_group_card(ctx, trip: dict[str, Any]) -> None:
    """Redraw the group balances card in place, when one was posted."""
    message_id = (await ctx.storage_get(CARDS, trip["id"]) or {}).get("message_id")
    if not message_id:
        return
    card = balances_card(ctx, trip, await summary(ctx, trip), group=True)
    try:
        await ctx.update_card(message_id, card, conversation_id=trip["conversation_id"])
    except HostError as exc:  # the chat left or the card is gone: the balances still stand
        log.warning("could not redraw the balances card of %s: %s", trip["id"], exc)


async def cmd_balances(ctx, args: list[str]) -> Reply:
    """``/trip balances``: the reader's own balances card."""
    trip = await store.require_trip(ctx)
    return Reply(ephemeral=balances_card(ctx, trip, await summary(ctx, trip)))


async def on_balances_press(ctx) -> Reply:
    """The trip card's Balances button: the group balances card, and the presser's position."""
    trip = await store.load(ctx, str(ctx.value or ""))
    if trip is None or trip.get("conversation_id") != ctx.conversation_id:
        raise TravelError("no_trip", "That trip no longer exists.")
    await post_group_card(ctx, trip)
    return Reply(ephemeral=position_text(ctx, await summary(ctx, trip)))


async def view_get(ctx) -> dict[str, Any]:
    return await summary(ctx, await store.require_trip(ctx))


SUBCOMMANDS = {"balances": answers(cmd_balances)}
ACTIONS = {"expense.balances": answers(on_balances_press)}
VIEWS = {"expenses.get": viewing(view_get)}
