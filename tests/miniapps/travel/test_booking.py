"""Booking together (miniapps/travel/booking.py, booking_holds.py) in the simulator: every share
held from the wallet → one order, each hold captured once; a traveller late → every hold voided;
the provider's work one step per firing of ``booking.finish`` (a holdable flight reserved while
shares are collected; a create whose answer was lost looked up, never sent blind again; timeouts
retried, then the booking failed); the races (the last two holds at once, two Book presses at
once, a timer fired twice, a step cut short); and each kind of bad input refused with nothing
written. With Duffel's stub over real HTTP: no invocation makes more than one provider request
that may be slow (counted per invocation), and a stalled provider still ends in exactly one
order.

The trip and its offers are stored directly (``storage.put`` inside an invocation); the provider
is ``FakeProvider`` patched onto the app's ``providers`` module (``reprice`` and ``step``, as the
contract has them), so a test decides exactly when a step times out or is refused. Timers fire
when a test moves the simulator's clock (``sim.advance``; ``steps()`` fires those due now).
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from sdk import Button, Card
from sdk.errors import AppCallError, HostError
from sdk.timers import timer_params
from tests.miniapps.travel.duffel_stub import API_KEY, DuffelStub, serve_fetch
from tests.miniapps.travel.travel_fixtures import (
    DAY,
    HOUR,
    MINUTE,
    Group,
    app_module,
    lisbon_trip,
    open_group,
    store_trip,
)

TRIP_ID = "tr0123456789"
START_BALANCE = 100_000  # each traveller's wallet, EUR cents
TOTAL = 30_001  # three shares: 10001 + 10000 + 10000
SECOND = 1_000
ANY_INT = type("AnyInt", (), {"__eq__": lambda self, other: isinstance(other, int)})()


# --- the world --------------------------------------------------------------------------------


class FakeProvider:
    """``providers.reprice`` and ``providers.step`` as the contract has them, in memory.

    ``step`` does what one provider request would: ``reserve`` makes the hold order (key
    ``<key>-hold``), ``create`` the order (or pays the hold order), the look-ups find them.
    ``timeouts`` makes the next creates time out (the order made anyway when
    ``made_on_timeout``), ``lookup_timeouts`` the next look-ups, ``reserve_timeouts`` the next
    reserves; ``refuse`` / ``refuse_reserve`` a definitive refusal. A create sent again for a key
    already ordered makes a second order — ``orders`` would show it."""

    def __init__(self) -> None:
        self.orders: list[dict[str, Any]] = []  # every order made, a double one too
        self.book_calls: list[dict[str, Any]] = []  # every create sent
        self.steps: list[tuple[str, str]] = []  # (key, phase) of every step
        self.holds: dict[str, dict[str, Any]] = {}
        self.paid: list[str] = []
        self.reprices = 0
        self.price_now: int | None = None
        self.expired = False
        self.timeouts = 0
        self.made_on_timeout = False
        self.lookup_timeouts = 0
        self.reserve_timeouts = 0
        self.refuse: str | None = None
        self.refuse_reserve: str | None = None
        self.pay_by_ms: int | None = None  # the hold order's own pay-by (else the offer's)

    async def reprice(self, ctx, offer: dict[str, Any]) -> dict[str, Any]:
        TravelError = app_module("store").TravelError
        self.reprices += 1
        if self.expired:
            raise TravelError("offer_expired", "That offer has expired: search again.")
        if self.price_now is not None:
            fresh = {**offer, "total": {**offer["total"], "amount": self.price_now}}
            await ctx.storage_put("offers", offer["id"], fresh)  # re-stored, as reprice does
            raise TravelError("price_changed", f"The price changed: now {self.price_now / 100:.2f}")
        return offer

    async def step(self, ctx, offer, key, phase, *, hold_order=None, cursor=None):
        TravelError, Step = app_module("store").TravelError, app_module("providers").Step
        self.steps.append((key, phase))
        if phase == "reserve":
            if self.refuse_reserve:
                raise TravelError(self.refuse_reserve, "The airline would not hold it")
            made = self._hold(offer, key)
            if self.reserve_timeouts:
                self.reserve_timeouts -= 1
                self.holds.pop(f"{key}-hold")  # nothing made
                return Step("timeout", "reserve_lookup")
            return Step("done", result=made)
        if phase == "reserve_lookup":
            if self.lookup_timeouts:
                self.lookup_timeouts -= 1
                return Step("timeout", "reserve_lookup")
            found = self.holds.get(f"{key}-hold")
            return Step("done", result=dict(found)) if found else Step("next", "reserve")
        if phase == "quote":
            return Step("next", "create")
        if phase == "create":
            self.book_calls.append(
                {"key": key, "hold_order_id": (hold_order or {}).get("order_id")}
            )
            if self.refuse:
                raise TravelError(self.refuse, "The airline refused the booking")
            if self.timeouts:
                self.timeouts -= 1
                if self.made_on_timeout:
                    self._order(key, hold_order)
                return Step("timeout", "lookup")
            return Step("done", result=self._answer(self._order(key, hold_order)))
        if self.lookup_timeouts:
            self.lookup_timeouts -= 1
            return Step("timeout", "lookup")
        found = [o for o in self.orders if o["key"] == key]
        return Step("done", result=self._answer(found[0])) if found else Step("next", "create")

    def _hold(self, offer: dict[str, Any], key: str) -> dict[str, Any]:
        made = {
            "order_id": f"ord_hold_{len(self.holds) + 1}",
            "pay_by_ms": self.pay_by_ms or offer["pay_by_ms"],
            "reference": f"HLD{len(self.holds) + 1:03d}",
        }
        self.holds[f"{key}-hold"] = made
        return dict(made)

    def _order(self, key: str, hold_order: dict[str, Any] | None) -> dict[str, Any]:
        if hold_order:
            self.paid.append(hold_order["order_id"])
            order = {"key": key, "order_id": hold_order["order_id"], "reference": "HOLDREF"}
        else:
            n = len(self.orders) + 1
            order = {"key": key, "order_id": f"ord_{n:04d}", "reference": f"ZZ{n:04d}"}
        self.orders.append(order)
        return order

    @staticmethod
    def _answer(order: dict[str, Any]) -> dict[str, Any]:
        return {"order_id": order["order_id"], "reference": order["reference"]}


@dataclass
class World:
    g: Group
    provider: FakeProvider
    expenses: list[dict[str, Any]] = field(default_factory=list)
    reminders: list[str] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)

    @property
    def sim(self):
        return self.g.sim

    def __getattr__(self, name: str):
        people = self.__dict__["g"].people
        if name in people:
            return people[name]
        raise AttributeError(name)

    async def trip(self, creator, travellers) -> dict[str, Any]:
        doc = lisbon_trip(TRIP_ID, self.g.chat.id, creator, travellers, self.sim.now)
        await store_trip(self.g, creator, doc, card=False)
        return doc

    async def offer(
        self,
        offer_id: str = "off_0001",
        *,
        amount: int = TOTAL,
        holdable: bool = False,
        expires_in: int = 30 * MINUTE,
        pay_by_in: int | None = None,
        provider: str = "sample",
    ) -> str:
        """An offer of the trip (as search stores it) and its card with Book for the group;
        returns the card's message id."""
        now = self.sim.now
        doc = {
            "id": offer_id,
            "kind": "flight",
            "trip_id": TRIP_ID,
            "provider": provider,
            "label": "Sample data — not real flights or stays",
            "title": "MAD → LIS · Sat 1 May 07:05 · direct",
            "total": {"amount": amount, "currency": "EUR"},
            "expires_ms": now + expires_in,
            "holdable": holdable,
            "pay_by_ms": now + pay_by_in if pay_by_in is not None else None,
            "raw": {"id": offer_id},
            "items": [
                {
                    "kind": "flight",
                    "title": "ZZ 123 MAD → LIS",
                    "start": "2027-05-01T07:05",
                    "zone": "Europe/Madrid",
                    "end": "2027-05-01T07:25",
                    "end_zone": "Europe/Lisbon",
                    "place": "MAD",
                    "details": {"flight": "ZZ123"},
                },
            ],
        }
        card = Card("Offer", buttons=[Button("offer.book", "Book for the group", value=offer_id)])

        async def work(ctx):
            await ctx.storage_put("offers", offer_id, doc)
            return await ctx.send_card(card)

        return await self.g.run_as(self.g.people["ana"], work)

    def bookings(self) -> dict[str, dict[str, Any]]:
        return self.sim.storage("bookings")

    def booking(self) -> dict[str, Any]:
        (booking,) = self.bookings().values()
        return booking

    def stored_trip(self) -> dict[str, Any]:
        return self.sim.storage("trips")[TRIP_ID]

    async def book(self, user, message_id: str) -> dict:
        return await self.g.press(user, message_id, "offer.book")

    async def hold(self, user) -> str:
        """``user`` presses Hold my share; returns the payment id the wallet asks them about."""
        booking = self.booking()
        await self.g.press(user, booking["card_message_id"], "booking.hold")
        return self.booking()["holds"][user.id]["payment_id"]

    async def held_by(self, *users) -> None:
        for user in users:
            await self.sim.confirm_payment(user, await self.hold(user))

    def card(self) -> dict[str, Any]:
        return self.sim.card(self.booking()["card_message_id"])

    def texts(self) -> list[str]:
        return [m["text"] for m in self.sim.messages(self.g.chat) if m["type"] == "text"]

    def payments(self, status: str | None = None) -> list[dict[str, Any]]:
        found = [p for p in self.sim.payments.values() if p["order_ref"].startswith("book-")]
        return [p for p in found if status is None or p["status"] == status]

    def booking_timers(self) -> dict[str, int]:
        return {k: v for k, v in self.g.timer_keys().items() if k[:3] in ("bd-", "bf-")}

    async def steps(self) -> list[str]:
        """Fire the timers due now (and those they set for now): the booking's steps that are
        due → the names of the timers fired."""
        return [f["name"] for f in await self.sim.advance(seconds=0)]

    def events(self, name: str, payment_id: str) -> int:
        return sum(
            1
            for e in self.sim.payment_events
            if e["name"] == name and e["payload"]["payment_id"] == payment_id
        )


