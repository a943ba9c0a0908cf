"""Book together: everyone's share held from their wallet, one order, each hold captured once.

A booking (``bookings/<booking_id>``, id ``bk`` + 10 hex; layout in travel_design / README) goes
through these states, each change one conditional write on its one document (``update_doc``:
``expected_version``, redone on the fresh document after a lost race)::

    collecting → booking → booked            (every share held; the order made, holds captured)
    collecting → voided                      (the deadline passed, or the starter cancelled)
    booking    → failed                      (the provider refused, or kept timing out)

1. **Start** (button ``offer.book``, value the offer id; view ``booking.start {offer_id}``): a
   traveller picks an offer of the chat's current trip. It is re-priced at the provider
   (``providers.reprice``, the one provider request of the press: ``offer_expired`` /
   ``price_changed`` naming the new price — nothing written but the re-stored offer;
   ``provider_timeout``, "try again" — nothing written), the trip is locked (its ``booking``
   field, written with ``store.update``: one live booking per trip, so two presses at once make
   one booking), each traveller's share is ``splits.split(total, travellers, "equal")`` and the
   deadline is the earliest of the offer's expiry and 24 h from now. The booking card goes to the
   group: the total, each share and whether it is held, the deadline in the destination's local
   time, "Hold my share" and "Cancel". The timer ``booking.deadline`` (key ``bd-<booking_id>``)
   is set for the deadline. A holdable flight is then **reserved** at the provider (a hold order,
   key ``<booking_id>-hold``) by the timer ``booking.finish`` (the card says "reserving the
   seats…"; shares can be held meanwhile): once reserved, the deadline becomes the earliest of
   the hold's pay-by and 24 h from the start; a reservation refused fails the booking.
2. **Hold** (``booking.hold``, value / param the booking id): a traveller with a share asks the
   wallet to hold it (``ctx.authorize_payment``, ``order_ref`` ``book-<booking_id>-<uid>``, and
   ``….<n>`` for the n-th try after a declined one: the host answers an order_ref it has seen
   with that payment again, so a new try needs a new ref). A second press while the wallet is
   asking shows the same request again, nothing new.
3. **Payment events** (``PAYMENTS["book"]``): ``payment.authorized`` marks the share held; the
   write that finds every share held also moves ``collecting → booking`` — exactly one handler
   does, however the last holds race — and that handler sets ``booking.finish`` at once. A hold
   authorized when the booking is no longer collecting is voided at once. A declined hold
   (``payment.failed``) is recorded: that traveller may hold again until the deadline.
4. **Finish** (``booking_holds.run_step``, each firing of ``booking.finish`` one step, at most
   one provider request): the order is made once (idempotent by the booking id: a create whose
   answer was lost is looked up before it is sent again; a held flight's hold order is paid; a
   stay is quoted, then booked from that quote), recorded, then every hold is captured (once: a
   capture retried answers the same); the offer's items join the itinerary (status booked), the
   booking becomes an expense (``expenses.record_booking``), reminders are synced and only then
   ``booking → booked`` is written. Provider timeouts are retried by the timer (a look-up 5 s
   after a lost create, a minute after a look-up that timed out), up to ``FINISH_ATTEMPTS``, then
   the booking fails; a definitive refusal fails it at once. A failed booking voids every hold;
   the group is told why.
5. **Deadline** (timer ``booking.deadline``) and **cancel** (``booking.cancel``, the starter or
   the trip's creator, while collecting): ``collecting → voided`` naming who did not hold in
   time, then every hold voided (authorized ones released; a request still open is voided when
   it is authorized later). A timer firing twice, or late, changes nothing more.

``/trip book`` shows the current booking (ephemeral); ``/trip book cancel`` cancels it.

This module has the entry points (start, hold, cancel, the payment events, the timers, the
command, buttons and views); ``booking_holds`` the document's changes once holds come in
(the provider's steps, finishing, voiding); ``booking_card`` the card (pure). No press, view or
event here makes more than the one request of ``reprice``: every other provider request runs
in ``booking.finish``, one per firing.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

import clock
import providers
import splits
import store
from booking_card import HELD, LIVE, booking_card, booking_json, held_count, local_time, money
from booking_holds import (
    BOOKING_ID,
    BOOKINGS,
    DEADLINE_TIMER,
    FINISH_TIMER,
    HOLD_FOR_MS,
    MIN_DEADLINE_MS,
    authorized,
    booking_key,
    change,
    close,
    drop_timer,
    hold_captured,
    hold_closed,
    release,
    run_step,
    schedule_step,
    show,
    sync_trip,
    void_all,
)
from store import TravelError, answers, viewing

from sdk import HostError, Reply

log = logging.getLogger("travel.booking")

OFFERS = "offers"
MINUTE_MS = 60_000
STALE_LOCK_MS = 2 * MINUTE_MS  # a lock whose booking was never written (a start cut short)
ASK_TRIES = 3  # new order_refs tried when the host says one was used already
OFFER_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
REF = re.compile(r"^book-(bk[0-9a-f]{10})-(.+?)(?:\.([0-9]{1,4}))?$")


def order_ref(booking_id: str, user_id: str, n: int) -> str:
    """The hold's ``order_ref``: ``book-<booking_id>-<uid>``; the n-th try (n > 1) ``….<n>``."""
    return f"book-{booking_id}-{user_id}" + (f".{n}" if n > 1 else "")


