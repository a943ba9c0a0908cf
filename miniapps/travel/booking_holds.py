"""A booking's document and money once holds come in: each share's hold recorded from its
payment events, the provider's work done one step per timer firing (one order, every hold
captured once), or the booking ended (every hold voided). The flow is told in ``booking``'s
docstring; this module is its second half.

Every change of a booking is one conditional write on its one document (``change``:
``update_doc``, redone on the fresh document after a lost race), so whatever races — the last
two holds on two nodes, a timer fired twice, a cancel against the deadline — each transition
happens once, and only the writer of a transition does what follows it (texts, captures, the
order).

**The provider's work runs in the timer ``booking.finish`` (key ``bf-<booking_id>``), one step
per firing** (``run_step``). An app invocation must answer within 3 s or the host kills the app's
process, and one provider request may take the host's 2.5 s fetch timeout: so no invocation makes
more than one request that may be slow, and none of it runs in an event or a press (an event is
not delivered again when its handler dies; a timer is fired again). The booking's ``phase`` says
what is next — ``reserve`` / ``reserve_lookup`` (a holdable flight held at the provider while
shares are collected), ``quote`` (stays), ``create`` / ``lookup`` (the order, the payment of the
held order, the stay booking; see ``providers``), then ``webhook`` (a Duffel flight: schedule
changes reach the trip) and ``settle`` (every hold captured, the trip, the expense: no provider
request). A step:

1. claims the booking (a lease, ``LEASE_MS``, far longer than an invocation may last) in one
   conditional write; a ``create`` (or ``reserve``) is recorded as sent (``create_sent``) in that
   same write, so a run cut short mid-request is followed by a look-up, never by a blind second
   create. A firing that finds the lease held fails (the host fires it again a little later);
2. moves its own timer to when the lease ends — the safety net should this run die;
3. makes its one request (``providers.step``) and writes the outcome — the next phase, the lease
   given back — and moves its timer to when the next step is due: at once for a next step; after
   a create whose answer was lost, its look-up ``RETRY_SOON_MS`` later; a look-up (or quote) that
   timed out, again ``FINISH_RETRY_MS`` later; a create after a look-up found nothing, soon,
   backing off up to ``FINISH_RETRY_MS``.

``FINISH_ATTEMPTS`` timeouts (or runs cut short) fail the booking (every hold voided) at the
next point where nothing can have been made — a look-up that found nothing — or, should the
look-ups keep timing out, after twice that many. A definitive refusal fails it at once.
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
HOLD_FOR_MS = 24 * 60 * MINUTE_MS  # a booking collects holds for 24 h at the most
MIN_DEADLINE_MS = 2 * MINUTE_MS  # less time than this to hold: the offer counts as expired
RETRY_SOON_MS = 5_000  # a create whose answer was lost: looked up this soon
FINISH_RETRY_MS = MINUTE_MS  # a look-up (or quote) that timed out: again a minute later
FINISH_ATTEMPTS = 10  # provider timeouts (or steps cut short), then the booking fails
LEASE_MS = 20_000  # one step at a time; an invocation lasts 3 s at most, so a step still
# holding its lease after this has died: its timer (moved to then) takes over
DEADLINE_TIMER, FINISH_TIMER = "booking.deadline", "booking.finish"
RESERVING = (providers.RESERVE, providers.RESERVE_LOOKUP)
LOOKUPS = (providers.RESERVE_LOOKUP, providers.LOOKUP)
WEBHOOK, SETTLE = "webhook", "settle"  # after the order: no (webhook: one) provider request
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
    """A hold came through: the share is held — the last one moves the booking on to
    ``booking`` and sets ``booking.finish`` at once (no provider request here: an event is not
    delivered again when its handler dies) — or, when the booking is no longer collecting, the
    hold is voided at once. Once per hold, however often the event comes."""
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
        if doc.get("phase") not in RESERVING:  # (a reservation still going on is paid after)
            doc.update(phase=providers.first_phase(doc["offer"]), cursor=None, create_sent=False)
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
        await schedule_step(ctx, booking, 0)
        await say(ctx, booking, f"Everyone has held their share of {booking['title']} ✓ Booking…")


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
    """``payment.captured``: ours (``settle`` records it too): noted on the hold."""

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


# --- finishing: one provider step per timer firing ---------------------------------------------


async def schedule_step(ctx, booking: dict[str, Any], delay_ms: int) -> None:
    """(Re)set the booking's ``booking.finish`` timer ``delay_ms`` from now."""
    try:
        await ctx.schedule(
            FINISH_TIMER,
            delay=delay_ms / 1000,
            key=booking_key(booking["id"], "bf"),
            payload={"booking_id": booking["id"], "trip_id": booking["trip_id"]},
        )
    except HostError as exc:  # the timer set before (the lease's end) stays
        log.error("booking %s: next step not scheduled (%s)", booking["id"], exc.code)


