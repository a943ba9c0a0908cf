"""Booking: hold a slot, confirm (and pay), cancel, reschedule — never two people in one slot.

An appointment (``appointments/<id>``, id ``ap-`` + a hash of who booked and their booking key,
so the same key from the same person always answers the same appointment) follows the FHIR
Appointment statuses, and only through ``ALLOWED``, each change one conditional write
(``change``)::

    pending → booked | cancelled         (confirm / payment; hold expiry, payment failed, cancel)
    booked  → arrived | fulfilled | noshow | cancelled
    arrived → fulfilled

1. **Hold** (view ``booking.hold {practitioner_id, start, booking_key, dependent_id?,
   patient_name?}``, the name the practitioner sees — else "Patient" or the dependent's): the
   slot is checked (``slot_in_past``, ``invalid_slot``), then taken (``slots.take``: create-only
   or over a free one, else ``slot_taken``), then the ``pending`` appointment is written with
   ``hold_until`` = now + 5 min and the timer ``hold.expire`` set for then. The patient is asked
   for service messages (``notifications.request_subscription``).
2. **Confirm** (``booking.confirm {appointment_id}``) re-checks everything: still pending,
   ``hold_until`` not passed, the slot still names it. Free: the slot ``held → booked``, then the
   appointment ``pending → booked``. Priced: ``payments.request`` (order_ref ``ap-<id>``); the
   signed ``payment.succeeded`` (``PAYMENTS["ap"]``) books it the same way — or, when the hold is
   gone meanwhile, refunds the payment in full (refund_ref ``rf-<id>``) and tells the patient.
3. **Hold expiry** (``hold.expire``): ``pending → cancelled`` (``hold_expired``) conditionally,
   then the slot is freed by a write conditional on it still naming this appointment: once,
   however often the timer fires.
4. **Cancel** (``booking.cancel``, the card's Cancel button): the patient side free of charge
   until 24 h before the start (a paid fee refunded in full), later the fee is kept; the
   practitioner always refunds in full. Money is recorded first (``refund: {state: "pending"}``
   in the same write as the status), moved second (idempotent ``refund_ref``), then marked done;
   ``settle`` finishes a refund left pending on the next look at the appointment.
5. **Reschedule** (``booking.reschedule {appointment_id, start}``): the new slot is taken first
   (``booked`` at once), the appointment moved conditionally, then the old slot freed; the
   payment carries over; the patient side may not move it within 24 h of the start.
6. The practitioner marks ``arrived`` (from 15 min before), ``fulfilled`` and ``noshow`` (from
   the start): buttons ``visit.arrived`` / ``visit.fulfilled`` / ``visit.noshow``, view
   ``practice.mark``, ``/health practice arrived|fulfilled|noshow <id>``.

``/health practice`` shows a practitioner's day (view ``practice.day``). ``appointments_of(ctx,
user_id)`` lists a person's appointments (also their dependents') — the FHIR export's and
``ics``'s (my appointments, the calendar file) source.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime, time, timedelta
from typing import Any

import circle
import clock
import practitioners
import slots
import visits
from practitioners import as_action, as_command, as_view, check_practitioner
from slots import BookingError
from texts import DISCLAIMER

from sdk import Button, Card, Conflict, Field, HostError, Reply
from sdk.documents import find_all

log = logging.getLogger("health.booking")

HOLD_MS = 5 * slots.MINUTE_MS
FREE_CANCEL_MS = 24 * 60 * slots.MINUTE_MS  # the patient cancels free of charge until then
HOLDS_MAX = 3  # live holds one person may have at once
BOOKING_KEY_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
ATTEMPTS = 25
LIST_MAX = 10  # appointments on a card
BUSY = "That appointment is busy right now: try again."
ALLOWED = {
    ("pending", "booked"),
    ("pending", "cancelled"),
    ("booked", "cancelled"),
    ("booked", "arrived"),
    ("booked", "fulfilled"),
    ("booked", "noshow"),
    ("arrived", "fulfilled"),
}
MARKS = ("arrived", "fulfilled", "noshow")


def appointment_id(booked_by: str, booking_key: str) -> str:
    digest = hashlib.sha256(f"{booked_by}\0{booking_key}".encode()).hexdigest()
    return f"ap-{digest[:20]}"


def check_booking_key(value: Any) -> str:
    if not isinstance(value, str) or not BOOKING_KEY_RE.fullmatch(value):
        raise BookingError(
            "invalid_booking_key", "booking_key: 8-64 letters, digits, - or _ (one per booking)."
        )
    return value


# --- changing an appointment -----------------------------------------------------------------


async def change(ctx, aid: str, decide) -> tuple[dict[str, Any], bool]:
    """Read the appointment, ``decide(appointment)`` → the fields to set (a ``status`` among
    them for a transition) or None (nothing to do); ``decide`` raises ``BookingError`` to
    refuse. Written with ``expected_version``, decided again after a ``Conflict``. Only pairs
    in ``ALLOWED`` are written. Returns ``(appointment as written or as read, changed)``."""
    for _ in range(ATTEMPTS):
        appointment, version = await visits.load(ctx, aid)
        if appointment is None:
            raise BookingError("not_found", visits.NOT_FOUND)
        fields = decide(appointment)
        if not fields:
            return appointment, False
        target = fields.get("status", appointment["status"])
        if target != appointment["status"]:
            if (appointment["status"], target) not in ALLOWED:
                raise BookingError(
                    "invalid_transition",
                    f"An appointment that is {visits.label(appointment['status']).lower()} "
                    f"cannot become {visits.label(target).lower()}.",
                )
            history = appointment.get("history", [])
            fields["history"] = [*history, {"status": target, "at": clock.now_ms()}]
        try:
            await ctx.storage_update("appointments", aid, fields, expected_version=version)
        except Conflict:
            continue
        return {**appointment, **fields}, True
    raise BookingError("busy", BUSY)


async def drop_timer(ctx, key: str) -> None:
    try:
        await ctx.cancel_schedule(key)
    except HostError as exc:
        log.warning("timer %s not cancelled (%s)", key, exc.code)


# --- hold ------------------------------------------------------------------------------------


async def patient_of(ctx, dependent_id: Any, name: Any = None) -> dict[str, Any]:
    """``{"user": me, "name"?}`` (the name I gave for the practitioner), or for a dependent of
    mine ``{"dependent", "guardian", "name"}``."""
    if dependent_id is None:
        if name is None:
            return {"user": ctx.user_id}
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
            raise BookingError(
                "invalid_patient_name", "Your name for the practitioner: 1-100 characters."
            )
        return {"user": ctx.user_id, "name": " ".join(name.split())}
    dependent_of = getattr(circle, "dependent_of", None)
    if dependent_of is None:
        raise BookingError(
            "dependents_unavailable", "Booking for a dependent is not available yet."
        )
    if not isinstance(dependent_id, str) or not 1 <= len(dependent_id) <= 64:
        raise BookingError("unknown_dependent", "No such dependent of yours.")
    dependent = await dependent_of(ctx, ctx.user_id, dependent_id)
    if not dependent:
        raise BookingError("unknown_dependent", "No such dependent of yours.")
    return {
        "dependent": dependent_id,
        "guardian": ctx.user_id,
        "name": str(dependent.get("name") or "Dependent")[:100],
    }


async def live_holds(ctx) -> int:
    items = await find_all(ctx, "appointments", {"booked_by": ctx.user_id, "status": "pending"})
    now = clock.now_ms()
    return sum(1 for item in items if int(item["value"].get("hold_until") or 0) > now)


async def ask_subscription(ctx) -> str | None:
    """Ask for service messages (reminders, the visit card) at booking; None if it failed."""
    try:
        return await ctx.request_subscription()
    except HostError as exc:
        log.info("subscription not asked (%s)", exc.code)
        return None


async def hold(ctx, params: dict[str, Any]) -> dict[str, Any]:
    """Hold a slot for 5 minutes: the ``pending`` appointment (see the module's doc)."""
    booking_key = check_booking_key(params.get("booking_key"))
    profile = await practitioners.get_active(ctx, params.get("practitioner_id"))
    if profile["id"] == ctx.user_id:
        raise BookingError("own_practice", "You cannot book a visit with yourself.")
    start, end = slots.check_slot(profile, params.get("start"))
    patient = await patient_of(ctx, params.get("dependent_id"), params.get("patient_name"))
    aid = appointment_id(ctx.user_id, booking_key)
    existing, _ = await visits.load(ctx, aid)
    if existing is not None:
        return await same_hold(ctx, existing, profile, start, patient)
    if await live_holds(ctx) >= HOLDS_MAX:
        raise BookingError(
            "too_many_holds", f"You already hold {HOLDS_MAX} slots: confirm or let them go first."
        )
    now = clock.now_ms()
    hold_until = now + HOLD_MS
    await slots.take(ctx, profile["id"], start, aid, state="held", hold_until=hold_until)
    appointment = {
        "id": aid,
        "booking_key": booking_key,
        "practitioner": profile["id"],
        "practitioner_name": profile["name"],
        "practitioner_locale": profile.get("locale") or "en",
        "zone": profile["zone"],
        "patient": patient,
        "patient_user": patient.get("user") or patient["guardian"],
        "booked_by": ctx.user_id,
        "patient_zone": slots.zone_of(ctx.time_zone).key,
        "patient_locale": ctx.locale,
        "start": start,
        "end": end,
        "minutes": (end - start) // slots.MINUTE_MS,
        "visit_type": profile["visit_type"],
        "status": "pending",
        "fee": dict(profile["fee"]),
        "payment_id": None,
        "hold_until": hold_until,
        "cancel_reason": None,
        "cancelled_by": None,
        "refund": None,
        "note": None,
        "history": [{"status": "pending", "at": now}],
        "created_at": now,
    }
    try:
        await ctx.storage_update("appointments", aid, appointment, expected_version=0, upsert=True)
    except Conflict:  # the same booking key, sent twice at once: the other one wrote it
        existing, _ = await visits.load(ctx, aid)
        return await same_hold(ctx, existing, profile, start, patient)
    try:
        payload = {"appointment_id": aid}
        await ctx.schedule("hold.expire", at=hold_until, key=f"hold:{aid}", payload=payload)
    except HostError as exc:  # the slot frees itself at hold_until anyway (slots.is_taken)
        log.error("appointment %s: hold timer not set (%s)", aid, exc.code)
    subscription = await ask_subscription(ctx)
    return {
        "appointment": visits.appointment_json(appointment, ctx, "patient"),
        "subscription": subscription,
    }


async def same_hold(ctx, existing, profile, start, patient) -> dict[str, Any]:
    """A booking key used again: the same request answers its appointment; another is refused."""
    if (
        existing is None
        or existing["practitioner"] != profile["id"]
        or existing["start"] != start
        or existing["patient"] != patient
    ):
        raise BookingError(
            "booking_key_reused", "That booking key was used for another booking: use a new one."
        )
    return {"appointment": visits.appointment_json(existing, ctx, "patient"), "subscription": None}


# --- confirm and pay -------------------------------------------------------------------------


async def finish_booking(ctx, appointment: dict[str, Any], payment_id: str | None) -> dict | None:
    """``pending → booked``: the slot first (``held → booked``, still naming it), then the
    appointment. None when the hold is gone (then the slot is given back if this took it)."""
    aid, pid, start = appointment["id"], appointment["practitioner"], appointment["start"]
    if not await slots.mark_booked(ctx, pid, start, aid):
        return None

    def decide(current):
        if current["status"] != "pending":
            return None
        return {"status": "booked", "payment_id": payment_id, "hold_until": None}

    written, changed = await change(ctx, aid, decide)
    if not changed and written["status"] != "booked":
        await slots.release(ctx, pid, start, aid)  # the expiry won meanwhile
        return None
    if changed:
        await drop_timer(ctx, f"hold:{aid}")
        await visits.schedule_reminders(ctx, written)
        await visits.tell_both(ctx, written, "Your visit is booked.")
    return written


async def confirm(ctx, aid: Any) -> dict[str, Any]:
    """Confirm a hold: book it (free), or ask for the fee (priced)."""
    appointment, side = await visits.appointment_for(ctx, aid)
    if side != "patient":
        raise BookingError("not_found", visits.NOT_FOUND)
    status = appointment["status"]
    if status in ("booked", "arrived", "fulfilled"):
        return {"appointment": visits.appointment_json(appointment, ctx, side)}
    if status == "cancelled" and appointment.get("cancel_reason") == "hold_expired":
        raise BookingError("hold_expired", "The 5-minute hold expired: pick a slot again.")
    if status != "pending":
        raise BookingError("not_pending", f"This appointment is {visits.label(status).lower()}.")
    if appointment["hold_until"] <= clock.now_ms() or not await slots.names(
        ctx, appointment["practitioner"], appointment["start"], appointment["id"]
    ):
        raise BookingError("hold_expired", "The 5-minute hold expired: pick a slot again.")
    fee = appointment["fee"]
    if not fee.get("amount"):
        booked = await finish_booking(ctx, appointment, None)
        if booked is None:
            raise BookingError("hold_expired", "The 5-minute hold expired: pick a slot again.")
        return {"appointment": visits.appointment_json(booked, ctx, side)}
    when = slots.when_text(appointment["start"], ctx.time_zone, ctx.locale)
    description = f"Visit with {appointment['practitioner_name']}, {when}"[:200]
    payment = await ctx.request_payment(
        fee["amount"], fee["currency"], description, f"ap-{appointment['id']}"
    )
    if payment["status"] in ("cancelled", "expired"):
        raise BookingError("payment_failed", "The payment was not made: pick a slot again.")

    def note_payment(current):
        if current["status"] != "pending" or current.get("payment_id") == payment["payment_id"]:
            return None
        return {"payment_id": payment["payment_id"]}

    appointment, _ = await change(ctx, appointment["id"], note_payment)
    return {"appointment": visits.appointment_json(appointment, ctx, side), "payment": payment}


async def on_payment(ctx, name: str, payment: dict[str, Any]) -> None:
    """``PAYMENTS["ap"]``: the fee of ``ap-<appointment id>`` (verified by ``sdk.tables``)."""
    aid = str(payment.get("order_ref", "")).split("-", 1)[-1]
    appointment, _ = await visits.load(ctx, aid)
    if appointment is None or (
        payment.get("amount"),
        payment.get("currency"),
    ) != (appointment["fee"].get("amount"), appointment["fee"].get("currency")):
        log.warning("a payment for an unknown or different appointment was ignored")
        return
    if payment.get("user_id") not in (None, appointment["booked_by"]):
        log.warning("a payment by someone else than the booker was ignored")
        return
    payment_id = payment["payment_id"]
    if name == "payment.failed":
        await cancel_pending(ctx, aid, "payment_failed")
        return
    if name != "payment.succeeded":
        return
    if appointment["status"] in ("booked", "arrived", "fulfilled", "noshow") and (
        appointment.get("payment_id") == payment_id
    ):
        return  # delivered again
    if appointment["status"] == "pending":
        if await finish_booking(ctx, appointment, payment_id) is not None:
            return
        await cancel_pending(ctx, aid, "hold_expired")
    await refund_late_payment(ctx, aid, payment_id)


async def refund_late_payment(ctx, aid: str, payment_id: str) -> None:
    """A fee paid for a hold that is gone: recorded, refunded in full, the patient told."""

    def record(current):
        if current.get("refund") or current["status"] in ("booked", "arrived", "fulfilled"):
            return None  # refunded already, or (another payment) booked it
        fee = current["fee"]
        return {
            "payment_id": payment_id,
            "refund": _refund(current, fee["amount"], payment_id),
        }

    appointment, changed = await change(ctx, aid, record)
    if not changed:
        return
    appointment = await settle(ctx, appointment)
    note = "Your payment arrived after the hold had expired: it is refunded in full."
    await visits.tell(
        ctx,
        appointment.get("booked_by"),
        card=visits.appointment_card(appointment, "patient", note=note),
    )


def _refund(appointment: dict[str, Any], amount: int, payment_id: str) -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": appointment["fee"]["currency"],
        "payment_id": payment_id,
        "ref": f"rf-{appointment['id']}",
        "state": "pending",
        "refund_id": None,
    }


