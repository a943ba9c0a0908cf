"""Booking: the 5-minute hold, confirmation (free, or paid through the simulator's wallet), the
idempotent booking key, no double booking under concurrency, hold expiry freeing the slot exactly
once, the 24 h cancel policy, reschedule, the practitioner's marks, dependents, and other people's
appointments staying invisible."""

from __future__ import annotations

import asyncio

import pytest

from sdk import simulator as sim_module
from sdk.errors import HostError
from tests.miniapps.health.booking_fixtures import (
    DAY,
    HOUR,
    MINUTE,
    PROFILE,
    app_module,
    at,
    open_clinic,
)

SLOT = at("Europe/Lisbon", "2027-03-03 10:00")  # Wednesday, two days after T0
LATER = at("Europe/Lisbon", "2027-03-04 11:00")
FEE = {"amount": 4500, "currency": "USD"}


@pytest.fixture
def clinic(monkeypatch):
    return open_clinic(monkeypatch)


async def advance_to(clinic, moment: int) -> list:
    return await clinic.sim.advance(seconds=(moment - clinic.sim.now) / 1000)


def hold_key(clinic) -> str:
    (key,) = [k for k in clinic.timer_keys() if k.startswith("hold:")]
    return key


# --- hold and confirm ------------------------------------------------------------------------


async def test_hold_then_confirm_books_a_free_visit(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient("pat", time_zone="America/New_York")
    held = await clinic.hold(pat, doc, SLOT, key="key-0001")
    assert held["status"] == "pending" and held["hold_until"] == clinic.sim.now + 5 * MINUTE
    assert clinic.slot(doc, SLOT)["state"] == "held"
    assert clinic.slot(doc, SLOT)["appointment_id"] == held["id"]
    assert clinic.timer_keys() == {f"hold:{held['id']}": held["hold_until"]}
    answer = await clinic.confirm(pat, held["id"])
    assert answer["appointment"]["status"] == "booked" and "payment" not in answer
    stored = clinic.appointment(held["id"])
    assert [h["status"] for h in stored["history"]] == ["pending", "booked"]
    assert stored["patient"] == {"user": pat.id} and stored["patient_user"] == pat.id
    assert clinic.slot(doc, SLOT)["state"] == "booked"
    # The hold timer is gone, the reminders are set; both sides got the card.
    assert clinic.timer_keys() == {
        f"rm24:{held['id']}": SLOT - DAY,
        f"rm15:{held['id']}": SLOT - 15 * MINUTE,
    }
    assert clinic.sim.notifications(pat)[-1]["title"] == "Appointment · Booked"
    assert clinic.sim.notifications(doc)[-1]["title"] == "Appointment · Booked"
    # Confirming again changes nothing.
    assert (await clinic.confirm(pat, held["id"]))["appointment"]["status"] == "booked"
    assert len(clinic.sim.notifications(pat)) == 1


async def test_the_same_booking_key_answers_the_same_appointment(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    first = await clinic.hold(pat, doc, SLOT, key="same-key-1")
    again = await clinic.hold(pat, doc, SLOT, key="same-key-1")
    assert again["id"] == first["id"] and len(clinic.sim.storage("appointments")) == 1
    # Sent twice at once: still one appointment, no slot_taken for its own hold.
    both = await asyncio.gather(
        clinic.hold(pat, doc, LATER, key="twice-key-1"),
        clinic.hold(pat, doc, LATER, key="twice-key-1"),
    )
    assert both[0]["id"] == both[1]["id"] and len(clinic.sim.storage("appointments")) == 2
    # Another person's same key is their own appointment.
    other = clinic.patient("other")
    theirs = await clinic.hold(
        other, doc, at("Europe/Lisbon", "2027-03-05 09:00"), key="same-key-1"
    )
    assert theirs["id"] != first["id"]
    # The same key for another slot is refused, nothing written.
    before = clinic.snapshot()
    refused = await clinic.refused(
        pat,
        "booking.hold",
        {
            "practitioner_id": doc.id,
            "start": at("Europe/Lisbon", "2027-03-05 10:00"),
            "booking_key": "same-key-1",
        },
    )
    assert refused.code == "booking_key_reused" and clinic.snapshot() == before


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"booking_key": "short"}, "invalid_booking_key"),
        ({"booking_key": "spaces not allowed"}, "invalid_booking_key"),
        ({"booking_key": None}, "invalid_booking_key"),
        ({"practitioner_id": "u-nobody"}, "unknown_practitioner"),
        ({"start": at("Europe/Lisbon", "2027-02-26 10:00")}, "slot_in_past"),
        ({"start": at("Europe/Lisbon", "2027-03-03 10:10")}, "invalid_slot"),
        ({"start": at("Europe/Lisbon", "2027-03-03 18:00")}, "invalid_slot"),
        ({"start": at("Europe/Lisbon", "2027-03-06 10:00")}, "invalid_slot"),
        ({"start": "10:00"}, "invalid_slot"),
        ({"dependent_id": "dp-000000000000"}, "unknown_dependent"),
        ({"dependent_id": ["x"]}, "unknown_dependent"),
        ({"patient_name": ""}, "invalid_patient_name"),
    ],
)
async def test_a_bad_hold_is_refused_and_nothing_is_written(clinic, params, code):
    doc = await clinic.practitioner(exceptions=[{"date": "2027-03-08", "off": True}])
    pat = clinic.patient()
    before = clinic.snapshot()
    timers = clinic.timer_keys()
    base = {"practitioner_id": doc.id, "start": SLOT, "booking_key": "good-key-1"}
    refused = await clinic.refused(pat, "booking.hold", {**base, **params})
    assert refused.code == code and refused.message
    assert clinic.snapshot() == before and clinic.timer_keys() == timers


