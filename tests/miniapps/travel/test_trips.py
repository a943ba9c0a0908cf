"""The trip: ``/trip new`` (destination resolved with airportsdata, the currency with babel, the
dates checked in the destination's zone), one trip per chat even when two start at once, the
trip card (posted, redrawn, reposted, within the card limits), join and leave (commands,
buttons, views; not while holding a share of a booking under way), dates, home airport, end."""

from __future__ import annotations

import asyncio

import pytest

from sdk import validate_card
from tests.miniapps.travel.travel_fixtures import (
    DAY,
    HOUR,
    T0,
    app_module,
    card_words,
    start_trip,
    trip_card,
)

DASH = "\u2013"  # an en dash, as cards write date ranges


def pointer(group) -> dict | None:
    return group.sim.storage("current").get(group.chat.id)


# --- creating ---------------------------------------------------------------------------------


async def test_new_trip_posts_its_card_with_the_destination_resolved(group):
    ana = group.person("ana")
    answer = await group.command(ana, '/trip new "Lisbon" 2027-05-01 2027-05-05 from mad')
    trip = group.trip()
    assert trip["title"] == "Lisbon" and trip["status"] == "planning"
    assert trip["destination"] == {
        "name": "Lisbon",
        "airport": "LIS",
        "zone": "Europe/Lisbon",
        "country": "PT",
        "lat": pytest.approx(38.78, abs=0.01),
        "lon": pytest.approx(-9.14, abs=0.01),
    }
    assert (trip["start"], trip["end"], trip["currency"]) == ("2027-05-01", "2027-05-05", "EUR")
    assert trip["home_airport"] == "MAD" and trip["created_by"] == ana.id
    assert trip["travellers"] == {ana.id: {"name": "Ana", "joined_at": T0}}
    assert trip["items"] == [] and trip["votes"] == [] and trip["seq"] == 1
    assert trip["booking"] is None and trip["spent"] == {}
    assert trip_id_ok(trip["id"]) and pointer(group)["trip_id"] == trip["id"]
    # The card is in the chat and the trip knows it; nothing else was said.
    (message,) = group.sim.messages(group.chat)
    assert trip["card"] == {"message_id": message["id"]} and answer == {}
    words = card_words(message["card"])
    assert (
        f"Lisbon · 1{DASH}5 May 2027" in words and "Portugal" in words and "Europe/Lisbon" in words
    )
    assert "From MAD" in words and "Travellers (1): Ana" in words
    actions = [b.get("action_id") for b in message["card"]["buttons"]]
    assert {"trip.join", "trip.leave", "expense.balances"} <= set(actions)
    paths = {b.get("path") for b in message["card"]["buttons"]}
    assert {"#trip", "#plan"} <= paths
    # The reminder the day before, at 09:00 in Lisbon (UTC+1 in May).
    assert group.timer_keys() == {
        f"rm-{trip['id']}-start-0": T0 + 60 * DAY + 8 * HOUR  # 30 Apr 09:00 WEST
    }


def trip_id_ok(trip_id: str) -> bool:
    return len(trip_id) == 12 and trip_id.startswith("tr") and int(trip_id[2:], 16) >= 0


@pytest.mark.parametrize(
    ("typed", "airport", "zone", "currency"),
    [
        ("LIS", "LIS", "Europe/Lisbon", "EUR"),
        ("Rome", "FCO", "Europe/Rome", "EUR"),  # not Rome, Georgia: the zone named after it
        ("Rome, US", "RME", "America/New_York", "USD"),
        ("Paris", "CDG", "Europe/Paris", "EUR"),
        ("London", "LCY", "Europe/London", "GBP"),
        ("Tokyo", "NRT", "Asia/Tokyo", "JPY"),
        ("São Paulo", "GRU", "America/Sao_Paulo", "BRL"),
        ("Faro", "FAO", "Europe/Lisbon", "EUR"),
    ],
)
def test_resolving_a_destination(group, typed, airport, zone, currency):
    trips = app_module("trips")
    found, _ = trips.resolve(typed)
    assert (found["airport"], found["zone"]) == (airport, zone)
    assert trips.currency_of(found["country"]) == currency


def test_resolving_in_the_readers_language_and_part_of_the_world(group):
    trips = app_module("trips")
    assert trips.resolve("Lisboa", "pt-PT")[0]["airport"] == "LIS"
    assert trips.resolve("Barcelona", "en", "Europe/Berlin")[0]["airport"] == "BCN"
    assert trips.resolve("Barcelona", "en", "America/Caracas")[0]["airport"] == "BLA"
    _, note = trips.resolve("Rome")
    assert "FCO" in note and "IT, US" in note
    assert trips.resolve("Sintra") == (None, "")