SETTLE_RETRY_MS = 60_000  # the first retry of a refused refund; doubled each time, up to an hour
SETTLE_RETRY_MAX_MS = 3_600_000


async def retry_settle(ctx, aid: str, attempt: int) -> None:
    """Try a refused refund again later: timer ``appointment.settle`` (one per appointment,
    its key moved by each retry), backing off from a minute to an hour."""
    delay = min(SETTLE_RETRY_MS * 2**attempt, SETTLE_RETRY_MAX_MS)
    payload = {"appointment_id": aid, "attempt": attempt + 1}
    try:
        await ctx.schedule(
            "appointment.settle", delay=delay / 1000, key=f"settle:{aid}", payload=payload
        )
    except HostError as exc:  # the next look at the appointment tries again anyway
        log.error("appointment %s: refund retry not scheduled (%s)", aid, exc.code)


async def on_settle_timer(ctx) -> None:
    """``appointment.settle {appointment_id, attempt}``: a refused refund, tried again."""
    payload = ctx.payload if isinstance(ctx.payload, dict) else {}
    appointment, _ = await visits.load(ctx, payload.get("appointment_id"))
    if appointment is not None:
        attempt = payload.get("attempt")
        await settle(ctx, appointment, attempt=attempt if isinstance(attempt, int) else 0)