def retry_delay(timeouts: int) -> int:
    """How long before sending again what a look-up found was not made: soon, then backing off
    (5 s, 10 s, 20 s, 40 s, then every minute)."""
    return min(FINISH_RETRY_MS, RETRY_SOON_MS * 2 ** max(0, timeouts - 1))


def gives_up(timeouts: int, phase: str | None, booking_id: str = "") -> bool:
    """Enough timeouts: fail now rather than run the provider step ``phase`` — at once before
    sending anything again, after twice as many while only looking up. Never once the order is
    made (``webhook``, ``settle``): then it is only finished."""
    if phase not in providers.PHASES:
        return False
    if timeouts < FINISH_ATTEMPTS * (2 if phase in LOOKUPS else 1):
        return False
    if phase in LOOKUPS:  # what was sent last may have been made: someone must look
        log.error("booking %s: given up unable to tell whether the provider made it", booking_id)
    return True


def runnable(doc: dict[str, Any]) -> str | None:
    """The provider step the booking waits for, or None."""
    if doc["state"] not in LIVE:
        return None
    if "phase" not in doc and doc["state"] == "booking":  # written before steps existed
        return SETTLE if doc.get("order") else providers.LOOKUP
    phase = doc.get("phase")
    if doc["state"] == "collecting" and phase not in RESERVING:
        return None  # waiting for the holds
    return phase


async def run_step(ctx, booking_id: str) -> dict[str, Any] | None:
    """``booking.finish``: claim the booking and run its next step (see the module's doc).
    Raises ``TravelError("busy")`` when another run holds the lease (the timer fires again)."""
    now = clock.now_ms()

    def claim(doc: dict[str, Any] | None) -> tuple[str, str | None, int]:
        phase = None if doc is None else runnable(doc)
        if doc is None or phase is None:
            return "idle", None, 0
        if int(doc.get("lease_until") or 0) > now:
            return "busy", phase, 0
        timeouts = int(doc.get("timeouts") or 0)
        if phase in providers.CREATING and doc.get("create_sent"):
            # the run that sent it died before it heard back: look it up before sending again
            phase = providers.CREATING[phase]
            timeouts += 1
            doc.update(cursor=None, timeouts=timeouts)
        run = int(doc.get("attempts") or 0) + 1
        doc.update(
            phase=phase,
            create_sent=phase in providers.CREATING,
            lease_until=now + LEASE_MS,
            attempts=run,
        )
        return "go", phase, run

    (outcome, phase, run), booking = await change(ctx, booking_id, claim)
    if outcome == "busy":
        raise TravelError("busy", BUSY)
    if outcome != "go" or booking is None or phase is None:
        return booking
    if gives_up(int(booking.get("timeouts") or 0), phase, booking_id):
        return await fail(ctx, booking_id, "the provider did not answer, however often we asked")
    await schedule_step(ctx, booking, LEASE_MS)  # the safety net, should this run die
    if phase == SETTLE:
        return await settle(ctx, booking, run)
    if phase == WEBHOOK:
        try:  # schedule changes reach the trip through the provider's webhook
            await changes.ensure_webhook(ctx)
        except (TravelError, HostError) as exc:
            log.warning("booking %s: webhook not ensured (%s)", booking_id, exc)
        return await advance(ctx, booking, run, SETTLE, 0)
    try:
        done = await providers.step(
            ctx,
            booking["offer"],
            booking_id,
            phase,
            hold_order=booking.get("hold_order"),
            cursor=booking.get("cursor"),
        )
    except TravelError as exc:  # a definitive refusal
        return await fail(ctx, booking_id, exc.message)
    if done.outcome == "done":
        assert done.result is not None
        if phase in RESERVING:
            return await reserved(ctx, booking, run, done.result)
        return await ordered(ctx, booking, run, done.result)
    assert done.phase is not None
    timeouts = int(booking.get("timeouts") or 0)
    if done.outcome == "timeout":
        timeouts += 1
        delay = RETRY_SOON_MS if phase in providers.CREATING else FINISH_RETRY_MS
    elif done.phase in providers.CREATING and phase in LOOKUPS:  # looked up: not made
        delay = retry_delay(timeouts)
    else:
        delay = 0
    if gives_up(timeouts, done.phase, booking_id):
        return await fail(
            ctx,
            booking_id,
            "the provider did not answer, however often we asked",
            timeouts=timeouts,
        )
    log.info("booking %s: %s → %s (%s)", booking_id, phase, done.phase, done.outcome)
    return await advance(
        ctx,
        booking,
        run,
        done.phase,
        delay,
        # The card says "slow to answer" from the next step on: after a timeout this run has
        # used up most of its time, and spends the rest on what must be written.
        redraw=done.outcome != "timeout",
        cursor=done.cursor,
        timeouts=timeouts,
    )


