"""Travel through the running platform: two gateway nodes sharing MongoDB and Redis, the travel
app as a real sandboxed process on each, people on real Socket.IO and HTTP clients, the local
Duffel stand-in (``duffel_stub``) as the flights provider (set in the admin API), wallets that
hold, capture, void and transfer for real.

Ana (node a), Ben and Cleo (node b) plan New York from London in their group:

- ``/trip new`` posts the trip card to everyone; Ben and Cleo press **I'm in** on it and the
  card says so in place.
- All three add plan items at once through the web view's call route, from both nodes: every
  item lands with its own id; two edits of one item at the version they saw: one lands, the
  other is refused (``conflict``), and so is any later edit at that old version.
- ``/trip flights JFK … from LHR`` posts the offer card (the stub's offers); **Book together**
  on the holdable offer posts the booking card and the app's ``booking.finish`` timer holds it
  at the stub; each presses **Hold my share** and confirms the hold on their wallet's sheet; the
  last hold books it (by the timer, a step per firing): the hold order paid once at the stub
  (one order, one payment), every hold captured once, the flight in the plan as booked, the
  booking an expense of the trip.
- The airline moves the flight: the stub posts a signed webhook to the platform's real
  ``/api/v1/hooks/<token>`` (registered by the app after booking): 200, the plan item is
  "changed", the card follows, the group gets "Schedule change …" — once, however often the
  event comes; a wrongly signed one changes nothing.
- Ana adds a dinner (split equally); Ben presses **Pay what I owe** on the group balances card
  and confirms the transfer: the settlement is recorded once, Ben is settled.

A second trip: a booking one traveller never holds — its deadline (moved into the past, then
its timer fired four times at once on the two nodes) releases every hold, nothing is ordered;
then a provider that stalls on the order — the step that sent it times out and gives its
lease back, the ``booking.finish`` timer (fired racing on both nodes) books it once the provider
answers again: exactly one order. Its own test holds the promise for the stalled provider: one
slow request per invocation, so the app is never killed at the 3 s call deadline, the lease is
given back and the next step (the order's look-up) is due soon.

The app reads the system clock: where time must pass the test moves the stored instant
(``e2e_helpers.rewrite``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from gateway.keys import MESSAGING, MINIAPPS
from storage.mongo import now_ms
from tests.conftest import base_url, node_configs, start_nodes
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, group, person
from tests.miniapps.shop.e2e_helpers import command, press, top_up
from tests.miniapps.travel.duffel_stub import API_KEY, DuffelStub
from tests.miniapps.travel.e2e_helpers import (
    APP,
    app_texts,
    app_uid,
    buttons,
    call,
    card_words,
    cards,
    configure,
    consent,
    days_ahead,
    field,
    fire_racing,
    install,
    live_timer,
    make_admin,
    page_call,
    payments_of,
    rewrite,
    service_texts,
    sheets,
    stored,
    stored_all,
    titled,
    wallet_balance,
)
from tests.wallet.wallet_helpers import check_ledger
from wallet.store.accounts import merchant_account

GBP = "GBP"  # the stub's offers are in pounds
TOP_UP = 100_000  # £1,000.00 each
HOLDABLE = 45500  # the stub's holdable direct offer, ZZ 2 17:30 LHR → 20:40 JFK: £455.00
DIRECT = 42050  # its instant direct offer, ZZ 1 09:00 → 12:05: £420.50
VIA_DUBLIN = 31025  # its instant offer via DUB: £310.25


@dataclass
class World:
    nodes: list
    db: object
    stub: DuffelStub
    admin: object
    ana: object
    ben: object
    cleo: object

    @property
    def travellers(self) -> list:
        return [self.ana, self.ben, self.cleo]

    def uid(self, someone) -> str:
        return app_uid(self.nodes[0], someone)


async def open_world(aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path) -> World:
    """Two nodes, the stub as the app's provider (the admin API), Ana on node a, Ben and Cleo
    on node b, each with £1,000 in their wallet and the app's consents given."""
    configs = node_configs(mongo_url, mongo_db_name, tmp_path, redis_url, jobs_interval=0.05)
    nodes = await start_nodes(aiohttp_server, configs)
    for node in nodes:
        # PUBLIC_URL: each node's own loopback address (its port is known once it runs), so
        # the webhook URL the app registers with the stub reaches a real gateway.
        node.app[MINIAPPS].webhooks.public_url = base_url(node)
    bases = [base_url(node) for node in nodes]
    stub = DuffelStub()
    await stub.start()
    admin = await person(bases[0])
    ana = await person(bases[0])
    ben, cleo = await person(bases[1]), await person(bases[1])
    world = World(nodes, nodes[0].app[MESSAGING].db, stub, admin, ana, ben, cleo)
    await make_admin(world.db, admin)
    await configure(
        admin,
        {"flights_provider": "duffel", "duffel_api_url": stub.url, "duffel_api_key": API_KEY},
    )
    for someone in world.travellers:
        await consent(someone, "users.profile", "notifications")
        await top_up(someone, TOP_UP, GBP)
    return world


