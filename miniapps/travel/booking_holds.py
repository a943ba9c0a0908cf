"""A booking's document and money once holds come in: each share's hold recorded from its
payment events, the booking finished (one order, every hold captured once) or ended (every hold
voided). The flow is told in ``booking``'s docstring; this module is its second half.

Every change of a booking is one conditional write on its one document (``change``:
``update_doc``, redone on the fresh document after a lost race), so whatever races — the last
two holds on two nodes, a timer fired twice, a cancel against the deadline — each transition
happens once, and only the writer of a transition does what follows it (texts, captures, the
order). ``finish`` runs one at a time (a lease on the booking, ``LEASE_MS``) with a timer set
as a safety net for a run that dies half-way; making the order is idempotent
(``providers.book`` by the booking id) and so is a capture retried with the same amount.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import changes
import clock
import expenses
import itinerary
import providers
import reminders
import store
from booking_card import HELD, LIVE, booking_card, summary
from store import TravelError

from sdk import HostError
from sdk.documents import update_doc

log = logging.getLogger("travel.booking")

BOOKINGS = "bookings"
MINUTE_MS = 60_000
FINISH_RETRY_MS = MINUTE_MS  # a provider timeout: finish again a minute later …
FINISH_ATTEMPTS = 10  # … at most this many runs, then the booking fails
LEASE_MS = 90_000  # one finish at a time; a run that died is taken over after this
DEADLINE_TIMER, FINISH_TIMER = "booking.deadline", "booking.finish"
BOOKING_ID = re.compile(r"^bk[0-9a-f]{10}$")
BUSY = "That booking is busy right now: try again."


# --- the document, the card, the group --------------------------------------------------------


def booking_key(booking_id: str, what: str) -> str:
    """Timer keys: ``bd-<id>`` (deadline) and ``bf-<id>`` (finish)."""
    return f"{what}-{booking_id}"


async def change(ctx, booking_id: str, edit) -> tuple[Any, dict[str, Any] | None]:
    """``update_doc`` on the booking (``edit(doc)`` gets None when there is none)."""
    try:
        return await update_doc(ctx, BOOKINGS, booking_id, edit, busy=BUSY)
    except HostError as exc:
        if exc.code == "busy":
            raise TravelError("busy", BUSY) from None
        raise


async def drop_timer(ctx, key: str) -> None:
    try:
        await ctx.cancel_schedule(key)
    except HostError as exc:
        log.warning("timer %s not cancelled (%s)", key, exc.code)


async def say(ctx, booking: dict[str, Any], text: str) -> None:
    """A text in the booking's group (only from an invocation in that group)."""
    if ctx.conversation_id != booking["conversation_id"]:
        return
    try:
        await ctx.send_text(text)
    except HostError as exc:
        log.warning("booking %s: group not told (%s)", booking["id"], exc.code)


async def tell(ctx, text: str) -> None:
    """An ephemeral note to the invoker (a payment event's: the payer)."""
    try:
        await ctx.reply_ephemeral(text)
    except HostError as exc:
        log.info("not told (%s)", exc.code)


async def show(ctx, booking: dict[str, Any]) -> None:
    """Redraw the booking card in its group."""
    message_id = booking.get("card_message_id")
    if not message_id:
        return
    try:
        await ctx.update_card(
            message_id, booking_card(booking), conversation_id=booking["conversation_id"]
        )
    except HostError as exc:
        log.warning("booking %s: card not updated (%s)", booking["id"], exc.code)


