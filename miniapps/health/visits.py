"""Visits: an appointment as its people see it — the card, the reminders, the video visit and the
visit note. (The appointment's life — holds, payment, cancel, reschedule, status — is
``booking``'s, which builds on this module.)

- Who sees an appointment: its patient (``patient_user``: the person, or the guardian of a
  dependent), whoever booked it, and its practitioner. To anyone else an appointment id is
  ``not_found``, as if it did not exist.
- Reminders: timer ``appointment.remind`` at start - 24 h (key ``rm24:<id>``) and start - 15 min
  (``rm15:<id>``), moved when the appointment moves, cancelled when it is cancelled; each sends
  the appointment card as a service message to the patient (and to the practitioner at 15 min).
- **Join video visit** (action and view ``visit.join``), from start - 15 min to the end, by the
  patient or the practitioner: ``ctx.start_call("video", participant_ids=[patient,
  practitioner], own_chat=True, title=…)`` — the platform opens (and reuses) a chat of just the
  two of them and rings both. ``call.started`` / ``call.ended`` are noted on the appointment.
- Visit note (view ``visit.note``, or ``/health practice note <id> <text>``): the practitioner,
  once the visit has begun; stored on the appointment and sent to the patient.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import clock
import slots
from practitioners import as_view, fee_text, visit_text
from slots import BookingError
from texts import DISCLAIMER

from sdk import Button, Card, Field, HostError, NotFound, Reply, ScopeDenied
from sdk.documents import update_doc

log = logging.getLogger("health.visits")

APPOINTMENT_ID_RE = re.compile(r"ap-[0-9a-f]{20}")
JOIN_BEFORE_MS = 15 * slots.MINUTE_MS
REMIND_24H_MS = 24 * 60 * slots.MINUTE_MS
NOTE_MAX = 2000
NOT_FOUND = "No such appointment."
STATUS_LABELS = {
    "proposed": "Proposed",
    "pending": "Held · waiting for confirmation",
    "booked": "Booked",
    "arrived": "Arrived",
    "fulfilled": "Done",
    "cancelled": "Cancelled",
    "noshow": "No-show",
}
LIVE = ("booked", "arrived")  # statuses of a visit that is still to happen (or happening)
REASONS = {
    "hold_expired": "The 5-minute hold expired",
    "payment_failed": "The payment did not go through",
    "patient": "Cancelled by the patient",
    "practitioner": "Cancelled by the practitioner",
}


# --- reading ---------------------------------------------------------------------------------


async def load(ctx, appointment_id: Any) -> tuple[dict[str, Any] | None, int]:
    """``(appointment, version)``; ``(None, 0)`` for a malformed or unknown id."""
    if not isinstance(appointment_id, str) or not APPOINTMENT_ID_RE.fullmatch(appointment_id):
        return None, 0
    return await ctx.storage_get_versioned("appointments", appointment_id)


def side_of(user_id: str | None, appointment: dict[str, Any]) -> str | None:
    """``"patient"`` (the patient, their guardian, whoever booked), ``"practitioner"``, None."""
    if not user_id:
        return None
    if user_id == appointment["practitioner"]:
        return "practitioner"
    patient = appointment["patient"]
    if user_id in (appointment.get("patient_user"), appointment.get("booked_by")) or user_id in (
        patient.get("user"),
        patient.get("guardian"),
    ):
        return "patient"
    return None


async def appointment_for(ctx, appointment_id: Any) -> tuple[dict[str, Any], str]:
    """The appointment and the invoker's side of it; someone else's is ``not_found``."""
    appointment, _ = await load(ctx, appointment_id)
    side = side_of(ctx.user_id, appointment) if appointment else None
    if appointment is None or side is None:
        raise BookingError("not_found", NOT_FOUND)
    return appointment, side


def patient_name(appointment: dict[str, Any]) -> str:
    patient = appointment["patient"]
    return patient.get("name") or ("Dependent" if patient.get("dependent") else "Patient")


def is_video(appointment: dict[str, Any]) -> bool:
    return appointment.get("visit_type") == "video"


def join_open(appointment: dict[str, Any], now: int) -> bool:
    """Whether **Join video visit** is offered: a live video visit, start - 15 min … end."""
    return (
        is_video(appointment)
        and appointment["status"] in LIVE
        and appointment["start"] - JOIN_BEFORE_MS <= now <= appointment["end"]
    )


def reason_text(appointment: dict[str, Any]) -> str | None:
    reason = appointment.get("cancel_reason")
    text = REASONS.get(reason, reason) if reason else None
    if text and appointment.get("cancel_note"):
        text = f"{text}: {appointment['cancel_note']}"
    return text


def label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


# --- the card --------------------------------------------------------------------------------


def reader_zone(appointment: dict[str, Any], side: str) -> str:
    """The zone a side reads the appointment in: the patient's as they booked, the
    practitioner's profile zone."""
    if side == "practitioner":
        return appointment.get("zone") or "UTC"
    return appointment.get("patient_zone") or "UTC"