async def settle(ctx, appointment: dict[str, Any], *, attempt: int = 0) -> dict[str, Any]:
    """Make a refund recorded as pending (idempotent by its ``refund_ref``), then mark it
    done; when the wallet refuses now it stays pending, tried again by the timer
    ``appointment.settle`` (and on the next look at the appointment)."""
    refund = appointment.get("refund")
    if not refund or refund.get("state") != "pending":
        return appointment
    try:
        result = await ctx.refund_payment(refund["payment_id"], refund["amount"], refund["ref"])
    except HostError as exc:
        log.warning("appointment %s: refund not made yet (%s)", appointment["id"], exc.code)
        await retry_settle(ctx, appointment["id"], attempt)
        return appointment

    def done(current):
        now = current.get("refund") or {}
        if now.get("state") != "pending" or now.get("ref") != refund["ref"]:
            return None
        return {"refund": {**now, "state": "done", "refund_id": result["refund_id"]}}

    written, _ = await change(ctx, appointment["id"], done)
    return written


# --- expiry, cancel, reschedule --------------------------------------------------------------


async def cancel_pending(ctx, aid: str, reason: str) -> dict[str, Any]:
    """``pending → cancelled`` with ``reason``, then the slot freed (if it still names it)."""

    def decide(current):
        if current["status"] != "pending":
            return None
        return {"status": "cancelled", "cancel_reason": reason, "cancelled_at": clock.now_ms()}

    appointment, changed = await change(ctx, aid, decide)
    if appointment["status"] == "cancelled":
        await slots.release(ctx, appointment["practitioner"], appointment["start"], aid)
    if changed:
        await drop_timer(ctx, f"hold:{aid}")
        if reason == "payment_failed":
            note = "The payment did not go through, so the slot was released."
            card = visits.appointment_card(appointment, "patient", note=note)
            await visits.tell(ctx, appointment.get("booked_by"), card=card)
    return appointment


