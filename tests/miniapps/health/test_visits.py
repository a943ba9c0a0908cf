"""Visits: reminders 24 h and 15 min before (moved with the visit, gone when it is cancelled), the
appointment card's **Join video visit** in the join window starting an app call of just the
patient and the practitioner, the call's events, and the practitioner's visit note."""

from __future__ import annotations

import pytest

from tests.miniapps.health.booking_fixtures import DAY, MINUTE, at, open_clinic

SLOT = at("Europe/Lisbon", "2027-03-03 10:00")
LATER = at("Europe/Lisbon", "2027-03-04 11:00")


@pytest.fixture
def clinic(monkeypatch):
    return open_clinic(monkeypatch)


async def advance_to(clinic, moment: int) -> list:
    return await clinic.sim.advance(seconds=(moment - clinic.sim.now) / 1000)


def action_ids(card: dict) -> list[str]:
    return [b["action_id"] for b in card.get("buttons", []) if "action_id" in b]


async def post_card(clinic, user, card: dict) -> str:
    """Post ``card`` as the app would (here into ``user``'s service chat) so it can be pressed."""

    async def post(ctx):
        return await ctx.send_card(card)

    service = clinic.sim.conversation(members=[user], type="service")
    return await clinic.run_as(user, post, service)


# --- reminders -----------------------------------------------------------------------------------