async def close_world(world: World) -> None:
    await close_all([world.admin, *world.travellers])
    await world.stub.close()


async def plan_trip(world: World, title: str, start: str, end: str) -> tuple[str, dict]:
    """A group of the three with the app; Ana's ``/trip new``, Ben and Cleo press I'm in on
    the trip card (everyone sees it updated in place) → ``(cid, trip as stored)``."""
    ana, ben, cleo = world.travellers
    cid = await group(ana, [ben, cleo], title)
    await install(ana, cid)
    await command(ana, cid, f'/trip new "New York" {start} {end} from LHR')

    def trip_card(someone):
        found = titled(someone, cid, "✈ New York")
        return found[-1] if found else None

    for someone in world.travellers:  # on both nodes
        await eventually(lambda s=someone: trip_card(s), what="the trip card")
    card = trip_card(ana)
    assert field(card, "Travellers") == ana.username, card_words(card)
    assert field(card, "Where").startswith("New York · "), card_words(card)
    join = buttons(card, "trip.join")[0]
    assert join["label"] == "I'm in"
    for someone in (ben, cleo):
        ack = await press(someone, cid, card["id"], "trip.join", join["value"])
        assert ack["ok"], ack

    def three(someone):
        latest = trip_card(someone)
        return latest if latest and field(latest, "Travellers (3)") else None

    for someone in world.travellers:
        latest = await eventually(lambda s=someone: three(s), what="the card with 3 travellers")
        assert latest["id"] == card["id"]  # updated in place
        assert set(field(latest, "Travellers").split(", ")) == {
            p.username for p in world.travellers
        }
    pointer = await stored(world.db, "current", cid)
    trip = await stored(world.db, "trips", pointer["trip_id"])
    assert set(trip["travellers"]) == {world.uid(p) for p in world.travellers}
    return cid, trip


async def offer_card(world: World, cid: str, day: str, count: int) -> dict:
    """Ana's ``/trip flights JFK <day> from LHR``: the ``count``-th offer card."""
    await command(world.ana, cid, f"/trip flights JFK {day} from LHR")

    def posted(someone):
        found = titled(someone, cid, "Flights LHR → JFK")
        return found[count - 1] if len(found) >= count else None

    for someone in world.travellers:
        card = await eventually(lambda s=someone: posted(s), what="the offer card")
    return card


def book_button(card: dict, amount: int) -> dict:
    """The offer card's Book together button of the offer priced ``amount`` pence."""
    price = f"£{amount // 100:,}.{amount % 100:02d}"
    [found] = [b for b in buttons(card, "offer.book") if b["label"].endswith(price)]
    return found


async def start_booking(world: World, cid: str, card: dict, amount: int) -> dict:
    """Ana presses Book together on the offer priced ``amount``: the booking card."""
    book = book_button(card, amount)
    ack = await press(world.ana, cid, card["id"], "offer.book", book["value"])
    assert ack["ok"], ack
    before = {m["id"] for m in titled(world.ben, cid, "Book together")}

    def booking_card(someone):
        found = [m for m in titled(someone, cid, "Book together") if m["id"] not in before]
        return found[-1] if found else None

    for someone in world.travellers:
        found = await eventually(lambda s=someone: booking_card(s), what="the booking card")
    return found