async def test_a_place_without_an_airport_is_fine(group):
    ana = group.person("ana", time_zone="Europe/Lisbon")
    await group.command(ana, '/trip new "Sintra" 2027-05-01 2027-05-03')
    trip = group.trip()
    assert trip["destination"] == {
        "name": "Sintra",
        "airport": None,
        "zone": "Europe/Lisbon",
        "country": None,
        "lat": None,
        "lon": None,
    }
    assert trip["currency"] == "EUR" and trip["home_airport"] is None
    assert "I know no airport or city called Sintra" in group.said(ana)


async def test_an_airport_code_names_the_trip_after_its_city(group):
    ana = group.person("ana")
    await group.command(ana, "/trip new OPO 2027-05-01 2027-05-03")
    assert group.trip()["title"] == "Porto" and group.trip()["destination"]["airport"] == "OPO"


async def test_dates_are_checked_in_the_destinations_zone(group):
    # At T0 (1 March 00:00 UTC) it is still 28 February in Honolulu, already 1 March in Lisbon.
    ana = group.person("ana")
    await group.command(ana, "/trip new Lisbon 2027-02-28 2027-03-03")
    assert group.trip() is None and "already past" in group.said(ana)
    await group.command(ana, "/trip new Honolulu 2027-02-28 2027-03-03")
    assert group.trip()["destination"]["zone"] == "Pacific/Honolulu"


async def test_a_trip_in_a_direct_chat(group):
    ana = group.person("ana")
    direct = group.sim.conversation([ana], type="direct")
    await group.sim.command(ana, direct, "/trip new Porto 2027-05-01 2027-05-03")
    trip_id = group.sim.storage("current")[direct.id]["trip_id"]
    assert group.sim.storage("trips")[trip_id]["conversation_id"] == direct.id


BAD_NEW = [
    ('"Lisbon" 2027-05-05 2027-05-01', "return_before_departure", "before it starts"),
    ('"Lisbon" 2027-02-27 2027-03-02', "dates_in_past", "already past"),
    ('"Lisbon" 2027-02-30 2027-03-02', "bad_date", "not a date"),
    ('"Lisbon" 2027-5-1 2027-05-05', "bad_date", "not a date"),
    ('"Lisbon" May 1', "bad_date", "Usage"),
    ('"Lisbon" 2027-05-01 2027-07-01', "trip_too_long", "at most 60 days"),
    ('"Lisbon" 2027-05-01 2027-05-05 from QQQ', "unknown_airport", "QQQ"),
    ('"Lisbon" 2027-05-01 2027-05-05 via MAD', "usage", "Usage"),
    ('"" 2027-05-01 2027-05-05', "bad_destination", "Where to?"),
]


@pytest.mark.parametrize(("args", "code", "says"), BAD_NEW)
async def test_bad_new_trip_writes_nothing(group, args, code, says):
    ana = group.person("ana")
    before = group.snapshot()
    await group.command(ana, f"/trip new {args}")
    assert says in group.said(ana)
    assert group.snapshot() == before and group.timer_keys() == {}
    assert group.sim.messages(group.chat) == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (
            {"title": "Lisbon", "start": "2027-05-05", "end": "2027-05-01"},
            "return_before_departure",
        ),
        ({"title": "Lisbon", "start": "2027-02-27", "end": "2027-03-02"}, "dates_in_past"),
        ({"title": "Lisbon", "start": "1 May", "end": "2027-05-05"}, "bad_date"),
        ({"title": "Lisbon", "start": 20270501, "end": "2027-05-05"}, "bad_date"),
        ({"title": "Lisbon", "start": "2027-05-01", "end": "2027-08-01"}, "trip_too_long"),
        (
            {"title": "Lisbon", "start": "2027-05-01", "end": "2027-05-05", "home_airport": "QQQ"},
            "unknown_airport",
        ),
        ({"title": None, "start": "2027-05-01", "end": "2027-05-05"}, "bad_destination"),
        ({"title": "x" * 61, "start": "2027-05-01", "end": "2027-05-05"}, "bad_destination"),
    ],
)
async def test_bad_trip_create_view(group, params, code):
    ana = group.person("ana")
    before = group.snapshot()
    refused = await group.refused(ana, "trip.create", params)
    assert refused.code == code and group.snapshot() == before


