"""Practitioners: their profile and availability (checked, only their own, nothing written on bad
input), ``/health doctors`` cards in the reader's locale and zone, the web view's listings,
``/health practice`` and the demo practitioners."""

from __future__ import annotations

import pytest

from sdk.errors import ViewError
from tests.miniapps.health.booking_fixtures import PROFILE, at, open_clinic


@pytest.fixture
def clinic(monkeypatch):
    return open_clinic(monkeypatch)


def fields_of(card: dict) -> dict[str, str]:
    return {f["label"]: f["value"] for f in card.get("fields", [])}


# --- the profile -------------------------------------------------------------------------------


async def test_a_practitioner_saves_and_reads_their_profile(clinic):
    doc = await clinic.practitioner(
        specialties="Cardiology, internal medicine",
        exceptions=[{"date": "2027-03-02", "off": True}],
    )
    stored = clinic.sim.storage("practitioners")[doc.id]
    assert stored["id"] == doc.id and stored["specialties"] == ["cardiology", "internal medicine"]
    assert stored["zone"] == "Europe/Lisbon" and stored["exceptions"] == [
        {"date": "2027-03-02", "off": True}
    ]
    answer = await clinic.view(doc, "practice.get")
    assert answer["profile"] == stored and answer["weekdays"][0] == "Monday"
    # Saving again replaces it (only the owner's document: the key is their id).
    await clinic.view(doc, "practice.save", {**PROFILE, "visit_minutes": 20})
    assert clinic.sim.storage("practitioners")[doc.id]["visit_minutes"] == 20


async def test_only_practitioners_have_a_practice(clinic):
    pat = clinic.patient()
    for name in ("practice.get", "practice.save", "practice.day"):
        refused = await clinic.refused(pat, name, dict(PROFILE))
        assert refused.code == "not_practitioner"
    assert clinic.sim.storage("practitioners") == {}
    await clinic.command(pat, "/health practice")
    assert "Only practitioners" in clinic.said(pat)


async def test_each_practitioner_writes_only_their_own_profile(clinic):
    ana = await clinic.practitioner("ana")
    ben = await clinic.practitioner("ben", name="Dr. Ben Cho", zone="Asia/Seoul")
    profiles = clinic.sim.storage("practitioners")
    assert set(profiles) == {ana.id, ben.id}
    assert profiles[ana.id]["name"] == "Dr. Ana Silva" and profiles[ben.id]["zone"] == "Asia/Seoul"
    # A page cannot aim the save at someone else: the id is the invoker's.
    await clinic.view(ben, "practice.save", {**PROFILE, "id": ana.id, "name": "Mallory"})
    profiles = clinic.sim.storage("practitioners")
    assert profiles[ana.id]["name"] == "Dr. Ana Silva" and profiles[ben.id]["name"] == "Mallory"


BAD_PROFILES = [
    ({"name": ""}, "invalid_name"),
    ({"name": "x" * 101}, "invalid_name"),
    ({"specialties": []}, "invalid_specialties"),
    ({"specialties": ["c@rdiology"]}, "invalid_specialties"),
    ({"languages": ["english"]}, "invalid_languages"),
    ({"fee": {"amount": -1, "currency": "USD"}}, "invalid_amount"),
    ({"fee": {"amount": 1.5, "currency": "USD"}}, "invalid_amount"),
    ({"fee": {"amount": 100, "currency": "XXQ"}}, "invalid_currency"),
    ({"fee": "free"}, "invalid_fee"),
    ({"zone": "Mars/Olympus"}, "invalid_zone"),
    ({"zone": "localtime"}, "invalid_zone"),
    ({"visit_minutes": 5}, "invalid_visit_minutes"),
    ({"visit_minutes": 121}, "invalid_visit_minutes"),
    ({"visit_type": "phone"}, "invalid_visit_type"),
    ({"active": "yes"}, "invalid_active"),
    ({"weekly": "weekdays"}, "invalid_weekly"),
    ({"weekly": [{"weekday": 7, "start": "09:00", "end": "12:00"}]}, "invalid_weekday"),
    ({"weekly": [{"weekday": 0, "start": "9am", "end": "12:00"}]}, "invalid_time"),
    ({"weekly": [{"weekday": 0, "start": "09:00", "end": "25:00"}]}, "invalid_time"),
    ({"weekly": [{"weekday": 0, "start": "12:00", "end": "12:00"}]}, "invalid_window"),
    ({"weekly": [{"weekday": 0, "start": "14:00", "end": "09:00"}]}, "invalid_window"),
    (
        {
            "weekly": [
                {"weekday": 2, "start": "09:00", "end": "12:00"},
                {"weekday": 2, "start": "11:30", "end": "14:00"},
            ]
        },
        "overlapping_availability",
    ),
    ({"exceptions": [{"date": "2027-02-29", "off": True}]}, "invalid_date"),
    ({"exceptions": [{"date": "2027-03-02", "start": "10:00", "end": "09:00"}]}, "invalid_window"),
    (
        {
            "exceptions": [
                {"date": "2027-03-02", "off": True},
                {"date": "2027-03-02", "start": "10:00", "end": "11:00"},
            ]
        },
        "invalid_exceptions",
    ),
    (
        {
            "exceptions": [
                {"date": "2027-03-02", "start": "10:00", "end": "12:00"},
                {"date": "2027-03-02", "start": "11:00", "end": "13:00"},
            ]
        },
        "overlapping_availability",
    ),
]