async def on_hold_expire(ctx) -> None:
    """``hold.expire {appointment_id}``: a hold still pending is cancelled (``hold_expired``);
    a cancelled appointment's slot is freed if it still names it — so a repeated firing frees
    nothing more. A refund left pending is tried again."""
    payload = ctx.payload if isinstance(ctx.payload, dict) else {}
    appointment, _ = await visits.load(ctx, payload.get("appointment_id"))
    if appointment is None:
        return
    if appointment["status"] == "pending" and appointment["hold_until"] <= clock.now_ms():
        appointment = await cancel_pending(ctx, appointment["id"], "hold_expired")
    elif appointment["status"] == "cancelled":
        await slots.release(
            ctx, appointment["practitioner"], appointment["start"], appointment["id"]
        )
    await settle(ctx, appointment)


async def cancel(ctx, aid: Any, note: Any = None) -> dict[str, Any]:
    """Cancel a hold or a booked visit, by the patient side or the practitioner."""
    appointment, side = await visits.appointment_for(ctx, aid)
    if note is not None and (not isinstance(note, str) or len(note) > 500):
        raise BookingError("invalid_reason", "The reason: at most 500 characters.")
    now = clock.now_ms()

    def decide(current):
        status = current["status"]
        if status == "cancelled":
            return None
        if status not in ("pending", "booked"):
            raise BookingError(
                "not_cancellable", f"This appointment is {visits.label(status).lower()}."
            )
        fields: dict[str, Any] = {
            "status": "cancelled",
            "cancel_reason": side,
            "cancelled_by": side,
            "cancelled_at": now,
            "cancel_note": (note or "").strip() or None,
        }
        paid = status == "booked" and current.get("payment_id") and current["fee"].get("amount")
        free = side == "practitioner" or now < current["start"] - FREE_CANCEL_MS
        if paid and free:
            fields["refund"] = _refund(current, current["fee"]["amount"], current["payment_id"])
        fields["fee_kept"] = bool(paid and not free)
        return fields

    appointment, changed = await change(ctx, appointment["id"], decide)
    if changed:
        await slots.release(
            ctx, appointment["practitioner"], appointment["start"], appointment["id"]
        )
        await drop_timer(ctx, f"hold:{appointment['id']}")
        await visits.cancel_reminders(ctx, appointment["id"])
        appointment = await settle(ctx, appointment)
        await visits.tell_both(ctx, appointment, cancel_note(appointment), skip=side)
    return {
        "appointment": visits.appointment_json(appointment, ctx, side),
        "message": cancel_note(appointment),
    }