def reader_locale(appointment: dict[str, Any], side: str) -> str:
    if side == "practitioner":
        return appointment.get("practitioner_locale") or "en"
    return appointment.get("patient_locale") or "en"


def appointment_card(
    appointment: dict[str, Any],
    side: str,
    *,
    note: str | None = None,
    zone: str | None = None,
    locale: str | None = None,
    now: int | None = None,
) -> Card:
    """The appointment's card for one side: status, who, when (in that side's zone), visit,
    fee, and the buttons its status allows — **Join video visit** in the join window,
    **Cancel**, and the practitioner's marks."""
    now = clock.now_ms() if now is None else now
    zone = zone or reader_zone(appointment, side)
    locale = locale or reader_locale(appointment, side)
    aid = appointment["id"]
    fields = [
        Field("When", slots.when_text(appointment["start"], zone, locale)),
        Field("Practitioner", appointment.get("practitioner_name", "")[:1000] or "—"),
        Field("Patient", patient_name(appointment)[:1000]),
        Field(
            "Visit",
            visit_text(
                {"visit_type": appointment["visit_type"], "visit_minutes": appointment["minutes"]}
            ),
        ),
        Field("Fee", fee_text(appointment.get("fee"), locale)),
    ]
    refund = appointment.get("refund")
    if refund:
        state = "refunded" if refund.get("state") == "done" else "being refunded"
        fields.append(Field("Refund", f"{fee_text(refund, locale)} {state}"))
    if appointment["status"] == "cancelled" and appointment.get("cancel_reason"):
        fields.append(Field("Reason", (reason_text(appointment) or "")[:1000]))
    text = "\n".join(x for x in (note, DISCLAIMER) if x)
    card = Card(f"Appointment · {label(appointment['status'])}"[:100], text=text[:2000])
    card.fields.extend(fields)
    if join_open(appointment, now):
        card.buttons.append(Button("visit.join", "Join video visit", aid, "primary"))
    if appointment["status"] in ("pending", "booked"):
        card.buttons.append(Button("appointment.cancel", "Cancel", aid, "danger"))
    if (
        side == "practitioner"
        and appointment["status"] in LIVE
        and now >= appointment["start"] - JOIN_BEFORE_MS
    ):
        if appointment["status"] == "booked":
            card.buttons.append(Button("visit.arrived", "Arrived", aid, "secondary"))
        if now >= appointment["start"]:
            card.buttons.append(Button("visit.fulfilled", "Done", aid, "secondary"))
            if appointment["status"] == "booked":
                card.buttons.append(Button("visit.noshow", "No-show", aid, "secondary"))
    card.buttons.append(Button.webview("Open", path=f"#appointment={aid}"))
    return card


async def tell(ctx, user_id: str | None, *, text: str | None = None, card: Any = None) -> bool:
    """A service message; skipped quietly (False) when the person did not opt in."""
    if not user_id:
        return False
    try:
        await ctx.send_service_message(user_id, text=text, card=card)
    except (ScopeDenied, NotFound):
        return False
    except HostError as exc:
        log.warning("service message not sent (%s)", exc.code)
        return False
    return True


async def tell_both(
    ctx, appointment: dict[str, Any], note: str, *, skip: str | None = None
) -> None:
    """The appointment card, with ``note``, to the patient side and the practitioner (not to
    ``skip``, the side that acted and sees the answer already)."""
    if skip != "patient":
        card = appointment_card(appointment, "patient", note=note)
        await tell(ctx, appointment.get("patient_user"), card=card)
    if skip != "practitioner":
        card = appointment_card(appointment, "practitioner", note=note)
        await tell(ctx, appointment["practitioner"], card=card)