async def sync_trip(ctx, booking: dict[str, Any]) -> dict[str, Any] | None:
    """The trip's ``booking`` summary follows the booking while it is live, and is cleared once
    it ended; then the trip card is redrawn. The summary carries the booking's storage
    ``version``: a slower writer with an older booking never overwrites a newer summary."""
    fresh, version = await ctx.storage_get_versioned(BOOKINGS, booking["id"])
    booking = fresh or booking

    def edit(trip: dict[str, Any]) -> bool:
        current = trip.get("booking")
        if not current or current.get("id") != booking["id"]:
            return False
        if int(current.get("version") or 0) > version:
            return False
        trip["booking"] = (
            {**summary(booking), "version": version} if booking["state"] in LIVE else None
        )
        return True

    try:
        changed, trip = await store.update(ctx, booking["trip_id"], edit)
    except TravelError as exc:
        log.info("booking %s: trip not updated (%s)", booking["id"], exc.code)
        return None
    if changed:
        await refresh_trip(ctx, trip)
    return trip


async def refresh_trip(ctx, trip: dict[str, Any]) -> None:
    try:
        await store.refresh_card(ctx, trip)
    except HostError as exc:
        log.warning("trip %s: card not redrawn (%s)", trip.get("id"), exc.code)


async def release(ctx, trip_id: str, booking_id: str) -> None:
    """Give the trip's lock back (a start that did not go through)."""

    def edit(trip: dict[str, Any]) -> None:
        if (trip.get("booking") or {}).get("id") == booking_id:
            trip["booking"] = None

    try:
        await store.update(ctx, trip_id, edit)
    except (TravelError, HostError) as exc:
        log.warning("trip %s: lock of %s not released (%s)", trip_id, booking_id, exc)


# --- holds: payment events --------------------------------------------------------------------


async def authorized(ctx, booking_id: str, uid: str, n: int, payment: dict[str, Any]) -> None:
    """A hold came through: the share is held — the last one moves the booking on and finishes
    it — or, when the booking is no longer collecting, the hold is voided at once. Once per
    hold, however often the event comes."""
    payment_id = payment["payment_id"]
    now = clock.now_ms()

    def count(doc: dict[str, Any] | None) -> str:
        entry = (doc or {}).get("holds", {}).get(uid)
        if doc is None or entry is None or entry.get("n") != n:
            return "stray"
        if entry.get("payment_id") == payment_id and entry["status"] in HELD:
            return "again"
        if entry["status"] not in ("requested", "voided", "declined"):
            return "stray"
        entry["payment_id"] = payment_id
        if doc["state"] != "collecting" or now >= doc["deadline_ms"]:
            entry["status"] = "voided"
            return "late"
        entry["status"] = "authorized"
        if any((doc["holds"].get(u) or {}).get("status") not in HELD for u in doc["shares"]):
            return "held"
        doc["state"] = "booking"
        return "complete"

    outcome, booking = await change(ctx, booking_id, count)
    if outcome == "again":
        return
    if outcome in ("stray", "late"):
        await void(ctx, payment_id)
        await tell(
            ctx,
            "This booking had ended before your hold came through: it was released, "
            "nothing was charged.",
        )
        return
    assert booking is not None
    await show(ctx, booking)
    await sync_trip(ctx, booking)
    if outcome == "complete":
        await drop_timer(ctx, booking_key(booking_id, "bd"))
        await say(ctx, booking, f"Everyone has held their share of {booking['title']} ✓ Booking…")
        await finish(ctx, booking_id)


async def hold_closed(
    ctx, booking_id: str, uid: str, n: int, payment: dict[str, Any], status: str
) -> None:
    """A hold request declined or let lapse (``payment.failed``: they may hold again while the
    booking collects), or a hold voided (ours: recorded already; the host's expiry of a hold
    while collecting: they hold again)."""
    payment_id = payment["payment_id"]

    def edit(doc: dict[str, Any] | None) -> bool:
        entry = (doc or {}).get("holds", {}).get(uid)
        if doc is None or entry is None or entry.get("n") != n:
            return False
        if entry.get("payment_id") not in (None, payment_id):
            return False
        if status == "declined" and entry["status"] == "requested":
            entry.update(status="declined", payment_id=payment_id)
            return True
        if status == "voided" and doc["state"] == "collecting" and entry["status"] == "authorized":
            entry.update(status="voided", payment_id=payment_id)
            return True
        return False

    changed, booking = await change(ctx, booking_id, edit)
    if changed and booking is not None:
        await show(ctx, booking)
        await sync_trip(ctx, booking)


