"""The plan as an ``.ics`` file (parsed back with ``icalendar``: one event per item in its own
zone, stable UIDs, SEQUENCE = version, cancelled items CANCELLED, whole days as dates) and the
reminders (timers before flights, stays and the trip; said in the group and to each traveller
who opted in; set again when things move, and silent when what they were for moved or left)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from icalendar import Calendar

from tests.miniapps.travel.travel_fixtures import (
    DAY,
    HOUR,
    MINUTE,
    T0,
    app_module,
    start_trip,
)

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
# 1 May 07:05 in Madrid (UTC+2) is 05:05 UTC, 61 days and 5 h 5 min after T0.
DEPARTURE = T0 + 61 * DAY + 5 * HOUR + 5 * MINUTE
LISBON = ZoneInfo("Europe/Lisbon")


async def add_booked(group, user, items: list[dict], booking_id: str = "bk0123456789") -> list:
    """Items that came with a booking, as booking.py adds them (then the reminders follow)."""
    store, itinerary, reminders = (app_module(n) for n in ("store", "itinerary", "reminders"))
    trip_id = group.trip()["id"]

    async def work(ctx):
        added, trip = await store.update(
            ctx, trip_id, lambda doc: itinerary.add_items(doc, items, ctx.user_id, booking_id)
        )
        await reminders.sync(ctx, trip)
        return added

    return await group.run_as(user, work)


async def change_schedule(group, user, new_items: list[dict], booking_id="bk0123456789"):
    """A schedule change from the provider, as changes.py applies it."""
    store, itinerary, reminders = (app_module(n) for n in ("store", "itinerary", "reminders"))
    trip_id = group.trip()["id"]

    async def work(ctx):
        _, trip = await store.update(
            ctx, trip_id, lambda doc: itinerary.mark_changed(doc, booking_id, new_items)
        )
        await reminders.sync(ctx, trip)

    await group.run_as(user, work)


def events(text: str) -> dict[str, object]:
    """The calendar's events by UID."""
    cal = Calendar.from_ical(text)
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


# --- .ics ------------------------------------------------------------------------------------


async def test_the_plan_as_an_ics_file(group):
    ana, ben = group.person("ana"), group.person("ben")
    trip = await start_trip(group, ana, ben)
    await add_booked(group, ana, [FLIGHT])
    await group.command(ana, '/trip plan add 2027-05-02 10:00 "Tram 28" at "Graça" until 12:00')
    await group.command(ana, '/trip plan add note 2027-05-03 "Beach day"')
    await group.view(ben, "item.edit", {"item_id": "i2", "version": 1, "time": "10:30"})
    answer = await group.view(ben, "trip.ics")
    assert answer["filename"] == "lisbon-2027-05-01.ics"
    assert answer["content_type"] == "text/calendar"
    cal = Calendar.from_ical(answer["text"])
    assert str(cal["X-WR-CALNAME"]) == "Trip: Lisbon"
    assert {str(z["TZID"]) for z in cal.walk("VTIMEZONE")} == {"Europe/Madrid", "Europe/Lisbon"}
    found = events(answer["text"])
    uid = {i: f"{i}.{trip['id']}@travel.aetherial" for i in ("i1", "i2", "i3")}
    assert set(found) == set(uid.values())
    # The flight: from Madrid time to Lisbon time, booked.
    booked = found[uid["i1"]]
    assert booked["DTSTART"].params["TZID"] == "Europe/Madrid"
    assert booked["DTEND"].params["TZID"] == "Europe/Lisbon"
    start, end = booked.decoded("DTSTART"), booked.decoded("DTEND")
    assert start == dt.datetime(2027, 5, 1, 7, 5, tzinfo=ZoneInfo("Europe/Madrid"))
    assert round(start.timestamp() * 1000) == DEPARTURE
    assert end == dt.datetime(2027, 5, 1, 7, 20, tzinfo=LISBON)
    assert (str(booked["STATUS"]), int(booked["SEQUENCE"])) == ("CONFIRMED", 1)
    assert (str(booked["SUMMARY"]), str(booked["LOCATION"])) == ("TP 1 MAD → LIS", "Madrid (MAD)")
    # The edited activity: its version is the sequence.
    tram = found[uid["i2"]]
    assert tram.decoded("DTSTART") == dt.datetime(2027, 5, 2, 10, 30, tzinfo=LISBON)
    assert (str(tram["STATUS"]), int(tram["SEQUENCE"])) == ("TENTATIVE", 2)
    # A whole day: dates, the end exclusive.
    beach = found[uid["i3"]]
    assert beach.decoded("DTSTART") == dt.date(2027, 5, 3)
    assert beach.decoded("DTEND") == dt.date(2027, 5, 4)
    # Exported again: the same UIDs. The airline cancels the flight: CANCELLED, sequence 2.
    await change_schedule(group, ana, [])
    again = events((await group.view(ana, "trip.ics"))["text"])
    assert set(again) == set(found)
    assert (str(again[uid["i1"]]["STATUS"]), int(again[uid["i1"]]["SEQUENCE"])) == (
        "CANCELLED",
        2,
    )


