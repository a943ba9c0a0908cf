"""Schedule changes from the flight provider: Duffel calls the app back (a webhook) when an airline
changes a booked flight; the trip's itinerary, card and reminders follow, and the group and each
traveller are told ("Schedule change: ZZ 123 now departs 09:40 (was 07:05)").

Registering: after a flight booking with the duffel provider, ``booking`` calls
``ensure_webhook(ctx)``: once per group chat, the app asks the host for its webhook address
(``ctx.webhook_url("duffel")`` — an address bound to this chat, delivering to the app's
``webhook.received`` event) and registers it with Duffel (``POST /air/webhooks``, event
``order.airline_initiated_change_detected``); Duffel answers the secret it signs deliveries with,
kept in ``webhooks/duffel:<conversation_id>`` ``{webhook_id, url, secret, conversation_id}``.
One webhook per chat, because a delivery runs in the chat its address is bound to, and a change
must be told in the group that booked the flight; every webhook gets every event, and a
delivery whose booking belongs to another chat is left to that chat's webhook.

Receiving (``webhook.received``): the ``X-Duffel-Signature`` header
(``t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``) is checked with the chat's
secret; a bad or missing one is logged and ignored — never an error, or the sender would retry it
forever. Each event is applied once (``webhook_events/<event id>``, created only if absent),
even when delivered twice or on two nodes at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import clock
import itinerary
import providers
import reminders
import search
import store
from flights import ProviderError, Slice
from store import TravelError

from sdk.errors import Conflict, HostError

log = logging.getLogger("travel.changes")

WEBHOOKS = "webhooks"
SEEN = "webhook_events"
BOOKINGS = "bookings"
HOOK_NAME = "duffel"
CHANGE_EVENT = "order.airline_initiated_change_detected"
SIGNATURE_HEADER = "x-duffel-signature"


def webhook_key(conversation_id: str) -> str:
    return f"{HOOK_NAME}:{conversation_id}"


# --- registering ------------------------------------------------------------------------------


async def ensure_webhook(ctx) -> dict[str, Any] | None:
    """Register this chat's Duffel webhook once → ``{webhook_id, url, secret, …}``; None with
    the sample provider, outside a chat, or when it cannot be done now (logged; the next flight
    booking tries again). Never raises: the booking it follows is done."""
    try:
        if providers.kind(ctx) != "duffel" or not ctx.conversation_id:
            return None
    except TravelError:
        return None
    key = webhook_key(ctx.conversation_id)
    found = await ctx.storage_get(WEBHOOKS, key)
    if found:
        return found
    if getattr(ctx, "webhook_url", None) is None:
        log.warning("this SDK has no ctx.webhook_url: schedule changes cannot be received")
        return None
    try:
        url = await ctx.webhook_url(HOOK_NAME)
        api = providers.duffel_api(ctx)
        answer = await api.call("POST", "/air/webhooks", {"url": url, "events": [CHANGE_EVENT]})
        hook = answer.get("data") or {}
        doc = {
            "webhook_id": hook["id"],
            "url": hook.get("url") or url,
            "secret": hook["secret"],
            "conversation_id": ctx.conversation_id,
            "created_at": clock.now_ms(),
        }
    except (HostError, ProviderError, TravelError, KeyError, TypeError) as exc:
        log.warning("registering the Duffel webhook failed: %s", exc)
        return None
    try:
        await ctx.storage_update(WEBHOOKS, key, set=doc, expected_version=0, upsert=True)
    except Conflict:  # registered twice at once: keep the first one, drop ours at Duffel
        try:
            await api.call("DELETE", f"/air/webhooks/{doc['webhook_id']}")
        except ProviderError as exc:
            log.warning("could not delete a duplicate Duffel webhook: %s", exc)
        return await ctx.storage_get(WEBHOOKS, key)
    return doc


# --- receiving --------------------------------------------------------------------------------


def verify_signature(secret: str, body: str, header: str | None) -> bool:
    """Whether ``header`` (``t=…,v1=…``) signs ``body`` with ``secret`` (constant time)."""
    if not secret or not isinstance(header, str) or not isinstance(body, str):
        return False
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, given = parts.get("t", "").strip(), parts.get("v1", "").strip()
    if not timestamp or not given:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), given)


async def _secret(ctx) -> str | None:
    """The secret Duffel signs this chat's webhook deliveries with."""
    if not ctx.conversation_id:
        return None
    hook = await ctx.storage_get(WEBHOOKS, webhook_key(ctx.conversation_id))
    return (hook or {}).get("secret")