def cancel_note(appointment: dict[str, Any]) -> str:
    if appointment.get("refund"):
        return "Cancelled: the fee is refunded in full."
    if appointment.get("fee_kept"):
        return "Cancelled less than 24 h before the visit: the fee is kept."
    return "Cancelled."


async def reschedule(ctx, aid: Any, new_start: Any) -> dict[str, Any]:
    """Move a booked visit to another free slot of the same practitioner."""
    appointment, side = await visits.appointment_for(ctx, aid)
    if appointment["status"] != "booked":
        raise BookingError(
            "not_reschedulable",
            "Only a booked visit can move; this one is "
            f"{visits.label(appointment['status']).lower()}.",
        )
    now = clock.now_ms()
    if side == "patient" and now >= appointment["start"] - FREE_CANCEL_MS:
        raise BookingError(
            "too_late",
            "Less than 24 h before the visit it cannot move (cancelling now keeps the fee).",
        )
    profile = await practitioners.get_active(ctx, appointment["practitioner"])
    start, end = slots.check_slot(profile, new_start)
    old_start, aid = appointment["start"], appointment["id"]
    if start == old_start:
        raise BookingError("same_slot", "That is the visit's current time.")
    await slots.take(ctx, profile["id"], start, aid, state="booked", hold_until=None)

    def decide(current):
        if current["status"] != "booked" or current["start"] != old_start:
            raise BookingError("busy", BUSY)
        moves = current.get("moves", [])
        return {
            "start": start,
            "end": end,
            "minutes": (end - start) // slots.MINUTE_MS,
            "moves": [*moves, {"from": old_start, "to": start, "by": side, "at": now}][-20:],
        }

    try:
        appointment, _ = await change(ctx, aid, decide)
    except BookingError:
        await slots.release(ctx, profile["id"], start, aid)
        raise
    await slots.release(ctx, profile["id"], old_start, aid)
    await visits.schedule_reminders(ctx, appointment)
    await visits.tell_both(ctx, appointment, "Your visit has moved.", skip=side)
    return {"appointment": visits.appointment_json(appointment, ctx, side)}


