"""The plan: items added by command and web view (local times in a zone, within the trip's dates
give or take a travel day), versioned edits (concurrent edits of different items both land, a
stale version is a ``conflict`` that writes nothing), removal, booked items left to their
booking, and the pure edits other modules use (``add_items``, ``mark_changed``)."""

from __future__ import annotations

import asyncio

import pytest

from sdk.errors import ViewError
from tests.miniapps.travel.travel_fixtures import (
    T0,
    app_module,
    card_words,
    start_trip,
    trip_card,
)

DASH = "\u2013"  # an en dash, as cards write time ranges
TRAM = {"title": "Tram 28", "date": "2027-05-02", "time": "10:00", "place": "Graça"}


def items(group) -> dict[str, dict]:
    return {item["id"]: item for item in group.trip()["items"]}


async def add(group, user, **fields) -> dict:
    """``item.add`` → the item added (the one with the highest id)."""
    answer = await group.view(user, "item.add", {**TRAM, **fields})
    return max(answer["trip"]["items"], key=lambda i: int(i["id"][1:]))


# --- adding -----------------------------------------------------------------------------------


async def test_add_by_command(group):
    ana, ben = group.person("ana"), group.person("ben")
    await start_trip(group, ana, ben)
    await group.command(ben, '/trip plan add 2027-05-02 10:00 "Tram 28" at "Graça" until 12:00')
    assert group.said(ben) == f"Added i1: 10:00{DASH}12:00 • Tram 28 · Graça"
    await group.command(ana, "/trip plan add note 2027-05-03 Pack the sunscreen")
    await group.command(
        ana, "/trip plan add stay 2027-05-01 15:00 Hotel Lisboa until 2027-05-05 11:00"
    )
    await group.command(ana, "/trip plan add 2027-04-30 18:00 Drinks at the airport")
    got = items(group)
    assert got["i1"] == {
        "id": "i1",
        "kind": "activity",
        "title": "Tram 28",
        "start": "2027-05-02T10:00",
        "zone": "Europe/Lisbon",
        "end": "2027-05-02T12:00",
        "end_zone": "Europe/Lisbon",
        "place": "Graça",
        "details": {},
        "booking_id": None,
        "status": "planned",
        "version": 1,
        "updated_by": ben.id,
        "updated_at": T0,
    }
    assert (got["i2"]["kind"], got["i2"]["start"], got["i2"]["end"]) == ("note", "2027-05-03", None)
    assert (got["i3"]["kind"], got["i3"]["end"]) == ("stay", "2027-05-05T11:00")
    assert (got["i4"]["title"], got["i4"]["place"]) == ("Drinks", "the airport")
    assert group.trip()["seq"] == 5
    words = card_words(trip_card(group))
    assert "Fri 30 Apr: 18:00 • Drinks · the airport" in words
    assert "Mon 3 May: All day ✎ Pack the sunscreen" in words
    await group.command(ana, "/trip plan")
    plan = card_words(group.said(ana))
    assert (
        f"i1 · 10:00{DASH}12:00 • Tram 28 · Graça" in plan
        and "i3 · 15:00 → Wed 5 May 11:00" in plan
    )


async def test_add_by_view_in_another_zone(group):
    ana = group.person("ana")
    await start_trip(group, ana)
    answer = await group.view(
        ana,
        "item.add",
        {"kind": "flight", "title": "MAD → LIS", "date": "2027-05-01", "time": "07:05",
         "end_time": "07:20", "zone": "Europe/Madrid"},
    )  # fmt: skip
    (item,) = answer["trip"]["items"]
    assert (item["zone"], item["end"], item["end_zone"]) == (
        "Europe/Madrid",
        "2027-05-01T07:20",
        "Europe/Madrid",
    )
    assert answer["is_traveller"] and answer["trip"]["days"][0]["items"] == [item]
    # Local times of its own zone: 07:05 in Madrid is 06:05 in Lisbon, before a 06:30 walk.
    await add(group, ana, title="Walk", date="2027-05-01", time="06:30")
    await add(group, ana, title="Pack", date="2027-05-01", time=None)
    day = app_module("itinerary").days(group.trip())[0]
    assert [i["title"] for i in day["items"]] == ["Pack", "MAD → LIS", "Walk"]
    assert f"07:05{DASH}07:20 (Madrid time) ✈ MAD → LIS" in card_words(trip_card(group))