async def load_booking(ctx, booking_id: Any) -> dict[str, Any]:
    """The booking ``booking_id`` of this chat, else ``TravelError("no_booking")``."""
    booking = None
    if isinstance(booking_id, str) and BOOKING_ID.match(booking_id):
        booking = await ctx.storage_get(BOOKINGS, booking_id)
    if booking is None or booking.get("conversation_id") != ctx.conversation_id:
        raise TravelError("no_booking", "No such booking in this chat.")
    return booking


# --- 1. start ---------------------------------------------------------------------------------


async def load_offer(ctx, offer_id: Any, trip: dict[str, Any]) -> dict[str, Any]:
    offer = None
    if isinstance(offer_id, str) and OFFER_ID.match(offer_id):
        offer = await ctx.storage_get(OFFERS, offer_id)
    if offer is None or offer.get("trip_id") != trip["id"]:
        raise TravelError("offer_expired", "That offer is gone: search again (/trip flights …).")
    if int(offer.get("expires_ms") or 0) <= clock.now_ms():
        raise TravelError("offer_expired", "That offer has expired: search again.")
    return offer


async def check_free(ctx, trip: dict[str, Any], now: int) -> str | None:
    """Refuse when the trip has a live booking (``booking_in_progress``); returns the id of a
    stale lock (its booking ended, or was never written) that a new booking may replace."""
    current = trip.get("booking")
    if not current or current.get("state") not in LIVE:
        return None
    doc = await ctx.storage_get(BOOKINGS, current["id"])
    if doc is not None and doc["state"] not in LIVE:
        return current["id"]
    if doc is None and now - int(current.get("started_at") or 0) > STALE_LOCK_MS:
        return current["id"]
    raise in_progress(current)


def in_progress(current: dict[str, Any]) -> TravelError:
    return TravelError(
        "booking_in_progress",
        f"A booking is in progress for this trip: {current.get('title')} "
        f"({current.get('held', 0)}/{current.get('of', 0)} held). Finish or cancel it first "
        "(/trip book).",
    )


def first_deadline(offer: dict[str, Any], now: int) -> int:
    """The earliest of the offer's expiry and 24 h (a holdable flight's deadline moves to its
    hold's pay-by once it is reserved: ``booking_holds.reserved``)."""
    deadline = min(int(offer.get("expires_ms") or 0), now + HOLD_FOR_MS)
    if deadline < now + MIN_DEADLINE_MS:
        raise TravelError("offer_expired", "That offer expires too soon to hold: search again.")
    return deadline