def appointment_json(appointment: dict[str, Any], ctx, side: str | None = None) -> dict[str, Any]:
    """An appointment for a page, times in the reader's zone."""
    side = side or side_of(ctx.user_id, appointment) or "patient"
    now = clock.now_ms()
    item = {
        key: appointment.get(key)
        for key in (
            "id",
            "practitioner",
            "practitioner_name",
            "patient",
            "start",
            "end",
            "status",
            "fee",
            "hold_until",
            "cancel_reason",
            "cancelled_by",
            "refund",
            "note",
            "visit_type",
            "minutes",
            "payment_id",
        )
    }
    item.update(
        {
            "side": side,
            "patient_name": patient_name(appointment),
            "status_text": label(appointment["status"]),
            "fee_text": fee_text(appointment.get("fee"), ctx.locale),
            "when": slots.slot_json(
                appointment["start"], appointment["end"], ctx.time_zone, ctx.locale
            ),
            "practitioner_when": slots.slot_json(
                appointment["start"], appointment["end"], appointment.get("zone"), ctx.locale
            ),
            "can_join": join_open(appointment, now),
            "free_cancel_until": appointment["start"] - REMIND_24H_MS,
            "disclaimer": DISCLAIMER,
        }
    )
    return item


# --- reminders -------------------------------------------------------------------------------


def reminder_times(appointment: dict[str, Any]) -> list[tuple[str, str, int]]:
    aid, start = appointment["id"], appointment["start"]
    return [
        ("24h", f"rm24:{aid}", start - REMIND_24H_MS),
        ("15m", f"rm15:{aid}", start - JOIN_BEFORE_MS),
    ]


async def schedule_reminders(ctx, appointment: dict[str, Any]) -> None:
    """Set (or move) both reminders; one whose time has passed is cancelled instead."""
    now = clock.now_ms()
    for kind, key, at in reminder_times(appointment):
        try:
            if at > now:
                payload = {
                    "appointment_id": appointment["id"],
                    "kind": kind,
                    "start": appointment["start"],
                }
                await ctx.schedule("appointment.remind", at=at, key=key, payload=payload)
            else:
                await ctx.cancel_schedule(key)
        except HostError as exc:
            log.error("appointment %s: reminder %s not set (%s)", appointment["id"], key, exc.code)


async def cancel_reminders(ctx, appointment_id: str) -> None:
    for key in (f"rm24:{appointment_id}", f"rm15:{appointment_id}"):
        try:
            await ctx.cancel_schedule(key)
        except HostError as exc:
            log.warning("reminder %s not cancelled (%s)", key, exc.code)


async def on_remind(ctx) -> None:
    """``appointment.remind {appointment_id, kind: "24h" | "15m", start}``: the card to the
    patient (and at 15 min the practitioner), unless the visit moved or is no longer live."""
    payload = ctx.payload if isinstance(ctx.payload, dict) else {}
    appointment, _ = await load(ctx, payload.get("appointment_id"))
    if appointment is None or appointment["status"] not in LIVE:
        return
    if payload.get("start") != appointment["start"]:
        return  # a reminder of the time before a reschedule: the moved one is on its way
    soon = payload.get("kind") == "15m"
    note = "Your visit starts in 15 minutes." if soon else "Reminder: your visit is tomorrow."
    await tell(
        ctx,
        appointment.get("patient_user"),
        card=appointment_card(appointment, "patient", note=note),
    )
    if soon:
        card = appointment_card(
            appointment, "practitioner", note="Your next visit starts in 15 minutes."
        )
        await tell(ctx, appointment["practitioner"], card=card)


# --- the video visit -------------------------------------------------------------------------


