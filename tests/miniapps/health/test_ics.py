"""My appointments as an ``.ics`` file: ``/health appointments ics`` uploads it, the web view's
``appointments.ics`` answers its text — and both parse back with ``icalendar`` to the same
instants (UTC), ids, summaries and statuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from icalendar import Calendar

from tests.miniapps.health.booking_fixtures import MINUTE, at, open_clinic

SLOT = at("Asia/Shanghai", "2027-03-15 09:00")
LATER = at("Asia/Shanghai", "2027-03-16 09:00")
WEEKLY = [{"weekday": d, "start": "09:00", "end": "12:00"} for d in range(5)]


@pytest.fixture
def clinic(monkeypatch):
    return open_clinic(monkeypatch)


def events(data: bytes | str) -> dict[str, dict]:
    calendar = Calendar.from_ical(data)
    assert str(calendar["version"]) == "2.0" and "Aetherial" in str(calendar["prodid"])
    found = {}
    for event in calendar.walk("VEVENT"):
        found[str(event["uid"])] = {
            "start": event.decoded("dtstart"),
            "end": event.decoded("dtend"),
            "summary": str(event["summary"]),
            "status": str(event["status"]),
            "description": str(event["description"]),
        }
    return found


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def test_the_calendar_file_parses_back_to_my_appointments(clinic):
    doc = await clinic.practitioner(name="Dr. Wei Wang", zone="Asia/Shanghai", weekly=WEEKLY)
    pat = clinic.patient("pat", time_zone="America/New_York")
    booked = await clinic.book(pat, doc, SLOT)
    cancelled = await clinic.book(pat, doc, LATER)
    await clinic.view(pat, "booking.cancel", {"appointment_id": cancelled["id"]})
    expired = await clinic.hold(pat, doc, at("Asia/Shanghai", "2027-03-17 10:00"))
    await clinic.sim.call_capability(
        pat, clinic.chat, "timers.cancel", {"key": f"hold:{expired['id']}"}
    )
    clinic.sim.now += 6 * MINUTE  # that hold has run out (its expiry is late: still pending)
    live_hold = await clinic.hold(pat, doc, at("Asia/Shanghai", "2027-03-18 10:00"))
    assert clinic.appointment(expired["id"])["status"] == "pending"

    await clinic.command(pat, "/health appointments ics")
    said = clinic.said(pat)
    assert said.startswith("Your appointments as a calendar file (valid for an hour): /sim/media/")
    (media_id,) = clinic.sim.media_ids()
    media = clinic.sim.media(media_id)
    assert media["kind"] == "file" and media["name"] == "appointments.ics"
    found = events(media["data"])
    assert set(found) == {booked["id"], cancelled["id"], live_hold["id"]}
    assert found[booked["id"]]["start"] == utc(SLOT) == datetime(2027, 3, 15, 1, 0, tzinfo=UTC)
    assert found[booked["id"]]["end"] == utc(SLOT + 30 * MINUTE)
    assert found[booked["id"]]["summary"] == "Video visit with Dr. Wei Wang"
    assert found[booked["id"]]["status"] == "CONFIRMED"
    assert "Not medical advice." in found[booked["id"]]["description"]
    assert found[cancelled["id"]]["status"] == "CANCELLED"
    assert found[live_hold["id"]]["status"] == "TENTATIVE"
    # The web view gets the same calendar as text.
    answer = await clinic.view(pat, "appointments.ics")
    assert answer["filename"] == "appointments.ics" and answer["content_type"] == "text/calendar"
    assert events(answer["ics"]).keys() == found.keys()


async def test_a_person_with_no_appointments_gets_an_empty_calendar(clinic):
    await clinic.practitioner()
    pat = clinic.patient()
    other = clinic.patient("other")
    doc = clinic.people["doc"]
    await clinic.book(other, doc, at("Europe/Lisbon", "2027-03-02 09:00"))
    answer = await clinic.view(pat, "appointments.ics")
    assert events(answer["ics"]) == {}  # another person's visit is not in my calendar


async def test_a_dependents_visit_names_them(clinic):
    doc = await clinic.practitioner()
    parent = clinic.patient("parent")
    await clinic.command(parent, "/health dependent add Mia 2019-05-04 child")
    (dependent,) = clinic.sim.storage("dependents").values()
    booked = await clinic.book(
        parent, doc, at("Europe/Lisbon", "2027-03-02 09:00"), dependent_id=dependent["id"]
    )
    found = events((await clinic.view(parent, "appointments.ics"))["ics"])
    assert found[booked["id"]]["summary"] == "Video visit with Dr. Ana Silva (for Mia)"