async def mark(ctx, aid: Any, status: Any) -> dict[str, Any]:
    """The practitioner marks a visit ``arrived``, ``fulfilled`` or ``noshow``."""
    if status not in MARKS:
        raise BookingError("invalid_status", "status: arrived, fulfilled or noshow.")
    appointment, side = await visits.appointment_for(ctx, aid)
    if side != "practitioner":
        raise BookingError("not_practitioner", "Only the practitioner marks the visit.")
    check_practitioner(ctx)
    now = clock.now_ms()
    opens = appointment["start"] - (visits.JOIN_BEFORE_MS if status == "arrived" else 0)
    if now < opens:
        raise BookingError("too_early", "Too early: the visit has not begun.")

    def decide(current):
        if current["status"] == status:
            return None
        return {"status": status}

    appointment, changed = await change(ctx, appointment["id"], decide)
    if changed and status in ("fulfilled", "noshow"):
        await visits.cancel_reminders(ctx, appointment["id"])
    return {"appointment": visits.appointment_json(appointment, ctx, side)}


# --- lists -----------------------------------------------------------------------------------


async def appointments_of(ctx, patient_user_id: str) -> list[dict[str, Any]]:
    """Every appointment of ``patient_user_id`` — their own, and those of their dependents
    (``patient`` tells which) — oldest first."""
    items = await find_all(ctx, "appointments", {"patient_user": patient_user_id})
    return sorted((item["value"] for item in items), key=lambda a: a["start"])