BAD_ITEMS = [
    ({"date": "2027-05-07"}, "outside_trip"),
    ({"date": "2027-04-29"}, "outside_trip"),
    ({"date": "2027-05-02", "end_date": "2027-05-09", "end_time": "10:00"}, "outside_trip"),
    ({"date": "2027-13-01"}, "bad_date"),
    ({"date": None}, "bad_date"),
    ({"time": "25:00"}, "bad_date"),
    ({"time": 10}, "bad_date"),
    ({"end_time": "09:00"}, "bad_date"),
    ({"time": None, "end_time": "12:00"}, "bad_date"),
    ({"title": ""}, "bad_item"),
    ({"title": None}, "bad_item"),
    ({"title": "x" * 101}, "bad_item"),
    ({"place": ["Graça"]}, "bad_item"),
    ({"kind": "party"}, "bad_item"),
    ({"zone": "Mars/Base"}, "bad_item"),
]


@pytest.mark.parametrize(("fields", "code"), BAD_ITEMS)
async def test_bad_items_write_nothing(group, fields, code):
    ana = group.person("ana")
    await start_trip(group, ana)
    before, timers = group.snapshot(), group.timer_keys()
    refused = await group.refused(ana, "item.add", {**TRAM, **fields})
    assert refused.code == code and group.snapshot() == before and group.timer_keys() == timers


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/trip plan add 2027-05-09 10:00 Surf", "within the trip's dates"),
        ("/trip plan add 2027-05-02 10:00", "Give the item a title"),
        ("/trip plan add tomorrow 10:00 Surf", "not a date"),
        ("/trip plan add 2027-05-02 10:00 Surf until 09:00", "ends before it starts"),
        ("/trip plan add", "Usage"),
        ("/trip plan remove i9", "no plan item 'i9'"),
        ("/trip plan move i1", "Usage"),
    ],
)
async def test_bad_plan_commands_write_nothing(group, text, says):
    ana = group.person("ana")
    await start_trip(group, ana)
    before = group.snapshot()
    await group.command(ana, text)
    assert says in group.said(ana) and group.snapshot() == before


async def test_only_travellers_plan_and_only_while_planning(group):
    ana, zed = group.person("ana"), group.person("zed")
    refused = await group.refused(ana, "item.add", TRAM)
    assert refused.code == "no_trip"
    await start_trip(group, ana)
    item = await add(group, ana)
    before = group.snapshot()
    assert (await group.refused(zed, "item.add", TRAM)).code == "not_a_traveller"
    edit = {"item_id": item["id"], "version": 1, "title": "Tram 12"}
    assert (await group.refused(zed, "item.edit", edit)).code == "not_a_traveller"
    assert group.snapshot() == before
    await group.command(ana, "/trip end")
    before = group.snapshot()
    assert (await group.refused(ana, "item.add", TRAM)).code == "trip_ended"
    assert (await group.refused(ana, "item.edit", edit)).code == "trip_ended"
    assert group.snapshot() == before


async def test_ten_members_add_at_once(group):
    ana = group.person("ana")
    people = [group.person(f"p{n}") for n in range(10)]
    await start_trip(group, ana, *people)
    await asyncio.gather(
        *(
            add(group, p, title=f"Idea of {p.name}", time=f"{8 + n}:00")
            for n, p in enumerate(people)
        )
    )
    got = group.trip()["items"]
    assert len(got) == 10 and len({i["id"] for i in got}) == 10
    assert {i["title"] for i in got} == {f"Idea of {p.name}" for p in people}
    assert {i["updated_by"] for i in got} == {p.id for p in people}
    assert group.trip()["seq"] == 11


# --- editing ----------------------------------------------------------------------------------


async def test_edit_with_the_current_version(group):
    ana, ben = group.person("ana"), group.person("ben")
    await start_trip(group, ana, ben)
    item = await add(group, ana, end_time="12:00")
    group.sim.now += 60_000
    answer = await group.view(
        ben, "item.edit", {"item_id": item["id"], "version": 1, "date": "2027-05-03", "place": ""}
    )
    (edited,) = answer["trip"]["items"]
    assert edited["start"] == "2027-05-03T10:00" and edited["end"] == "2027-05-03T12:00"
    assert edited["place"] is None and edited["version"] == 2
    assert (edited["updated_by"], edited["updated_at"]) == (ben.id, T0 + 60_000)
    assert f"Mon 3 May: 10:00{DASH}12:00 • Tram 28" in card_words(trip_card(group))
    # An edit that changes nothing writes nothing (the version stays).
    before = group.snapshot()
    await group.view(ben, "item.edit", {"item_id": item["id"], "version": 2, "title": "Tram 28"})
    assert group.snapshot() == before