@pytest.mark.parametrize(("change", "code"), BAD_PROFILES)
async def test_a_bad_profile_is_refused_and_nothing_is_written(clinic, change, code):
    doc = await clinic.practitioner()
    before = clinic.snapshot()
    refused = await clinic.refused(doc, "practice.save", {**PROFILE, **change})
    assert refused.code == code
    assert refused.message
    assert clinic.snapshot() == before


async def test_adjacent_windows_are_not_an_overlap(clinic):
    weekly = [
        {"weekday": 0, "start": "09:00", "end": "12:00"},
        {"weekday": 0, "start": "12:00", "end": "13:00"},
        {"weekday": 1, "start": "10:00", "end": "11:00"},
    ]
    doc = await clinic.practitioner(weekly=weekly)
    assert len(clinic.sim.storage("practitioners")[doc.id]["weekly"]) == 3


# --- finding a doctor --------------------------------------------------------------------------


async def test_doctors_cards_show_fee_and_next_slots_for_the_reader(clinic):
    await clinic.practitioner(
        "wang",
        name="Dr. Wei Wang",
        specialties=["cardiology"],
        languages=["zh", "en"],
        fee={"amount": 4550, "currency": "USD"},
        zone="Asia/Shanghai",
    )
    await clinic.practitioner("silva")  # general practice: not a cardiologist
    reader = clinic.patient("heidi", locale="de-DE", time_zone="Europe/Berlin")
    await clinic.command(reader, "/health doctors Cardio")
    (shown,) = clinic.sim.ephemeral(reader)
    card = shown["card"]
    assert card["title"] == "Dr. Wei Wang" and card["text"] == "Not medical advice."
    fields = fields_of(card)
    assert fields["Specialties"] == "Cardiology"
    assert fields["Languages"] == "Chinesisch, Englisch"  # in the reader's language
    assert fields["Fee"] == "45,50\xa0$"  # in the reader's locale
    # Shanghai 09:00 on Monday 1 March is 02:00 in Berlin.
    first = fields["Next free"].splitlines()[0]
    assert "02:00" in first and "Europe/Berlin" in first and "1. März 2027" in first
    (book,) = card["buttons"]
    wang = clinic.people["wang"]
    assert book == {
        "label": "Book",
        "style": "primary",
        "opens": "webview",
        "path": f"#doctor={wang.id}",
    }


async def test_doctors_without_a_match_or_with_bad_words(clinic):
    await clinic.practitioner()
    pat = clinic.patient()
    await clinic.command(pat, "/health doctors dermatology")
    assert "No practitioners for 'dermatology'" in clinic.said(pat)
    await clinic.command(pat, "/health doctors <script>")
    assert clinic.said(pat).startswith("Usage: /health doctors")
    await clinic.command(pat, "/health doctors")
    assert clinic.said(pat)["title"] == "Dr. Ana Silva"


async def test_inactive_practitioners_are_not_listed_nor_bookable(clinic):
    doc = await clinic.practitioner(active=False)
    pat = clinic.patient()
    assert (await clinic.view(pat, "doctors.list"))["doctors"] == []
    refused = await clinic.refused(pat, "doctor.get", {"practitioner_id": doc.id})
    assert refused.code == "unknown_practitioner"
    refused = await clinic.refused(
        pat,
        "booking.hold",
        {
            "practitioner_id": doc.id,
            "start": at("Europe/Lisbon", "2027-03-02 09:00"),
            "booking_key": "k" * 8,
        },
    )
    assert refused.code == "unknown_practitioner"


