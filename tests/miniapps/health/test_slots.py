"""Slots: generated in the practitioner's zone (DST gaps give no slot, folds take the first
occurrence), free = generated minus taken, shown in the reader's zone — and the time-zone test:
a practitioner in Asia/Shanghai and a patient in America/New_York across the March 2027 US DST
change see the same instant, each in their own zone."""

from __future__ import annotations

from datetime import date

import pytest

from tests.miniapps.health.booking_fixtures import (
    DAY,
    HOUR,
    MINUTE,
    PROFILE,
    T0,
    app_module,
    at,
    open_clinic,
)


@pytest.fixture
def clinic(monkeypatch):
    return open_clinic(monkeypatch)


def profile(**changes) -> dict:
    return {"id": "u-doc", "active": True, **PROFILE, **changes}


def starts(slots_of_day) -> list[int]:
    return [start for start, _ in slots_of_day]


# --- generation --------------------------------------------------------------------------------


def test_weekly_hours_make_slots_on_the_visit_grid(clinic):
    slots = app_module("slots")
    day = slots.day_slots(profile(), date(2027, 3, 2))  # a Tuesday
    assert starts(day) == [at("Europe/Lisbon", f"2027-03-02 {h}") for h in
                           ("09:00", "09:30", "10:00", "10:30", "11:00", "11:30")]  # fmt: skip
    assert all(end - start == 30 * MINUTE for start, end in day)
    assert slots.day_slots(profile(), date(2027, 3, 6)) == []  # a Saturday


def test_exceptions_replace_the_weekly_hours(clinic):
    slots = app_module("slots")
    exceptions = [
        {"date": "2027-03-02", "off": True},
        {"date": "2027-03-03", "start": "14:00", "end": "15:00"},
        {"date": "2027-03-06", "start": "10:00", "end": "11:00"},  # an extra Saturday
    ]
    p = profile(exceptions=exceptions)
    assert slots.day_slots(p, date(2027, 3, 2)) == []
    assert starts(slots.day_slots(p, date(2027, 3, 3))) == [
        at("Europe/Lisbon", "2027-03-03 14:00"),
        at("Europe/Lisbon", "2027-03-03 14:30"),
    ]
    assert len(slots.day_slots(p, date(2027, 3, 6))) == 2
    assert len(slots.day_slots(p, date(2027, 3, 4))) == 6  # other days keep their hours


def test_a_dst_gap_gives_no_slot_and_a_fold_takes_the_first_occurrence(clinic):
    slots = app_module("slots")
    # 2027-03-14: New York's clocks jump from 02:00 to 03:00.
    gap = profile(
        zone="America/New_York",
        weekly=[{"weekday": 6, "start": "01:00", "end": "04:00"}],
    )
    spring = slots.day_slots(gap, date(2027, 3, 14))
    assert starts(spring) == [
        at("UTC", "2027-03-14 06:00"),  # 01:00 EST
        at("UTC", "2027-03-14 06:30"),  # 01:30 EST
        at("UTC", "2027-03-14 07:00"),  # 03:00 EDT (02:00 and 02:30 do not exist)
        at("UTC", "2027-03-14 07:30"),  # 03:30 EDT
    ]
    # 2027-11-07: 01:00-02:00 happens twice; the first time (EDT, UTC-4) is the slot.
    fold = slots.day_slots(gap, date(2027, 11, 7))
    assert starts(fold)[:2] == [at("UTC", "2027-11-07 05:00"), at("UTC", "2027-11-07 05:30")]
    assert starts(fold)[2:] == [
        at("UTC", "2027-11-07 07:00"),  # 02:00 EST
        at("UTC", "2027-11-07 07:30"),
        at("UTC", "2027-11-07 08:00"),
        at("UTC", "2027-11-07 08:30"),
    ]
    assert len(set(starts(fold))) == len(fold)  # never twice the same instant