async def hold_share(world: World, someone, cid: str, card: dict, booking_id: str) -> dict:
    """``someone`` presses Hold my share and confirms the hold on their wallet's sheet."""
    hold = buttons(card, "booking.hold")[0]
    ack = await press(someone, cid, card["id"], "booking.hold", hold["value"])
    assert ack["ok"], ack
    prefix = f"book-{booking_id}-{world.uid(someone)}"
    [sheet] = await eventually(lambda: sheets(someone, prefix), what="the hold sheet")
    assert sheet["capture"] is False and sheet["currency"] == GBP, sheet
    confirmed = await someone.socket.call("payment.confirm", {"payment_id": sheet["id"]})
    assert confirmed["ok"] and confirmed["payment"]["status"] == "authorized", confirmed
    return sheet


async def group_texts(db, cid: str, pattern: str) -> int:
    """How many texts of the app matching ``pattern`` are stored in the chat."""
    return await db["messages"].count_documents(
        {"conversation_id": cid, "text": {"$regex": pattern}}
    )


def order_posts(stub: DuffelStub) -> int:
    """How many times the app asked the stub to create an order."""
    return sum(1 for r in stub.requests if (r["method"], r["path"]) == ("POST", "/air/orders"))


def app_restarts(nodes) -> int:
    """How often the travel app's process was restarted, on all nodes (a killed call)."""
    return sum(node.app[MINIAPPS].status().get("travel", {}).get("restarts", 0) for node in nodes)


def app_running(nodes) -> bool:
    return all(
        node.app[MINIAPPS].status().get("travel", {}).get("state", "running") == "running"
        for node in nodes
    )


async def booked(db, booking_id: str) -> dict | None:
    doc = await stored(db, "bookings", booking_id)
    return doc if doc["state"] == "booked" else None


async def finish_over(nodes, db, booking_id: str, restarts: int) -> dict | None:
    """The booking, once its first finishing run is over without an order: it gave its lease
    back (a provider timeout, retried later), or it was cut short (the app's process killed at
    the call deadline)."""
    doc = await stored(db, "bookings", booking_id)
    if doc["state"] != "booking" or not doc.get("attempts"):
        return None
    if doc["lease_until"] == 0 or app_restarts(nodes) > restarts:
        return doc
    return None


def same_card(someone, cid: str, message_id: str, words: str) -> dict | None:
    """The card ``message_id`` as ``someone`` last saw it, once it says ``words``."""
    found = [m for m in cards(someone, cid) if m["id"] == message_id]
    return found[0] if found and words in card_words(found[0]) else None


def shares_of(total: int, uids: list[str]) -> dict[str, int]:
    """Equal shares, the leftover pence one each by traveller id (the app's rule)."""
    base, left = divmod(total, len(uids))
    return {uid: base + (1 if n < left else 0) for n, uid in enumerate(sorted(uids))}