async def do_get(ctx) -> dict[str, Any]:
    """``appointment.get {appointment_id}``."""
    appointment, side = await visits.appointment_for(ctx, ctx.params.get("appointment_id"))
    appointment = await settle(ctx, appointment)
    return {"appointment": visits.appointment_json(appointment, ctx, side)}


async def day_of(ctx, profile: dict[str, Any], day: Any = None) -> list[dict[str, Any]]:
    """The practitioner's appointments (not cancelled, not expired holds) of a local day."""
    zone = slots.zone_of(profile["zone"])
    if day is None:
        day = slots.from_ms(clock.now_ms()).astimezone(zone).date()
    else:
        day = slots.parse_date(day)
    begin = slots.to_ms(datetime.combine(day, time()).replace(tzinfo=zone))
    end = slots.to_ms(datetime.combine(day + timedelta(days=1), time()).replace(tzinfo=zone))
    items = await find_all(
        ctx,
        "appointments",
        {"practitioner": profile["id"], "start": {"$gte": begin, "$lt": end}},
    )
    now = clock.now_ms()
    found = [
        item["value"]
        for item in items
        if item["value"]["status"] != "cancelled"
        and (item["value"]["status"] != "pending" or item["value"]["hold_until"] > now)
    ]
    return sorted(found, key=lambda a: a["start"])


async def do_practice_day(ctx) -> dict[str, Any]:
    """``practice.day {date?}``: the practitioner's visits of a day (default today, in their
    zone)."""
    check_practitioner(ctx)
    profile = await ctx.storage_get("practitioners", ctx.user_id)
    if not profile:
        raise BookingError("no_profile", "Write your practice profile first.")
    found = await day_of(ctx, profile, ctx.params.get("date"))
    return {
        "appointments": [visits.appointment_json(a, ctx, "practitioner") for a in found],
        "disclaimer": DISCLAIMER,
    }


# --- commands and buttons --------------------------------------------------------------------


def practice_line(appointment: dict[str, Any], zone: str, locale: str) -> Field:
    """A visit on the practitioner's day: when (their zone), who, status, the id to act on."""
    who = visits.patient_name(appointment)
    status = visits.label(appointment["status"])
    return Field(
        slots.when_text(appointment["start"], zone, locale)[:100],
        f"{who} · {status} · {appointment['id']}"[:1000],
    )