async def start(ctx, offer_id: Any) -> dict[str, Any]:
    """Start booking ``offer_id`` for the chat's current trip (see the module's doc)."""
    trip = await store.require_trip(ctx)
    store.require_traveller(trip, ctx.user_id)
    offer = await load_offer(ctx, offer_id, trip)
    now = clock.now_ms()
    stale = await check_free(ctx, trip, now)
    offer = await providers.reprice(ctx, offer)
    deadline = first_deadline(offer, now)
    booking_id = "bk" + secrets.token_hex(5)
    timer = booking_key(booking_id, "bd")
    # The deadline timer first: a start cut short after the lock is released by it.
    await ctx.schedule(
        DEADLINE_TIMER,
        at=deadline,
        key=timer,
        payload={"booking_id": booking_id, "trip_id": trip["id"]},
    )
    title = str(offer.get("title") or "Booking")[:120]

    def take(doc: dict[str, Any]) -> tuple[dict[str, int], dict[str, str]]:
        current = doc.get("booking")
        if current and current.get("state") in LIVE and current.get("id") != stale:
            raise in_progress(current)
        store.require_traveller(doc, ctx.user_id)
        people = sorted(doc.get("travellers") or {})
        shares = splits.split(offer["total"]["amount"], people, "equal")
        names = {uid: str(doc["travellers"][uid].get("name") or "Traveller") for uid in people}
        doc["booking"] = {
            "id": booking_id,
            "title": title,
            "state": "collecting",
            "held": 0,
            "of": len(people),
            "deadline_ms": deadline,
            "started_at": now,
        }
        return shares, names

    try:
        (shares, names), trip = await store.update(ctx, trip["id"], take)
    except Exception:
        await drop_timer(ctx, timer)
        raise
    reserve = providers.reserves(offer)
    destination = trip.get("destination") or {}
    booking = {
        "id": booking_id,
        "trip_id": trip["id"],
        "conversation_id": trip["conversation_id"],
        "offer_id": offer["id"],
        "kind": offer.get("kind") or "flight",
        "provider": offer.get("provider") or "sample",
        "label": offer.get("label"),
        "title": title,
        "trip_title": trip.get("title") or "Trip",
        "total": dict(offer["total"]),
        "shares": shares,
        "names": names,
        "holds": {},
        "state": "collecting",
        "reason": None,
        "deadline_ms": deadline,
        "zone": destination.get("zone") or "UTC",
        "place": destination.get("name"),
        "locale": ctx.locale,
        "hold_order": None,
        "order": None,
        "order_id": None,
        "offer": offer,
        # the provider's work (booking_holds.run_step): what is next, how it went
        "phase": providers.RESERVE if reserve else None,
        "cursor": None,
        "create_sent": False,
        "attempts": 0,
        "timeouts": 0,
        "lease_until": 0,
        "started_by": ctx.user_id,
        "created_at": now,
        "closed_at": None,
        "card_message_id": None,
    }
    try:
        await ctx.storage_update(BOOKINGS, booking_id, booking, expected_version=0, upsert=True)
    except Exception:
        await release(ctx, trip["id"], booking_id)
        await drop_timer(ctx, timer)
        raise
    try:
        message_id = await ctx.send_card(booking_card(booking))
    except HostError as exc:  # the booking stands: /trip book and the web view show it
        log.warning("booking %s: card not posted (%s)", booking_id, exc.code)
    else:

        def keep_card(doc: dict[str, Any] | None) -> None:
            if doc is not None:
                doc["card_message_id"] = message_id

        _, written = await change(ctx, booking_id, keep_card)
        booking = written or booking
    if reserve:  # by the timer: this press has made its one provider request (reprice)
        await schedule_step(ctx, booking, 0)  # (should it not be set, the last hold sets it)
    await sync_trip(ctx, booking)
    return booking