def mine(doc: dict[str, Any] | None, run: int) -> bool:
    """The booking is still live and this run still holds its lease."""
    return doc is not None and doc["state"] in LIVE and doc.get("attempts") == run


async def advance(
    ctx,
    booking: dict[str, Any],
    run: int,
    phase: str,
    delay_ms: int,
    captured: dict[str, str] | None = None,
    *,
    redraw: bool = True,
    **fields: Any,
) -> dict[str, Any] | None:
    """This run's outcome: ``phase`` next (``delay_ms`` from now), the lease given back (and
    the holds ``captured`` so far recorded). The timer is moved first: whoever sees the lease
    given back finds the next step set. With ``redraw`` the card is redrawn once its "slow to
    answer" is due (``shown_timeouts``)."""
    stale = False

    def edit(doc: dict[str, Any] | None) -> bool:
        nonlocal stale
        if not mine(doc, run):
            return False
        assert doc is not None
        doc.update(phase=phase, cursor=None, create_sent=False, lease_until=0)
        doc.update(fields)
        for uid, status in (captured or {}).items():
            doc["holds"][uid]["status"] = status
        timeouts = int(doc.get("timeouts") or 0)
        stale = redraw and timeouts > 0 and int(doc.get("shown_timeouts") or 0) == 0
        if stale:
            doc["shown_timeouts"] = timeouts
        return True

    # (Should the write then find the lease taken over, the firing this sets does the step
    # that is due then, as any firing does.)
    await schedule_step(ctx, booking, delay_ms)
    changed, written = await change(ctx, booking["id"], edit)
    if not changed or written is None:
        return written
    if stale:
        await show(ctx, written)  # "the provider is slow to answer"
    return written


async def reserved(
    ctx, booking: dict[str, Any], run: int, held: dict[str, Any]
) -> dict[str, Any] | None:
    """The flight is held at the provider: the deadline becomes the earliest of the hold's
    pay-by and 24 h from the start (``booking.deadline`` moved); once everyone held, it is paid
    next."""
    hold_order = {
        "order_id": held["order_id"],
        "pay_by_ms": held.get("pay_by_ms"),
        "reference": held.get("reference") or "",
    }
    now = clock.now_ms()

    def edit(doc: dict[str, Any] | None) -> str | None:
        if not mine(doc, run):
            return None
        assert doc is not None
        if doc["state"] == "collecting":
            deadline = int(hold_order["pay_by_ms"] or doc["deadline_ms"])
            deadline = min(deadline, int(doc["created_at"]) + HOLD_FOR_MS)
            if deadline < now + MIN_DEADLINE_MS:
                return "brief"
            doc["deadline_ms"] = deadline
        following = providers.first_phase(doc["offer"]) if doc["state"] == "booking" else None
        doc.update(
            hold_order=hold_order, phase=following, cursor=None, create_sent=False, lease_until=0
        )
        return following or "collecting"

    outcome, written = await change(ctx, booking["id"], edit)
    if outcome == "brief":
        return await fail(ctx, booking["id"], "the airline holds it too briefly: search again")
    if outcome is None or written is None:
        return written
    if outcome == "collecting":
        # The holds come next. (The timer set for the lease's end stays: cancelling it could
        # cancel the step the last hold sets at this moment; firing now, it finds nothing to do.)
        if written["deadline_ms"] != booking["deadline_ms"]:
            try:
                await ctx.schedule(
                    DEADLINE_TIMER,
                    at=written["deadline_ms"],
                    key=booking_key(booking["id"], "bd"),
                    payload={"booking_id": booking["id"], "trip_id": booking["trip_id"]},
                )
            except HostError as exc:  # the first deadline stays: earlier, never later
                log.error("booking %s: deadline not moved (%s)", booking["id"], exc.code)
    else:
        await schedule_step(ctx, written, 0)
    await show(ctx, written)
    await sync_trip(ctx, written)
    return written