async def test_ics_command_and_no_trip(group):
    ana = group.person("ana")
    assert (await group.refused(ana, "trip.ics")).code == "no_trip"
    await start_trip(group, ana)
    await group.command(ana, "/trip ics")
    shown = group.said(ana)
    assert shown["title"] == "Calendar · Lisbon"
    assert shown["buttons"] == [{"label": "Get the .ics file", "opens": "webview", "path": "#ics"}]
    empty = Calendar.from_ical((await group.view(ana, "trip.ics"))["text"])
    assert empty.walk("VEVENT") == []


# --- reminders: when ---------------------------------------------------------------------------


async def test_reminders_for_flights_stays_and_the_trip(group):
    ana, ben = group.person("ana"), group.person("ben")
    trip = await start_trip(group, ana, ben)
    await add_booked(group, ana, [FLIGHT])
    await group.command(ben, '/trip plan add stay 2027-05-01 15:00 "Casa" until 2027-05-05 11:00')
    await group.command(ben, '/trip plan add 2027-05-02 10:00 "Tram 28"')  # no reminder
    rm = f"rm-{trip['id']}"
    assert group.timer_keys() == {
        f"{rm}-start-0": T0 + 60 * DAY + 8 * HOUR,  # 30 Apr 09:00 in Lisbon
        f"{rm}-i1-0": DEPARTURE - 24 * HOUR,
        f"{rm}-i1-1": DEPARTURE - 3 * HOUR,
        f"{rm}-i2-0": T0 + 60 * DAY + 17 * HOUR,  # 30 Apr 18:00 in Lisbon
    }
    pending = {t["key"]: t["payload"] for t in group.sim.pending_timers()}
    assert pending[f"{rm}-i1-1"] == {
        "trip_id": trip["id"],
        "item_id": "i1",
        "n": 1,
        "start": "2027-05-01T07:05",
        "zone": "Europe/Madrid",
    }


async def test_past_reminders_are_not_set(group):
    ana = group.person("ana")
    trip = await start_trip(group, ana, text="Lisbon 2027-03-01 2027-03-03")
    assert group.timer_keys() == {}  # 28 Feb 09:00 is past
    # A flight tonight at 20:00 (Lisbon is UTC+0 in March): only the 3-hour reminder.
    await add_booked(group, ana, [{**FLIGHT, "start": "2027-03-01T20:00", "zone": "Europe/Lisbon",
                                   "end": "2027-03-01T22:00"}])  # fmt: skip
    assert group.timer_keys() == {f"rm-{trip['id']}-i1-1": T0 + 17 * HOUR}


async def test_reminders_move_with_their_item_and_go_with_it(group):
    ana = group.person("ana")
    trip = await start_trip(group, ana)
    await group.command(ana, '/trip plan add stay 2027-05-02 15:00 "Casa"')
    key = f"rm-{trip['id']}-i1-0"
    assert group.timer_keys()[key] == T0 + 61 * DAY + 17 * HOUR
    await group.view(ana, "item.edit", {"item_id": "i1", "version": 1, "date": "2027-05-03"})
    assert group.timer_keys()[key] == T0 + 62 * DAY + 17 * HOUR
    await group.command(ana, "/trip plan remove i1")
    assert key not in group.timer_keys()
    # New dates move the trip's own reminder; the end of the trip takes them all.
    await group.command(ana, "/trip dates 2027-05-10 2027-05-11")
    assert group.timer_keys() == {f"rm-{trip['id']}-start-0": T0 + 69 * DAY + 8 * HOUR}
    await group.command(ana, "/trip end")
    assert group.timer_keys() == {}


async def test_a_schedule_change_moves_the_flights_reminders(group):
    ana = group.person("ana")
    trip = await start_trip(group, ana)
    await add_booked(group, ana, [FLIGHT])
    await change_schedule(group, ana, [{**FLIGHT, "start": "2027-05-01T09:05"}])
    keys = group.timer_keys()
    assert keys[f"rm-{trip['id']}-i1-0"] == DEPARTURE - 22 * HOUR
    assert keys[f"rm-{trip['id']}-i1-1"] == DEPARTURE - 1 * HOUR