# --- 2. hold ----------------------------------------------------------------------------------


def check_collecting(booking: dict[str, Any], now: int) -> None:
    state = booking["state"]
    if state == "collecting" and now < booking["deadline_ms"]:
        return
    if state == "collecting" or (state == "voided" and booking.get("why") == "deadline"):
        raise TravelError("deadline_passed", "The deadline to hold has passed.")
    if state in ("booking", "booked"):
        raise TravelError("no_booking", "Everyone has held already: this booking is closed.")
    raise TravelError("no_booking", f"This booking has ended: {booking.get('reason') or state}.")


async def ask(ctx, booking: dict[str, Any], n: int) -> dict[str, Any]:
    share = booking["shares"][ctx.user_id]
    description = f"{booking['trip_title']}: your share of {booking['title']}"[:200]
    return await ctx.authorize_payment(
        share, booking["total"]["currency"], description, order_ref(booking["id"], ctx.user_id, n)
    )


async def hold(ctx, booking_id: Any) -> dict[str, Any]:
    """Ask the invoker's wallet to hold their share → ``{payment_id, status, message}``."""
    booking = await load_booking(ctx, booking_id)
    uid = ctx.user_id
    if uid not in booking["shares"]:
        raise TravelError("not_your_share", "You have no share in this booking.")
    entry = booking["holds"].get(uid)
    if entry and entry["status"] in HELD:
        return answer_held(booking, entry)
    now = clock.now_ms()
    check_collecting(booking, now)
    for _ in range(ASK_TRIES):
        what, entry, booking = await claim_hold(ctx, booking["id"], uid, now)
        if what == "held":
            return answer_held(booking, entry)
        n = entry["n"]
        try:
            asked = await ask(ctx, booking, n)
        except HostError as exc:
            if exc.code == "order_ref_reused":  # the ref names another payment: a new try
                await mark_hold(ctx, booking["id"], uid, n, "declined", None)
                continue
            await mark_hold(ctx, booking["id"], uid, n, "declined", None)
            raise TravelError(
                "payment_unavailable", "The wallet could not ask for your hold now: try again."
            ) from None
        status = asked.get("status")
        if status in ("cancelled", "expired"):  # that request is closed: a new one
            await mark_hold(ctx, booking["id"], uid, n, "declined", asked["payment_id"])
            continue
        booking = await mark_hold(ctx, booking["id"], uid, n, None, asked["payment_id"])
        if status == "authorized":
            entry = {**entry, "payment_id": asked["payment_id"], "status": "authorized"}
            return answer_held(booking, entry)
        share = money(booking["shares"][uid], booking["total"]["currency"], ctx.locale)
        deadline = local_time(
            booking["deadline_ms"], booking["zone"], booking.get("place"), ctx.locale
        )
        if what == "new":
            await show(ctx, booking)  # "confirming in the wallet…"
        confirm = "You asked already: confirm" if what == "open" else "Confirm"
        return {
            "payment_id": asked["payment_id"],
            "status": "requested",
            "message": f"{confirm} the hold of {share} in your wallet. You pay only if "
            f"everyone holds their share by {deadline}; otherwise it is released.",
        }
    raise TravelError("payment_unavailable", "The wallet could not ask for your hold: try again.")


def answer_held(booking: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "payment_id": entry.get("payment_id"),
        "status": entry.get("status") or "authorized",
        "message": f"Your share is held ✓ ({held_count(booking)}/{len(booking['shares'])} held).",
    }