async def test_reminders_come_24_hours_and_15_minutes_before(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient("pat", time_zone="America/New_York")
    booked = await clinic.book(pat, doc, SLOT)
    pat_before, doc_before = len(clinic.sim.notifications(pat)), len(clinic.sim.notifications(doc))
    fired = await advance_to(clinic, SLOT - DAY)
    assert [f["key"] for f in fired] == [f"rm24:{booked['id']}"] and fired[0]["ok"]
    (day_before,) = clinic.sim.notifications(pat)[pat_before:]
    assert day_before["text"] == "Reminder: your visit is tomorrow.\nNot medical advice."
    assert "visit.join" not in action_ids(day_before)
    assert len(clinic.sim.notifications(doc)) == doc_before  # the practitioner: at 15 min only
    fired = await advance_to(clinic, SLOT - 15 * MINUTE)
    assert [f["key"] for f in fired] == [f"rm15:{booked['id']}"]
    soon = clinic.sim.notifications(pat)[-1]
    assert soon["text"].startswith("Your visit starts in 15 minutes.")
    assert action_ids(soon)[0] == "visit.join"
    assert {
        "label": "Join video visit",
        "action_id": "visit.join",
        "value": booked["id"],
        "style": "primary",
    } in soon["buttons"]
    to_doctor = clinic.sim.notifications(doc)[-1]
    assert to_doctor["text"].startswith("Your next visit starts in 15 minutes.")
    assert "visit.join" in action_ids(to_doctor) and "visit.arrived" in action_ids(to_doctor)
    assert "visit.fulfilled" not in action_ids(to_doctor)  # from the start only
    assert clinic.timer_keys() == {}


async def test_reminders_move_with_the_visit_and_go_with_a_cancel(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    booked = await clinic.book(pat, doc, SLOT)
    await clinic.view(pat, "booking.reschedule", {"appointment_id": booked["id"], "start": LATER})
    assert clinic.timer_keys() == {
        f"rm24:{booked['id']}": LATER - DAY,
        f"rm15:{booked['id']}": LATER - 15 * MINUTE,
    }
    fired = await advance_to(clinic, SLOT)  # nothing at the old times
    assert fired == []
    await clinic.view(pat, "booking.cancel", {"appointment_id": booked["id"]})
    assert clinic.timer_keys() == {}


async def test_a_stale_reminder_sends_nothing(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    booked = await clinic.book(pat, doc, SLOT)
    stale = {"appointment_id": booked["id"], "kind": "24h", "start": SLOT - DAY}
    status, _ = await clinic.sim.call_capability(
        pat, clinic.chat, "timers.schedule",
        {"name": "appointment.remind", "delay_ms": MINUTE, "payload": stale, "key": "stale"},
    )  # fmt: skip
    assert status == "ok"
    before = len(clinic.sim.notifications(pat))
    fired = await clinic.sim.advance(minutes=1)
    assert [f["key"] for f in fired] == ["stale"] and fired[0]["ok"]
    assert len(clinic.sim.notifications(pat)) == before


async def test_a_booking_inside_24_hours_gets_only_the_15_minute_reminder(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    start = at("Europe/Lisbon", "2027-03-01 11:00")  # today, two hours from now
    booked = await clinic.book(pat, doc, start)
    assert clinic.timer_keys() == {f"rm15:{booked['id']}": start - 15 * MINUTE}


async def test_a_patient_without_service_messages_is_skipped_quietly(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient("quiet", notifications=False)
    clinic.sim.set_consent(pat, "notifications", False)
    await clinic.book(pat, doc, SLOT)
    fired = await advance_to(clinic, SLOT)
    assert len(fired) == 2 and all(f["ok"] for f in fired)
    assert clinic.sim.notifications(pat) == []
    assert len(clinic.sim.notifications(doc)) == 2  # booked, then 15 min before


# --- the video visit ------------------------------------------------------------------------------


async def test_join_video_visit_rings_the_patient_and_the_practitioner(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    booked = await clinic.book(pat, doc, SLOT)
    params = {"appointment_id": booked["id"]}
    refused = await clinic.refused(pat, "visit.join", params)
    assert refused.code == "too_early" and "15 minutes before" in refused.message
    await advance_to(clinic, SLOT - 15 * MINUTE)
    card = clinic.sim.notifications(pat)[-1]
    message_id = await post_card(clinic, pat, card)
    await clinic.sim.press(pat, message_id, "visit.join")
    assert clinic.sim.ephemeral(pat)[-1]["text"] == "Calling… answer the ring to join the visit."
    (call,) = clinic.sim.app_calls()
    assert call["media"] == "video" and sorted(call["rung"]) == sorted([pat.id, doc.id])
    assert call["title"] == "Visit · Dr. Ana Silva"
    (own_chat,) = clinic.sim.own_chats()
    assert {m.id for m in own_chat.members} == {pat.id, doc.id}
    # Both join; the app notes the call on the appointment.
    await clinic.sim.answer_call(doc, call["call_id"])
    assert clinic.appointment(booked["id"])["call"]["event"] == "call.started"
    await clinic.sim.answer_call(pat, call["call_id"])
    # A second press while it rings on is answered plainly.
    await clinic.sim.press(pat, message_id, "visit.join")
    assert "answer it in your chat" in clinic.sim.ephemeral(pat)[-1]["text"]
    await clinic.sim.end_call(call["call_id"], duration_seconds=600)
    noted = clinic.appointment(booked["id"])["call"]
    assert noted["event"] == "call.ended" and noted["outcome"] == "completed"
    assert noted["duration_seconds"] == 600
    # The practitioner may start it again from the web view, in the same chat.
    again = await clinic.view(doc, "visit.join", params)
    assert again["call_id"] != call["call_id"]
    assert clinic.sim.app_calls()[-1]["conversation_id"] == own_chat.id


async def test_join_is_refused_outside_the_window_or_for_in_person_visits(clinic):
    doc = await clinic.practitioner()
    onsite = await clinic.practitioner("onsite", visit_type="in_person")
    pat = clinic.patient()
    video = await clinic.book(pat, doc, SLOT)
    in_person = await clinic.book(pat, onsite, SLOT)
    await advance_to(clinic, SLOT)
    assert (
        await clinic.refused(pat, "visit.join", {"appointment_id": in_person["id"]})
    ).code == "not_video"
    await advance_to(clinic, SLOT + 31 * MINUTE)
    assert (
        await clinic.refused(pat, "visit.join", {"appointment_id": video["id"]})
    ).code == "visit_over"
    later = await clinic.book(pat, doc, LATER)
    await clinic.view(pat, "booking.cancel", {"appointment_id": later["id"]})
    await advance_to(clinic, LATER)
    assert (
        await clinic.refused(pat, "visit.join", {"appointment_id": later["id"]})
    ).code == "not_live"
    assert clinic.sim.app_calls() == []


async def test_join_when_the_other_side_is_busy(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    booked = await clinic.book(pat, doc, SLOT)
    await advance_to(clinic, SLOT - 5 * MINUTE)
    clinic.sim.set_in_call(doc)
    clinic.sim.set_in_call(pat)
    refused = await clinic.refused(pat, "visit.join", {"appointment_id": booked["id"]})
    assert refused.code == "user_busy"


# --- the visit note -------------------------------------------------------------------------------


async def test_the_practitioner_writes_a_visit_note_for_the_patient(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    booked = await clinic.book(pat, doc, SLOT)
    params = {"appointment_id": booked["id"], "text": "Rest, fluids, back in a week."}
    assert (await clinic.refused(doc, "visit.note", params)).code == "too_early"
    await advance_to(clinic, SLOT + 20 * MINUTE)
    assert (await clinic.refused(pat, "visit.note", params)).code == "not_practitioner"
    for text in ("", "   ", "x" * 2001, 42):
        refused = await clinic.refused(doc, "visit.note", {**params, "text": text})
        assert refused.code == "invalid_note"
    assert clinic.appointment(booked["id"])["note"] is None
    answer = await clinic.view(doc, "visit.note", params)
    assert answer["sent"] is True
    assert clinic.appointment(booked["id"])["note"]["text"] == "Rest, fluids, back in a week."
    note = clinic.sim.notifications(pat)[-1]
    assert note["title"] == "Visit note"
    assert note["text"] == "Visit note:\nRest, fluids, back in a week.\nNot medical advice."
    await clinic.command(doc, f"/health practice note {booked['id']} Take the tablets twice a day")
    assert clinic.said(doc) == "Visit note sent to the patient."
    assert clinic.appointment(booked["id"])["note"]["text"] == "Take the tablets twice a day"


async def test_practice_command_refusals(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    booked = await clinic.book(pat, doc, SLOT)
    await clinic.command(doc, "/health practice frobnicate")
    assert clinic.said(doc).startswith("Usage: /health practice")
    await clinic.command(doc, f"/health practice note {booked['id']} early")
    assert clinic.said(doc) == "A visit note is written once the visit has begun."
    await clinic.command(doc, "/health practice arrived ap-00000000000000000000")
    assert clinic.said(doc) == "No such appointment."
    await clinic.command(pat, f"/health practice arrived {booked['id']}")
    assert clinic.said(pat) == "Only practitioners can do this: ask an administrator."
    assert clinic.appointment(booked["id"])["status"] == "booked"