async def on_webhook(ctx) -> None:
    """``webhook.received``: a Duffel event, checked, applied once."""
    payload = ctx.payload if isinstance(ctx.payload, dict) else {}
    if payload.get("name") != HOOK_NAME:
        log.info("ignored a webhook named %r", payload.get("name"))
        return
    body = payload.get("body")
    headers = {str(k).lower(): v for k, v in (payload.get("headers") or {}).items()}
    header = headers.get(SIGNATURE_HEADER)
    if not verify_signature(await _secret(ctx) or "", body, header):
        log.warning("ignored a Duffel webhook with a bad or missing signature")
        return
    try:
        event = json.loads(body)
    except ValueError:
        log.warning("ignored a Duffel webhook whose body is not JSON")
        return
    if not isinstance(event, dict) or event.get("type") != CHANGE_EVENT:
        log.info("ignored a Duffel event of type %r", (event or {}).get("type"))
        return
    change = (event.get("data") or {}).get("object") or {}
    event_id = str(event.get("id") or change.get("id") or "")
    order_id = change.get("order_id")
    if not event_id or not order_id:
        log.warning("ignored a schedule change without an event or order id")
        return
    found = await ctx.storage_find(BOOKINGS, {"order_id": order_id}, limit=1)
    if not found:
        log.warning("a schedule change for an order the app did not book: %s", order_id)
        return
    booking = found[0]["value"]
    if booking.get("conversation_id") != ctx.conversation_id:
        return  # another chat's booking: its own webhook delivers the same event there
    try:  # once per event: two deliveries (or two nodes) race on creating this document
        await ctx.storage_update(
            SEEN,
            event_id,
            set={"order_id": order_id, "booking_id": booking["id"], "at": clock.now_ms()},
            expected_version=0,
            upsert=True,
        )
    except Conflict:
        return
    try:
        await apply_change(ctx, booking, change)
    except Exception:
        await ctx.storage_delete(SEEN, event_id)  # not applied: let the sender's retry do it
        raise


def _made_order(item: dict[str, Any]) -> int:
    """Items in the order they were added (ids ``i<n>``)."""
    number = str(item.get("id") or "")[1:]
    return int(number) if number.isdigit() else 0


def _when(item: dict[str, Any], other: dict[str, Any] | None) -> str:
    """An item's departure time, with the day when it differs from ``other``'s."""
    start = str(item.get("start") or "")
    day, _, time = start.partition("T")
    if other is None or str(other.get("start") or "")[:10] != day:
        return f"{day} {time}"
    return time


def describe(old_items: list[dict[str, Any]], new_items: list[dict[str, Any]]) -> str:
    """``"ZZ 123 now departs 09:40 (was 07:05)"`` for each flight whose times moved."""
    lines = []
    for n, new in enumerate(new_items):
        old = old_items[n] if n < len(old_items) else None
        name = (new.get("details") or {}).get("flight") or new.get("title") or "A flight"
        if old is None:
            lines.append(f"{name} added, departing {_when(new, None)}")
            continue
        old_name = (old.get("details") or {}).get("flight") or old.get("title")
        if old_name and old_name != name:
            name = f"{old_name} is now {name} and"
        if old.get("start") != new.get("start"):
            lines.append(f"{name} now departs {_when(new, old)} (was {_when(old, new)})")
        elif old.get("end") != new.get("end"):
            was = str(old.get("end") or "").partition("T")[2]
            lines.append(f"{name} now arrives {str(new.get('end')).partition('T')[2]} (was {was})")
    for old in old_items[len(new_items) :]:
        name = (old.get("details") or {}).get("flight") or old.get("title")
        lines.append(f"{name} was removed")
    return "; ".join(lines) or "the airline changed the booking (times unchanged)"


async def apply_change(ctx, booking: dict[str, Any], change: dict[str, Any]) -> None:
    """Put the airline's new flights into the trip and tell everyone."""
    try:
        slices = [Slice.from_duffel(s) for s in change.get("added") or []]
    except (ProviderError, KeyError, TypeError) as exc:
        log.warning("ignored a schedule change with unreadable flights: %s", exc)
        return
    if not slices:
        log.warning("a schedule change without new flights for booking %s", booking["id"])
        return
    new_items = search.flight_items(slices)
    before: dict[str, Any] = {}

    def edit(trip: dict[str, Any]) -> Any:
        mine = [dict(i) for i in trip.get("items") or [] if i.get("booking_id") == booking["id"]]
        before["items"] = sorted(mine, key=_made_order)  # as mark_changed pairs them
        return itinerary.mark_changed(trip, booking["id"], new_items)

    try:
        _changed, trip = await store.update(ctx, booking["trip_id"], edit)
    except TravelError as exc:
        log.warning("a schedule change could not be applied to booking %s: %s", booking["id"], exc)
        return
    # The change is in the trip: what follows is told at most once (a retry would not redo it).
    what = describe(before.get("items") or [], new_items)
    try:
        await store.refresh_card(ctx, trip)
        await reminders.sync(ctx, trip)
        await ctx.send_text(f"Schedule change: {what}.")
    except HostError as exc:
        log.warning("after a schedule change of booking %s: %s", booking["id"], exc)
    for user_id in trip.get("travellers") or {}:
        try:
            await ctx.send_service_message(
                user_id, text=f"Schedule change for your trip {trip.get('title')}: {what}."
            )
        except HostError as exc:  # not opted in to the app's messages, or gone
            log.info("a traveller was not told of the schedule change: %s", exc)


EVENTS = {"webhook.received": on_webhook}