async def hold_captured(ctx, booking_id: str, uid: str, payment: dict[str, Any]) -> None:
    """``payment.captured``: ours (finish records it too): noted on the hold."""

    def edit(doc: dict[str, Any] | None) -> None:
        entry = (doc or {}).get("holds", {}).get(uid)
        if entry and entry.get("payment_id") == payment["payment_id"]:
            entry["status"] = "captured"

    await change(ctx, booking_id, edit)


async def void(ctx, payment_id: str) -> bool:
    """Void a hold (again is fine: the same answer). False when it could not be done now."""
    try:
        await ctx.void_payment(payment_id)
    except HostError as exc:
        # not_authorized: a request not confirmed (yet: voided when it is), or captured
        if exc.code in ("not_authorized", "not_found"):
            return True
        log.warning("hold %s not voided (%s)", payment_id, exc.code)
        return False
    return True


async def void_all(ctx, booking: dict[str, Any]) -> bool:
    """Void every hold of an ended booking that has a payment and record it; True when all
    were voided (else the deadline timer, set again, tries the rest)."""
    pending = {
        uid: entry
        for uid, entry in (booking.get("holds") or {}).items()
        if entry["status"] in ("requested", "authorized")
    }
    done = {}
    for uid, entry in pending.items():
        if entry.get("payment_id") is None or await void(ctx, entry["payment_id"]):
            done[uid] = entry.get("payment_id")

    def record(doc: dict[str, Any] | None) -> None:
        for uid, payment_id in done.items():
            entry = (doc or {}).get("holds", {}).get(uid)
            if entry and entry.get("payment_id") == payment_id and entry["status"] != "captured":
                entry["status"] = "voided"

    if done:
        await change(ctx, booking["id"], record)
    if len(done) < len(pending):
        try:
            await ctx.schedule(
                DEADLINE_TIMER,
                delay=FINISH_RETRY_MS / 1000,
                key=booking_key(booking["id"], "bd"),
                payload={"booking_id": booking["id"], "trip_id": booking["trip_id"]},
            )
        except HostError as exc:
            log.error("booking %s: void retry not scheduled (%s)", booking["id"], exc.code)
        return False
    return True


# --- finishing: one order, every hold captured ------------------------------------------------