async def test_far_trips_get_their_reminders_later(group):
    ana = group.person("ana")
    trip = await start_trip(group, ana, text="Lisbon 2028-03-20 2028-03-22")
    resync = f"rm-{trip['id']}-resync"
    assert group.timer_keys() == {resync: T0 + 365 * DAY}
    await group.sim.advance(days=365)
    # 29 February 2028: the trip's reminder (19 March 09:00, Lisbon on UTC+0) is within reach.
    assert group.timer_keys() == {f"rm-{trip['id']}-start-0": T0 + 384 * DAY + 9 * HOUR}


# --- reminders: what they say, to whom ---------------------------------------------------------


async def test_a_reminder_is_said_in_the_group_and_to_each_traveller_who_opted_in(group):
    ana, ben = group.person("ana"), group.person("ben")
    quiet = group.person("quiet", notifications=False)
    await start_trip(group, ana, ben, quiet)
    await add_booked(group, ana, [FLIGHT])
    await group.command(ben, '/trip plan add stay 2027-05-01 15:00 "Casa" at "Alfama"')
    texts_before = len(group.sim.messages(group.chat))
    fired = await group.sim.advance(days=60, hours=9)  # 30 Apr 09:00 UTC
    assert [f["key"].rsplit("-", 2)[-2:] for f in fired] == [["i1", "0"], ["start", "0"]]
    assert all(f["ok"] for f in fired)
    said = [m["text"] for m in group.sim.messages(group.chat)[texts_before:]]
    assert said == [
        "✈ Tomorrow: TP 1 MAD → LIS, Sat 1 May 07:05 (Madrid time) → 07:20 (Lisbon time)"
        " · Madrid (MAD). Check in online.",
        "🧳 Lisbon starts tomorrow (Sat 1 May)! /trip shows the plan.",
    ]
    assert group.sim.notifications(ana) == [f"Lisbon: {text}" for text in said]
    assert group.sim.notifications(ben) == group.sim.notifications(ana)
    assert group.sim.notifications(quiet) == []  # not opted in: skipped, nothing failed
    await group.sim.advance(hours=24)
    said = [m["text"] for m in group.sim.messages(group.chat)[texts_before + 2 :]]
    assert said == [
        "🏨 Check-in tomorrow: Casa · Alfama, Sat 1 May from 15:00 (Lisbon time).",
        "✈ In 3 hours: TP 1 MAD → LIS, departs 07:05 (Madrid time) · Madrid (MAD).",
    ]


async def test_a_timer_for_what_moved_or_left_says_nothing(group):
    ana = group.person("ana")
    trip = await start_trip(group, ana)
    await group.command(ana, '/trip plan add stay 2027-05-02 15:00 "Casa"')

    async def stale(ctx):
        # Timers as an older sync left them: the stay at another time, an item that is gone,
        # the trip on other dates.
        for key, item_id, start in (
            ("rm-old-1", "i1", "2027-05-03T15:00"),
            ("rm-old-2", "i9", "2027-05-02T15:00"),
            ("rm-old-3", None, "2027-04-20"),
        ):
            payload = {"trip_id": trip["id"], "item_id": item_id, "n": 0, "start": start,
                       "zone": "Europe/Lisbon"}  # fmt: skip
            await ctx.schedule("trip.remind", at=T0 + HOUR, payload=payload, key=key)

    await group.run_as(ana, stale)
    before = len(group.sim.messages(group.chat))
    fired = await group.sim.advance(hours=2)
    assert {f["key"] for f in fired} == {"rm-old-1", "rm-old-2", "rm-old-3"}
    assert all(f["ok"] for f in fired)
    assert len(group.sim.messages(group.chat)) == before and group.sim.notifications(ana) == []
    # The right reminders are still set.
    assert f"rm-{trip['id']}-i1-0" in group.timer_keys()


async def test_an_ended_trip_says_nothing(group):
    ana = group.person("ana")
    trip = await start_trip(group, ana)
    store = app_module("store")

    async def end_quietly(ctx):
        # Ended behind the reminders' back (its timers are still there).
        await store.update(ctx, trip["id"], lambda doc: doc.update(status="ended"))

    await group.run_as(ana, end_quietly)
    before = len(group.sim.messages(group.chat))
    fired = await group.sim.advance(days=61)
    assert [f["ok"] for f in fired] == [True]
    assert len(group.sim.messages(group.chat)) == before and group.sim.notifications(ana) == []


async def test_a_timer_the_host_refuses_does_not_undo_the_change(group):
    ana = group.person("ana")
    group.sim.fail_next("timers.schedule", "unavailable")
    trip = await start_trip(group, ana)
    assert trip["card"] is not None and group.timer_keys() == {}
    # The next change sets what is missing.
    await group.command(ana, '/trip plan add stay 2027-05-02 15:00 "Casa"')
    assert group.said(ana).startswith("Added i1")
    assert set(group.timer_keys()) == {f"rm-{trip['id']}-start-0", f"rm-{trip['id']}-i1-0"}