async def practice(ctx, args: list[str]) -> Reply | None:
    """``/health practice`` (my profile and today) · ``practice arrived|fulfilled|noshow <id>``
    · ``practice note <id> <text>`` · ``practice cancel <id> [reason]``."""
    check_practitioner(ctx)
    if args:
        verb = args[0].lower()
        if verb in MARKS and len(args) == 2:
            result = await mark(ctx, args[1], verb)
            return Reply(
                ephemeral=f"Marked {visits.label(result['appointment']['status']).lower()}."
            )
        if verb == "note" and len(args) >= 3:
            result = await visits.write_note(ctx, args[1], " ".join(args[2:]))
            sent = (
                "sent to the patient" if result["sent"] else "saved (the patient gets no messages)"
            )
            return Reply(ephemeral=f"Visit note {sent}.")
        if verb == "cancel" and len(args) >= 2:
            result = await cancel(ctx, args[1], " ".join(args[2:]) or None)
            return Reply(ephemeral=result["message"])
        return Reply(
            ephemeral="Usage: /health practice · /health practice arrived|fulfilled|noshow <id> · "
            "/health practice note <id> <text> · /health practice cancel <id> [reason]"
        )
    profile = await ctx.storage_get("practitioners", ctx.user_id)
    if not profile:
        card = Card("My practice", text="Write your profile and hours in the web view first.")
        card.buttons.append(Button.webview("Open my practice", path="#practice"))
        return Reply(ephemeral=card)
    today = await day_of(ctx, profile)
    card = Card(f"My practice · {profile['name']}"[:100], text=DISCLAIMER)
    card.fields.append(Field("Fee", practitioners.fee_text(profile["fee"], ctx.locale)))
    card.fields.append(Field("Visit", practitioners.visit_text(profile)))
    card.fields.extend(practice_line(a, profile["zone"], ctx.locale) for a in today[:LIST_MAX])
    if not today:
        card.fields.append(Field("Today", "No visits."))
    card.buttons.append(Button.webview("Open my practice", path="#practice"))
    return Reply(ephemeral=card)


async def on_cancel_press(ctx) -> Reply:
    result = await cancel(ctx, ctx.value)
    return Reply(ephemeral=result["message"])


def on_mark_press(status: str):
    async def handler(ctx) -> Reply:
        result = await mark(ctx, ctx.value, status)
        return Reply(ephemeral=f"Marked {visits.label(result['appointment']['status']).lower()}.")

    handler.__name__ = f"on_{status}_press"
    return handler


async def do_hold(ctx) -> dict[str, Any]:
    return await hold(ctx, ctx.params)


async def do_confirm(ctx) -> dict[str, Any]:
    return await confirm(ctx, ctx.params.get("appointment_id"))


async def do_cancel(ctx) -> dict[str, Any]:
    return await cancel(ctx, ctx.params.get("appointment_id"), ctx.params.get("reason"))


async def do_reschedule(ctx) -> dict[str, Any]:
    return await reschedule(ctx, ctx.params.get("appointment_id"), ctx.params.get("start"))


async def do_mark(ctx) -> dict[str, Any]:
    return await mark(ctx, ctx.params.get("appointment_id"), ctx.params.get("status"))


SUBCOMMANDS = {"practice": as_command(practice)}
ACTIONS = {
    "appointment.cancel": as_action(on_cancel_press),
    **{f"visit.{status}": as_action(on_mark_press(status)) for status in MARKS},
}
TIMERS = {"hold.expire": on_hold_expire, "appointment.settle": on_settle_timer}
VIEWS = {
    name: as_view(do)
    for name, do in {
        "booking.hold": do_hold,
        "booking.confirm": do_confirm,
        "booking.cancel": do_cancel,
        "booking.reschedule": do_reschedule,
        "practice.mark": do_mark,
        "appointment.get": do_get,
        "practice.day": do_practice_day,
    }.items()
}
PAYMENTS = {"ap": on_payment}