@pytest.mark.xdist_group("heavy")  # CPU-heavy: never beside another heavy test
async def test_a_trip_planned_booked_together_changed_by_the_airline_and_settled(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path
):
    world = await open_world(aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path)
    db, stub = world.db, world.stub
    ana, ben, cleo = world.travellers
    start, end = days_ahead(60), days_ahead(64)
    try:
        # 1. The trip, and its card in place.
        cid, trip = await plan_trip(world, "New York crew", start, end)
        trip_id = trip["id"]

        # 2. Concurrent plan edits through the web view, from both nodes.
        day2, day3 = days_ahead(61), days_ahead(62)
        plans = (("Museum", day2, "10:00"), ("Jazz", day3, "21:00"))
        adds = [
            (someone, {"title": f"{what} with {someone.username}", "date": day, "time": hour})
            for someone in world.travellers
            for what, day, hour in plans
        ]
        await asyncio.gather(*(call(someone, cid, "item.add", add) for someone, add in adds))
        trip = await stored(db, "trips", trip_id)
        items = trip["items"]
        assert len(items) == 6 and len({i["id"] for i in items}) == 6, items
        assert {(i["title"], i["version"], i["status"]) for i in items} == {
            (f"{what} with {p.username}", 1, "planned")
            for p in world.travellers
            for what in ("Museum", "Jazz")
        }
        museum = next(i for i in items if i["title"] == f"Museum with {ana.username}")
        # Two edits of one item at the version both saw, at once from both nodes: one lands.
        at_v1 = {"item_id": museum["id"], "version": 1}
        answers = await asyncio.gather(
            page_call(ana, cid, "item.edit", {**at_v1, "time": "11:00"}),
            page_call(ben, cid, "item.edit", {**at_v1, "place": "The Met"}),
        )
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200, 400], answers
        [(_, refusal)] = [(s, b) for s, b in answers if s == 400]
        assert refusal["error"]["code"] == "conflict", refusal
        assert "Nothing was saved" in refusal["error"]["message"]
        # A later edit made at the old version is refused too, and writes nothing.
        status, body = await page_call(cleo, cid, "item.edit", {**at_v1, "title": "Stale"})
        assert (status, body["error"]["code"]) == (400, "conflict"), body
        edited = next(
            i for i in (await stored(db, "trips", trip_id))["items"] if i["id"] == museum["id"]
        )
        assert edited["version"] == 2 and edited["title"] == museum["title"], edited
        assert (edited["start"].endswith("T11:00"), edited["place"] == "The Met") in (
            (True, False),
            (False, True),
        ), edited

        # 3. Flights from the stub; Book together on the holdable offer; everyone holds.
        offers = await offer_card(world, cid, start, 1)
        assert len(buttons(offers, "offer.book")) == 3, card_words(offers)
        assert "can be held while everyone pays" in card_words(offers)
        assert any(r["path"].startswith("/air/offer_requests") for r in stub.requests)
        booking_card = await start_booking(world, cid, offers, HOLDABLE)
        booking_id = buttons(booking_card, "booking.hold")[0]["value"]

        async def reserved():  # held at the provider by the app's timer, right after the press
            doc = await stored(db, "bookings", booking_id)
            return doc if doc["hold_order"] else None

        booking = await eventually(reserved, what="the seats reserved at the provider")
        assert [o["type"] for o in stub.orders] == ["hold"]
        uids = [world.uid(p) for p in world.travellers]
        shares = shares_of(HOLDABLE, uids)
        assert booking["state"] == "collecting" and booking["shares"] == shares, booking
        assert booking["hold_order"]["order_id"] == stub.orders[0]["id"]
        for someone in world.travellers:
            await hold_share(world, someone, cid, booking_card, booking_id)

        booking = await eventually(
            lambda: booked(db, booking_id), timeout=15, what="the booking booked"
        )
        [order] = stub.orders
        assert len(stub.payments) == 1 and stub.payments[0]["order_id"] == order["id"]
        assert stub.payments[0]["amount"] == "455.00"
        assert booking["order"] == {
            "order_id": order["id"],
            "reference": order["booking_reference"],
        }
        assert {uid: h["status"] for uid, h in booking["holds"].items()} == dict.fromkeys(
            uids, "captured"
        )
        holds = await payments_of(db, f"book-{booking_id}-")
        assert sorted((p["status"], p["captured"]) for p in holds) == sorted(
            ("paid", share) for share in shares.values()
        )
        for someone in world.travellers:
            assert await wallet_balance(someone, GBP) == TOP_UP - shares[world.uid(someone)]
        await eventually(
            lambda: any(f"ref {order['booking_reference']}" in t for t in app_texts(cleo, cid)),
            what="Booked ✓ in the group",
        )
        trip = await stored(db, "trips", trip_id)
        [flight] = [i for i in trip["items"] if i.get("booking_id") == booking_id]
        assert (flight["kind"], flight["status"], flight["start"]) == (
            "flight",
            "booked",
            f"{start}T17:30",
        )
        assert trip["booking"] is None  # the lock given back
        expense = await stored(db, "expenses", f"bk-{booking_id}")
        assert expense["kind"] == "booking" and expense["amount"] == HOLDABLE
        assert expense["paid"] == expense["parts"] == shares
        assert trip["spent"] == {GBP: HOLDABLE}
        booked_card = await eventually(
            lambda: same_card(ben, cid, booking_card["id"], "Booked · ref"),
            what="the booking card booked",
        )
        assert not buttons(booked_card, "booking.hold")

        # 6. The airline moves the flight: a signed webhook through the platform.
        [hook] = await eventually(lambda: stub.webhooks, what="the webhook registered")
        assert hook["url"].split("/api/v1/hooks/")[0] in {base_url(n) for n in world.nodes}
        statuses = await stub.send_change(order["id"], f"{start}T19:05:00")
        assert statuses == [200]

        def schedule_change(someone):
            return [t for t in app_texts(someone, cid) if t.startswith("Schedule change")]

        [text] = await eventually(lambda: schedule_change(ben), what="the schedule change")
        assert text == "Schedule change: ZZ 2 now departs 19:05 (was 17:30)."
        trip = await stored(db, "trips", trip_id)
        [moved] = [i for i in trip["items"] if i.get("booking_id") == booking_id]
        assert (moved["status"], moved["start"], moved["end"]) == (
            "changed",
            f"{start}T19:05",
            f"{start}T22:15",
        )
        await eventually(
            lambda: (
                "ZZ 2 LHR → JFK · " in card_words(titled(cleo, cid, "✈ New York")[-1])
                and "⚠ changed" in card_words(titled(cleo, cid, "✈ New York")[-1])
            ),
            what="the trip card showing the change",
        )
        await eventually(
            lambda: any("Schedule change for your trip" in t for t in service_texts(cleo)),
            what="Cleo's service message",
        )
        # The same event again, and a wrongly signed one: answered, nothing more happens.
        again = stub.sent_events[-1]
        assert await stub.send_event(again) == [200]
        forged = {**again, "id": "wev_forged"}
        assert await stub.send_event(forged, secret="not-the-secret") == [200]
        assert len(await stored_all(db, "webhook_events")) == 1
        # (a delivery is answered once the app handled it: its texts are stored by then)
        assert await group_texts(db, cid, "^Schedule change") == 1

        # 7. A dinner, the balances card, Ben pays what he owes.
        dinner = {"title": "Dinner", "amount": "90.00", "currency": GBP, "mode": "equal"}
        answer = await call(ana, cid, "expense.add", {**dinner, "payer": world.uid(ana)})
        owed = [(world.uid(p), world.uid(ana), 3000) for p in (ben, cleo)]
        assert sorted((m["from"], m["to"], m["amount"]) for m in answer["transfers"][GBP]) == (
            sorted(owed)
        )
        trip_card = titled(ana, cid, "✈ New York")[-1]
        balances = buttons(trip_card, "expense.balances")[0]
        ack = await press(ana, cid, trip_card["id"], "expense.balances", balances["value"])
        assert ack["ok"], ack
        [group_card] = await eventually(
            lambda: titled(ben, cid, "Balances · New York"), what="the group balances card"
        )
        assert f"{ben.username} pays {ana.username} £30.00" in card_words(group_card)
        mine = buttons(group_card, "settle.mine")[0]
        ack = await press(ben, cid, group_card["id"], "settle.mine", mine["value"])
        assert ack["ok"], ack
        [sheet] = await eventually(lambda: sheets(ben, "settle-"), what="the transfer sheet")
        assert (sheet["kind"], sheet["amount"], sheet["currency"]) == (
            "transfer_request",
            3000,
            GBP,
        )
        assert sheet["to_user_id"] == ana.user_id
        ana_before = await wallet_balance(ana, GBP)
        confirmed = await ben.socket.call("payment.confirm", {"payment_id": sheet["id"]})
        assert confirmed["ok"], confirmed

        def settled_text():
            return [t for t in app_texts(ana, cid) if " settled " in t]

        [said] = await eventually(settled_text, what="the settlement in the group")
        assert said == f"{ben.username} settled £30.00 with {ana.username}"

        async def settled():
            found = await stored_all(db, "settlements")
            return found if all(s["status"] == "paid" for s in found.values()) else None

        [settlement] = (await eventually(settled, what="the settlement paid")).values()
        assert (settlement["from"], settlement["to"], settlement["amount"]) == (
            world.uid(ben),
            world.uid(ana),
            3000,
        )
        expenses = await stored_all(db, "expenses")
        assert [k for k in expenses if k.startswith("st-")] == [f"st-{settlement['id']}"]
        assert await wallet_balance(ana, GBP) == ana_before + 3000
        assert await wallet_balance(ben, GBP) == TOP_UP - shares[world.uid(ben)] - 3000
        twice = await ben.socket.call("payment.confirm", {"payment_id": sheet["id"]})
        assert not twice.get("ok") or twice["payment"]["status"] == "paid", twice
        await eventually(
            lambda: (
                f"{cleo.username} pays {ana.username} £30.00"
                in card_words(titled(ben, cid, "Balances · New York")[-1])
                and f"{ben.username} pays"
                not in card_words(titled(ben, cid, "Balances · New York")[-1])
            ),
            what="the balances card redrawn",
        )
        summary = await call(ben, cid, "expenses.get")
        assert summary["balances"][GBP][world.uid(ben)] == 0
        assert summary["transfers"][GBP] == [
            {"from": world.uid(cleo), "to": world.uid(ana), "amount": 3000}
        ]
        assert await group_texts(db, cid, " settled ") == 1
        balances = await check_ledger(db)
        assert balances[merchant_account(APP, GBP)] == HOLDABLE  # the captured holds, once
    finally:
        await close_world(world)