async def test_the_web_views_list_and_open_a_doctor(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient("pat", time_zone="America/New_York")
    listing = await clinic.view(pat, "doctors.list", {"specialty": "general"})
    (item,) = listing["doctors"]
    assert item["id"] == doc.id and item["fee_text"] == "Free" and not item["mine"]
    assert listing["zone"] == "America/New_York" and listing["practitioner"] is False
    assert item["next_slots"][0]["local"] == "2027-03-01T04:00:00-05:00"  # 09:00 Lisbon
    assert (await clinic.view(pat, "doctor.get", {"practitioner_id": doc.id}))["doctor"][
        "id"
    ] == doc.id
    for params, code in (
        ({"practitioner_id": "u-nobody"}, "unknown_practitioner"),
        ({"practitioner_id": 42}, "unknown_practitioner"),
    ):
        assert (await clinic.refused(pat, "doctor.get", params)).code == code
    assert (await clinic.refused(pat, "doctors.list", {"specialty": 7})).code == "invalid_specialty"


# --- /health practice ------------------------------------------------------------------------


async def test_practice_shows_today_in_the_practitioners_zone(clinic):
    doc = await clinic.practitioner(user_options={"time_zone": "Europe/Lisbon"})
    pat = clinic.patient()
    today = at("Europe/Lisbon", "2027-03-01 10:00")
    tomorrow = at("Europe/Lisbon", "2027-03-02 10:00")
    first = await clinic.book(pat, doc, today, patient_name="Pat Doe")
    await clinic.book(pat, doc, tomorrow)
    await clinic.command(doc, "/health practice")
    card = clinic.said(doc)
    assert card["title"] == "My practice · Dr. Ana Silva"
    visits = [f for f in card["fields"] if first["id"] in f["value"]]
    assert len(visits) == 1 and "Pat Doe · Booked" in visits[0]["value"]
    assert not any("2027-03-02" in f["value"] for f in card["fields"])
    assert len([f for f in card["fields"] if " · ap-" in f["value"]]) == 1
    day = await clinic.view(doc, "practice.day", {"date": "2027-03-02"})
    assert [a["start"] for a in day["appointments"]] == [tomorrow]


async def test_practice_before_the_profile_is_written(clinic):
    doc = clinic.patient("doc")
    clinic.sim.grant_role(doc, "practitioner")
    await clinic.command(doc, "/health practice")
    assert "Write your profile" in clinic.said(doc)["text"]
    assert (await clinic.refused(doc, "practice.day")).code == "no_profile"
    assert (await clinic.view(doc, "practice.get"))["profile"] is None


# --- the demo ------------------------------------------------------------------------------------


async def test_demo_seed_writes_each_demo_practitioner_once(clinic):
    people = {}
    for name in ("gp", "cardiology", "paediatrics"):
        person = clinic.patient(f"dr_{name}")
        clinic.sim.grant_role(person, "practitioner")
        answer = await clinic.view(person, "demo.seed", {"profile": name})
        assert answer["created"] is True and answer["profile"] == name
        people[name] = person
    profiles = clinic.sim.storage("practitioners")
    zones = {name: profiles[p.id]["zone"] for name, p in people.items()}
    assert zones == {
        "gp": "Europe/Lisbon",
        "cardiology": "Asia/Shanghai",
        "paediatrics": "America/New_York",
    }
    assert profiles[people["gp"].id]["fee"]["amount"] == 0
    assert profiles[people["cardiology"].id]["fee"]["amount"] > 0
    assert profiles[people["paediatrics"].id]["fee"]["amount"] > 0
    # Again: nothing changes, even a profile the practitioner edited since.
    await clinic.view(people["gp"], "practice.save", {**PROFILE, "name": "Dr. Ana S."})
    before = clinic.snapshot()
    again = await clinic.view(people["gp"], "demo.seed", {"profile": "gp"})
    assert again == {"created": False, "profile": "gp", "name": "Dr. Ana S."}
    assert clinic.snapshot() == before
    # Each has free slots to book.
    pat = clinic.patient()
    listing = await clinic.view(pat, "doctors.list")
    assert len(listing["doctors"]) == 3 and all(d["next_slots"] for d in listing["doctors"])


async def test_demo_seed_is_for_practitioners_with_a_known_profile(clinic):
    pat = clinic.patient()
    with pytest.raises(ViewError) as refused:
        await clinic.view(pat, "demo.seed", {"profile": "gp"})
    assert refused.value.code == "not_practitioner"
    clinic.sim.grant_role(pat, "practitioner")
    assert (
        await clinic.refused(pat, "demo.seed", {"profile": "surgery"})
    ).code == "invalid_profile"
    assert clinic.sim.storage("practitioners") == {}