def test_check_slot_refuses_past_outside_and_off_grid_times(clinic):
    slots = app_module("slots")
    p = profile(exceptions=[{"date": "2027-03-03", "off": True}])
    good = at("Europe/Lisbon", "2027-03-02 09:30")
    assert slots.check_slot(p, good, now=T0) == (good, good + 30 * MINUTE)
    cases = {
        "slot_in_past": (good, good),
        "invalid_slot": (at("Europe/Lisbon", "2027-03-02 09:10"), T0),  # off the grid
    }
    for code, (start, now) in cases.items():
        with pytest.raises(slots.BookingError) as refused:
            slots.check_slot(p, start, now=now)
        assert refused.value.code == code
    for start in (
        at("Europe/Lisbon", "2027-03-02 13:00"),  # outside the hours
        at("Europe/Lisbon", "2027-03-03 09:00"),  # a day off
        at("Europe/Lisbon", "2027-03-06 09:00"),  # a Saturday
        at("Europe/Lisbon", "2027-03-02 11:45"),  # would end after 12:00
        "tomorrow",
        True,
    ):
        with pytest.raises(slots.BookingError) as refused:
            slots.check_slot(p, start, now=T0)
        assert refused.value.code == "invalid_slot", start


# --- the slot listing ----------------------------------------------------------------------


async def test_free_slots_are_listed_in_the_readers_zone_without_taken_or_past_ones(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient("pat", time_zone="Asia/Tokyo", locale="ja")
    other = clinic.patient("other")
    taken = at("Europe/Lisbon", "2027-03-02 10:00")
    await clinic.book(other, doc, taken)
    await clinic.sim.advance(seconds=(at("Europe/Lisbon", "2027-03-02 09:15") - T0) / 1000)
    listing = await clinic.view(pat, "slots.list", {"practitioner_id": doc.id, "days": 2})
    assert listing["zone"] == "Asia/Tokyo" and listing["practitioner_zone"] == "Europe/Lisbon"
    free = [s for day in listing["days"] for s in day["slots"]]
    assert [s["start"] for s in free] == [
        at("Europe/Lisbon", "2027-03-02 09:30"),
        at("Europe/Lisbon", "2027-03-02 10:30"),
        at("Europe/Lisbon", "2027-03-02 11:00"),
        at("Europe/Lisbon", "2027-03-02 11:30"),
        *[
            at("Europe/Lisbon", f"2027-03-03 {h}")
            for h in ("09:00", "09:30", "10:00", "10:30", "11:00", "11:30")
        ],
    ]
    # 09:30 in Lisbon (UTC+0 in March) is 18:30 in Tokyo, the same day.
    assert free[0]["local"] == "2027-03-02T18:30:00+09:00" and free[0]["date"] == "2027-03-02"
    assert "Asia/Tokyo" in free[0]["text"]


async def test_an_expired_hold_no_longer_hides_its_slot(clinic):
    doc = await clinic.practitioner()
    pat, other = clinic.patient("pat"), clinic.patient("other")
    start = at("Europe/Lisbon", "2027-03-02 10:00")
    await clinic.hold(other, doc, start)
    await clinic.sim.call_capability(
        other,
        clinic.chat,
        "timers.cancel",
        {"key": next(k for k in clinic.timer_keys() if k.startswith("hold:"))},
    )  # the expiry runs late
    clinic.sim.now += 6 * MINUTE
    listing = await clinic.view(pat, "slots.list", {"practitioner_id": doc.id, "days": 2})
    assert start in [s["start"] for day in listing["days"] for s in day["slots"]]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"practitioner_id": "u-nobody"}, "unknown_practitioner"),
        ({"days": 0}, "invalid_days"),
        ({"days": 32}, "invalid_days"),
        ({"days": "7"}, "invalid_days"),
        ({"from": "2027-02-30"}, "invalid_date"),
        ({"from": "next week"}, "invalid_date"),
    ],
)
async def test_a_bad_listing_is_refused(clinic, params, code):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    refused = await clinic.refused(pat, "slots.list", {"practitioner_id": doc.id, **params})
    assert refused.code == code