@pytest.fixture
async def w(monkeypatch) -> World:
    g = open_group(monkeypatch)
    world = World(g, FakeProvider())
    for name in ("ana", "ben", "cat", "dan"):  # dan: in the chat, not on the trip
        user = g.person(name)
        g.sim.set_balance(user, "EUR", START_BALANCE)
    g.sim.set_fee("EUR", basis_points=100)  # the platform's 1 % on captures
    providers = app_module("providers")
    for name in ("reprice", "step"):
        monkeypatch.setattr(providers, name, getattr(world.provider, name))

    spy(monkeypatch, app_module("expenses"), "record_booking", world.expenses, lambda b: b)
    spy(monkeypatch, app_module("reminders"), "sync", world.reminders, lambda t: t["id"])
    spy(monkeypatch, app_module("changes"), "ensure_webhook", world.webhooks, lambda: "duffel")
    await world.trip(g.people["ana"], [g.people[n] for n in ("ana", "ben", "cat")])
    return world


def spy(monkeypatch, module, name: str, calls: list, note) -> None:
    """Record each call of ``module.name`` (what ``note(*args)`` says) and make it as is."""
    real = getattr(module, name)

    async def recorded(ctx, *args, **kwargs):
        calls.append(note(*args, **kwargs))
        return await real(ctx, *args, **kwargs)

    monkeypatch.setattr(module, name, recorded)


async def fire_twice(w: World, key: str) -> list[Any]:
    """Fire the pending timer ``key`` twice at once, as two gateway nodes would → what each
    firing answered (an ``AppCallError`` for one that failed: the host fires it again)."""
    (timer,) = [t for t in w.sim.pending_timers() if t["key"] == key]
    w.sim.now = max(w.sim.now, timer["due_at"])
    w.sim._timers.pop(key)
    params = [
        timer_params(timer["name"], timer["key"], timer["due_at"], dict(timer["payload"]), 1)
        for _ in range(2)
    ]
    return await asyncio.gather(
        *(w.sim._invoke("timer", w.ana, w.g.chat, p) for p in params), return_exceptions=True
    )


# --- all held ---------------------------------------------------------------------------------