async def test_edits_of_different_items_at_once_both_land(group):
    ana, ben = group.person("ana"), group.person("ben")
    await start_trip(group, ana, ben)
    first = await add(group, ana, title="Tram 28")
    second = await add(group, ana, title="Castle")
    await asyncio.gather(
        group.view(ana, "item.edit", {"item_id": first["id"], "version": 1, "time": "11:00"}),
        group.view(ben, "item.edit", {"item_id": second["id"], "version": 1, "title": "Castelo"}),
    )
    got = items(group)
    assert (got[first["id"]]["start"], got[first["id"]]["version"]) == ("2027-05-02T11:00", 2)
    assert (got[second["id"]]["title"], got[second["id"]]["version"]) == ("Castelo", 2)


async def test_a_stale_edit_is_a_conflict_that_writes_nothing(group):
    ana, ben = group.person("ana"), group.person("ben")
    await start_trip(group, ana, ben)
    item = await add(group, ana)
    await group.view(ana, "item.edit", {"item_id": item["id"], "version": 1, "time": "11:30"})
    before = group.snapshot()
    refused = await group.refused(
        ben, "item.edit", {"item_id": item["id"], "version": 1, "title": "Tram 12"}
    )
    assert refused.code == "conflict"
    assert "Ana changed this item meanwhile" in refused.message
    assert "“Tram 28”, Sun 2 May 11:30 at Graça (version 2)" in refused.message
    refused = await group.refused(ben, "item.remove", {"item_id": item["id"], "version": 1})
    assert refused.code == "conflict" and group.snapshot() == before


async def test_two_edits_of_one_item_at_once_one_lands_the_other_conflicts(group):
    ana, ben = group.person("ana"), group.person("ben")
    await start_trip(group, ana, ben)
    item = await add(group, ana)
    results = await asyncio.gather(
        group.view(ana, "item.edit", {"item_id": item["id"], "version": 1, "title": "A"}),
        group.view(ben, "item.edit", {"item_id": item["id"], "version": 1, "title": "B"}),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, ViewError)]
    assert len(refused) == 1 and refused[0].code == "conflict"
    (stored,) = group.trip()["items"]
    assert stored["version"] == 2 and stored["title"] in ("A", "B")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"item_id": "i9", "version": 1}, "unknown_item"),
        ({"item_id": None, "version": 1}, "unknown_item"),
        ({"item_id": "i1", "version": "1"}, "bad_item"),
        ({"item_id": "i1"}, "bad_item"),
        ({"item_id": "i1", "version": 1, "date": "2027-06-01"}, "outside_trip"),
        ({"item_id": "i1", "version": 1, "time": "9h"}, "bad_date"),
        ({"item_id": "i1", "version": 1, "title": " "}, "bad_item"),
        ({"item_id": "i1", "version": 1, "end_time": "08:00"}, "bad_date"),
    ],
)
async def test_bad_edits_write_nothing(group, params, code):
    ana = group.person("ana")
    await start_trip(group, ana)
    await add(group, ana)
    before = group.snapshot()
    refused = await group.refused(ana, "item.edit", params)
    assert refused.code == code and group.snapshot() == before


# --- removing ---------------------------------------------------------------------------------


async def test_remove_by_view_and_command(group):
    ana, ben = group.person("ana"), group.person("ben")
    await start_trip(group, ana, ben)
    first = await add(group, ana)
    stay = await add(group, ana, kind="stay", title="Hotel", date="2027-05-01", time="15:00")
    reminder = f"rm-{group.trip()['id']}-{stay['id']}-0"
    assert reminder in group.timer_keys()
    answer = await group.view(ben, "item.remove", {"item_id": first["id"], "version": 1})
    assert [i["id"] for i in answer["trip"]["items"]] == [stay["id"]]
    await group.command(ben, f"/trip plan remove {stay['id'].upper()}")
    assert group.said(ben) == f"Removed {stay['id']}: Hotel"
    assert group.trip()["items"] == [] and reminder not in group.timer_keys()
    before = group.snapshot()
    refused = await group.refused(ben, "item.remove", {"item_id": first["id"], "version": 1})
    assert refused.code == "unknown_item" and group.snapshot() == before
    refused = await group.refused(ben, "item.remove", {"item_id": first["id"]})
    assert refused.code == "bad_item"