async def finish(ctx, booking_id: str) -> dict[str, Any] | None:
    """Make the order (once), capture every hold (once), and book it into the trip."""
    now = clock.now_ms()

    def claim(doc: dict[str, Any] | None) -> str | None:
        if doc is None or doc["state"] != "booking":
            return None
        if int(doc.get("lease_until") or 0) > now:
            return "busy"
        doc["lease_until"] = now + LEASE_MS
        doc["attempts"] = int(doc.get("attempts") or 0) + 1
        return "go"

    outcome, booking = await change(ctx, booking_id, claim)
    if outcome != "go" or booking is None:
        return booking
    timer = booking_key(booking_id, "bf")
    payload = {"booking_id": booking_id, "trip_id": booking["trip_id"]}
    try:  # a safety net: should this run die, the timer takes over once the lease is over
        await ctx.schedule(FINISH_TIMER, at=now + LEASE_MS, key=timer, payload=payload)
    except HostError as exc:
        log.error("booking %s: finish timer not set (%s)", booking_id, exc.code)
    hold_order = (booking.get("hold_order") or {}).get("order_id")
    order = booking.get("order")
    if not order:
        try:
            made = await providers.book(
                ctx, booking["offer"], key=booking_id, hold_order_id=hold_order
            )
        except TravelError as exc:
            if exc.code == "provider_timeout" and booking["attempts"] < FINISH_ATTEMPTS:
                return await retry_later(ctx, booking, "the provider did not answer in time")
            reason = exc.message
            if exc.code == "provider_timeout":
                reason = "the provider did not answer, however often we asked"
            return await fail(ctx, booking_id, reason)
        order = {"order_id": made["order_id"], "reference": made.get("reference") or ""}

        def keep_order(doc: dict[str, Any] | None) -> None:
            if doc is not None and doc["state"] == "booking" and not doc.get("order"):
                doc["order"] = order

        _, booking = await change(ctx, booking_id, keep_order)
        assert booking is not None
        order = booking.get("order") or order
    captured, waiting = await capture_all(ctx, booking)
    if waiting:
        return await retry_later(ctx, booking, "a hold is busy", captured=captured)
    booking = {
        **booking,
        "holds": {
            **booking["holds"],
            **{
                uid: {**booking["holds"][uid], "status": status} for uid, status in captured.items()
            },
        },
    }
    trip = await book_into_trip(ctx, booking)

    def done(doc: dict[str, Any] | None) -> bool:
        if doc is None or doc["state"] != "booking":
            return False
        for uid, status in captured.items():
            doc["holds"][uid]["status"] = status
        doc.update(
            state="booked",
            order=order,
            order_id=order["order_id"],
            lease_until=0,
            closed_at=clock.now_ms(),
            reason=None,
        )
        return True

    changed, booking = await change(ctx, booking_id, done)
    if not changed or booking is None:
        return booking
    await drop_timer(ctx, timer)
    await show(ctx, booking)
    if trip is not None:
        await refresh_trip(ctx, trip)
    lost = [booking["names"].get(uid, "A traveller") for uid, s in captured.items() if s == "lost"]
    text = f"Booked ✓ {booking['title']} · ref {order.get('reference') or '—'}."
    if lost:
        text += f" The hold of {', '.join(lost)} had lapsed before it could be taken."
    await say(ctx, booking, text)
    if booking.get("provider") == "duffel" and booking.get("kind") == "flight":
        try:  # schedule changes reach the trip through the provider's webhook
            await changes.ensure_webhook(ctx)
        except (TravelError, HostError) as exc:
            log.warning("booking %s: webhook not ensured (%s)", booking_id, exc)
    return booking


async def retry_later(
    ctx, booking: dict[str, Any], why: str, captured: dict[str, str] | None = None
) -> dict[str, Any] | None:
    """Stay in ``booking``: the lease given back, ``booking.finish`` a minute from now."""

    def edit(doc: dict[str, Any] | None) -> None:
        if doc is None or doc["state"] != "booking":
            return
        doc["lease_until"] = 0
        for uid, status in (captured or {}).items():
            doc["holds"][uid]["status"] = status

    _, written = await change(ctx, booking["id"], edit)
    log.info("booking %s: finishing again later (%s)", booking["id"], why)
    try:
        await ctx.schedule(
            FINISH_TIMER,
            delay=FINISH_RETRY_MS / 1000,
            key=booking_key(booking["id"], "bf"),
            payload={"booking_id": booking["id"], "trip_id": booking["trip_id"]},
        )
    except HostError as exc:  # the safety-net timer set by finish stays
        log.error("booking %s: finish retry not scheduled (%s)", booking["id"], exc.code)
    if written is not None:
        await show(ctx, written)
    return written


async def capture_all(ctx, booking: dict[str, Any]) -> tuple[dict[str, str], bool]:
    """Capture every held share → ``({uid: "captured" | "lost"}, some hold busy now)``."""
    results: dict[str, str] = {}
    waiting = False
    for uid, entry in sorted(booking["holds"].items()):
        if uid not in booking["shares"] or entry["status"] == "captured":
            continue
        try:
            await ctx.capture_payment(entry["payment_id"], booking["shares"][uid])
        except HostError as exc:
            if exc.code == "payment_in_progress":
                waiting = True
                continue
            if exc.code not in ("not_authorized", "not_found"):
                raise
            # captured on an earlier run (its payment.captured recorded it) — else it lapsed
            fresh = await ctx.storage_get(BOOKINGS, booking["id"])
            again = ((fresh or {}).get("holds") or {}).get(uid) or {}
            done = again.get("payment_id") == entry["payment_id"] and again["status"] == "captured"
            results[uid] = "captured" if done else "lost"
            if not done:
                log.error(
                    "booking %s: hold %s lost (%s)", booking["id"], entry["payment_id"], exc.code
                )
            continue
        results[uid] = "captured"
    return results, waiting