async def test_trip_create_view_and_trip_get(group):
    ana, ben = group.person("ana"), group.person("ben")
    empty = await group.view(ana, "trip.get")
    assert empty == {"trip": None, "me": ana.id, "is_traveller": False, "names": {}}
    made = await group.view(
        ana,
        "trip.create",
        {"title": "Porto", "start": "2027-05-01", "end": "2027-05-02", "home_airport": "lis"},
    )
    assert made["trip"]["destination"]["airport"] == "OPO" and made["note"] is None
    assert made["trip"]["home_airport"] == "LIS" and made["is_traveller"] is True
    assert [d["date"] for d in made["trip"]["days"]] == ["2027-05-01", "2027-05-02"]
    seen = await group.view(ben, "trip.get")
    assert seen["is_traveller"] is False and seen["names"] == {ana.id: "Ana"}
    assert seen["trip"]["id"] == group.trip()["id"] and len(group.sim.messages(group.chat)) == 1


# --- one trip per chat ------------------------------------------------------------------------


async def test_a_second_trip_waits_for_the_first_to_end(group):
    ana = group.person("ana")
    await start_trip(group, ana)
    before = group.snapshot()
    await group.command(ana, "/trip new Porto 2027-06-01 2027-06-03")
    assert f"already planning Lisbon (1{DASH}5 May 2027)" in group.said(ana)
    assert group.snapshot() == before
    refused = await group.refused(
        ana, "trip.create", {"title": "Porto", "start": "2027-06-01", "end": "2027-06-03"}
    )
    assert refused.code == "trip_exists" and group.snapshot() == before
    # Once ended, a new one starts; the old one stays (its balances).
    first = group.trip()["id"]
    await group.command(ana, "/trip end")
    await group.command(ana, "/trip new Porto 2027-06-01 2027-06-03")
    assert group.trip()["title"] == "Porto" and group.trip()["id"] != first
    assert group.sim.storage("trips")[first]["status"] == "ended"
    assert pointer(group)["status"] == "planning"


async def test_two_new_trips_at_once_make_exactly_one(group):
    ana, ben = group.person("ana"), group.person("ben")
    await asyncio.gather(
        group.command(ana, "/trip new Lisbon 2027-05-01 2027-05-05"),
        group.command(ben, "/trip new Porto 2027-05-01 2027-05-05"),
        group.command(ana, "/trip new Faro 2027-05-01 2027-05-05"),
    )
    (trip,) = group.sim.storage("trips").values()
    assert pointer(group)["trip_id"] == trip["id"]
    assert [m["type"] for m in group.sim.messages(group.chat)] == ["card"]
    refusals = [e["text"] for u in (ana, ben) for e in group.sim.ephemeral(u)]
    assert len(refusals) == 2 and all("already planning" in text for text in refusals)


# --- showing the card -------------------------------------------------------------------------


async def test_trip_alone_shows_the_card_or_what_the_app_does(group):
    ana = group.person("ana")
    await group.command(ana, "/trip")
    assert group.sim.messages(group.chat)[-1]["card"]["title"] == "Travel"  # app.py's welcome
    await start_trip(group, ana)
    await group.command(ana, "/trip")
    assert group.said(ana) == trip_card(group)


async def test_repost_the_card_at_the_bottom(group):
    ana, ben = group.person("ana"), group.person("ben")
    await start_trip(group, ana)
    old = group.trip()["card"]["message_id"]
    await group.command(ben, "/trip card")
    new = group.trip()["card"]["message_id"]
    assert new != old and group.sim.messages(group.chat)[-1]["id"] == new
    assert "moved" in group.sim.card(old)["text"] and "buttons" not in group.sim.card(old)
    # Changes now redraw the new card.
    await group.command(ben, "/trip join")
    assert "Ana, Ben" in card_words(group.sim.card(new))


