"""Schedule changes: after a Duffel flight booking the app registers its webhook once per chat;
the Duffel stub then posts a signed ``order.airline_initiated_change_detected`` event to it
(through ``sim.post_webhook``, as the host delivers it) and the trip follows — its items, card
and reminders, a text in the group, a service message to each traveller — once, even when the
event comes twice or twice at once; a bad or missing signature is ignored (answered 200, nothing
changed); another chat's booking is left to that chat's webhook."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
from typing import Any

import pytest

from sdk.simulator import SimUser
from tests.miniapps.travel.duffel_stub import sign_webhook
from tests.miniapps.travel.test_search import attempt, cards, offers, plan_trip, use_duffel
from tests.miniapps.travel.travel_fixtures import HOUR, Group, app_module, open_group

CHANGE = "order.airline_initiated_change_detected"
NEW_YORK = '/trip new "New York" 2027-05-01 2027-05-05 from LHR'


@pytest.fixture
async def world(monkeypatch, stub) -> Group:
    """Ana and Ben plan New York from London with Duffel; Ana searched the flights."""
    group = open_group(monkeypatch)
    use_duffel(group, monkeypatch, stub)
    stub.deliver = group.sim.post_webhook  # the host's delivery, as a provider's POST
    await plan_trip(group, command=NEW_YORK)
    await group.command(group.people["ana"], "/trip flights JFK 2027-05-01")
    return group


def direct_offer(group: Group) -> dict[str, Any]:
    """The direct, instant offer (ZZ 1, 09:00 London → 12:05 New York)."""
    return next(o for o in offers(group).values() if o["total"]["amount"] == 42050)


async def book(group: Group, user: SimUser, doc: dict[str, Any], booking_id: str) -> dict:
    """What ``booking`` does once everyone held their share, in short: the order at the
    provider, ``bookings/<id>`` with its ``order_id``, the items in the trip, the webhook."""
    providers, store, itinerary, changes = (
        app_module(m) for m in ("providers", "store", "itinerary", "changes")
    )

    async def work(ctx):
        made = await providers.book(ctx, doc, booking_id)
        booking = {
            "id": booking_id,
            "trip_id": doc["trip_id"],
            "conversation_id": ctx.conversation_id,
            "offer_id": doc["id"],
            "kind": "flight",
            "title": doc["title"],
            "total": doc["total"],
            "state": "booked",
            "order": made,
            "order_id": made["order_id"],
        }
        await ctx.storage_put("bookings", booking_id, booking)
        await store.update(
            ctx,
            doc["trip_id"],
            lambda trip: itinerary.add_items(trip, doc["items"], ctx.user_id, booking_id),
        )
        booking["hook"] = await changes.ensure_webhook(ctx)
        return booking

    kind, booking = await attempt(group, user, work)
    assert kind == "ok", booking
    return booking


def items_of(group: Group, booking_id: str) -> list[dict[str, Any]]:
    return [i for i in group.trip()["items"] if i["booking_id"] == booking_id]


def texts(group: Group) -> list[str]:
    return [m["text"] for m in group.sim.messages(group.chat) if m["type"] == "text"]


def told(group: Group, words: str) -> list[str]:
    return [t for t in texts(group) if words in t]


# --- registering ------------------------------------------------------------------------------


async def test_the_webhook_is_registered_once_per_chat(world, stub):
    ana = world.people["ana"]
    booking = await book(world, ana, direct_offer(world), "bk00000000a1")
    (hook,) = stub.webhooks
    assert hook["events"] == [CHANGE]
    assert hook["url"].startswith("https://aetherial.test/api/v1/hooks/")
    stored = world.sim.storage("webhooks")
    assert stored == {
        f"duffel:{world.chat.id}": {
            "webhook_id": hook["id"],
            "url": hook["url"],
            "secret": hook["secret"],
            "conversation_id": world.chat.id,
            "created_at": world.sim.now,
        }
    }
    assert booking["hook"] == stored[f"duffel:{world.chat.id}"]
    changes = app_module("changes")
    again = await attempt(world, world.people["ben"], changes.ensure_webhook)
    assert again == ("ok", booking["hook"])
    registered = [r for r in stub.requests if r["path"] == "/air/webhooks"]
    assert len(registered) == 1 and registered[0]["body"]["data"]["url"] == hook["url"]


async def test_no_webhook_with_the_sample_provider_or_when_duffel_fails(world, stub):
    changes = app_module("changes")
    world.sim.set_config("flights_provider", "sample")
    assert await attempt(world, world.people["ana"], changes.ensure_webhook) == ("ok", None)
    world.sim.set_config("flights_provider", "duffel")
    world.sim.fail_next("http.fetch", "timeout")
    assert await attempt(world, world.people["ana"], changes.ensure_webhook) == ("ok", None)
    assert stub.webhooks == [] and world.sim.storage("webhooks") == {}


# --- a change arrives --------------------------------------------------------------------------


async def test_a_schedule_change_updates_the_trip_and_tells_everyone(world, stub):
    ana, ben = world.people["ana"], world.people["ben"]
    booking = await book(world, ana, direct_offer(world), "bk00000000a1")
    (before,) = items_of(world, booking["id"])
    assert (before["start"], before["end"], before["status"]) == (
        "2027-05-01T09:00",
        "2027-05-01T12:05",
        "booked",
    )
    card_id = world.trip()["card"]["message_id"]
    drawn = len(world.sim.card_history(card_id))
    assert await stub.send_change(booking["order_id"], "2027-05-01T10:15:00") == [200]
    (after,) = items_of(world, booking["id"])
    assert (after["start"], after["end"]) == ("2027-05-01T10:15", "2027-05-01T13:20")
    assert (after["zone"], after["end_zone"]) == ("Europe/London", "America/New_York")
    assert after["status"] == "changed" and after["version"] == before["version"] + 1
    line = "Schedule change: ZZ 1 now departs 10:15 (was 09:00)."
    assert told(world, "Schedule change") == [line]
    for person in (ana, ben):
        assert world.sim.notifications(person)[-1] == (
            "Schedule change for your trip New York: ZZ 1 now departs 10:15 (was 09:00)."
        )
    assert len(world.sim.card_history(card_id)) == drawn + 1  # the trip card redrawn
    reminders = app_module("reminders")
    due = world.timer_keys()[reminders.key(world.trip()["id"], after["id"], 0)]
    departs = dt.datetime(2027, 5, 1, 9, 15, tzinfo=dt.UTC)  # 10:15 in London (BST)
    assert due == departs.timestamp() * 1000 - 24 * HOUR
    (event,) = stub.sent_events
    assert world.sim.storage("webhook_events")[event["id"]]["booking_id"] == booking["id"]


async def test_a_new_day_is_named(world, stub):
    booking = await book(world, world.people["ana"], direct_offer(world), "bk00000000a1")
    assert await stub.send_change(booking["order_id"], "2027-05-02T07:05:00") == [200]
    assert told(world, "Schedule change") == [
        "Schedule change: ZZ 1 now departs 2027-05-02 07:05 (was 2027-05-01 09:00)."
    ]


async def test_a_connecting_change_moves_both_flights(world, stub):
    connecting = next(o for o in offers(world).values() if len(o["items"]) == 2)
    booking = await book(world, world.people["ana"], connecting, "bk00000000a2")
    assert await stub.send_change(booking["order_id"], "2027-05-01T06:30:00") == [200]
    first, second = items_of(world, booking["id"])
    assert (first["start"], second["start"]) == ("2027-05-01T06:30", "2027-05-01T10:00")
    assert {first["status"], second["status"]} == {"changed"}
    assert told(world, "Schedule change") == [
        "Schedule change: ZZ 3 now departs 06:30 (was 07:00); ZZ 4 now departs 10:00 (was 10:30)."
    ]


async def test_the_same_event_twice_is_applied_once(world, stub):
    booking = await book(world, world.people["ana"], direct_offer(world), "bk00000000a1")
    assert await stub.send_change(booking["order_id"], "2027-05-01T10:15:00") == [200]
    (event,) = stub.sent_events
    version = items_of(world, booking["id"])[0]["version"]
    assert await stub.send_event(event) == [200]  # Duffel retries: delivered again
    assert items_of(world, booking["id"])[0]["version"] == version
    assert len(told(world, "Schedule change")) == 1
    assert len(world.sim.notifications(world.people["ana"])) == 1


async def test_the_same_event_twice_at_once_is_applied_once(world, stub):
    booking = await book(world, world.people["ana"], direct_offer(world), "bk00000000a1")
    order = stub.order(booking["order_id"])
    event = {
        "id": "wev_twice",
        "type": CHANGE,
        "data": {
            "object": {
                "id": "oaic_twice",
                "order_id": booking["order_id"],
                "removed": order["slices"],
                "added": json.loads(json.dumps(order["slices"]).replace("T09:00:00", "T11:00:00")),
            }
        },
    }
    statuses = await asyncio.gather(stub.send_event(event), stub.send_event(event))
    assert statuses == [[200], [200]]
    (item,) = items_of(world, booking["id"])
    assert item["start"] == "2027-05-01T11:00" and item["version"] == 2
    assert told(world, "Schedule change") == [
        "Schedule change: ZZ 1 now departs 11:00 (was 09:00)."
    ]


@pytest.mark.parametrize(
    "how", ["wrong secret", "no v1", "garbage", "missing header", "body altered"]
)
async def test_a_bad_signature_is_ignored_and_answered_normally(world, stub, how):
    booking = await book(world, world.people["ana"], direct_offer(world), "bk00000000a1")
    before = copy.deepcopy(world.trip())
    (hook,) = stub.webhooks
    if how == "wrong secret":
        statuses = await stub.send_change(
            booking["order_id"], "2027-05-01T10:15:00", secret="not-the-secret"
        )
    elif how == "no v1":
        statuses = await stub.send_change(
            booking["order_id"], "2027-05-01T10:15:00", signature="t=1700000000"
        )
    elif how == "garbage":
        statuses = await stub.send_change(
            booking["order_id"], "2027-05-01T10:15:00", signature="nonsense"
        )
    else:
        order = stub.order(booking["order_id"])
        event = {
            "id": "wev_forged",
            "type": CHANGE,
            "data": {"object": {"order_id": order["id"], "added": [], "removed": []}},
        }
        body = json.dumps(event)
        headers = {"Content-Type": "application/json"}
        if how == "body altered":
            headers["X-Duffel-Signature"] = sign_webhook(hook["secret"], body)
            body = body.replace('"added": []', '"added": [{"segments": []}]')
        statuses = [await world.sim.post_webhook(hook["url"], body, headers)]
    assert statuses == [200]  # answered normally: Duffel must not retry a forgery forever
    assert world.trip() == before
    assert told(world, "Schedule change") == []
    assert world.sim.storage("webhook_events") == {}


async def test_other_events_and_unknown_orders_are_ignored(world, stub):
    booking = await book(world, world.people["ana"], direct_offer(world), "bk00000000a1")
    before = copy.deepcopy(world.trip())
    created = {"id": "wev_c", "type": "order.created", "data": {"object": {"id": "ord_x"}}}
    stub.webhooks[0]["events"].append("order.created")
    assert await stub.send_event(created) == [200]
    unknown = {
        "id": "wev_u",
        "type": CHANGE,
        "data": {"object": {"order_id": "ord_unknown", "added": [], "removed": []}},
    }
    assert await stub.send_event(unknown) == [200]
    (hook,) = stub.webhooks
    body = "not json"
    headers = {"X-Duffel-Signature": sign_webhook(hook["secret"], body)}
    assert await world.sim.post_webhook(hook["url"], body, headers) == 200
    assert world.trip() == before and told(world, "Schedule change") == []
    assert world.sim.storage("webhook_events") == {}
    assert items_of(world, booking["id"])[0]["status"] == "booked"


async def test_each_chat_hears_only_its_own_bookings(world, stub):
    """Two groups booked with Duffel: each registered its webhook (an address bound to its
    chat); Duffel sends every event to both, and only the group that booked is told."""
    first = await book(world, world.people["ana"], direct_offer(world), "bk00000000a1")
    other = Group(world.sim, world.sim.conversation(members=[]))
    await plan_trip(other, names=("cy", "dee"), command=NEW_YORK)
    await other.command(other.people["cy"], "/trip flights JFK 2027-05-01")
    theirs = next(
        o
        for o in offers(other).values()
        if o["trip_id"] == other.trip()["id"] and o["total"]["amount"] == 42050
    )
    second = await book(other, other.people["cy"], theirs, "bk00000000b1")
    assert len(stub.webhooks) == 2
    assert {h["conversation_id"] for h in world.sim.storage("webhooks").values()} == {
        world.chat.id,
        other.chat.id,
    }
    assert await stub.send_change(first["order_id"], "2027-05-01T10:15:00") == [200, 200]
    assert len(told(world, "Schedule change")) == 1 and told(other, "Schedule change") == []
    assert items_of(other, second["id"])[0]["status"] == "booked"
    assert items_of(world, first["id"])[0]["status"] == "changed"
    assert world.sim.notifications(other.people["cy"]) == []


# --- the whole way: booked together with Duffel, then changed ----------------------------------


async def test_booked_together_then_changed_by_the_airline(world, stub):
    sim = world.sim
    sim.deadline = 20
    for person in world.people.values():
        sim.set_balance(person, "GBP", 100_000)
    offer = direct_offer(world)
    card_id = next(
        m["id"]
        for m in sim.messages(world.chat)
        if m["type"] == "card" and m["card"]["title"].startswith("Flights")
    )
    await world.press(world.people["ana"], card_id, "offer.book", offer["id"])
    for name in ("ana", "ben"):
        (booking,) = sim.storage("bookings").values()
        await world.press(world.people[name], booking["card_message_id"], "booking.hold")
        (booking,) = sim.storage("bookings").values()
        await sim.confirm_payment(
            world.people[name], booking["holds"][world.people[name].id]["payment_id"]
        )
    await sim.advance(seconds=0)  # the booking's steps run in its booking.finish timer
    (booking,) = sim.storage("bookings").values()
    assert booking["state"] == "booked" and booking["order_id"] == stub.orders[0]["id"]
    assert len(stub.webhooks) == 1  # booking ensured the webhook
    assert await stub.send_change(booking["order_id"], "2027-05-01T08:40:00") == [200]
    (item,) = items_of(world, booking["id"])
    assert item["start"] == "2027-05-01T08:40" and item["status"] == "changed"
    assert told(world, "Schedule change") == [
        "Schedule change: ZZ 1 now departs 08:40 (was 09:00)."
    ]
    assert cards(world)  # the trip card still there, redrawn