@pytest.mark.xdist_group("heavy")  # CPU-heavy: never beside another heavy test
async def test_a_missed_deadline_releases_every_hold_and_a_stalled_provider_books_once(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path
):
    world = await open_world(aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path)
    db, stub, nodes = world.db, world.stub, world.nodes
    ana, ben, cleo = world.travellers
    start, end = days_ahead(50), days_ahead(53)
    try:
        cid, trip = await plan_trip(world, "Long weekend", start, end)
        uids = [world.uid(p) for p in world.travellers]
        offers = await offer_card(world, cid, start, 1)

        # 4. Ana and Ben hold their shares, Cleo never does; the deadline passes.
        card = await start_booking(world, cid, offers, DIRECT)
        booking_id = buttons(card, "booking.hold")[0]["value"]
        assert stub.orders == []  # an instant offer: nothing is ordered before all hold
        shares = shares_of(DIRECT, uids)
        for someone in (ana, ben):
            await hold_share(world, someone, cid, card, booking_id)

        async def held(count: int):
            doc = await stored(db, "bookings", booking_id)
            statuses = [h["status"] for h in doc["holds"].values()]
            return doc if statuses.count("authorized") == count else None

        booking = await eventually(lambda: held(2), what="two shares held")
        assert booking["state"] == "collecting"
        for someone in (ana, ben):
            assert await wallet_balance(someone, GBP) == TOP_UP - shares[world.uid(someone)]
        timer = await live_timer(db, f"bd-{booking_id}")
        assert timer["name"] == "booking.deadline" and timer["due_at"] == booking["deadline_ms"]
        await rewrite(db, "bookings", booking_id, {"deadline_ms": now_ms() - 1000})
        await fire_racing(nodes, db, f"bd-{booking_id}", copies=3)

        async def voided():
            doc = await stored(db, "bookings", booking_id)
            done = doc["state"] == "voided" and all(
                h["status"] == "voided" for h in doc["holds"].values()
            )
            return doc if done else None

        booking = await eventually(voided, what="the booking voided, every hold released")
        assert booking["reason"] == f"Not held in time by {cleo.username}"
        assert sorted(booking["holds"]) == sorted(world.uid(p) for p in (ana, ben))
        holds = await payments_of(db, f"book-{booking_id}-")
        assert sorted(p["status"] for p in holds) == ["voided", "voided"], holds
        for someone in world.travellers:
            assert await wallet_balance(someone, GBP) == TOP_UP
        assert stub.orders == [] and order_posts(stub) == 0
        trip = await stored(db, "trips", trip["id"])
        assert trip["booking"] is None and trip["items"] == [] and trip["spent"] == {}
        assert await group_texts(db, cid, "^Not booked: ") == 1
        assert await live_timer(db, f"bd-{booking_id}") is None
        await eventually(
            lambda: same_card(cleo, cid, card["id"], "Not booked: Not held in time"),
            what="the booking card saying so",
        )

        # 5. The provider stalls on the order: the step times out; its timer books it later.
        card = await start_booking(world, cid, offers, VIA_DUBLIN)
        booking_id = buttons(card, "booking.hold")[0]["value"]
        shares = shares_of(VIA_DUBLIN, uids)
        restarts = app_restarts(nodes)
        stub.stalled_orders = True  # held back, nothing made: the app's fetch times out
        for someone in world.travellers:
            await hold_share(world, someone, cid, card, booking_id)
        booking = await eventually(
            lambda: finish_over(nodes, db, booking_id, restarts),
            timeout=15,
            what="the first finishing run over",
        )
        assert booking["state"] == "booking" and booking["order"] is None, booking
        assert {h["status"] for h in booking["holds"].values()} == {"authorized"}
        assert stub.orders == [] and order_posts(stub) >= 1
        assert await live_timer(db, f"bf-{booking_id}") is not None
        # The provider answers again; the next step is due (the lease given back, see
        # test_a_provider_timeout_gives_the_lease_back_and_retries_in_a_minute).
        stub.stalled_orders = False
        if booking["lease_until"] > now_ms():
            await rewrite(db, "bookings", booking_id, {"lease_until": now_ms() - 1000})
        await eventually(lambda: app_running(nodes), what="the app running on both nodes")
        await fire_racing(nodes, db, f"bf-{booking_id}", copies=3)
        booking = await eventually(
            lambda: booked(db, booking_id), timeout=15, what="the booking booked by its timer"
        )
        [order] = stub.orders
        assert order["type"] == "instant" and order["total_amount"] == "310.25"
        assert booking["order"] == {
            "order_id": order["id"],
            "reference": order["booking_reference"],
        }
        assert {h["status"] for h in booking["holds"].values()} == {"captured"}
        holds = await payments_of(db, f"book-{booking_id}-")
        assert sorted((p["status"], p["captured"]) for p in holds) == sorted(
            ("paid", share) for share in shares.values()
        )
        for someone in world.travellers:
            assert await wallet_balance(someone, GBP) == TOP_UP - shares[world.uid(someone)]
        trip = await stored(db, "trips", trip["id"])
        legs = [i for i in trip["items"] if i.get("booking_id") == booking_id]
        assert [(i["title"], i["status"]) for i in legs] == [
            ("ZZ 3 LHR → DUB", "booked"),
            ("ZZ 4 DUB → JFK", "booked"),
        ]
        assert trip["spent"] == {GBP: VIA_DUBLIN} and trip["booking"] is None
        # (the group is told right after the booked state is written)
        await eventually(
            lambda: any(t.startswith("Booked ✓ ") for t in app_texts(ana, cid)),
            what="Booked ✓ in the group",
        )
        assert await group_texts(db, cid, "^Booked ✓ ") == 1
        assert await live_timer(db, f"bf-{booking_id}") is None
        balances = await check_ledger(db)
        assert balances[merchant_account(APP, GBP)] == VIA_DUBLIN  # the voided holds: nothing
    finally:
        await close_world(world)