def test_the_card_stays_within_the_card_limits(group):
    card = app_module("card")
    trip = {
        "id": "tr0123456789",
        "conversation_id": "c",
        "title": "A very long trip name " * 3,
        "status": "planning",
        "destination": {"name": "Lisbon", "airport": "LIS", "zone": "Europe/Lisbon",
                        "country": "PT", "lat": 1.0, "lon": 1.0},
        "home_airport": "MAD",
        "start": "2027-05-01",
        "end": "2027-06-29",
        "currency": "EUR",
        "travellers": {f"u{n}": {"name": f"Person {n} " * 9, "joined_at": 0} for n in range(40)},
        "items": [
            {"id": f"i{n}", "kind": "activity", "title": "Something to do " * 6,
             "start": f"2027-05-{1 + n % 30:02d}T{n % 24:02d}:00", "zone": "Europe/Lisbon",
             "end": None, "end_zone": None, "place": "Somewhere " * 9, "details": {},
             "booking_id": None, "status": "planned", "version": 1}
            for n in range(200)
        ],
        "votes": [
            {"id": f"v{n}", "kind": "other", "question": "Q? " * 60, "status": "open",
             "options": [{"id": f"o{k}", "label": "Option " * 8, "value": None} for k in range(8)],
             "ballots": {}, "winner": None, "created_by": "u1", "card_message_id": None}
            for n in range(10)
        ],
        "booking": {"id": "bk1", "title": "MAD → LIS", "state": "collecting", "held": 2, "of": 3,
                    "deadline_ms": T0 + 18 * HOUR},
        "spent": {"EUR": 123450, "USD": 999, "JPY": 5000},
        "card": None,
        "seq": 300,
    }  # fmt: skip
    shown = validate_card(card.render(trip, now_ms=T0))
    assert len(shown["title"]) <= 100 and len(shown.get("text", "")) <= 2000
    assert len(shown["fields"]) == 20 and len(shown["buttons"]) <= 10
    words = card_words(shown)
    assert "Booking MAD → LIS: 2/3 held, until 19:00 (Madrid time)" in words
    assert "€1,234.50" in words and "¥5,000" in words and "6 more open votes" in words
    assert shown["fields"][-1]["label"] == "More"


# --- who travels ------------------------------------------------------------------------------


async def test_join_and_leave_by_command_button_and_view(group):
    ana, ben, cleo = group.person("ana"), group.person("ben"), group.person("cleo")
    await start_trip(group, ana)
    card_id = group.trip()["card"]["message_id"]
    await group.command(ben, "/trip join")
    assert group.said(ben) == "You're in: Lisbon."
    await group.press(cleo, card_id, "trip.join")
    await group.press(cleo, card_id, "trip.join")
    assert group.said(cleo) == "You're already in."
    assert set(group.trip()["travellers"]) == {ana.id, ben.id, cleo.id}
    assert "Travellers (3): Ana, Ben, Cleo" in card_words(trip_card(group))
    await group.press(ben, card_id, "trip.leave")
    answer = await group.view(cleo, "trip.leave")
    assert answer["is_traveller"] is False and set(group.trip()["travellers"]) == {ana.id}
    answer = await group.view(cleo, "trip.join")
    assert answer["is_traveller"] is True and answer["names"][cleo.id] == "Cleo"
    await group.command(cleo, "/trip leave")
    await group.command(cleo, "/trip leave")
    assert group.said(cleo) == "You weren't in this trip."
    assert "Travellers (1): Ana" in card_words(trip_card(group))


async def test_many_join_at_once(group):
    ana = group.person("ana")
    await start_trip(group, ana)
    card_id = group.trip()["card"]["message_id"]
    people = [group.person(f"p{n}") for n in range(8)]
    await asyncio.gather(*(group.press(p, card_id, "trip.join") for p in people))
    assert set(group.trip()["travellers"]) == {ana.id, *(p.id for p in people)}


async def test_a_button_of_another_chats_trip_is_refused(group):
    ana = group.person("ana")
    await start_trip(group, ana)
    card_id = group.trip()["card"]["message_id"]
    before = group.snapshot()
    await group.press(ana, card_id, "trip.join", value="tr0000000000")
    assert "not this chat's" in group.said(ana) and group.snapshot() == before


async def put_booking(group, user, shares: dict, state: str = "collecting") -> None:
    """A booking under way, as booking.py leaves it: its document and the trip's summary."""
    store = app_module("store")
    trip = group.trip()

    async def work(ctx):
        await ctx.storage_put(
            "bookings", "bk0123456789", {"id": "bk0123456789", "trip_id": trip["id"],
                                         "shares": shares, "state": state},
        )  # fmt: skip

        def edit(doc):
            doc["booking"] = {"id": "bk0123456789", "title": "MAD → LIS", "state": state,
                              "held": 0, "of": len(shares), "deadline_ms": T0 + HOUR}  # fmt: skip

        await store.update(ctx, trip["id"], edit)

    await group.run_as(user, work)


async def test_leaving_with_a_share_of_a_booking_under_way_is_refused(group):
    ana, ben, cleo = group.person("ana"), group.person("ben"), group.person("cleo")
    await start_trip(group, ana, ben)
    await put_booking(group, ana, {ana.id: 5000, ben.id: 5000})
    await group.command(cleo, "/trip join")  # joined after: no share
    before = group.snapshot()
    await group.command(ben, "/trip leave")
    assert "booking MAD → LIS and you have a share" in group.said(ben)
    refused = await group.refused(ben, "trip.leave")
    assert refused.code == "booking_in_progress" and group.snapshot() == before
    await group.command(ben, "/trip end")
    assert "end the trip" in group.said(ben) and group.snapshot() == before
    await group.command(cleo, "/trip leave")
    assert set(group.trip()["travellers"]) == {ana.id, ben.id}
    assert "Booking MAD → LIS: 0/2 held" in card_words(trip_card(group))