async def join(ctx, appointment_id: Any) -> dict[str, Any]:
    """Start (ring) the video visit between the patient and the practitioner."""
    appointment, side = await appointment_for(ctx, appointment_id)
    now = clock.now_ms()
    if not is_video(appointment):
        raise BookingError("not_video", "This is an in-person visit: there is no video call.")
    if appointment["status"] not in LIVE:
        raise BookingError(
            "not_live", f"This appointment is {label(appointment['status']).lower()}."
        )
    if now < appointment["start"] - JOIN_BEFORE_MS:
        opens = slots.when_text(appointment["start"] - JOIN_BEFORE_MS, ctx.time_zone, ctx.locale)
        raise BookingError(
            "too_early", f"The video visit opens 15 minutes before it starts: {opens}."
        )
    if now > appointment["end"]:
        raise BookingError("visit_over", "This visit's time is over.")
    patient = appointment["patient_user"]
    participants = [ctx.user_id, appointment["practitioner"] if side == "patient" else patient]
    title = f"Visit · {appointment.get('practitioner_name', 'Health')}"[:100]
    try:
        call_id = await ctx.start_call(
            "video", participant_ids=participants, own_chat=True, title=title
        )
    except HostError as exc:
        if exc.code == "call_in_progress":
            raise BookingError(
                "call_in_progress", "The visit call is on: answer it in your chat with them."
            ) from None
        if exc.code == "user_busy":
            raise BookingError(
                "user_busy", "They are in another call right now: try again in a moment."
            ) from None
        raise BookingError(exc.code, f"The call could not start ({exc.code}).") from None
    await ctx.storage_put("visit_calls", call_id, {"appointment_id": appointment["id"], "at": now})
    return {"call_id": call_id, "appointment_id": appointment["id"]}


async def on_join_press(ctx) -> Reply:
    """The **Join video visit** button (value: the appointment id)."""
    try:
        await join(ctx, ctx.value)
    except BookingError as exc:
        return Reply(ephemeral=exc.message)
    return Reply(ephemeral="Calling… answer the ring to join the visit.")


async def do_join_view(ctx) -> dict[str, Any]:
    """``visit.join {appointment_id}`` → ``{call_id, appointment_id}``."""
    return await join(ctx, ctx.params.get("appointment_id"))


async def on_call_event(ctx) -> None:
    """``call.started`` / ``call.ended``: noted on the appointment of that call."""
    payload = ctx.payload if isinstance(ctx.payload, dict) else {}
    call_id = payload.get("call_id")
    if not isinstance(call_id, str) or not 1 <= len(call_id) <= 256:
        return
    link = await ctx.storage_get("visit_calls", call_id)
    if not link:
        return
    entry = {"call_id": call_id, "event": ctx.event_name, "at": clock.now_ms()}
    if ctx.event_name == "call.ended":
        entry["outcome"] = payload.get("outcome")
        entry["duration_seconds"] = payload.get("duration_seconds")

    def edit(doc):
        if doc is not None:
            doc["call"] = entry

    await update_doc(ctx, "appointments", link["appointment_id"], edit)


# --- the visit note --------------------------------------------------------------------------


async def write_note(ctx, appointment_id: Any, text: Any) -> dict[str, Any]:
    """The practitioner's note after the visit began: stored, and sent to the patient."""
    appointment, side = await appointment_for(ctx, appointment_id)
    if side != "practitioner":
        raise BookingError("not_practitioner", "Only the practitioner writes the visit note.")
    if not isinstance(text, str) or not text.strip() or len(text.strip()) > NOTE_MAX:
        raise BookingError("invalid_note", f"The note: 1-{NOTE_MAX} characters.")
    if appointment["status"] not in ("booked", "arrived", "fulfilled"):
        raise BookingError(
            "not_live", f"This appointment is {label(appointment['status']).lower()}."
        )
    if clock.now_ms() < appointment["start"]:
        raise BookingError("too_early", "A visit note is written once the visit has begun.")
    note = {"text": text.strip(), "at": clock.now_ms()}

    def edit(doc):
        if doc is not None and doc["status"] in ("booked", "arrived", "fulfilled"):
            doc["note"] = note

    _, written = await update_doc(ctx, "appointments", appointment["id"], edit)
    written = written or appointment
    card = appointment_card(written, "patient", note=f"Visit note:\n{note['text']}"[:1900])
    card.title = "Visit note"
    sent = await tell(ctx, written.get("patient_user"), card=card)
    return {"appointment": appointment_json(written, ctx, side), "sent": sent}


async def do_note_view(ctx) -> dict[str, Any]:
    """``visit.note {appointment_id, text}``."""
    return await write_note(ctx, ctx.params.get("appointment_id"), ctx.params.get("text"))


ACTIONS = {"visit.join": on_join_press}
EVENTS = {"call.started": on_call_event, "call.ended": on_call_event}
TIMERS = {"appointment.remind": on_remind}
VIEWS = {"visit.join": as_view(do_join_view), "visit.note": as_view(do_note_view)}