@pytest.mark.xdist_group("heavy")  # CPU-heavy: never beside another heavy test
async def test_a_provider_timeout_gives_the_lease_back_and_retries_in_a_minute(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path
):
    """What the app's design says of a provider that does not answer the order in time: the
    booking stays in ``booking``, the step that sent the order gives its lease back and
    ``booking.finish`` is due within a minute (the order's look-up, 5 s later:
    ``booking_holds.run_step``), without the app being killed — each firing makes one request
    that may be slow, never two (the host's fetch gives up at 2.5 s, the call deadline is 3 s)."""
    world = await open_world(aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path)
    db, stub, nodes = world.db, world.stub, world.nodes
    start, end = days_ahead(40), days_ahead(41)
    try:
        cid, _trip = await plan_trip(world, "Quick hop", start, end)
        offers = await offer_card(world, cid, start, 1)
        card = await start_booking(world, cid, offers, DIRECT)
        booking_id = buttons(card, "booking.hold")[0]["value"]
        restarts = app_restarts(nodes)
        stub.stalled_orders = True
        for someone in world.travellers:
            await hold_share(world, someone, cid, card, booking_id)
        booking = await eventually(
            lambda: finish_over(nodes, db, booking_id, restarts),
            timeout=15,
            what="the first finishing run over",
        )
        assert app_restarts(nodes) == restarts, "the app's process was killed"
        assert booking["lease_until"] == 0, booking  # the lease given back
        assert booking["phase"] == "lookup" and booking["order"] is None, booking
        timer = await live_timer(db, f"bf-{booking_id}")
        assert timer["due_at"] <= now_ms() + 60_000, timer  # the retry, within a minute
        assert stub.orders == [] and order_posts(stub) >= 1
        assert app_running(nodes)
    finally:
        await close_world(world)