async def test_an_exception_day_and_oneself_are_not_bookable(clinic):
    doc = await clinic.practitioner(exceptions=[{"date": "2027-03-03", "off": True}])
    pat = clinic.patient()
    base = {"practitioner_id": doc.id, "start": SLOT, "booking_key": "good-key-1"}
    assert (await clinic.refused(pat, "booking.hold", base)).code == "invalid_slot"
    own = {**base, "start": LATER}
    assert (await clinic.refused(doc, "booking.hold", own)).code == "own_practice"
    assert clinic.sim.storage("appointments") == {} and clinic.sim.storage("slots") == {}


async def test_one_person_holds_at_most_three_slots(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    for hour in ("09:00", "09:30", "10:00"):
        await clinic.hold(pat, doc, at("Europe/Lisbon", f"2027-03-03 {hour}"))
    before = clinic.snapshot()
    refused = await clinic.refused(
        pat, "booking.hold", {"practitioner_id": doc.id, "start": LATER, "booking_key": "fourth-1"}
    )
    assert refused.code == "too_many_holds" and clinic.snapshot() == before


# --- no double booking ---------------------------------------------------------------------------


async def test_fifty_patients_hold_the_same_slot_at_once_one_wins(clinic):
    doc = await clinic.practitioner()
    patients = [clinic.patient(f"p{n:02d}") for n in range(50)]

    async def attempt(person):
        params = {"practitioner_id": doc.id, "start": SLOT, "booking_key": f"race-{person.name}"}
        try:
            return ("ok", (await clinic.view(person, "booking.hold", params))["appointment"])
        except Exception as exc:  # the page's rejection: a ViewError with its code
            return ("refused", getattr(exc, "code", repr(exc)))

    outcomes = await asyncio.gather(*(attempt(p) for p in patients))
    won = [value for status, value in outcomes if status == "ok"]
    lost = [value for status, value in outcomes if status == "refused"]
    assert len(won) == 1 and lost == ["slot_taken"] * 49
    (winner,) = won
    assert list(clinic.sim.storage("appointments")) == [winner["id"]]
    assert clinic.slot(doc, SLOT)["appointment_id"] == winner["id"]
    # The winner confirms; a late confirm by nobody else is possible: they have no appointment.
    owner = next(p for p in patients if clinic.appointment(winner["id"])["booked_by"] == p.id)
    assert (await clinic.confirm(owner, winner["id"]))["appointment"]["status"] == "booked"


async def test_hold_expiry_frees_the_slot_exactly_once(clinic):
    doc = await clinic.practitioner()
    first, second = clinic.patient("first"), clinic.patient("second")
    held = await clinic.hold(first, doc, SLOT)
    payload = {"appointment_id": held["id"]}
    # A second firing of the same expiry, as a retried delivery would make.
    status, _ = await clinic.sim.call_capability(
        first,
        clinic.chat,
        "timers.schedule",
        {
            "name": "hold.expire",
            "at": held["hold_until"] + MINUTE,
            "payload": payload,
            "key": "again",
        },
    )
    assert status == "ok"
    fired = await clinic.sim.advance(minutes=5)
    assert [f["key"] for f in fired] == [f"hold:{held['id']}"]
    expired = clinic.appointment(held["id"])
    assert expired["status"] == "cancelled" and expired["cancel_reason"] == "hold_expired"
    slot = clinic.slot(doc, SLOT)
    assert slot["state"] == "free" and slot["freed"] == held["id"]
    # Someone else takes it; then the repeated expiry fires: their hold stays.
    theirs = await clinic.hold(second, doc, SLOT)
    fired = await clinic.sim.advance(minutes=1)
    assert [f["key"] for f in fired] == ["again"] and fired[0]["ok"]
    assert clinic.slot(doc, SLOT)["appointment_id"] == theirs["id"]
    assert clinic.slot(doc, SLOT)["state"] == "held"
    assert clinic.appointment(theirs["id"])["status"] == "pending"
    # And the first patient's confirm is refused.
    assert (await clinic.refused(first, "booking.confirm", payload)).code == "hold_expired"


async def test_a_late_expiry_timer_lets_others_take_the_slot_and_the_stale_hold_fails(clinic):
    doc = await clinic.practitioner()
    first, second = clinic.patient("first"), clinic.patient("second")
    held = await clinic.hold(first, doc, SLOT)
    await clinic.sim.call_capability(first, clinic.chat, "timers.cancel", {"key": hold_key(clinic)})
    clinic.sim.now += 5 * MINUTE
    theirs = await clinic.hold(second, doc, SLOT)
    refused = await clinic.refused(first, "booking.confirm", {"appointment_id": held["id"]})
    assert refused.code == "hold_expired"
    await clinic.confirm(second, theirs["id"])
    assert clinic.slot(doc, SLOT)["appointment_id"] == theirs["id"]
    assert clinic.appointment(held["id"])["status"] == "pending"  # its timer will cancel it


async def test_a_slot_left_taken_by_a_cancelled_appointment_can_be_taken_again(clinic):
    doc = await clinic.practitioner()
    first, second = clinic.patient("first"), clinic.patient("second")
    booked = await clinic.book(first, doc, SLOT)
    # A cancel whose slot release never ran (the app stopped in between).
    change = {"collection": "appointments", "key": booked["id"], "set": {"status": "cancelled"}}
    assert (await clinic.sim.call_capability(first, clinic.chat, "storage.update", change))[
        0
    ] == "ok"
    assert clinic.slot(doc, SLOT)["state"] == "booked"
    theirs = await clinic.hold(second, doc, SLOT)
    assert clinic.slot(doc, SLOT)["appointment_id"] == theirs["id"]
    # A live booking is never taken over that way.
    other = clinic.patient("other")
    params = {"practitioner_id": doc.id, "start": SLOT, "booking_key": "other-key-1"}
    assert (await clinic.refused(other, "booking.hold", params)).code == "slot_taken"


async def test_confirm_after_the_hold_time_is_refused(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    held = await clinic.hold(pat, doc, SLOT)
    await clinic.sim.advance(minutes=5)
    refused = await clinic.refused(pat, "booking.confirm", {"appointment_id": held["id"]})
    assert refused.code == "hold_expired"
    assert clinic.slot(doc, SLOT)["state"] == "free"


# --- paying ---------------------------------------------------------------------------------------


async def test_a_priced_visit_is_booked_when_the_payment_succeeds(clinic):
    doc = await clinic.practitioner(fee=FEE)
    pat = clinic.patient()
    held = await clinic.hold(pat, doc, SLOT)
    answer = await clinic.confirm(pat, held["id"])
    assert answer["appointment"]["status"] == "pending"
    payment_id = answer["payment"]["payment_id"]
    payment = clinic.sim.payments[payment_id]
    assert payment["order_ref"] == f"ap-{held['id']}" and payment["amount"] == 4500
    assert payment["currency"] == "USD" and payment["user_id"] == pat.id
    assert clinic.appointment(held["id"])["payment_id"] == payment_id
    await clinic.sim.confirm_payment(pat, payment_id)
    booked = clinic.appointment(held["id"])
    assert booked["status"] == "booked" and booked["payment_id"] == payment_id
    assert clinic.slot(doc, SLOT)["state"] == "booked"
    # The same event again (a redelivery) changes nothing and refunds nothing.
    event = next(e for e in clinic.sim.payment_events if e["payload"]["payment_id"] == payment_id)
    await clinic.sim.deliver_event(
        "payment.succeeded", event["payload"], user=pat, conversation=clinic.chat
    )
    assert clinic.appointment(held["id"])["history"] == booked["history"]
    assert clinic.sim.payments[payment_id]["refunded"] == 0
    # A forged event is ignored.
    forged = {**event["payload"], "payment_id": "pay-forged", "signature": "v1=00"}
    await clinic.sim.deliver_event("payment.succeeded", forged, user=pat, conversation=clinic.chat)
    assert clinic.appointment(held["id"])["payment_id"] == payment_id


async def test_a_payment_after_the_hold_expired_is_refunded(clinic):
    doc = await clinic.practitioner(fee=FEE)
    pat = clinic.patient()
    clinic.sim.set_balance(pat, "USD", 10_000)
    held = await clinic.hold(pat, doc, SLOT)
    payment_id = (await clinic.confirm(pat, held["id"]))["payment"]["payment_id"]
    await clinic.sim.advance(minutes=5)  # she is slow: the hold expires
    assert clinic.appointment(held["id"])["status"] == "cancelled"
    await clinic.sim.confirm_payment(pat, payment_id)
    late = clinic.appointment(held["id"])
    assert late["status"] == "cancelled" and late["cancel_reason"] == "hold_expired"
    assert late["refund"]["state"] == "done" and late["refund"]["amount"] == 4500
    payment = clinic.sim.payments[payment_id]
    assert payment["refunded"] == 4500 and payment["refunds"][0]["refund_ref"] == f"rf-{held['id']}"
    assert clinic.sim.balance(pat, "USD") == 10_000
    assert "refunded in full" in clinic.sim.notifications(pat)[-1]["text"]
    assert clinic.slot(doc, SLOT)["state"] == "free"


async def test_a_refund_the_wallet_refuses_is_tried_again_by_timer_until_it_is_made(clinic):
    doc = await clinic.practitioner(fee=FEE)
    pat = clinic.patient()
    clinic.sim.set_balance(pat, "USD", 10_000)
    held = await clinic.hold(pat, doc, SLOT)
    payment_id = (await clinic.confirm(pat, held["id"]))["payment"]["payment_id"]
    await clinic.sim.advance(minutes=5)  # the hold expires before she pays
    clinic.sim.fail_next("payments.refund", "payments_unavailable", times=2)
    await clinic.sim.confirm_payment(pat, payment_id)
    assert clinic.appointment(held["id"])["refund"]["state"] == "pending"
    assert clinic.sim.payments[payment_id]["refunded"] == 0
    await clinic.sim.advance(minutes=1)  # the first retry: refused again
    assert clinic.appointment(held["id"])["refund"]["state"] == "pending"
    await clinic.sim.advance(minutes=2)  # the second retry, a minute later than the first
    assert clinic.appointment(held["id"])["refund"]["state"] == "done"
    assert clinic.sim.payments[payment_id]["refunded"] == 4500
    assert clinic.sim.balance(pat, "USD") == 10_000
    await clinic.sim.advance(hours=2)  # nothing more to do: no timer left, refunded once
    assert clinic.sim.payments[payment_id]["refunded"] == 4500
    assert not [t for t in clinic.sim.pending_timers() if t["name"] == "appointment.settle"]


async def test_a_payment_racing_the_hold_expiry_either_books_or_is_refunded(monkeypatch):
    outcomes = set()
    for delay in range(12):  # the expiry fires after a different number of the payment's steps
        clinic = open_clinic(monkeypatch)
        doc = await clinic.practitioner(fee=FEE)
        pat = clinic.patient()
        held = await clinic.hold(pat, doc, SLOT)
        payment_id = (await clinic.confirm(pat, held["id"]))["payment"]["payment_id"]
        clinic.sim.now = held["hold_until"] - 1

        async def expire(sim, steps):
            for _ in range(steps):
                await asyncio.sleep(0)
            await sim.advance(seconds=0.001)

        await asyncio.gather(clinic.sim.confirm_payment(pat, payment_id), expire(clinic.sim, delay))
        stored = clinic.appointment(held["id"])
        slot = clinic.slot(doc, SLOT)
        refunded = clinic.sim.payments[payment_id]["refunded"]
        if stored["status"] == "booked":
            assert slot["state"] == "booked" and slot["appointment_id"] == held["id"]
            assert refunded == 0 and stored["payment_id"] == payment_id
        else:
            assert stored["status"] == "cancelled" and stored["refund"]["state"] == "done"
            assert slot["state"] == "free" and refunded == 4500
        outcomes.add(stored["status"])
    assert outcomes == {"booked", "cancelled"}  # the sweep ran both orders


async def test_a_payment_whose_slot_was_taken_meanwhile_is_refunded(clinic):
    doc = await clinic.practitioner(fee=FEE)
    first, second = clinic.patient("first"), clinic.patient("second")
    held = await clinic.hold(first, doc, SLOT)
    payment_id = (await clinic.confirm(first, held["id"]))["payment"]["payment_id"]
    await clinic.sim.call_capability(first, clinic.chat, "timers.cancel", {"key": hold_key(clinic)})
    clinic.sim.now += 6 * MINUTE  # the expiry is late; someone takes the slot
    theirs = await clinic.hold(second, doc, SLOT)
    await clinic.sim.confirm_payment(first, payment_id)
    stale = clinic.appointment(held["id"])
    assert stale["status"] == "cancelled" and stale["refund"]["state"] == "done"
    assert clinic.sim.payments[payment_id]["refunded"] == 4500
    assert clinic.slot(doc, SLOT)["appointment_id"] == theirs["id"]


async def test_a_declined_payment_releases_the_hold(clinic):
    doc = await clinic.practitioner(fee=FEE)
    pat = clinic.patient()
    held = await clinic.hold(pat, doc, SLOT)
    payment_id = (await clinic.confirm(pat, held["id"]))["payment"]["payment_id"]
    await clinic.sim.cancel_payment(pat, payment_id)
    gone = clinic.appointment(held["id"])
    assert gone["status"] == "cancelled" and gone["cancel_reason"] == "payment_failed"
    assert clinic.slot(doc, SLOT)["state"] == "free"
    assert not any(k.startswith("hold:") for k in clinic.timer_keys())
    assert (
        await clinic.refused(pat, "booking.confirm", {"appointment_id": held["id"]})
    ).code == "not_pending"


# --- cancel --------------------------------------------------------------------------------------


async def test_the_patient_cancels_free_until_24_hours_before(clinic):
    doc = await clinic.practitioner(fee=FEE)
    pat = clinic.patient()
    booked = await clinic.book(pat, doc, SLOT)
    await advance_to(clinic, SLOT - DAY - MINUTE)
    answer = await clinic.view(pat, "booking.cancel", {"appointment_id": booked["id"]})
    assert answer["message"] == "Cancelled: the fee is refunded in full."
    cancelled = clinic.appointment(booked["id"])
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_by"] == "patient"
    assert cancelled["refund"]["state"] == "done"
    assert clinic.sim.payments[booked["payment_id"]]["refunded"] == 4500
    assert clinic.slot(doc, SLOT)["state"] == "free"
    assert not any(booked["id"] in k for k in clinic.timer_keys())  # reminders cancelled
    assert clinic.sim.notifications(doc)[-1]["title"] == "Appointment · Cancelled"
    # Cancelling again changes nothing (and refunds nothing more).
    await clinic.view(pat, "booking.cancel", {"appointment_id": booked["id"]})
    assert clinic.sim.payments[booked["payment_id"]]["refunded"] == 4500


async def test_within_24_hours_the_patient_cancelling_keeps_no_refund(clinic):
    doc = await clinic.practitioner(fee=FEE)
    pat = clinic.patient()
    booked = await clinic.book(pat, doc, SLOT)
    await advance_to(clinic, SLOT - DAY + MINUTE)
    answer = await clinic.view(pat, "booking.cancel", {"appointment_id": booked["id"]})
    assert answer["message"] == "Cancelled less than 24 h before the visit: the fee is kept."
    cancelled = clinic.appointment(booked["id"])
    assert cancelled["status"] == "cancelled" and cancelled["refund"] is None
    assert cancelled["fee_kept"] is True
    assert clinic.sim.payments[booked["payment_id"]]["refunded"] == 0
    assert clinic.slot(doc, SLOT)["state"] == "free"


async def test_the_practitioner_cancelling_always_refunds(clinic):
    doc = await clinic.practitioner(fee=FEE)
    pat = clinic.patient()
    booked = await clinic.book(pat, doc, SLOT)
    await advance_to(clinic, SLOT - HOUR)
    await clinic.command(doc, f"/health practice cancel {booked['id']} I am ill")
    assert clinic.said(doc) == "Cancelled: the fee is refunded in full."
    cancelled = clinic.appointment(booked["id"])
    assert cancelled["cancelled_by"] == "practitioner" and cancelled["cancel_note"] == "I am ill"
    assert clinic.sim.payments[booked["payment_id"]]["refunded"] == 4500
    note = clinic.sim.notifications(pat)[-1]
    assert note["title"] == "Appointment · Cancelled" and "refunded in full" in note["text"]
    assert {"label": "Reason", "value": "Cancelled by the practitioner: I am ill"} in note["fields"]


async def test_a_refund_the_wallet_refuses_now_is_finished_later(clinic, monkeypatch):
    doc = await clinic.practitioner(fee=FEE)
    pat = clinic.patient()
    booked = await clinic.book(pat, doc, SLOT)
    wallet = {"up": False}
    real_refund = sim_module._EFFECTS["payments.refund"]

    def refund(sim, call, params):
        if not wallet["up"]:
            raise HostError("the wallet is down", code="payments_unavailable")
        return real_refund(sim, call, params)

    monkeypatch.setitem(sim_module._EFFECTS, "payments.refund", refund)
    await clinic.view(pat, "booking.cancel", {"appointment_id": booked["id"]})
    assert clinic.appointment(booked["id"])["refund"]["state"] == "pending"
    assert clinic.sim.payments[booked["payment_id"]]["refunded"] == 0
    wallet["up"] = True
    answer = await clinic.view(pat, "appointment.get", {"appointment_id": booked["id"]})
    assert answer["appointment"]["refund"]["state"] == "done"
    assert clinic.sim.payments[booked["payment_id"]]["refunded"] == 4500
    await clinic.view(pat, "appointments.mine")  # looking again refunds nothing more
    assert clinic.sim.payments[booked["payment_id"]]["refunded"] == 4500


async def test_a_hold_can_be_let_go_and_nothing_else_can_be_cancelled(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    held = await clinic.hold(pat, doc, SLOT)
    await clinic.view(pat, "booking.cancel", {"appointment_id": held["id"]})
    assert clinic.appointment(held["id"])["status"] == "cancelled"
    assert clinic.slot(doc, SLOT)["state"] == "free" and clinic.timer_keys() == {}
    booked = await clinic.book(pat, doc, LATER)
    await advance_to(clinic, LATER + 5 * MINUTE)
    await clinic.view(doc, "practice.mark", {"appointment_id": booked["id"], "status": "fulfilled"})
    refused = await clinic.refused(pat, "booking.cancel", {"appointment_id": booked["id"]})
    assert refused.code == "not_cancellable"
    refused = await clinic.refused(
        pat, "booking.cancel", {"appointment_id": booked["id"], "reason": 5}
    )
    assert refused.code == "invalid_reason"


async def test_the_cancel_button_on_the_card(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    booked = await clinic.book(pat, doc, SLOT)
    card = clinic.sim.notifications(pat)[-1]
    assert {
        "action_id": "appointment.cancel",
        "label": "Cancel",
        "value": booked["id"],
        "style": "danger",
    } in card["buttons"]

    async def post(ctx):
        return await ctx.send_card(card)

    service = clinic.sim.conversation(members=[pat], type="service")
    message_id = await clinic.run_as(pat, post, service)
    await clinic.sim.press(pat, message_id, "appointment.cancel")
    assert clinic.sim.ephemeral(pat)[-1]["text"] == "Cancelled."
    assert clinic.appointment(booked["id"])["status"] == "cancelled"


# --- reschedule ----------------------------------------------------------------------------------


async def test_reschedule_moves_the_visit_its_slots_reminders_and_keeps_the_payment(clinic):
    doc = await clinic.practitioner(fee=FEE)
    pat = clinic.patient()
    booked = await clinic.book(pat, doc, SLOT)
    payments = len(clinic.sim.payments)
    answer = await clinic.view(
        pat, "booking.reschedule", {"appointment_id": booked["id"], "start": LATER}
    )
    moved = clinic.appointment(booked["id"])
    assert answer["appointment"]["start"] == LATER and moved["start"] == LATER
    assert moved["end"] == LATER + 30 * MINUTE and moved["status"] == "booked"
    assert moved["payment_id"] == booked["payment_id"] and len(clinic.sim.payments) == payments
    assert clinic.slot(doc, SLOT)["state"] == "free"
    assert clinic.slot(doc, LATER)["state"] == "booked"
    assert clinic.slot(doc, LATER)["appointment_id"] == booked["id"]
    assert clinic.timer_keys() == {
        f"rm24:{booked['id']}": LATER - DAY,
        f"rm15:{booked['id']}": LATER - 15 * MINUTE,
    }
    assert clinic.sim.notifications(doc)[-1]["text"].startswith("Your visit has moved.")
    # The old time is bookable again by someone else.
    other = clinic.patient("other")
    await clinic.book(other, doc, SLOT)


async def test_reschedule_refusals_change_nothing(clinic):
    doc = await clinic.practitioner()
    pat, other = clinic.patient("pat"), clinic.patient("other")
    booked = await clinic.book(pat, doc, SLOT)
    await clinic.book(other, doc, LATER)
    before = clinic.snapshot()
    timers = clinic.timer_keys()
    for start, code in (
        (LATER, "slot_taken"),
        (SLOT, "same_slot"),
        (at("Europe/Lisbon", "2027-03-04 11:10"), "invalid_slot"),
        (at("Europe/Lisbon", "2027-02-26 11:00"), "slot_in_past"),
    ):
        params = {"appointment_id": booked["id"], "start": start}
        assert (await clinic.refused(pat, "booking.reschedule", params)).code == code
    assert clinic.snapshot() == before and clinic.timer_keys() == timers
    # Within 24 h the patient may not move it; the practitioner may.
    await advance_to(clinic, SLOT - 2 * HOUR)
    free = at("Europe/Lisbon", "2027-03-05 09:00")
    params = {"appointment_id": booked["id"], "start": free}
    assert (await clinic.refused(pat, "booking.reschedule", params)).code == "too_late"
    await clinic.view(doc, "booking.reschedule", params)
    assert clinic.appointment(booked["id"])["start"] == free


# --- the practitioner's marks --------------------------------------------------------------------


async def test_the_practitioner_marks_arrived_then_fulfilled(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    booked = await clinic.book(pat, doc, SLOT)
    params = {"appointment_id": booked["id"], "status": "arrived"}
    assert (await clinic.refused(doc, "practice.mark", params)).code == "too_early"
    await advance_to(clinic, SLOT - 10 * MINUTE)
    assert (await clinic.refused(pat, "practice.mark", params)).code == "not_practitioner"
    await clinic.view(doc, "practice.mark", params)
    assert clinic.appointment(booked["id"])["status"] == "arrived"
    noshow = {**params, "status": "noshow"}
    await advance_to(clinic, SLOT + MINUTE)
    assert (await clinic.refused(doc, "practice.mark", noshow)).code == "invalid_transition"
    await clinic.command(doc, f"/health practice fulfilled {booked['id']}")
    assert clinic.said(doc) == "Marked done."
    stored = clinic.appointment(booked["id"])
    assert [h["status"] for h in stored["history"]] == ["pending", "booked", "arrived", "fulfilled"]
    bad = {**params, "status": "cancelled"}
    assert (await clinic.refused(doc, "practice.mark", bad)).code == "invalid_status"


async def test_no_show_from_the_card_button(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    booked = await clinic.book(pat, doc, SLOT)
    await advance_to(clinic, SLOT + 5 * MINUTE)
    card_module = app_module("visits")
    card = card_module.appointment_card(
        clinic.appointment(booked["id"]), "practitioner", now=clinic.sim.now
    )
    assert [b.action_id for b in card.buttons if b.action_id] == [
        "visit.join",
        "appointment.cancel",
        "visit.arrived",
        "visit.fulfilled",
        "visit.noshow",
    ]

    async def post(ctx):
        return await ctx.send_card(card)

    message_id = await clinic.run_as(doc, post)
    await clinic.sim.press(pat, message_id, "visit.noshow")  # the patient cannot
    assert clinic.said(pat) == "Only the practitioner marks the visit."
    await clinic.sim.press(doc, message_id, "visit.noshow")
    assert clinic.appointment(booked["id"])["status"] == "noshow"
    assert clinic.said(doc) == "Marked no-show."


async def test_a_practitioner_whose_role_was_taken_back_cannot_mark(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient()
    booked = await clinic.book(pat, doc, SLOT)
    await advance_to(clinic, SLOT + MINUTE)
    clinic.sim.revoke_role(doc, "practitioner")
    params = {"appointment_id": booked["id"], "status": "fulfilled"}
    assert (await clinic.refused(doc, "practice.mark", params)).code == "not_practitioner"
    assert clinic.appointment(booked["id"])["status"] == "booked"


# --- someone else's appointment ------------------------------------------------------------------


async def test_another_persons_appointment_is_not_found(clinic):
    doc = await clinic.practitioner()
    pat, snoop = clinic.patient("pat"), clinic.patient("snoop")
    booked = await clinic.book(pat, doc, SLOT)
    before = clinic.snapshot()
    for name, extra in (
        ("appointment.get", {}),
        ("booking.confirm", {}),
        ("booking.cancel", {}),
        ("booking.reschedule", {"start": LATER}),
        ("visit.join", {}),
        ("visit.note", {"text": "hi"}),
        ("practice.mark", {"status": "fulfilled"}),
    ):
        for appointment_id in (booked["id"], "ap-00000000000000000000", "../etc", None):
            refused = await clinic.refused(snoop, name, {"appointment_id": appointment_id, **extra})
            assert refused.code == "not_found", (name, appointment_id, refused.code)
            assert refused.message == "No such appointment."
    assert clinic.snapshot() == before
    # The practitioner confirming a patient's hold is refused the same way.
    held = await clinic.hold(pat, doc, LATER)
    assert (
        await clinic.refused(doc, "booking.confirm", {"appointment_id": held["id"]})
    ).code == "not_found"


# --- lists and commands --------------------------------------------------------------------------


async def test_my_appointments_list_and_command(clinic):
    doc = await clinic.practitioner()
    pat = clinic.patient("pat", time_zone="Europe/Lisbon")
    first = await clinic.book(pat, doc, SLOT)
    second = await clinic.book(pat, doc, LATER)
    await clinic.view(pat, "booking.cancel", {"appointment_id": second["id"]})
    mine = await clinic.view(pat, "appointments.mine")
    assert [a["id"] for a in mine["upcoming"]] == [first["id"]]
    assert [a["id"] for a in mine["past"]] == [second["id"]]
    assert mine["disclaimer"] == "Not medical advice."
    await clinic.command(pat, "/health appointments")
    card = clinic.said(pat)
    assert card["title"] == "My appointments" and card["text"] == "Not medical advice."
    assert len(card["fields"]) == 1 and "Dr. Ana Silva · Booked" in card["fields"][0]["value"]
    await clinic.command(pat, "/health appointments tomorrow")
    assert clinic.said(pat).startswith("Usage: /health appointments")
    nobody = clinic.patient("nobody")
    await clinic.command(nobody, "/health appointments")
    assert clinic.said(nobody).startswith("No upcoming visits")
    booking = app_module("booking")
    got = await clinic.run_as(pat, lambda ctx: booking.appointments_of(ctx, pat.id))
    assert [a["id"] for a in got] == [first["id"], second["id"]]


async def test_booking_for_a_dependent(clinic):
    circle = app_module("circle")
    if not hasattr(circle, "dependent_of"):
        pytest.fail("circle.dependent_of is missing: booking for a dependent cannot be tested")
    doc = await clinic.practitioner()
    parent, stranger = clinic.patient("parent"), clinic.patient("stranger")
    await clinic.command(parent, "/health dependent add Mia 2019-05-04 child")
    (dependent,) = clinic.sim.storage("dependents").values()
    booked = await clinic.book(parent, doc, SLOT, dependent_id=dependent["id"])
    assert booked["patient"] == {"dependent": dependent["id"], "guardian": parent.id, "name": "Mia"}
    assert booked["patient_user"] == parent.id
    card = clinic.sim.notifications(doc)[-1]
    assert {"label": "Patient", "value": "Mia"} in card["fields"]
    # Someone else cannot book for her.
    params = {
        "practitioner_id": doc.id,
        "start": LATER,
        "booking_key": "stranger-1",
        "dependent_id": dependent["id"],
    }
    assert (await clinic.refused(stranger, "booking.hold", params)).code == "unknown_dependent"
    # The guardian sees and cancels it.
    await clinic.view(parent, "booking.cancel", {"appointment_id": booked["id"]})
    assert clinic.appointment(booked["id"])["cancelled_by"] == "patient"


async def test_service_messages_are_asked_for_at_booking(clinic):
    doc = await clinic.practitioner()
    shy = clinic.patient("shy", notifications=False)
    held = await clinic.view(
        shy, "booking.hold", {"practitioner_id": doc.id, "start": SLOT, "booking_key": "shy-key-1"}
    )
    assert held["subscription"] == "asked" and clinic.sim.subscription_asks == [shy]
    await clinic.confirm(shy, held["appointment"]["id"])  # booked without messages to her
    assert clinic.appointment(held["appointment"]["id"])["status"] == "booked"
    assert clinic.sim.notifications(shy) == []
    assert PROFILE["name"] in clinic.sim.notifications(doc)[-1]["fields"][1]["value"]