async def claim_hold(
    ctx, booking_id: str, uid: str, now: int
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``("held" | "open" | "new", the hold entry, booking)``: already held, a request still
    open (ask it again, same ref), or a new try (``n`` + 1) recorded as requested."""

    def edit(doc: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        if doc is None:
            raise TravelError("no_booking", "No such booking in this chat.")
        check_collecting(doc, now)
        entry = doc["holds"].get(uid)
        if entry and entry["status"] in HELD:
            return "held", entry
        if entry and entry["status"] == "requested":
            return "open", entry
        n = (entry or {}).get("n", 0) + 1
        doc["holds"][uid] = {"payment_id": None, "status": "requested", "n": n, "at": now}
        return "new", doc["holds"][uid]

    (what, entry), booking = await change(ctx, booking_id, edit)
    return what, entry, booking


async def mark_hold(
    ctx, booking_id: str, uid: str, n: int, status: str | None, payment_id: str | None
) -> dict[str, Any]:
    """Record the try ``n``'s payment id (and ``status``, when given) — only while that try is
    still the requested one."""

    def edit(doc: dict[str, Any] | None) -> None:
        entry = (doc or {}).get("holds", {}).get(uid)
        if not entry or entry.get("n") != n or entry["status"] != "requested":
            return
        if payment_id is not None and entry.get("payment_id") in (None, payment_id):
            entry["payment_id"] = payment_id
        if status is not None:
            entry["status"] = status

    _, booking = await change(ctx, booking_id, edit)
    return booking


# --- 3. payment events, 4. timers, 5. cancel --------------------------------------------------


async def on_payment(ctx, name: str, payment: dict[str, Any]) -> None:
    """``PAYMENTS["book"]``: the events of a traveller's hold (``book-<booking_id>-<uid>[.n]``)."""
    match = REF.match(str(payment.get("order_ref", "")))
    if match is None or match.group(2) != payment.get("user_id"):
        log.warning("a booking payment event with a bad order_ref was ignored")
        return
    booking_id, uid, n = match.group(1), match.group(2), int(match.group(3) or 1)
    try:
        if name == "payment.authorized":
            await authorized(ctx, booking_id, uid, n, payment)
        elif name == "payment.failed":
            await hold_closed(ctx, booking_id, uid, n, payment, "declined")
        elif name == "payment.voided":
            await hold_closed(ctx, booking_id, uid, n, payment, "voided")
        elif name == "payment.captured":
            await hold_captured(ctx, booking_id, uid, payment)
    except TravelError as exc:  # busy: the event is delivered again
        log.warning("booking %s: %s not handled (%s)", booking_id, name, exc.code)
        raise HostError(exc.message, code=exc.code) from None


async def on_deadline(ctx) -> None:
    """``booking.deadline {booking_id, trip_id}``: still collecting at the deadline → voided;
    an ended booking's holds not voided yet are tried again; a lock whose booking was never
    written is given back."""
    payload = ctx.payload if isinstance(ctx.payload, dict) else {}
    booking_id = str(payload.get("booking_id") or "")
    booking = await ctx.storage_get(BOOKINGS, booking_id) if BOOKING_ID.match(booking_id) else None
    try:
        if booking is None:
            if payload.get("trip_id"):
                await release(ctx, str(payload["trip_id"]), booking_id)
            return
        if booking["state"] == "collecting":
            if clock.now_ms() >= booking["deadline_ms"]:
                await close(ctx, booking_id, "deadline")
        elif booking["state"] in ("voided", "failed"):
            await void_all(ctx, booking)
    except TravelError as exc:  # busy: the timer fires again
        raise HostError(exc.message, code=exc.code) from None


async def on_finish_timer(ctx) -> None:
    """``booking.finish {booking_id}``: the booking's next provider step (one request at the
    most; it sets the timer again for the step after). Another run holding the booking fails
    this firing: the host fires it again a little later."""
    payload = ctx.payload if isinstance(ctx.payload, dict) else {}
    booking_id = str(payload.get("booking_id") or "")
    if not BOOKING_ID.match(booking_id):
        return
    try:
        await run_step(ctx, booking_id)
    except TravelError as exc:
        raise HostError(exc.message, code=exc.code) from None


async def cancel(ctx, booking_id: Any) -> dict[str, Any]:
    """Cancel a collecting booking: its starter or the trip's creator."""
    booking = await load_booking(ctx, booking_id)
    trip = await store.load(ctx, booking["trip_id"])
    allowed = {booking["started_by"], (trip or {}).get("created_by")}
    if ctx.user_id not in allowed:
        starter = booking["names"].get(booking["started_by"], "the traveller who started it")
        raise TravelError(
            "not_your_booking",
            f"Only {starter} (who started it) or the trip's creator can cancel this booking.",
        )
    if booking["state"] != "collecting":
        check_collecting(booking, clock.now_ms())
    name = booking["names"].get(ctx.user_id) or (
        ((trip or {}).get("travellers") or {}).get(ctx.user_id) or {}
    ).get("name")
    closed = await close(ctx, booking["id"], "cancel", by=name)
    if closed is None:
        check_collecting(await load_booking(ctx, booking["id"]), clock.now_ms())
        raise TravelError("no_booking", "This booking is not open any more.")
    return closed


# --- commands, buttons, views -----------------------------------------------------------------


async def current_booking(ctx) -> dict[str, Any] | None:
    """The chat's current trip's live booking, or None."""
    trip = await store.require_trip(ctx)
    current = trip.get("booking") or {}
    if not current.get("id"):
        return None
    return await ctx.storage_get(BOOKINGS, current["id"])


NONE_TEXT = (
    "No booking in progress. Search with /trip flights … or /trip stays and press Book for the "
    "group on an offer."
)


async def book_command(ctx, args: list[str]) -> Reply:
    """``/trip book`` (the current booking) · ``/trip book cancel``."""
    if not args:
        booking = await current_booking(ctx)
        if booking is None:
            return Reply(ephemeral=NONE_TEXT)
        return Reply(ephemeral=booking_card(booking))
    if args[0].lower() == "cancel" and len(args) == 1:
        booking = await current_booking(ctx)
        if booking is None:
            raise TravelError("no_booking", "No booking in progress to cancel.")
        await cancel(ctx, booking["id"])
        return Reply(ephemeral="Booking cancelled: every hold was released.")
    return Reply(ephemeral="Usage: /trip book · /trip book cancel")


async def on_book_press(ctx) -> Reply:
    booking = await start(ctx, ctx.value)
    return Reply(
        ephemeral=f"Booking {booking['title']} for {len(booking['shares'])}: everyone, press "
        "Hold my share on the booking card."
    )


async def on_hold_press(ctx) -> Reply:
    return Reply(ephemeral=(await hold(ctx, ctx.value))["message"])


async def on_cancel_press(ctx) -> Reply:
    await cancel(ctx, ctx.value)
    return Reply(ephemeral="Booking cancelled: every hold was released.")


async def view_start(ctx) -> dict[str, Any]:
    return {"booking": booking_json(await start(ctx, ctx.params.get("offer_id")))}


async def view_get(ctx) -> dict[str, Any]:
    booking_id = ctx.params.get("booking_id")
    if booking_id is not None:
        return {"booking": booking_json(await load_booking(ctx, booking_id))}
    booking = await current_booking(ctx)
    return {"booking": booking_json(booking) if booking else None}


async def view_hold(ctx) -> dict[str, Any]:
    return await hold(ctx, ctx.params.get("booking_id"))


async def view_cancel(ctx) -> dict[str, Any]:
    return {"booking": booking_json(await cancel(ctx, ctx.params.get("booking_id")))}


SUBCOMMANDS = {"book": book_command}
ACTIONS = {
    "offer.book": answers(on_book_press),
    "booking.hold": answers(on_hold_press),
    "booking.cancel": answers(on_cancel_press),
}
VIEWS = {
    "booking.start": viewing(view_start),
    "booking.get": viewing(view_get),
    "booking.hold": viewing(view_hold),
    "booking.cancel": viewing(view_cancel),
}
TIMERS = {DEADLINE_TIMER: on_deadline, FINISH_TIMER: on_finish_timer}
PAYMENTS = {"book": on_payment}