async def ordered(
    ctx, booking: dict[str, Any], run: int, made: dict[str, Any]
) -> dict[str, Any] | None:
    """The order is made (or the held one paid): recorded, then — a Duffel flight — its webhook
    ensured, and every hold captured (``settle``), each in a firing of its own."""
    order = {"order_id": made["order_id"], "reference": made.get("reference") or ""}
    following = (
        WEBHOOK
        if booking.get("provider") == "duffel" and booking.get("kind") == "flight"
        else SETTLE
    )
    return await advance(ctx, booking, run, following, 0, order=booking.get("order") or order)


async def settle(ctx, booking: dict[str, Any], run: int) -> dict[str, Any] | None:
    """Capture every hold (once), book the offer into the trip, then ``booking → booked``."""
    booking_id = booking["id"]
    order = booking.get("order") or {}
    captured, waiting = await capture_all(ctx, booking)
    if waiting:
        log.info("booking %s: a hold is busy, settling again soon", booking_id)
        return await advance(ctx, booking, run, SETTLE, RETRY_SOON_MS, captured)
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
            order_id=order.get("order_id"),
            phase=None,
            create_sent=False,
            lease_until=0,
            closed_at=clock.now_ms(),
            reason=None,
        )
        return True

    changed, written = await change(ctx, booking_id, done)
    if not changed or written is None:
        return written
    await drop_timer(ctx, booking_key(booking_id, "bf"))
    await show(ctx, written)
    if trip is not None:
        await refresh_trip(ctx, trip)
    lost = [written["names"].get(uid, "A traveller") for uid, s in captured.items() if s == "lost"]
    text = f"Booked ✓ {written['title']} · ref {order.get('reference') or '—'}."
    if lost:
        text += f" The hold of {', '.join(lost)} had lapsed before it could be taken."
    await say(ctx, written, text)
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


async def fail(ctx, booking_id: str, reason: str, **fields: Any) -> dict[str, Any] | None:
    """``booking → failed`` (or a still collecting one: a reservation refused): every hold
    voided, the group told. ``fields`` are written with it."""

    def edit(doc: dict[str, Any] | None) -> bool:
        if doc is None or doc["state"] not in LIVE:
            return False
        doc.update(fields)
        doc.update(
            state="failed",
            reason=reason,
            phase=None,
            create_sent=False,
            lease_until=0,
            closed_at=clock.now_ms(),
        )
        return True

    changed, booking = await change(ctx, booking_id, edit)
    if booking is None:
        return None
    if changed:  # (void_all sets the deadline timer again, to retry a void that failed)
        await drop_timer(ctx, booking_key(booking_id, "bf"))
        await drop_timer(ctx, booking_key(booking_id, "bd"))
    await void_all(ctx, booking)
    if changed:
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
        if why == "deadline" and now < doc["deadline_ms"]:
            return None  # moved later meanwhile (the flight was reserved)
        if why == "deadline":
            late = [
                doc["names"].get(uid, "a traveller")
                for uid in sorted(doc["shares"], key=lambda u: doc["names"].get(u, u).lower())
                if (doc["holds"].get(uid) or {}).get("status") not in HELD
            ]
            reason = "Not held in time by " + ", ".join(late) if late else "the deadline passed"
        else:
            reason = f"cancelled by {by or 'the starter'}"
        doc.update(
            state="voided", reason=reason, why=why, closed_at=now, phase=None, create_sent=False
        )
        return reason

    reason, booking = await change(ctx, booking_id, edit)
    if reason is None or booking is None:
        return None
    await drop_timer(ctx, booking_key(booking_id, "bf"))  # a reservation still going on
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