async def book_into_trip(ctx, booking: dict[str, Any]) -> dict[str, Any] | None:
    """The offer's items join the itinerary (once per booking), the trip's lock is given back,
    the booking becomes an expense (idempotent) and the reminders follow. The trip as written."""
    items = list((booking.get("offer") or {}).get("items") or [])

    def edit(trip: dict[str, Any]) -> None:
        if items and not any(i.get("booking_id") == booking["id"] for i in trip.get("items") or []):
            itinerary.add_items(trip, items, booking["started_by"], booking["id"])
        if (trip.get("booking") or {}).get("id") == booking["id"]:
            trip["booking"] = None

    trip = None
    try:
        _, trip = await store.update(ctx, booking["trip_id"], edit)
    except TravelError as exc:
        log.warning("booking %s: not added to the trip (%s)", booking["id"], exc.code)
    await expenses.record_booking(ctx, booking)
    if trip is not None:
        await reminders.sync(ctx, trip)
    return trip


async def fail(ctx, booking_id: str, reason: str) -> dict[str, Any] | None:
    """``booking → failed`` (or a still collecting one): every hold voided, the group told."""

    def edit(doc: dict[str, Any] | None) -> bool:
        if doc is None or doc["state"] not in LIVE:
            return False
        doc.update(state="failed", reason=reason, lease_until=0, closed_at=clock.now_ms())
        return True

    changed, booking = await change(ctx, booking_id, edit)
    if booking is None:
        return None
    await void_all(ctx, booking)
    if changed:
        await drop_timer(ctx, booking_key(booking_id, "bf"))
        booking = await ctx.storage_get(BOOKINGS, booking_id) or booking
        await show(ctx, booking)
        await sync_trip(ctx, booking)
        await say(
            ctx,
            booking,
            f"Could not book {booking['title']}: {reason}. Every hold was "
            "released; nobody was charged.",
        )
    return booking


# --- ending without booking: the deadline, a cancel -------------------------------------------


async def close(ctx, booking_id: str, why: str, by: str | None = None) -> dict[str, Any] | None:
    """``collecting → voided`` (the deadline, or cancelled ``by`` someone) and every hold
    voided; None when it was not collecting (someone else closed it, or everyone held)."""
    now = clock.now_ms()

    def edit(doc: dict[str, Any] | None) -> str | None:
        if doc is None or doc["state"] != "collecting":
            return None
        if why == "deadline":
            late = [
                doc["names"].get(uid, "a traveller")
                for uid in sorted(doc["shares"], key=lambda u: doc["names"].get(u, u).lower())
                if (doc["holds"].get(uid) or {}).get("status") not in HELD
            ]
            reason = "Not held in time by " + ", ".join(late) if late else "the deadline passed"
        else:
            reason = f"cancelled by {by or 'the starter'}"
        doc.update(state="voided", reason=reason, why=why, closed_at=now)
        return reason

    reason, booking = await change(ctx, booking_id, edit)
    if reason is None or booking is None:
        return None
    if why != "deadline":  # (void_all may set it again, to retry a void that failed)
        await drop_timer(ctx, booking_key(booking_id, "bd"))
    await void_all(ctx, booking)
    booking = await ctx.storage_get(BOOKINGS, booking_id) or booking
    await show(ctx, booking)
    await sync_trip(ctx, booking)
    await say(
        ctx,
        booking,
        f"Not booked: {booking['title']} — {reason}. Every hold was released; nobody was charged.",
    )
    return booking