async def add_booked(group, user, items: list[dict], booking_id: str = "bk0123456789") -> list:
    """Items that came with a booking, added as booking.py does (``add_items`` in an update)."""
    store, itinerary = app_module("store"), app_module("itinerary")
    trip_id = group.trip()["id"]

    async def work(ctx):
        added, trip = await store.update(
            ctx, trip_id, lambda doc: itinerary.add_items(doc, items, ctx.user_id, booking_id)
        )
        await store.refresh_card(ctx, trip)
        return added

    return await group.run_as(user, work)


FLIGHT = {
    "kind": "flight",
    "title": "TP 1 MAD → LIS",
    "start": "2027-05-01T07:05",
    "zone": "Europe/Madrid",
    "end": "2027-05-01T07:20",
    "end_zone": "Europe/Lisbon",
    "place": "Madrid (MAD)",
    "details": {"flight": "TP 1"},
}


async def test_booked_items_follow_their_booking_not_hands(group):
    ana = group.person("ana")
    await start_trip(group, ana)
    (flight,) = await add_booked(group, ana, [FLIGHT])
    assert flight["status"] == "booked" and flight["booking_id"] == "bk0123456789"
    assert (
        flight["id"] == "i1" and flight["version"] == 1 and flight["details"] == FLIGHT["details"]
    )
    before = group.snapshot()
    for name, params in (
        ("item.edit", {"item_id": "i1", "version": 1, "time": "09:00"}),
        ("item.remove", {"item_id": "i1", "version": 1}),
    ):
        refused = await group.refused(ana, name, params)
        assert refused.code == "booked_item" and "came with a booking" in refused.message
    await group.command(ana, "/trip plan remove i1")
    assert "came with a booking" in group.said(ana) and group.snapshot() == before
    assert f"07:05{DASH}07:20 (Madrid time) ✈ TP 1 MAD → LIS · Madrid (MAD) · booked" in card_words(
        trip_card(group)
    )


# --- the pure edits ---------------------------------------------------------------------------


def a_trip() -> dict:
    return {
        "id": "tr0123456789",
        "start": "2027-05-01",
        "end": "2027-05-05",
        "destination": {"zone": "Europe/Lisbon"},
        "items": [],
        "seq": 4,
    }


def test_add_items_and_mark_changed(group):
    itinerary = app_module("itinerary")
    trip = a_trip()
    second = {**FLIGHT, "title": "TP 2 LIS → OPO", "start": "2027-05-01T09:00",
              "zone": "Europe/Lisbon", "end": "2027-05-01T10:00", "end_zone": None}  # fmt: skip
    added = itinerary.add_items(trip, [FLIGHT, second], "u1", "bk1")
    assert [i["id"] for i in added] == ["i4", "i5"] and trip["seq"] == 6
    assert added[1]["end_zone"] == "Europe/Lisbon"  # an end without its zone: the start's
    assert all(i["status"] == "booked" and i["version"] == 1 for i in trip["items"])
    (note,) = itinerary.add_items(trip, [{"title": "Note", "start": "2027-05-02"}], "u2")
    assert (note["kind"], note["status"], note["zone"], note["booking_id"]) == (
        "activity",
        "planned",
        "Europe/Lisbon",
        None,
    )
    # The airline moves the first flight and drops the second.
    moved = {**FLIGHT, "start": "2027-05-01T08:05", "end": "2027-05-01T08:20"}
    touched = itinerary.mark_changed(trip, "bk1", [moved])
    assert [(i["id"], i["status"], i["version"]) for i in touched] == [
        ("i4", "changed", 2),
        ("i5", "cancelled", 2),
    ]
    assert trip["items"][0]["start"] == "2027-05-01T08:05" and trip["items"][2] == note
    # A change with one more flight than before adds it.
    extra = {**second, "start": "2027-05-01T12:00"}
    touched = itinerary.mark_changed(trip, "bk1", [moved, moved, extra])
    assert [(i["id"], i["status"]) for i in touched] == [
        ("i4", "changed"),
        ("i5", "changed"),
        ("i7", "changed"),
    ]
    assert touched[2]["booking_id"] == "bk1" and len(trip["items"]) == 4


def test_days_cover_the_trip_and_its_travel_days(group):
    itinerary = app_module("itinerary")
    trip = a_trip()
    itinerary.add_items(trip, [{"title": "Back", "start": "2027-05-06T18:00"}], "u1")
    days = itinerary.days(trip)
    assert [d["date"] for d in days] == [f"2027-05-0{n}" for n in range(1, 7)]
    assert [i["title"] for i in days[-1]["items"]] == ["Back"]