async def test_leaving_once_the_booking_is_done(group):
    ana, ben = group.person("ana"), group.person("ben")
    await start_trip(group, ana, ben)
    await put_booking(group, ana, {ana.id: 5000, ben.id: 5000}, state="booked")
    await group.command(ben, "/trip leave")
    assert set(group.trip()["travellers"]) == {ana.id}


# --- dates, home airport, end -----------------------------------------------------------------


async def test_change_the_dates(group):
    ana = group.person("ana")
    await start_trip(group, ana)
    await group.command(ana, '/trip plan add 2027-05-02 10:00 "Tram 28"')
    await group.command(ana, "/trip dates 2027-05-10 2027-05-12")
    trip = group.trip()
    assert (trip["start"], trip["end"]) == ("2027-05-10", "2027-05-12")
    assert "Now outside the dates: i1" in group.said(ana)
    assert f"When: Mon 10 May {DASH} Wed 12 May · 3 days" in card_words(trip_card(group))
    assert group.timer_keys()[f"rm-{trip['id']}-start-0"] == T0 + 69 * DAY + 8 * HOUR


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ("2027-05-10", "Usage"),
        ("2027-05-10 2027-05-01", "before it starts"),
        ("2027-02-01 2027-05-01", "already past"),
        ("2027-05-01 2027-12-01", "at most 60 days"),
    ],
)
async def test_bad_dates_change_nothing(group, args, says):
    ana = group.person("ana")
    await start_trip(group, ana)
    before, timers = group.snapshot(), group.timer_keys()
    await group.command(ana, f"/trip dates {args}")
    assert says in group.said(ana)
    assert group.snapshot() == before and group.timer_keys() == timers


async def test_only_travellers_change_the_trip(group):
    ana, zed = group.person("ana"), group.person("zed")
    await start_trip(group, ana)
    before = group.snapshot()
    for text in ("/trip dates 2027-05-10 2027-05-12", "/trip home LIS", "/trip end"):
        await group.command(zed, text)
        assert "Only the trip's travellers" in group.said(zed)
    assert group.snapshot() == before


async def test_home_airport(group):
    ana = group.person("ana")
    await start_trip(group, ana)
    await group.command(ana, "/trip home opo")
    assert group.trip()["home_airport"] == "OPO" and "From OPO" in card_words(trip_card(group))
    before = group.snapshot()
    await group.command(ana, "/trip home QQQ")
    assert "no airport with the code 'QQQ'" in group.said(ana) and group.snapshot() == before
    await group.command(ana, "/trip home none")
    assert group.trip()["home_airport"] is None
    await group.command(ana, "/trip home")
    assert group.said(ana).startswith("Home airport: none.")


async def test_end_the_trip(group):
    ana, ben = group.person("ana"), group.person("ben")
    await start_trip(group, ana, ben)
    await group.command(ben, '/trip plan add stay 2027-05-01 15:00 "Hotel"')
    assert len(group.timer_keys()) == 2
    await group.command(ben, "/trip end")
    trip = group.trip()
    assert trip["status"] == "ended" and pointer(group)["status"] == "ended"
    assert group.sim.messages(group.chat)[-1]["text"].startswith("Lisbon has ended.")
    shown = trip_card(group)
    assert shown["title"].endswith("· ended")
    assert [b.get("action_id") for b in shown["buttons"]] == [None, "expense.balances"]
    assert group.timer_keys() == {}  # the reminders are gone
    # Ended: read-only, but still the chat's (balances); ending again says so.
    before = group.snapshot()
    await group.command(ana, "/trip end")
    assert "ended already" in group.said(ana)
    await group.command(ana, "/trip join")
    assert "has ended" in group.said(ana)
    await group.command(ana, "/trip dates 2027-05-02 2027-05-03")
    assert "has ended" in group.said(ana)
    assert group.snapshot() == before


async def test_no_trip_yet(group):
    ana = group.person("ana")
    for text in ("/trip join", "/trip leave", "/trip dates 2027-05-01 2027-05-02", "/trip end",
                 "/trip card", "/trip home MAD"):  # fmt: skip
        await group.command(ana, text)
        assert "no trip yet" in group.said(ana)
    refused = await group.refused(ana, "trip.join")
    assert refused.code == "no_trip" and group.snapshot() == {}