async def test_all_held_books_once_and_captures_every_hold_once(w: World) -> None:
    message_id = await w.offer()
    reply = await w.book(w.ana, message_id)
    assert "Hold my share" in reply["ephemeral"]
    booking = w.booking()
    bid = booking["id"]
    assert booking["state"] == "collecting" and booking["started_by"] == w.ana.id
    assert booking["phase"] is None  # an instant offer: nothing at the provider before all hold
    assert sorted(booking["shares"].values()) == [10000, 10000, 10001]
    assert sum(booking["shares"].values()) == TOTAL
    assert booking["deadline_ms"] == w.sim.now + 30 * MINUTE  # the offer's expiry, < 24 h
    assert w.booking_timers() == {f"bd-{bid}": booking["deadline_ms"]}
    assert w.stored_trip()["booking"]["id"] == bid
    assert w.stored_trip()["booking"]["state"] == "collecting"
    card = w.card()
    assert card["title"].startswith("Book together · MAD → LIS")
    assert [b["action_id"] for b in card["buttons"]] == ["booking.hold", "booking.cancel"]
    assert card["buttons"][0]["label"] == "Hold my share (≤ €100.01)"
    assert "(Lisbon time)" in {f["label"]: f["value"] for f in card["fields"]}["Hold by"]
    assert "Reserving" not in card["text"]

    await w.held_by(w.ana, w.ben)
    assert w.booking()["state"] == "collecting"
    assert w.stored_trip()["booking"]["held"] == 2
    assert "2 of 3 shares held" in w.card()["text"]
    assert [p["capture"] for p in w.payments()] == [False, False]
    assert w.provider.book_calls == []

    await w.held_by(w.cat)
    # The last hold's event only moves it on: the order is made by the timer, at once.
    booking = w.booking()
    assert booking["state"] == "booking" and booking["phase"] == "create"
    assert w.provider.steps == [] and w.booking_timers() == {f"bf-{bid}": w.sim.now}
    assert "Booking with the provider" in w.card()["text"]
    assert await w.steps() == ["booking.finish", "booking.finish"]  # the order, the holds
    assert [phase for _, phase in w.provider.steps] == ["create"]
    booking = w.booking()
    assert booking["state"] == "booked"
    assert booking["order"] == {"order_id": "ord_0001", "reference": "ZZ0001"}
    assert booking["order_id"] == "ord_0001"
    assert len(w.provider.orders) == 1 and len(w.provider.book_calls) == 1
    assert w.provider.book_calls[0] == {"key": bid, "hold_order_id": None}
    # every hold captured exactly once, for its share; the merchant has the total less fees
    payments = w.payments()
    assert len(payments) == 3 and {p["status"] for p in payments} == {"paid"}
    for p in payments:
        assert p["captured"] == booking["shares"][p["user_id"]] == p["amount"]
        assert w.events("payment.captured", p["id"]) == 1
    fees = sum(share // 100 for share in booking["shares"].values())
    assert w.sim.merchant_balance("EUR") == TOTAL - fees
    for user in (w.ana, w.ben, w.cat):
        assert w.sim.balance(user, "EUR") == START_BALANCE - booking["shares"][user.id]
    await w.sim.deliver_payment_events()  # payment.captured: recorded, nothing more
    assert {h["status"] for h in w.booking()["holds"].values()} == {"captured"}
    # the trip: the flight on the itinerary as booked, the lock given back
    trip = w.stored_trip()
    assert trip["booking"] is None
    (item,) = trip["items"]
    assert (item["status"], item["booking_id"], item["kind"]) == ("booked", bid, "flight")
    assert item["start"] == "2027-05-01T07:05" and item["zone"] == "Europe/Madrid"
    # the booking is the trip's expense: each traveller paid, and owes, their share
    (expense,) = w.sim.storage("expenses").values()
    assert expense["id"] == f"bk-{bid}" and expense["kind"] == "booking"
    assert expense["paid"] == expense["parts"] == booking["shares"]
    assert (expense["amount"], expense["currency"]) == (TOTAL, "EUR")
    assert trip["spent"] == {"EUR": TOTAL}
    # reminders: 24 h and 3 h before the flight
    assert w.reminders == [TRIP_ID]
    reminders = {k for k in w.g.timer_keys() if k.startswith(f"rm-{TRIP_ID}-{item['id']}-")}
    assert len(reminders) == 2
    assert w.webhooks == []  # a sample flight: no webhook to ask for
    assert "Booked · ref ZZ0001" in w.card()["text"] and "buttons" not in w.card()
    assert any("Booked ✓" in t and "ZZ0001" in t for t in w.texts())
    assert w.booking_timers() == {}  # no deadline, no finish left
    await w.sim.advance(hours=1)  # and nothing more happens
    assert len(w.provider.steps) == 1 and w.booking()["state"] == "booked"


async def test_a_holdable_flight_is_reserved_by_the_timer_and_its_hold_order_paid(
    w: World,
) -> None:
    message_id = await w.offer(holdable=True, expires_in=20 * MINUTE, pay_by_in=6 * HOUR)
    start = w.sim.now
    await w.book(w.ana, message_id)
    booking = w.booking()
    bid = booking["id"]
    # The press made its one provider request (reprice); the seats are reserved by the timer.
    assert w.provider.holds == {} and booking["phase"] == "reserve"
    assert booking["deadline_ms"] == start + 20 * MINUTE  # the offer's expiry, until reserved
    assert w.booking_timers() == {f"bd-{bid}": start + 20 * MINUTE, f"bf-{bid}": start}
    assert "Reserving the seats" in w.card()["text"]
    assert [b["action_id"] for b in w.card()["buttons"]] == ["booking.hold", "booking.cancel"]
    assert await w.steps() == ["booking.finish"]
    assert w.provider.holds == {
        f"{bid}-hold": {"order_id": "ord_hold_1", "pay_by_ms": ANY_INT, "reference": "HLD001"}
    }
    booking = w.booking()
    assert booking["hold_order"]["order_id"] == "ord_hold_1" and booking["phase"] is None
    assert booking["deadline_ms"] == start + 6 * HOUR  # the hold's pay-by now
    assert w.booking_timers() == {
        f"bd-{bid}": start + 6 * HOUR,  # moved
        f"bf-{bid}": start + 20 * SECOND,  # the step's safety net: finds nothing to do
    }
    assert w.stored_trip()["booking"]["deadline_ms"] == start + 6 * HOUR
    assert "Reserving" not in w.card()["text"]
    await w.sim.advance(seconds=20)
    assert len(w.provider.steps) == 1 and w.booking_timers() == {f"bd-{bid}": start + 6 * HOUR}
    await w.held_by(w.ana, w.ben, w.cat)
    assert w.provider.book_calls == []
    await w.steps()
    assert w.provider.book_calls == [{"key": bid, "hold_order_id": "ord_hold_1"}]
    assert w.provider.paid == ["ord_hold_1"] and len(w.provider.orders) == 1
    booking = w.booking()
    assert booking["state"] == "booked"
    assert booking["order"] == {"order_id": "ord_hold_1", "reference": "HOLDREF"}


async def test_a_long_hold_is_cut_to_24_hours(w: World) -> None:
    message_id = await w.offer(holdable=True, pay_by_in=3 * DAY)
    start = w.sim.now
    await w.book(w.ana, message_id)
    await w.steps()
    assert w.booking()["deadline_ms"] == start + 24 * HOUR


async def test_shares_held_while_reserving_wait_for_the_reservation(w: World) -> None:
    message_id = await w.offer(holdable=True, pay_by_in=6 * HOUR)
    await w.book(w.ana, message_id)
    bid = w.booking()["id"]
    w.provider.reserve_timeouts = 1  # the first reserve's answer is lost (nothing made)
    assert await w.steps() == ["booking.finish"]
    booking = w.booking()
    assert booking["phase"] == "reserve_lookup" and booking["hold_order"] is None
    assert booking["timeouts"] == 1 and booking["lease_until"] == 0
    assert w.booking_timers()[f"bf-{bid}"] == w.sim.now + 5 * SECOND
    await w.held_by(w.ana, w.ben, w.cat)  # everyone holds meanwhile
    booking = w.booking()
    assert booking["state"] == "booking" and booking["phase"] == "reserve_lookup"
    assert w.booking_timers() == {f"bf-{bid}": w.sim.now}
    await w.sim.advance(minutes=1)
    assert [phase for _, phase in w.provider.steps] == [
        "reserve",
        "reserve_lookup",  # not made
        "reserve",
        "create",  # the hold order paid
    ]
    booking = w.booking()
    assert booking["state"] == "booked" and booking["order"]["order_id"] == "ord_hold_1"
    assert w.provider.paid == ["ord_hold_1"] and len(w.provider.holds) == 1


async def test_a_refused_reservation_fails_the_booking_and_voids_every_hold(w: World) -> None:
    message_id = await w.offer(holdable=True, pay_by_in=6 * HOUR)
    await w.book(w.ana, message_id)
    await w.held_by(w.ben)  # held while reserving
    w.provider.refuse_reserve = "offer_expired"
    await w.steps()
    booking = w.booking()
    assert booking["state"] == "failed" and booking["reason"] == "The airline would not hold it"
    assert [p["status"] for p in w.payments()] == ["voided"]
    assert w.sim.balance(w.ben, "EUR") == START_BALANCE
    assert w.stored_trip()["booking"] is None and w.booking_timers() == {}
    assert "Not booked: The airline would not hold it" in w.card()["text"]
    assert any(t.startswith("Could not book") for t in w.texts())
    error = await w.g.refused(w.ana, "booking.hold", {"booking_id": booking["id"]})
    assert error.code == "no_booking"


async def test_a_reservation_held_too_briefly_fails_the_booking(w: World) -> None:
    message_id = await w.offer(holdable=True, pay_by_in=6 * HOUR)
    await w.book(w.ana, message_id)
    w.provider.pay_by_ms = w.sim.now + MINUTE  # the airline holds it for a minute only
    await w.steps()
    booking = w.booking()
    assert booking["state"] == "failed" and "too briefly" in booking["reason"]
    assert w.booking_timers() == {} and w.stored_trip()["booking"] is None


async def test_the_deadline_passing_while_reserving_ends_it_and_no_step_runs(w: World) -> None:
    message_id = await w.offer(holdable=True, expires_in=10 * MINUTE, pay_by_in=6 * HOUR)
    await w.book(w.ana, message_id)
    w.provider.reserve_timeouts = 1
    w.provider.lookup_timeouts = 1000  # the provider cannot tell: no reservation in time
    await w.sim.advance(minutes=10)
    booking = w.booking()
    assert booking["state"] == "voided" and booking["reason"].startswith("Not held in time")
    steps = len(w.provider.steps)
    assert w.booking_timers() == {}
    await w.sim.advance(hours=1)
    assert len(w.provider.steps) == steps


async def test_duffel_bookings_ensure_the_webhook(w: World) -> None:
    message_id = await w.offer(provider="duffel")
    await w.book(w.ana, message_id)
    await w.held_by(w.ana, w.ben, w.cat)
    assert w.webhooks == []
    assert await w.steps() == ["booking.finish"] * 3  # the order, the webhook, the holds
    assert w.booking()["state"] == "booked" and w.webhooks == ["duffel"]


# --- holds: asking again, declining -----------------------------------------------------------


async def test_pressing_hold_again_asks_the_same_payment(w: World) -> None:
    await w.book(w.ana, await w.offer())
    first = await w.hold(w.ben)
    fields = {f["label"]: f["value"] for f in w.card()["fields"]}
    euros = {u: f"€{c / 100:.2f}" for u, c in w.booking()["shares"].items()}
    assert fields["Ben"] == f"{euros[w.ben.id]} · confirming in the wallet…"
    assert fields["Ana"] == f"{euros[w.ana.id]} · waiting"
    reply = await w.g.press(w.ben, w.booking()["card_message_id"], "booking.hold")
    assert f"You asked already: confirm the hold of {euros[w.ben.id]}" in reply["ephemeral"]
    assert await w.hold(w.ben) == first
    assert len(w.payments()) == 1
    assert w.payments()[0]["order_ref"] == f"book-{w.booking()['id']}-{w.ben.id}"
    await w.sim.confirm_payment(w.ben, first)
    reply = await w.g.press(w.ben, w.booking()["card_message_id"], "booking.hold")
    assert "Your share is held ✓ (1/3 held)" in reply["ephemeral"]
    assert len(w.payments()) == 1


async def test_a_declined_hold_can_be_held_again(w: World) -> None:
    await w.book(w.ana, await w.offer())
    first = await w.hold(w.ben)
    await w.sim.cancel_payment(w.ben, first)
    assert w.booking()["holds"][w.ben.id]["status"] == "declined"
    assert w.booking()["state"] == "collecting"
    second = await w.hold(w.ben)
    assert second != first
    bid = w.booking()["id"]
    assert w.sim.payments[second]["order_ref"] == f"book-{bid}-{w.ben.id}.2"
    await w.sim.confirm_payment(w.ben, second)
    await w.held_by(w.ana, w.cat)
    await w.steps()
    assert w.booking()["state"] == "booked"
    assert w.sim.payments[first]["status"] == "cancelled"
    assert w.sim.payments[second]["status"] == "paid"


async def test_a_declined_hold_whose_event_is_late_is_asked_anew(w: World) -> None:
    await w.book(w.ana, await w.offer())
    first = await w.hold(w.ben)
    # the wallet closed the request, but its payment.failed has not reached the app yet
    w.sim._payments[first]["status"] = "expired"
    second = await w.hold(w.ben)
    assert second != first and w.booking()["holds"][w.ben.id]["n"] == 2


# --- one traveller late ------------------------------------------------------------------------


async def test_one_traveller_late_voids_every_hold(w: World) -> None:
    await w.book(w.ana, await w.offer(expires_in=2 * HOUR))
    booking = w.booking()
    await w.held_by(w.ana, w.ben)
    late = await w.hold(w.cat)  # asked, not confirmed in time
    assert w.sim.balance(w.ana, "EUR") == START_BALANCE - booking["shares"][w.ana.id]
    fired = await w.sim.advance(hours=2)
    assert [f["name"] for f in fired] == ["booking.deadline"]
    booking = w.booking()
    assert booking["state"] == "voided" and booking["reason"] == "Not held in time by Cat"
    assert w.provider.book_calls == [] and w.provider.orders == []
    for user in (w.ana, w.ben, w.cat):  # the authorized holds released: balances back
        assert w.sim.balance(user, "EUR") == START_BALANCE
    assert [p["status"] for p in w.payments()] == ["voided", "voided", "requested"]
    assert {h["status"] for h in booking["holds"].values()} == {"voided"}
    assert w.stored_trip()["booking"] is None
    assert "Not booked: Not held in time by Cat" in w.card()["text"]
    assert "buttons" not in w.card()
    assert any("Not held in time by Cat" in t for t in w.texts())
    # Cat confirms afterwards: voided at once, nothing charged
    await w.sim.confirm_payment(w.cat, late)
    assert w.sim.payments[late]["status"] == "voided"
    assert w.sim.balance(w.cat, "EUR") == START_BALANCE
    assert w.sim.merchant_balance("EUR") == 0
    assert "ended before your hold came through" in w.g.said(w.cat)
    # and holding after the deadline is refused
    error = await w.g.refused(w.cat, "booking.hold", {"booking_id": booking["id"]})
    assert error.code == "deadline_passed"


async def test_a_hold_authorized_after_the_deadline_before_its_timer_is_voided(w: World) -> None:
    await w.book(w.ana, await w.offer(expires_in=2 * HOUR))
    await w.held_by(w.ana, w.ben)
    late = await w.hold(w.cat)
    w.sim.now += 2 * HOUR  # past the deadline; the timer has not fired yet
    await w.sim.confirm_payment(w.cat, late)
    assert w.sim.payments[late]["status"] == "voided"
    assert w.booking()["state"] == "collecting" and w.provider.book_calls == []
    await w.sim.advance(seconds=1)
    assert w.booking()["state"] == "voided"
    assert all(w.sim.balance(u, "EUR") == START_BALANCE for u in (w.ana, w.ben, w.cat))


# --- the provider times out or refuses ---------------------------------------------------------


async def test_a_lost_order_answer_is_looked_up_soon_and_not_ordered_again(w: World) -> None:
    await w.book(w.ana, await w.offer())
    bid = w.booking()["id"]
    w.provider.timeouts = 1
    w.provider.made_on_timeout = True  # the order is made, its answer lost
    await w.held_by(w.ana, w.ben, w.cat)
    assert await w.steps() == ["booking.finish"]
    booking = w.booking()
    assert booking["state"] == "booking" and booking["order"] is None
    assert (booking["phase"], booking["timeouts"], booking["lease_until"]) == ("lookup", 1, 0)
    assert w.booking_timers() == {f"bf-{bid}": w.sim.now + 5 * SECOND}  # looked up soon
    assert w.payments("authorized") and not w.payments("paid")  # nothing captured yet
    # (the timed-out step wrote only what must be: its time is used up; the next one redraws)
    assert "slow to answer" not in w.card()["text"]
    await w.sim.advance(seconds=5)
    booking = w.booking()
    assert booking["state"] == "booked" and booking["order"]["order_id"] == "ord_0001"
    assert [phase for _, phase in w.provider.steps] == ["create", "lookup"]
    assert len(w.provider.orders) == 1 and len(w.provider.book_calls) == 1
    assert len(w.payments("paid")) == 3
    for p in w.payments():
        assert w.events("payment.captured", p["id"]) == 1
    assert [e["id"] for e in w.expenses] == [bid]
    await w.sim.advance(minutes=5)  # nothing left to do
    assert len(w.provider.steps) == 2 and w.booking_timers() == {}


async def test_provider_timeouts_without_an_order_then_success(w: World) -> None:
    await w.book(w.ana, await w.offer())
    w.provider.timeouts = 3  # nothing made
    await w.held_by(w.ana, w.ben, w.cat)
    await w.sim.advance(seconds=5)  # the create timed out, its look-up found nothing
    assert "The provider is slow to answer: trying again shortly." in w.card()["text"]
    await w.sim.advance(minutes=3)
    booking = w.booking()
    assert booking["state"] == "booked" and booking["timeouts"] == 3
    # each lost create looked up before the next one: never two creates in a row
    assert [phase for _, phase in w.provider.steps] == ["create", "lookup"] * 3 + ["create"]
    fired = [f for f in w.sim.timers_fired if f["name"] == "booking.finish"]
    creates = [f["at"] for f in fired][::2][:4]  # each create's firing
    assert [b - a for a, b in itertools.pairwise(creates)] == [
        10 * SECOND,  # the look-up 5 s after the timeout, the next create 5 s after that
        15 * SECOND,  # … then 10 s after
        25 * SECOND,  # … 20 s: backing off
    ]
    assert len(w.provider.orders) == 1 and len(w.payments("paid")) == 3


async def test_look_ups_that_time_out_are_retried_every_minute_never_ordering_blind(
    w: World,
) -> None:
    await w.book(w.ana, await w.offer())
    bid = w.booking()["id"]
    w.provider.timeouts = 1
    w.provider.made_on_timeout = True
    w.provider.lookup_timeouts = 3  # the provider cannot tell whether the order was made
    await w.held_by(w.ana, w.ben, w.cat)
    await w.sim.advance(seconds=5)  # the create (lost), the first look-up (timed out)
    assert w.booking()["phase"] == "lookup"
    assert w.booking_timers() == {f"bf-{bid}": w.sim.now + MINUTE}
    await w.sim.advance(minutes=3)
    assert [phase for _, phase in w.provider.steps] == ["create"] + ["lookup"] * 4
    assert w.booking()["state"] == "booked" and len(w.provider.orders) == 1


async def test_an_order_found_after_many_timeouts_is_finished_not_failed(w: World) -> None:
    await w.book(w.ana, await w.offer())
    w.provider.timeouts = 1
    w.provider.made_on_timeout = True  # made, its answer lost …
    w.provider.lookup_timeouts = 9  # … and the provider slow to tell: ten timeouts in all
    await w.held_by(w.ana, w.ben, w.cat)
    await w.sim.advance(minutes=15)
    booking = w.booking()
    assert booking["state"] == "booked" and booking["timeouts"] == 10
    assert [phase for _, phase in w.provider.steps] == ["create"] + ["lookup"] * 10
    assert len(w.provider.orders) == 1 and len(w.payments("paid")) == 3


async def test_a_provider_that_keeps_timing_out_fails_the_booking_and_voids_all(
    w: World,
) -> None:
    await w.book(w.ana, await w.offer())
    w.provider.timeouts = 1000
    await w.held_by(w.ana, w.ben, w.cat)
    await w.sim.advance(minutes=30)
    booking = w.booking()
    assert booking["state"] == "failed" and booking["timeouts"] == 10
    assert booking["reason"] == "the provider did not answer, however often we asked"
    # given up where nothing can have been made: a look-up found nothing
    assert [phase for _, phase in w.provider.steps] == ["create", "lookup"] * 10
    assert len(w.provider.book_calls) == 10 and w.provider.orders == []
    assert [p["status"] for p in w.payments()] == ["voided"] * 3
    assert all(w.sim.balance(u, "EUR") == START_BALANCE for u in (w.ana, w.ben, w.cat))
    assert w.stored_trip()["booking"] is None and w.stored_trip()["items"] == []
    assert any(t.startswith("Could not book") for t in w.texts())
    assert w.booking_timers() == {}


async def test_look_ups_that_never_answer_give_up_after_twice_as_many(w: World) -> None:
    await w.book(w.ana, await w.offer())
    w.provider.timeouts = 1
    w.provider.lookup_timeouts = 1000  # whether the order was made is never known
    await w.held_by(w.ana, w.ben, w.cat)
    await w.sim.advance(minutes=30)
    booking = w.booking()
    assert booking["state"] == "failed" and booking["timeouts"] == 20
    assert [phase for _, phase in w.provider.steps] == ["create"] + ["lookup"] * 19
    assert [p["status"] for p in w.payments()] == ["voided"] * 3
    assert w.booking_timers() == {}


async def test_a_provider_refusal_fails_the_booking_and_voids_all(w: World) -> None:
    await w.book(w.ana, await w.offer())
    w.provider.refuse = "offer_expired"
    await w.held_by(w.ana, w.ben, w.cat)
    await w.steps()
    booking = w.booking()
    assert booking["state"] == "failed"
    assert booking["reason"] == "The airline refused the booking"
    assert [p["status"] for p in w.payments()] == ["voided"] * 3
    assert all(w.sim.balance(u, "EUR") == START_BALANCE for u in (w.ana, w.ben, w.cat))
    assert "Not booked: The airline refused the booking" in w.card()["text"]
    assert w.expenses == [] and w.stored_trip()["items"] == []
    assert w.booking_timers() == {}


# --- races -------------------------------------------------------------------------------------


async def test_the_last_two_holds_at_once_finish_once(w: World) -> None:
    await w.book(w.ana, await w.offer())
    await w.held_by(w.ana)
    ben, cat = await w.hold(w.ben), await w.hold(w.cat)
    await asyncio.gather(w.sim.confirm_payment(w.ben, ben), w.sim.confirm_payment(w.cat, cat))
    assert w.booking()["state"] == "booking"
    await w.steps()
    booking = w.booking()
    assert booking["state"] == "booked"
    assert len(w.provider.book_calls) == 1 and len(w.provider.orders) == 1
    assert len(w.payments("paid")) == 3
    for p in w.payments():
        assert w.events("payment.captured", p["id"]) == 1
    assert len(w.expenses) == 1 and len(w.stored_trip()["items"]) == 1
    assert sum("Booked ✓" in t for t in w.texts()) == 1
    assert sum(t.startswith("Everyone has held") for t in w.texts()) == 1


async def test_two_book_presses_at_once_make_one_booking(w: World) -> None:
    message_id = await w.offer()
    replies = await asyncio.gather(w.book(w.ana, message_id), w.book(w.ben, message_id))
    texts = sorted(r["ephemeral"] for r in replies)
    assert texts[0].startswith("A booking is in progress for this trip")
    assert "Hold my share" in texts[1]
    booking = w.booking()  # exactly one
    assert w.stored_trip()["booking"]["id"] == booking["id"]
    assert w.booking_timers() == {f"bd-{booking['id']}": booking["deadline_ms"]}
    cards = [m for m in w.sim.messages(w.g.chat) if m["type"] == "card"]
    assert sum(c["card"]["title"].startswith("Book together") for c in cards) == 1


async def test_the_deadline_fired_twice_voids_once(w: World) -> None:
    await w.book(w.ana, await w.offer())
    await w.held_by(w.ana, w.ben)
    await fire_twice(w, f"bd-{w.booking()['id']}")
    assert w.booking()["state"] == "voided"
    assert sum(t.startswith("Not booked") for t in w.texts()) == 1
    for p in w.payments():
        assert p["status"] == "voided" and w.events("payment.voided", p["id"]) == 1
    assert all(w.sim.balance(u, "EUR") == START_BALANCE for u in (w.ana, w.ben, w.cat))


async def test_the_finish_timer_fired_twice_books_once(w: World) -> None:
    await w.book(w.ana, await w.offer())
    w.provider.timeouts = 1
    await w.held_by(w.ana, w.ben, w.cat)
    bid = w.booking()["id"]
    for _ in range(4):  # each step's timer fired twice at once
        answers = await fire_twice(w, f"bf-{bid}")
        # one ran the step; the other found it running (busy: the host fires it again) or ran
        # the step after it
        for answer in answers:
            assert not isinstance(answer, Exception) or (
                isinstance(answer, AppCallError) and answer.code == "busy"
            ), answer
        if w.booking()["state"] == "booked":
            break
    await w.sim.advance(minutes=1)
    assert w.booking()["state"] == "booked"
    assert len(w.provider.orders) == 1
    phases = [phase for _, phase in w.provider.steps]
    assert phases.count("create") == 2 and phases.index("lookup") < phases.index("create", 1)
    for p in w.payments():
        assert w.events("payment.captured", p["id"]) == 1
    assert len(w.expenses) == 1 and len(w.stored_trip()["items"]) == 1
    assert sum("Booked ✓" in t for t in w.texts()) == 1


async def test_a_settling_step_cut_short_is_taken_over_by_its_timer(w: World, monkeypatch) -> None:
    await w.book(w.ana, await w.offer())
    booking_module = app_module("booking_holds")
    real = booking_module.capture_all

    async def dies(ctx, booking):  # the invocation dies after the order was made
        raise RuntimeError("node lost")

    monkeypatch.setattr(booking_module, "capture_all", dies)
    await w.held_by(w.ana, w.ben, w.cat)
    with pytest.raises(AppCallError):  # the timer's firing fails, as a dying process's would
        await w.steps()
    monkeypatch.setattr(booking_module, "capture_all", real)
    booking = w.booking()
    assert booking["state"] == "booking" and booking["order"]["order_id"] == "ord_0001"
    assert booking["phase"] == "settle" and booking["lease_until"] > w.sim.now
    bid = booking["id"]
    assert w.booking_timers() == {f"bf-{bid}": booking["lease_until"]}  # the safety net
    await w.sim.advance(seconds=20)  # the lease ends, the timer finishes it
    assert w.booking()["state"] == "booked"
    assert len(w.provider.orders) == 1 and len(w.payments("paid")) == 3


async def test_a_create_cut_short_mid_request_is_looked_up_not_sent_again(
    w: World, monkeypatch
) -> None:
    await w.book(w.ana, await w.offer())
    real = w.provider.step

    async def killed(ctx, offer, key, phase, **kwargs):  # the order made, then the process dies
        await real(ctx, offer, key, phase, **kwargs)
        raise RuntimeError("killed at the call deadline")

    monkeypatch.setattr(app_module("providers"), "step", killed)
    await w.held_by(w.ana, w.ben, w.cat)
    with pytest.raises(AppCallError):
        await w.steps()
    monkeypatch.setattr(app_module("providers"), "step", real)
    booking = w.booking()
    assert (booking["phase"], booking["create_sent"]) == ("create", True)  # sent, no answer
    assert len(w.provider.orders) == 1
    await w.sim.advance(seconds=20)
    booking = w.booking()
    assert booking["state"] == "booked" and booking["timeouts"] == 1
    assert [phase for _, phase in w.provider.steps] == ["create", "lookup"]  # not created again
    assert len(w.provider.orders) == 1 and booking["order"]["order_id"] == "ord_0001"


# --- cancel, /trip book -------------------------------------------------------------------------


async def test_the_starter_cancels(w: World) -> None:
    await w.book(w.ben, await w.offer())
    await w.held_by(w.ana)
    reply = await w.g.press(w.ben, w.booking()["card_message_id"], "booking.cancel")
    assert reply["ephemeral"] == "Booking cancelled: every hold was released."
    booking = w.booking()
    assert booking["state"] == "voided" and booking["reason"] == "cancelled by Ben"
    assert w.payments()[0]["status"] == "voided"
    assert w.sim.balance(w.ana, "EUR") == START_BALANCE
    assert w.stored_trip()["booking"] is None and w.booking_timers() == {}
    error = await w.g.refused(w.ana, "booking.hold", {"booking_id": booking["id"]})
    assert error.code == "no_booking"
    # a new booking may start now
    await w.book(w.ana, await w.offer("off_0002"))
    assert len(w.bookings()) == 2


async def test_the_trip_creator_cancels_with_the_command(w: World) -> None:
    await w.book(w.ben, await w.offer())
    reply = await w.g.command(w.ana, "/trip book")
    assert reply["ephemeral"]["title"].startswith("Book together")
    reply = await w.g.command(w.ana, "/trip book cancel")
    assert reply["ephemeral"] == "Booking cancelled: every hold was released."
    assert w.booking()["reason"] == "cancelled by Ana"
    reply = await w.g.command(w.ana, "/trip book")
    assert reply["ephemeral"].startswith("No booking in progress")
    reply = await w.g.command(w.ana, "/trip book cancel")
    assert reply["ephemeral"] == "No booking in progress to cancel."


async def test_views(w: World) -> None:
    await w.offer()
    assert await w.g.view(w.ana, "booking.get") == {"booking": None}
    started = (await w.g.view(w.ana, "booking.start", {"offer_id": "off_0001"}))["booking"]
    assert "raw" not in started["offer"] and started["held"] == 0
    bid = started["id"]
    assert (await w.g.view(w.ben, "booking.get"))["booking"]["id"] == bid
    held = await w.g.view(w.ben, "booking.hold", {"booking_id": bid})
    assert held["status"] == "requested" and held["payment_id"]
    await w.sim.confirm_payment(w.ben, held["payment_id"])
    got = (await w.g.view(w.ben, "booking.get", {"booking_id": bid}))["booking"]
    assert got["held"] == 1 and got["holds"][w.ben.id]["status"] == "authorized"
    cancelled = (await w.g.view(w.ana, "booking.cancel", {"booking_id": bid}))["booking"]
    assert cancelled["state"] == "voided"
    assert w.sim.payments[held["payment_id"]]["status"] == "voided"


# --- bad input: a clear error, nothing written --------------------------------------------------


async def refused_press(w: World, user, message_id: str, action: str, value=None) -> str:
    before = w.g.snapshot()
    reply = await w.g.press(user, message_id, action, value)
    assert w.g.snapshot() == before
    return reply["ephemeral"]


async def test_bad_starts_write_nothing(w: World) -> None:
    message_id = await w.offer()
    text = await refused_press(w, w.dan, message_id, "offer.book")
    assert text.startswith("Only the trip's travellers")
    text = await refused_press(w, w.ana, message_id, "offer.book", "off_nope")
    assert text.startswith("That offer is gone")
    text = await refused_press(w, w.ana, message_id, "offer.book", "../../etc")
    assert text.startswith("That offer is gone")
    for params, code in [
        ({"offer_id": "off_nope"}, "offer_expired"),
        ({"offer_id": 7}, "offer_expired"),
        ({}, "offer_expired"),
    ]:
        before = w.g.snapshot()
        assert (await w.g.refused(w.ana, "booking.start", params)).code == code
        assert w.g.snapshot() == before
    assert (await w.g.refused(w.dan, "booking.start", {"offer_id": "off_0001"})).code == (
        "not_a_traveller"
    )
    # expired by the clock: no call to the provider
    w.sim.now += 31 * MINUTE
    text = await refused_press(w, w.ana, message_id, "offer.book")
    assert text == "That offer has expired: search again."
    assert w.provider.reprices == 0


async def test_an_offer_expired_at_the_provider_or_repriced_writes_nothing(w: World) -> None:
    message_id = await w.offer()
    w.provider.expired = True
    text = await refused_press(w, w.ana, message_id, "offer.book")
    assert text == "That offer has expired: search again."
    w.provider.expired = False
    w.provider.price_now = 31_500
    before = w.g.snapshot()
    reply = await w.book(w.ana, message_id)
    assert reply["ephemeral"] == "The price changed: now 315.00"
    after = w.g.snapshot()
    assert after["offers"]["off_0001"]["total"]["amount"] == 31_500  # only the re-stored offer
    after["offers"] = before["offers"]
    assert after == before
    assert "bookings" not in after or after["bookings"] == {}
    assert w.booking_timers() == {}


async def test_an_offer_about_to_expire_cannot_be_booked(w: World) -> None:
    message_id = await w.offer(expires_in=90_000)
    text = await refused_press(w, w.ana, message_id, "offer.book")
    assert text == "That offer expires too soon to hold: search again."


async def test_a_second_booking_while_one_collects_is_refused(w: World) -> None:
    first = await w.offer()
    second = await w.offer("off_0002")
    await w.book(w.ana, first)
    text = await refused_press(w, w.ben, second, "offer.book")
    assert text.startswith("A booking is in progress for this trip: MAD → LIS")
    assert "(0/3 held)" in text
    assert (await w.g.refused(w.ben, "booking.start", {"offer_id": "off_0002"})).code == (
        "booking_in_progress"
    )


async def test_bad_holds_and_cancels_write_nothing(w: World) -> None:
    await w.book(w.ana, await w.offer())
    booking = w.booking()
    card_id, bid = booking["card_message_id"], booking["id"]
    text = await refused_press(w, w.dan, card_id, "booking.hold")
    assert text == "You have no share in this booking."
    assert (await w.g.refused(w.dan, "booking.hold", {"booking_id": bid})).code == (
        "not_your_share"
    )
    for value in ("bk-nope", "bk0000000000", ""):
        text = await refused_press(w, w.ben, card_id, "booking.hold", value)
        assert text == "No such booking in this chat."
    text = await refused_press(w, w.ben, card_id, "booking.cancel")
    assert text.startswith("Only Ana (who started it) or the trip's creator")
    assert (await w.g.refused(w.cat, "booking.cancel", {"booking_id": bid})).code == (
        "not_your_booking"
    )
    # another chat's booking is not this chat's
    other = w.sim.conversation(members=[w.ana, w.ben])
    with pytest.raises(Exception) as err:
        await w.sim.view(w.ben, other, "booking.hold", {"booking_id": bid})
    assert getattr(err.value, "code", "") == "no_booking"
    # after the deadline
    w.sim.now = booking["deadline_ms"]
    text = await refused_press(w, w.ben, card_id, "booking.hold")
    assert text == "The deadline to hold has passed."
    assert w.payments() == []


# --- the whole app: the sample provider, then Duffel's stub -------------------------------------


async def travellers_plan(g: Group, new: str, search: str) -> str:
    """Ana starts the trip, Ben and Cat join, Ana searches: the flight offers' card id."""
    for name in ("ana", "ben", "cat", "dan"):
        g.sim.set_balance(g.person(name), "EUR", START_BALANCE)
        g.sim.set_balance(g.person(name), "GBP", START_BALANCE)
    people = g.people
    await g.command(people["ana"], new)
    for name in ("ben", "cat"):
        assert (await g.command(people[name], "/trip join"))["ephemeral"].startswith("You're in")
    await g.command(people["ana"], search)
    cards = [m for m in g.sim.messages(g.chat) if m["type"] == "card"]
    assert cards[-1]["card"]["title"].startswith("Flights"), cards[-1]
    return cards[-1]["id"]


def offer_of(g: Group, *, holdable: bool) -> dict[str, Any]:
    return next(o for o in g.sim.storage("offers").values() if o["holdable"] is holdable)


def the_booking(g: Group) -> dict[str, Any]:
    (booking,) = g.sim.storage("bookings").values()
    return booking


async def hold_and_confirm(g: Group, *names: str) -> None:
    for name in names:
        user = g.people[name]
        card_id = the_booking(g)["card_message_id"]
        await g.press(user, card_id, "booking.hold")
        await g.sim.confirm_payment(user, the_booking(g)["holds"][user.id]["payment_id"])


@pytest.fixture
async def live(monkeypatch) -> tuple[Group, str]:
    g = open_group(monkeypatch)
    card_id = await travellers_plan(
        g, '/trip new "Lisbon" 2027-05-01 2027-05-05 from MAD', "/trip flights LIS 2027-05-01"
    )
    return g, card_id


async def test_sample_flight_held_at_the_provider_booked_by_everyone(live) -> None:
    g, card_id = live
    sim, ana = g.sim, g.people["ana"]
    offer = offer_of(g, holdable=True)
    await g.press(ana, card_id, "offer.book", offer["id"])
    assert sim.storage("sample_orders") == {}  # reserved by the timer, not by the press
    assert (await sim.advance(seconds=0))[0]["name"] == "booking.finish"
    booking = the_booking(g)
    (order,) = sim.storage("sample_orders").values()  # the hold order, awaiting payment
    assert order["type"] == "hold" and order["payment_status"]["awaiting_payment"] is True
    assert booking["hold_order"]["order_id"] == order["id"]
    assert booking["deadline_ms"] == offer["pay_by_ms"] == sim.now + DAY
    await hold_and_confirm(g, "ana", "ben", "cat")
    await sim.advance(seconds=0)
    booking = the_booking(g)
    assert booking["state"] == "booked" and booking["order"]["order_id"] == order["id"]
    (paid,) = sim.storage("sample_orders").values()
    assert paid["payment_status"]["awaiting_payment"] is False  # paid once, not booked again
    payments = [p for p in sim.payments.values() if p["order_ref"].startswith("book-")]
    assert {p["status"] for p in payments} == {"paid"}
    assert sum(p["captured"] for p in payments) == offer["total"]["amount"]
    assert sim.merchant_balance("EUR") == offer["total"]["amount"]
    trip = g.trip()
    flights = [i for i in trip["items"] if i["booking_id"] == booking["id"]]
    assert [i["status"] for i in flights] == ["booked"] and trip["booking"] is None
    assert flights[0]["start"].startswith("2027-05-01T18:")  # the evening flight, local time
    assert sim.storage("expenses")[f"bk-{booking['id']}"]["paid"] == booking["shares"]
    reference = booking["order"]["reference"]
    assert f"Booked · ref {reference}" in sim.card(booking["card_message_id"])["text"]
    texts = [m["text"] for m in sim.messages(g.chat) if m["type"] == "text"]
    assert sum(f"ref {reference}" in t for t in texts) == 1


async def test_sample_flight_one_late_voids_all_and_books_nothing(live) -> None:
    g, card_id = live
    sim = g.sim
    offer = offer_of(g, holdable=False)  # valid 30 minutes: that is the deadline
    await g.press(g.people["ben"], card_id, "offer.book", offer["id"])
    await hold_and_confirm(g, "ana", "ben")
    await sim.advance(minutes=30)
    booking = the_booking(g)
    assert booking["state"] == "voided" and booking["reason"] == "Not held in time by Cat"
    assert sim.storage("sample_orders") == {}
    for name in ("ana", "ben", "cat"):
        assert sim.balance(g.people[name], "EUR") == START_BALANCE
    assert g.trip()["booking"] is None and g.trip()["items"] == []
    assert sim.storage("expenses") == {}


async def test_sample_concurrent_last_holds_and_presses(live) -> None:
    g, card_id = live
    sim = g.sim
    offer = offer_of(g, holdable=False)
    people = g.people
    replies = await asyncio.gather(
        g.press(people["ana"], card_id, "offer.book", offer["id"]),
        g.press(people["cat"], card_id, "offer.book", offer["id"]),
    )
    assert sum(r["ephemeral"].startswith("A booking is in progress") for r in replies) == 1
    await hold_and_confirm(g, "ana")
    booking = the_booking(g)
    for name in ("ben", "cat"):
        await g.press(people[name], booking["card_message_id"], "booking.hold")
    holds = the_booking(g)["holds"]
    await asyncio.gather(
        *(sim.confirm_payment(people[n], holds[people[n].id]["payment_id"]) for n in ("ben", "cat"))
    )
    await sim.advance(seconds=0)
    assert the_booking(g)["state"] == "booked"
    assert len(sim.storage("sample_orders")) == 1
    captures = [e for e in sim.payment_events if e["name"] == "payment.captured"]
    assert len(captures) == 3 and len({e["payload"]["payment_id"] for e in captures}) == 3
    assert len(sim.storage("expenses")) == 1


async def test_sample_stay_booked_together(live) -> None:
    g, _ = live
    sim = g.sim
    await g.command(g.people["ana"], "/trip stays")
    card = [m for m in sim.messages(g.chat) if m["type"] == "card"][-1]
    stay = next(o for o in sim.storage("offers").values() if o["kind"] == "stay")
    await g.press(g.people["cat"], card["id"], "offer.book", stay["id"])
    booking = the_booking(g)
    assert booking["deadline_ms"] == stay["expires_ms"] and booking["phase"] is None
    await hold_and_confirm(g, "ana", "ben", "cat")
    assert the_booking(g)["phase"] == "quote"
    fired = await sim.advance(seconds=0)
    assert [f["name"] for f in fired] == ["booking.finish"] * 3  # quote, booking, the holds
    booking = the_booking(g)
    assert booking["state"] == "booked" and booking["kind"] == "stay"
    assert list(sim.storage("sample_stay_bookings")) == [booking["id"]]
    assert list(sim.storage("stay_quotes")) == [booking["id"]]
    (item,) = [i for i in g.trip()["items"] if i["booking_id"] == booking["id"]]
    assert item["kind"] == "stay" and item["status"] == "booked"
    assert sum(p["captured"] for p in sim.payments.values()) == stay["total"]["amount"]


# --- Duffel's stub over real HTTP: one request that may be slow per invocation -----------------

CALL: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("call", default=None)


class Invocations:
    """Every app invocation of the simulator with the provider requests it made (``http.fetch``)
    and how many of them timed out: ``{method, name, requests, timeouts}``."""

    def __init__(self, sim, monkeypatch) -> None:
        self.seen: list[dict[str, Any]] = []
        capability, invoke = sim._capability, sim._invoke

        async def counted(method: str, params: dict[str, Any]) -> dict[str, Any]:
            call = CALL.get()
            if method == "http.fetch" and call is not None:
                call["requests"] += 1
            try:
                return await capability(method, params)
            except HostError as exc:
                if method == "http.fetch" and exc.code == "timeout" and call is not None:
                    call["timeouts"] += 1
                raise

        async def invoked(method, user, conversation, params):
            name = params.get("name") or params.get("action_id") or params.get("event")
            call = {"method": method, "name": name, "requests": 0, "timeouts": 0}
            self.seen.append(call)
            token = CALL.set(call)
            try:
                return await invoke(method, user, conversation, params)
            finally:
                CALL.reset(token)

        monkeypatch.setattr(sim, "_capability", counted)
        monkeypatch.setattr(sim, "_invoke", invoked)

    def check(self) -> None:
        """The invariant: no invocation made more than one provider request that timed out;
        a ``booking.finish`` firing made one request at most, a payment event none."""
        for call in self.seen:
            assert call["timeouts"] <= 1, call
            if call["name"] == "booking.finish":
                assert call["requests"] <= 1, call
            if call["method"] == "event":
                assert call["requests"] == 0, call

    def finish_firings(self) -> list[dict[str, Any]]:
        return [c for c in self.seen if c["name"] == "booking.finish"]


@pytest.fixture
async def duffel(monkeypatch) -> AsyncIterator[tuple[Group, DuffelStub, str]]:
    g = open_group(monkeypatch)
    stub = DuffelStub(now=lambda: dt.datetime.fromtimestamp(g.sim.now / 1000, dt.UTC))
    await stub.start()
    # A held-back answer is given up after 0.3 s (the host: 2.5 s); an invocation has 2 s
    # (the host: 3 s) — the count of requests per invocation is what the tests check.
    g.sim.deadline = 2
    for name, value in (
        ("flights_provider", "duffel"),
        ("duffel_api_url", stub.url),
        ("duffel_api_key", API_KEY),
    ):
        g.sim.set_config(name, value)
    serve_fetch(g.sim, monkeypatch, timeout=0.3)
    calls: list[str] = []
    spy(monkeypatch, app_module("changes"), "ensure_webhook", calls, lambda: "duffel")
    g.webhook_calls = calls  # type: ignore[attr-defined]
    card_id = await travellers_plan(
        g, '/trip new "New York" 2027-05-01 2027-05-05 from LHR', "/trip flights JFK 2027-05-01"
    )
    g.invocations = Invocations(g.sim, monkeypatch)  # type: ignore[attr-defined]
    yield g, stub, card_id
    g.invocations.check()  # type: ignore[attr-defined]
    await stub.close()


def creates(stub: DuffelStub) -> list[dict[str, Any]]:
    return [r for r in stub.requests if (r["method"], r["path"]) == ("POST", "/air/orders")]


def direct(g: Group) -> dict[str, Any]:
    return next(o for o in g.sim.storage("offers").values() if o["total"]["amount"] == 42050)


async def test_duffel_all_held_one_order(duffel) -> None:
    g, stub, card_id = duffel
    offer = direct(g)
    await g.press(g.people["ana"], card_id, "offer.book", offer["id"])
    assert the_booking(g)["deadline_ms"] == offer["expires_ms"]
    await hold_and_confirm(g, "ana", "ben", "cat")
    assert creates(stub) == []  # not in the payment event
    await g.sim.advance(seconds=0)
    booking = the_booking(g)
    assert booking["state"] == "booked"
    (order,) = stub.orders
    assert booking["order"] == {"order_id": order["id"], "reference": order["booking_reference"]}
    assert order["metadata"] == {"idempotency_key": booking["id"]}
    assert order["type"] == "instant" and order["total_amount"] == "420.50"
    assert len(order["passengers"]) == 3
    assert g.sim.merchant_balance("GBP") == 42050
    assert {p["status"] for p in g.sim.payments.values()} == {"paid"}
    assert g.webhook_calls == ["duffel"]  # type: ignore[attr-defined]
    # the press made one request (the re-price); each step one at the most
    press = [c for c in g.invocations.seen if c["name"] == "offer.book"]  # type: ignore[attr-defined]
    assert [c["requests"] for c in press] == [1]
    firings = g.invocations.finish_firings()  # type: ignore[attr-defined]
    assert [c["requests"] for c in firings] == [1, 1, 0]  # the order, the webhook, the holds


async def test_duffel_order_answer_lost_is_found_not_made_again(duffel) -> None:
    g, stub, card_id = duffel
    await g.press(g.people["ana"], card_id, "offer.book", direct(g)["id"])
    stub.slow_orders = True  # the order is made, its answer never comes in time
    await hold_and_confirm(g, "ana", "ben", "cat")
    await g.sim.advance(seconds=0)
    booking = the_booking(g)
    assert booking["state"] == "booking" and booking["phase"] == "lookup"
    assert len(stub.orders) == 1 and len(creates(stub)) == 1
    await g.sim.advance(seconds=5)  # looked up: found
    booking = the_booking(g)
    assert booking["state"] == "booked"
    assert len(stub.orders) == 1 and len(creates(stub)) == 1
    assert booking["order"]["order_id"] == stub.orders[0]["id"]
    assert {p["status"] for p in g.sim.payments.values()} == {"paid"}


async def test_duffel_stalled_provider_one_slow_request_per_invocation_then_one_order(
    duffel,
) -> None:
    """The bug the end-to-end test found: with a provider that stalls, no invocation makes more
    than one request that times out (the host would kill the app at 3 s), and once it answers
    again the booking ends with exactly one order."""
    g, stub, card_id = duffel
    sim, seen = g.sim, g.invocations  # type: ignore[attr-defined]
    await g.press(g.people["ana"], card_id, "offer.book", direct(g)["id"])
    stub.stalled_orders = True  # nothing answers, nothing is made
    await hold_and_confirm(g, "ana", "ben", "cat")
    await sim.advance(seconds=0)
    booking = the_booking(g)
    assert booking["state"] == "booking" and booking["order"] is None
    assert (booking["phase"], booking["timeouts"], booking["lease_until"]) == ("lookup", 1, 0)
    assert stub.orders == [] and len(creates(stub)) == 1  # one try, then a look-up later
    assert {p["status"] for p in sim.payments.values()} == {"authorized"}  # held, not taken
    await sim.advance(seconds=45)  # a few more rounds: look-up, create (held back) …
    booking = the_booking(g)
    assert booking["state"] == "booking" and stub.orders == []
    tries = len(creates(stub))
    assert tries >= 2 and booking["timeouts"] == tries
    stub.stalled_orders = False
    await sim.advance(minutes=2)
    booking = the_booking(g)
    assert booking["state"] == "booked"
    assert len(stub.orders) == 1 and len(creates(stub)) == tries + 1
    assert {p["status"] for p in sim.payments.values()} == {"paid"}
    for payment_id in sim.payments:
        assert (
            sum(
                1
                for e in sim.payment_events
                if e["name"] == "payment.captured" and e["payload"]["payment_id"] == payment_id
            )
            == 1
        )
    firings = seen.finish_firings()
    assert sum(c["timeouts"] for c in firings) == tries  # every held-back create …
    assert all(c["requests"] <= 1 and c["timeouts"] <= 1 for c in firings)  # … one per firing
    await sim.advance(minutes=10)
    assert len(stub.orders) == 1 and the_booking(g)["state"] == "booked"
    seen.check()


async def test_duffel_held_flight_is_paid_once_when_everyone_held(duffel) -> None:
    g, stub, card_id = duffel
    offer = next(o for o in g.sim.storage("offers").values() if o["holdable"])
    await g.press(g.people["ana"], card_id, "offer.book", offer["id"])
    assert stub.orders == []  # the press only re-priced it
    await g.sim.advance(seconds=0)  # reserved by the timer
    booking = the_booking(g)
    (held,) = stub.orders
    assert held["type"] == "hold" and held["metadata"] == {
        "idempotency_key": f"{booking['id']}-hold"
    }
    assert booking["hold_order"] == {
        "order_id": held["id"],
        "pay_by_ms": g.sim.now + DAY,
        "reference": held["booking_reference"],
    }
    assert booking["deadline_ms"] == g.sim.now + DAY  # the stub's pay-by: a day
    stub.slow_payments = True  # paid at Duffel, the answer lost: looked up, not paid again
    await hold_and_confirm(g, "ana", "ben", "cat")
    await g.sim.advance(seconds=0)
    assert the_booking(g)["phase"] == "lookup" and len(stub.payments) == 1
    await g.sim.advance(seconds=5)
    booking = the_booking(g)
    assert booking["state"] == "booked"
    assert booking["order"] == {"order_id": held["id"], "reference": held["booking_reference"]}
    assert len(stub.orders) == 1 and len(stub.payments) == 1
    assert stub.payments[0]["amount"] == "455.00" and stub.payments[0]["currency"] == "GBP"
    assert held["payment_status"]["awaiting_payment"] is False
    assert {p["status"] for p in g.sim.payments.values()} == {"paid"}
    assert g.sim.merchant_balance("GBP") == 45500
    assert g.webhook_calls == ["duffel"]  # type: ignore[attr-defined]


async def test_duffel_stalled_reservation_is_looked_up_then_made(duffel) -> None:
    g, stub, card_id = duffel
    offer = next(o for o in g.sim.storage("offers").values() if o["holdable"])
    await g.press(g.people["ana"], card_id, "offer.book", offer["id"])
    stub.stalled_orders = True
    await g.sim.advance(seconds=0)
    booking = the_booking(g)
    assert (booking["phase"], booking["hold_order"]) == ("reserve_lookup", None)
    assert "Reserving the seats" in g.sim.card(booking["card_message_id"])["text"]
    await hold_and_confirm(g, "ana")  # holding while reserving
    stub.stalled_orders = False
    await g.sim.advance(seconds=10)  # looked up 5 s later: not made; reserved 5 s after that
    booking = the_booking(g)
    (held,) = stub.orders
    assert booking["hold_order"]["order_id"] == held["id"] and booking["phase"] is None
    assert len(creates(stub)) == 2
    await hold_and_confirm(g, "ben", "cat")
    await g.sim.advance(seconds=0)
    assert the_booking(g)["state"] == "booked" and len(stub.payments) == 1


async def test_duffel_price_changed_at_booking_fails_and_voids(duffel) -> None:
    g, stub, card_id = duffel
    offer = direct(g)
    await g.press(g.people["ana"], card_id, "offer.book", offer["id"])
    stub.price_changes[offer["raw"]["id"]] = 1500  # at the order: the old price is refused
    await hold_and_confirm(g, "ana", "ben", "cat")
    await g.sim.advance(seconds=0)
    booking = the_booking(g)
    assert booking["state"] == "failed" and "price" in booking["reason"].lower()
    assert stub.orders == []
    assert {p["status"] for p in g.sim.payments.values()} == {"voided"}
    for name in ("ana", "ben", "cat"):
        assert g.sim.balance(g.people[name], "GBP") == START_BALANCE


async def test_duffel_price_changed_before_booking_writes_only_the_new_price(duffel) -> None:
    g, stub, card_id = duffel
    offer = direct(g)
    stub.price_changes[offer["raw"]["id"]] = 1500
    before = g.snapshot()
    reply = await g.press(g.people["ben"], card_id, "offer.book", offer["id"])
    assert reply["ephemeral"].startswith("The price changed:") and "£435.50" in reply["ephemeral"]
    after = g.snapshot()
    assert after["offers"][offer["id"]]["total"]["amount"] == 43550  # re-stored at the new price
    after["offers"] = before["offers"]
    assert after == before and stub.orders == []
    assert not [t for t in g.sim.pending_timers() if t["name"].startswith("booking.")]


async def test_duffel_reprice_timing_out_at_book_writes_nothing(duffel) -> None:
    g, stub, card_id = duffel
    before = g.snapshot()
    g.sim.fail_next("http.fetch", "timeout")
    reply = await g.press(g.people["ben"], card_id, "offer.book", direct(g)["id"])
    assert (
        reply["ephemeral"] == "The travel provider did not answer in time: try again in a minute."
    )
    assert g.snapshot() == before and stub.orders == []
    assert not [t for t in g.sim.pending_timers() if t["name"].startswith("booking.")]
    g.sim.fail_next("http.fetch", "timeout")
    error = await g.refused(g.people["ben"], "booking.start", {"offer_id": direct(g)["id"]})
    assert error.code == "provider_timeout" and g.snapshot() == before