# --- the time-zone test --------------------------------------------------------------------


async def test_shanghai_practitioner_and_new_york_patient_across_the_us_dst_change(monkeypatch):
    clinic = open_clinic(monkeypatch, now=at("UTC", "2027-03-10 00:00"))
    weekly = [{"weekday": d, "start": "09:00", "end": "10:00"} for d in range(5)]
    doc = await clinic.practitioner(
        "wang",
        name="Dr. Wei Wang",
        zone="Asia/Shanghai",
        weekly=weekly,
        visit_minutes=60,
        user_options={"time_zone": "Asia/Shanghai"},
    )
    pat = clinic.patient("nina", time_zone="America/New_York")
    # The patient lists from her Thursday 11 to Monday 15 March: the US changes on Sunday 14.
    listing = await clinic.view(
        pat, "slots.list", {"practitioner_id": doc.id, "from": "2027-03-11", "days": 5}
    )
    seen = {s["start"]: s for day in listing["days"] for s in day["slots"]}
    friday = at("Asia/Shanghai", "2027-03-12 09:00")  # 01:00 UTC
    monday = at("Asia/Shanghai", "2027-03-15 09:00")  # 01:00 UTC too
    assert friday == at("UTC", "2027-03-12 01:00") and monday == at("UTC", "2027-03-15 01:00")
    # Before the change New York is UTC-5, after it UTC-4: the same 09:00 in Shanghai is 20:00
    # on the Thursday, then 21:00 on the Sunday, in New York.
    assert seen[friday]["local"] == "2027-03-11T20:00:00-05:00"
    assert seen[monday]["local"] == "2027-03-14T21:00:00-04:00"
    # Shanghai's Friday, Monday and Tuesday mornings are New York's Thursday, Sunday and Monday
    # evenings; its weekend leaves New York's Friday and Saturday empty.
    assert [d["date"] for d in listing["days"]] == ["2027-03-11", "2027-03-14", "2027-03-15"]

    # She books the Monday slot; both see one instant, each in their own zone.
    appointment = await clinic.book(pat, doc, monday)
    assert appointment["start"] == monday and appointment["end"] == monday + HOUR
    mine = (await clinic.view(pat, "appointment.get", {"appointment_id": appointment["id"]}))[
        "appointment"
    ]
    theirs = (await clinic.view(doc, "appointment.get", {"appointment_id": appointment["id"]}))[
        "appointment"
    ]
    assert mine["start"] == theirs["start"] == monday
    assert mine["when"]["local"] == "2027-03-14T21:00:00-04:00"
    assert theirs["when"]["local"] == "2027-03-15T09:00:00+08:00"
    assert mine["practitioner_when"]["local"] == "2027-03-15T09:00:00+08:00"
    # The practitioner's card is written in their zone, the patient's in hers.
    (to_patient,) = clinic.sim.notifications(pat)
    (to_doctor,) = clinic.sim.notifications(doc)
    when = {f["label"]: f["value"] for f in to_patient["fields"]}["When"]
    assert "9:00" in when and "Mar 14, 2027" in when and "America/New_York" in when
    when = {f["label"]: f["value"] for f in to_doctor["fields"]}["When"]
    assert "9:00" in when and "Mar 15, 2027" in when and "Asia/Shanghai" in when
    # The reminders fire at that instant less 24 h and 15 min, whatever the zones.
    assert clinic.timer_keys() == {
        f"rm24:{appointment['id']}": monday - DAY,
        f"rm15:{appointment['id']}": monday - 15 * MINUTE,
    }
    # And nobody else can take that instant, from any zone.
    other = clinic.patient("olga", time_zone="Europe/Moscow")
    refused = await clinic.refused(
        other,
        "booking.hold",
        {"practitioner_id": doc.id, "start": monday, "booking_key": "olga-key-1"},
    )
    assert refused.code == "slot_taken"
