"""The booking card and what the trip and the web view keep of a booking — pure functions.

``booking_card(booking)``: the title, the total, each traveller's share and whether it is held,
the deadline in the destination's local time, and while holds are collected "Hold my share …"
(``booking.hold``) and "Cancel" (``booking.cancel``) — with "Reserving the seats…" while a
holdable flight is being held at the provider; while booking: "Booking with the provider…" (and
"slow to answer" once it timed out); booked: the provider's reference; voided or failed: why,
and that every hold was released. ``summary`` is the trip doc's ``booking``
field (the trip card's line); ``booking_json`` what the views answer.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from babel.numbers import format_currency, get_currency_precision

from sdk import Button, Card, Field

LIVE = ("collecting", "booking")  # states that hold the trip's lock
RESERVING = ("reserve", "reserve_lookup")  # phases of holding a flight at the provider
RESERVING_TEXT = "Reserving the seats with the airline… you can hold your share meanwhile."
HELD = ("authorized", "captured")  # a share held (or taken)
FIELDS_MAX = 20  # a card's fields
PEOPLE_ON_CARD = 16  # travellers listed one per field; more are summed up
STATUS_TEXT = {
    "authorized": "✓ held",
    "captured": "✓ paid",
    "requested": "confirming in the wallet…",
    "declined": "declined — can hold again",
    "voided": "released",
}


def _locale(tag: str | None) -> Locale:
    try:
        return Locale.parse((tag or "en").replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale.parse("en")


def money(amount: int, currency: str, locale: str | None = "en") -> str:
    """``4115, "EUR"`` → ``€41.15`` in ``locale`` (babel)."""
    digits = get_currency_precision(currency)
    return format_currency(Decimal(amount).scaleb(-digits), currency, locale=_locale(locale))


def local_time(ms: int, zone: str, place: str | None, locale: str | None = "en") -> str:
    """``Sat 1 May, 18:05 (Lisbon time)``: epoch ms at the destination."""
    try:
        tz = ZoneInfo(zone)
    except (KeyError, ValueError):
        tz, zone = ZoneInfo("UTC"), "UTC"
    moment = datetime.fromtimestamp(ms / 1000, tz)
    text = format_datetime(moment, "EEE d MMM, HH:mm", tzinfo=tz, locale=_locale(locale))
    where = place or zone.rsplit("/", 1)[-1].replace("_", " ")
    return f"{text} ({where} time)"


def held_count(booking: dict[str, Any]) -> int:
    holds = booking.get("holds") or {}
    return sum(1 for uid in booking["shares"] if (holds.get(uid) or {}).get("status") in HELD)


def summary(booking: dict[str, Any]) -> dict[str, Any]:
    """What the trip doc keeps of its live booking (``trip.booking``) for the trip card."""
    return {
        "id": booking["id"],
        "title": booking["title"],
        "state": booking["state"],
        "held": held_count(booking),
        "of": len(booking["shares"]),
        "deadline_ms": booking["deadline_ms"],
        "started_at": booking["created_at"],
    }


def booking_json(booking: dict[str, Any]) -> dict[str, Any]:
    """The booking as views answer it: the stored document without the provider's raw offer."""
    shown = dict(booking)
    offer = dict(shown.get("offer") or {})
    offer.pop("raw", None)
    shown["offer"] = offer
    shown["held"] = held_count(booking)
    return shown


def booking_card(booking: dict[str, Any]) -> Card:
    """The booking card: total, each traveller's share and hold, the deadline in the
    destination's local time, and (while collecting) "Hold my share" and "Cancel"."""
    locale = booking.get("locale") or "en"
    total, currency = booking["total"]["amount"], booking["total"]["currency"]
    shares, holds, names = booking["shares"], booking.get("holds") or {}, booking.get("names") or {}
    state = booking["state"]
    deadline = local_time(
        booking["deadline_ms"], booking.get("zone") or "UTC", booking.get("place"), locale
    )
    held, of = held_count(booking), len(shares)
    fields = [Field("Total", f"{money(total, currency, locale)} for {of}")]
    people = sorted(shares, key=lambda uid: (names.get(uid) or uid).lower())
    listed = people if len(people) <= PEOPLE_ON_CARD else people[: PEOPLE_ON_CARD - 1]
    for uid in listed:
        status = (holds.get(uid) or {}).get("status")
        label = STATUS_TEXT.get(status or "", "waiting")
        fields.append(
            Field(
                (names.get(uid) or "Traveller")[:100],
                f"{money(shares[uid], currency, locale)} · {label}",
            )
        )
    if len(listed) < len(people):
        rest = people[len(listed) :]
        rest_held = sum(1 for uid in rest if (holds.get(uid) or {}).get("status") in HELD)
        fields.append(Field(f"{len(rest)} more", f"{rest_held} held"))
    reference = (booking.get("order") or {}).get("reference")
    reserving = booking.get("phase") in RESERVING
    if state == "collecting":
        fields.append(Field("Hold by", deadline))
        lines = [RESERVING_TEXT] if reserving else []
        lines.append(
            f"{held} of {of} shares held. Each traveller holds their share from their wallet "
            f"by {deadline}. When all {of} have held, it is booked and each hold is taken; if "
            "anyone misses the deadline, every hold is released and nobody pays."
        )
    elif state == "booking":
        lines = [f"All {of} shares held ✓ Booking with the provider…"]
        if booking.get("timeouts", 0) > 0:
            lines.append("The provider is slow to answer: trying again shortly.")
    elif state == "booked":
        fields.append(Field("Reference", reference or "—"))
        lines = [f"Booked · ref {reference or '—'}. Each share was taken from its hold."]
    else:
        lines = [f"Not booked: {booking.get('reason') or 'ended'}."]
        lines.append("Every hold was released; nobody was charged.")
    if booking.get("label"):
        lines.append(booking["label"])
    text = "\n".join(lines)
    card = Card(
        f"Book together · {booking['title']}"[:100],
        text=text if len(text) <= 2000 else text[:1999] + "…",
        fields=fields[:FIELDS_MAX],
    )
    if state == "collecting":
        amounts = sorted(set(shares.values()))
        share = money(amounts[-1], currency, locale)
        label = f"Hold my share {share}" if len(amounts) == 1 else f"Hold my share (≤ {share})"
        card.buttons.append(
            Button("booking.hold", label[:80], value=booking["id"], style="primary")
        )
        card.buttons.append(Button("booking.cancel", "Cancel", value=booking["id"], style="danger"))
    return card
