"""Flight and stay search for the group's trip: ``/trip flights …`` and ``/trip stays …`` post
ONE offer card in the group, listing up to five offers (cheapest first) with a "Book together"
button each (``offer.book``, handled by ``booking``); the web view calls ``search.flights`` and
``search.stays`` answer the same offers as JSON.

Every offer shown is stored in ``offers/<offer_id>`` (layout in README.md): its price, expiry,
hold terms, the provider's own offer (``raw``) and the itinerary ``items`` it books — a flight
item per segment (times local in each airport's zone), or one stay item from check-in 15:00 to
check-out 11:00 at the destination. The offer id is derived from the trip and the provider's
offer, so the same offer shown to two groups is two documents.

Times on the card are local at each airport; money is formatted by babel in the searcher's
locale; offers of the sample provider carry its label (``texts.SAMPLE_LABEL``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any
from zoneinfo import ZoneInfo

import clock
import flights as air
import providers
import store
import texts
from babel.dates import format_date, format_datetime
from flights import Offer, ProviderError, Slice
from stays import MAX_GUESTS, MAX_NIGHTS, StayOffer
from store import TravelError, viewing

from sdk import Button, Card, Field

OFFERS = "offers"
MAX_SHOWN = 5
MAX_PASSENGERS = 9
STAY_OFFER_TTL_MS = 30 * 60_000  # stay results carry no expiry: a search is good for 30 min
CHECK_IN_TIME = "15:00"
CHECK_OUT_TIME = "11:00"
FLIGHTS_USAGE = "Usage: /trip flights LIS 2027-05-01 [from MAD] · /trip flights MAD LIS 2027-05-01"
STAYS_USAGE = "Usage: /trip stays [2027-05-01 2027-05-05] [guests 3]"


# --- input ------------------------------------------------------------------------------------


def parse_date(text: Any, what: str = "date") -> dt.date:
    try:
        if not isinstance(text, str) or len(text.strip()) != 10:
            raise ValueError
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise TravelError(
            "bad_date", f"{text!r} is not a {what}: write it as 2027-05-01."
        ) from None


def airport_code(text: Any) -> str:
    """A known IATA airport code (upper case), else ``unknown_airport``."""
    try:
        return air.airport(text)["iata"]
    except ProviderError:
        shown = text.strip() if isinstance(text, str) and text.strip() else "(none)"
        raise TravelError(
            "unknown_airport",
            f"No airport with the code {shown[:20]}: use a 3-letter IATA code such as LIS.",
        ) from None


def today_in(zone: str) -> dt.date:
    return dt.datetime.fromtimestamp(clock.now_ms() / 1000, ZoneInfo(zone)).date()


def parse_flight_args(args: list[str], trip: dict[str, Any]) -> tuple[str | None, str, str]:
    """``(origin or None, destination, date text)`` of ``/trip flights …``."""
    words = list(args)
    origin = None
    if len(words) >= 2 and words[-2].lower() == "from":
        origin, words = words[-1], words[:-2]
    home = (trip.get("destination") or {}).get("airport")
    if len(words) == 3 and origin is None:
        return words[0], words[1], words[2]
    if len(words) == 2:
        return origin, words[0], words[1]
    if len(words) == 1 and home:
        return origin, home, words[0]
    raise TravelError("usage", FLIGHTS_USAGE)


def parse_stay_args(args: list[str]) -> tuple[str | None, str | None, str | None]:
    """``(check_in text, check_out text, guests text)`` of ``/trip stays …`` (None: default)."""
    words = list(args)
    guests = None
    lowered = [w.lower() for w in words]
    if "guests" in lowered:
        at = lowered.index("guests")
        if at + 1 >= len(words):
            raise TravelError("usage", STAYS_USAGE)
        guests = words[at + 1]
        del words[at : at + 2]
    if not words:
        return None, None, guests
    if len(words) == 2:
        return words[0], words[1], guests
    raise TravelError("usage", STAYS_USAGE)


def _travellers(trip: dict[str, Any]) -> int:
    return len(trip.get("travellers") or {})


def destination_zone(trip: dict[str, Any]) -> str:
    destination = trip.get("destination") or {}
    if destination.get("zone"):
        return destination["zone"]
    found = air.airports().get(str(destination.get("airport") or ""))
    return found["tz"] if found else "UTC"


def destination_point(trip: dict[str, Any]) -> tuple[float, float]:
    """Where to look for stays: the destination's coordinates, else its airport's."""
    destination = trip.get("destination") or {}
    lat, lon = destination.get("lat"), destination.get("lon")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return float(lat), float(lon)
    found = air.airports().get(str(destination.get("airport") or ""))
    if found:
        return float(found["lat"]), float(found["lon"])
    raise TravelError(
        "no_destination",
        "This trip has no place to search stays around: give it a destination with an airport.",
    )


# --- offers → itinerary items and offer documents ---------------------------------------------


def _local(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def airport_place(code: str) -> str:
    found = air.airports().get(code)
    return f"{found['name']} ({code})" if found else code


def flight_number(segment: air.Segment) -> str:
    return f"{segment.carrier} {segment.flight_number}".strip()


def flight_items(slices: tuple[Slice, ...] | list[Slice]) -> list[dict[str, Any]]:
    """The itinerary items of a flight booking: one per segment, local times in each airport's
    zone (``changes`` builds the new ones of a schedule change the same way)."""
    items = []
    for s, flight_slice in enumerate(slices):
        for n, segment in enumerate(flight_slice.segments):
            number = flight_number(segment)
            items.append(
                {
                    "kind": "flight",
                    "title": f"{number} {segment.origin} → {segment.destination}".strip(),
                    "start": _local(segment.departing_at),
                    "zone": segment.origin_zone,
                    "end": _local(segment.arriving_at),
                    "end_zone": segment.destination_zone,
                    "place": airport_place(segment.origin),
                    "details": {
                        "flight": number,
                        "carrier": segment.carrier,
                        "flight_number": segment.flight_number,
                        "origin": segment.origin,
                        "destination": segment.destination,
                        "slice": s,
                        "segment": n,
                    },
                }
            )
    return items


def stops_text(offer: Offer) -> str:
    via = [seg.destination for s in offer.slices for seg in s.segments[:-1]]
    if not via:
        return "direct"
    return f"{len(via)} stop{'s' if len(via) > 1 else ''} ({', '.join(via)})"


def offer_id(trip_id: str, provider: str, provider_offer_id: str) -> str:
    digest = hashlib.sha256(f"{trip_id}|{provider}|{provider_offer_id}".encode()).hexdigest()
    return "of" + digest[:10]


def flight_title(offer: Offer, locale: str | None) -> str:
    first = offer.slices[0].segments[0]
    day = format_date(first.departing_at.date(), "EEE d MMM", locale=providers.babel_locale(locale))
    route = f"{offer.slices[0].origin} → {offer.slices[-1].destination}"
    return f"{route} · {day} {first.departing_at:%H:%M} · {stops_text(offer)}"


def flight_offer_doc(
    ctx, trip: dict[str, Any], provider: str, offer: Offer, passengers: int
) -> dict[str, Any]:
    doc = {
        "id": offer_id(trip["id"], provider, offer.id),
        "kind": "flight",
        "trip_id": trip["id"],
        "provider": provider,
        "label": providers.label(ctx),
        "title": flight_title(offer, ctx.locale),
        "items": flight_items(offer.slices),
        "passengers": passengers,
        "created_by": ctx.user_id,
        "created_at": clock.now_ms(),
    }
    return providers.with_flight_offer(doc, offer)


def _date_text(day: dt.date, locale: str | None) -> str:
    return format_date(day, "EEE d MMM", locale=providers.babel_locale(locale))


def stay_offer_doc(
    ctx, trip: dict[str, Any], provider: str, offer: StayOffer, zone: str
) -> dict[str, Any]:
    nights = f"{offer.nights} night{'s' if offer.nights > 1 else ''}"
    span = f"{_date_text(offer.check_in, ctx.locale)} → {_date_text(offer.check_out, ctx.locale)}"
    item = {
        "kind": "stay",
        "title": offer.name,
        "start": f"{offer.check_in.isoformat()}T{CHECK_IN_TIME}",
        "zone": zone,
        "end": f"{offer.check_out.isoformat()}T{CHECK_OUT_TIME}",
        "end_zone": zone,
        "place": offer.address or offer.name,
        "details": {
            "accommodation_id": offer.accommodation_id,
            "rating": offer.rating,
            "guests": offer.guests,
            "rooms": offer.rooms,
            "nights": offer.nights,
        },
    }
    return {
        "id": offer_id(trip["id"], provider, offer.rate_id),
        "kind": "stay",
        "trip_id": trip["id"],
        "provider": provider,
        "label": providers.label(ctx),
        "title": f"{offer.name} · {nights} · {span}",
        "total": {"amount": offer.total_amount, "currency": offer.total_currency},
        "expires_ms": clock.now_ms() + STAY_OFFER_TTL_MS,
        "holdable": False,
        "pay_by_ms": None,
        "raw": offer.to_raw(),
        "items": [item],
        "guests": offer.guests,
        "created_by": ctx.user_id,
        "created_at": clock.now_ms(),
    }


# --- searching --------------------------------------------------------------------------------


async def find_flights(
    ctx, trip: dict[str, Any], origin: str | None, destination: str, day_text: str
) -> list[dict[str, Any]]:
    """Search, store and return up to five flight offer documents, cheapest first."""
    if not origin and not trip.get("home_airport"):
        raise TravelError(
            "no_origin",
            f"From where? Add `from MAD`, or set the trip's home airport. {FLIGHTS_USAGE}",
        )
    origin_code = airport_code(origin or trip["home_airport"])
    destination_code = airport_code(destination)
    day = parse_date(day_text)
    if origin_code == destination_code:
        raise TravelError("same_airport", f"{origin_code} is both the origin and the destination.")
    if day < today_in(air.airport_zone(origin_code)):
        raise TravelError("dates_in_past", f"{day.isoformat()} is in the past: pick a later day.")
    passengers = _travellers(trip)
    if not 1 <= passengers <= MAX_PASSENGERS:
        raise TravelError(
            "too_many_travellers",
            f"Flights are searched for 1 to {MAX_PASSENGERS} travellers together; "
            f"this trip has {passengers}.",
        )
    provider = providers.flights(ctx)
    try:
        offers = await provider.search(origin_code, destination_code, day, passengers)
    except ProviderError as exc:
        if exc.code == "no_offers":
            raise TravelError(
                "no_offers",
                f"No flights from {origin_code} to {destination_code} on "
                f"{_date_text(day, ctx.locale)}: try another day.",
            ) from None
        raise providers.travel_error(exc) from None
    docs = [
        flight_offer_doc(ctx, trip, provider.name, offer, passengers)
        for offer in offers[:MAX_SHOWN]
    ]
    for doc in docs:
        await ctx.storage_put(OFFERS, doc["id"], doc)
    return docs


async def find_stays(
    ctx,
    trip: dict[str, Any],
    check_in_text: str | None,
    check_out_text: str | None,
    guests_text: Any,
) -> list[dict[str, Any]]:
    """Search, store and return up to five stay offer documents, cheapest first."""
    if not (check_in_text or trip.get("start")) or not (check_out_text or trip.get("end")):
        raise TravelError("usage", f"Which dates? {STAYS_USAGE}")
    check_in = parse_date(check_in_text or trip.get("start"), "check-in date")
    check_out = parse_date(check_out_text or trip.get("end"), "check-out date")
    if check_out <= check_in:
        raise TravelError("bad_date", "Check-out must be after check-in.")
    if (check_out - check_in).days > MAX_NIGHTS:
        raise TravelError("bad_date", f"A stay is at most {MAX_NIGHTS} nights.")
    zone = destination_zone(trip)
    if check_in < today_in(zone):
        raise TravelError(
            "dates_in_past", f"{check_in.isoformat()} is in the past: pick a later day."
        )
    guests = _travellers(trip) if guests_text is None else guests_text
    if isinstance(guests, str) and guests.strip().isdigit():
        guests = int(guests.strip())
    if not isinstance(guests, int) or isinstance(guests, bool) or not 1 <= guests <= MAX_GUESTS:
        raise TravelError("bad_guests", f"Guests must be a number from 1 to {MAX_GUESTS}.")
    latitude, longitude = destination_point(trip)
    provider = providers.stays(ctx, trip.get("currency") or "EUR")
    try:
        offers = await provider.search(latitude, longitude, check_in, check_out, guests)
    except ProviderError as exc:
        if exc.code == "no_offers":
            place = (trip.get("destination") or {}).get("name") or trip.get("title") or "there"
            raise TravelError(
                "no_offers",
                f"No stays available around {place} from {_date_text(check_in, ctx.locale)} "
                f"to {_date_text(check_out, ctx.locale)}: try other dates.",
            ) from None
        raise providers.travel_error(exc) from None
    docs = [stay_offer_doc(ctx, trip, provider.name, offer, zone) for offer in offers[:MAX_SHOWN]]
    for doc in docs:
        await ctx.storage_put(OFFERS, doc["id"], doc)
    return docs


# --- the offer cards --------------------------------------------------------------------------


def _until(ms: int, ctx) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, ZoneInfo(ctx.time_zone or "UTC"))
    return format_datetime(moment, "HH:mm", locale=providers.babel_locale(ctx.locale))


def _book_button(n: int, doc: dict[str, Any], ctx) -> Button:
    price = providers.format_money(doc["total"]["amount"], doc["total"]["currency"], ctx.locale)
    return Button("offer.book", f"{n}. Book together: {price}"[:80], value=doc["id"])


def _intro(ctx, text: str) -> str:
    label = providers.label(ctx)
    return f"{label}\n{text}" if label else text


def flight_card(ctx, docs: list[dict[str, Any]]) -> Card:
    offers = [Offer.from_duffel(doc["raw"]) for doc in docs]
    first = offers[0]
    day = _date_text(first.slices[0].segments[0].departing_at.date(), ctx.locale)
    route = f"{first.slices[0].origin} → {first.slices[-1].destination}"
    people = docs[0]["passengers"]
    text = _intro(
        ctx,
        f"For {people} traveller{'s' if people > 1 else ''}, the price for everyone together. "
        f"Times are local at each airport; offers are valid until the time shown "
        f"({ctx.time_zone or 'UTC'}).",
    )
    card = Card(f"Flights {route} · {day}"[:100], text=text[:2000])
    for n, (doc, offer) in enumerate(zip(docs, offers, strict=True), start=1):
        price = providers.format_money(doc["total"]["amount"], doc["total"]["currency"], ctx.locale)
        segments = [seg for s in offer.slices for seg in s.segments]
        start, end = segments[0], segments[-1]
        later = (end.arriving_at.date() - start.departing_at.date()).days
        arrives = f"{end.arriving_at:%H:%M}" + (f"+{later}" if later > 0 else "")
        numbers = ", ".join(flight_number(seg) for seg in segments)
        value = (
            f"{start.departing_at:%H:%M} {start.origin} → {arrives} {end.destination} · "
            f"{stops_text(offer)} · {numbers}\nvalid until {_until(doc['expires_ms'], ctx)}"
        )
        if doc["holdable"] and doc["pay_by_ms"]:
            value += " · can be held while everyone pays"
        card.fields.append({"label": f"{n}. {price}", "value": value[:1000]})
        card.buttons.append(_book_button(n, doc, ctx))
    return card


def stay_card(ctx, trip: dict[str, Any], docs: list[dict[str, Any]]) -> Card:
    raw = docs[0]["raw"]
    check_in, check_out = (
        dt.date.fromisoformat(raw["check_in"]),
        dt.date.fromisoformat(raw["check_out"]),
    )
    place = (trip.get("destination") or {}).get("name") or trip.get("title") or "the destination"
    nights = (check_out - check_in).days
    guests = raw["guests"]
    span = f"{_date_text(check_in, ctx.locale)} → {_date_text(check_out, ctx.locale)}"
    text = _intro(
        ctx,
        f"{nights} night{'s' if nights > 1 else ''} for {guests} guest{'s' if guests > 1 else ''}, "
        f"the price for the whole stay. Check-in from {CHECK_IN_TIME}, check-out by "
        f"{CHECK_OUT_TIME} local time; offers are valid until the time shown "
        f"({ctx.time_zone or 'UTC'}).",
    )
    card = Card(f"Stays in {place} · {span}"[:100], text=text[:2000])
    for n, doc in enumerate(docs, start=1):
        price = providers.format_money(doc["total"]["amount"], doc["total"]["currency"], ctx.locale)
        stay = doc["raw"]
        stars = f" · {'★' * stay['rating']}" if stay.get("rating") else ""
        rooms = stay.get("rooms") or 1
        value = (
            f"{stay['name']}{stars} · {rooms} room{'s' if rooms > 1 else ''}"
            + (f"\n{stay['address']}" if stay.get("address") else "")
            + f"\nvalid until {_until(doc['expires_ms'], ctx)}"
        )
        card.fields.append({"label": f"{n}. {price}", "value": value[:1000]})
        card.buttons.append(_book_button(n, doc, ctx))
    return card


# --- commands and views -----------------------------------------------------------------------


async def _searching_trip(ctx) -> dict[str, Any]:
    trip = await store.require_trip(ctx)
    store.require_traveller(trip, ctx.user_id)
    return trip


async def flights_command(ctx, args: list[str]) -> None:
    """``/trip flights LIS 2027-05-01 [from MAD]`` · ``/trip flights MAD LIS 2027-05-01``."""
    trip = await _searching_trip(ctx)
    origin, destination, day = parse_flight_args(args, trip)
    docs = await find_flights(ctx, trip, origin, destination, day)
    await ctx.send_card(flight_card(ctx, docs))


async def stays_command(ctx, args: list[str]) -> None:
    """``/trip stays [2027-05-01 2027-05-05] [guests 3]`` (default: the trip's dates and
    travellers)."""
    trip = await _searching_trip(ctx)
    check_in, check_out, guests = parse_stay_args(args)
    docs = await find_stays(ctx, trip, check_in, check_out, guests)
    await ctx.send_card(stay_card(ctx, trip, docs))


def _param(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TravelError("usage", f"{name} must be a string.")
    return value


@viewing
async def view_flights(ctx) -> dict[str, Any]:
    """``search.flights`` {origin?, destination?, date} → ``{offers, label}``."""
    trip = await _searching_trip(ctx)
    destination = _param(ctx.params, "destination") or (trip.get("destination") or {}).get(
        "airport"
    )
    day = _param(ctx.params, "date")
    if not destination or not day:
        raise TravelError("usage", "Give a destination airport and a date (2027-05-01).")
    docs = await find_flights(ctx, trip, _param(ctx.params, "origin"), destination, day)
    return {"offers": docs, "label": providers.label(ctx)}


@viewing
async def view_stays(ctx) -> dict[str, Any]:
    """``search.stays`` {check_in?, check_out?, guests?} → ``{offers, label}``."""
    trip = await _searching_trip(ctx)
    guests = ctx.params.get("guests")
    docs = await find_stays(
        ctx,
        trip,
        _param(ctx.params, "check_in"),
        _param(ctx.params, "check_out"),
        None if guests in (None, "") else guests,
    )
    return {"offers": docs, "label": providers.label(ctx)}


SUBCOMMANDS = {"flights": flights_command, "stays": stays_command}
VIEWS = {"search.flights": view_flights, "search.stays": view_stays}


# --- the read-only tool other apps call (the assistant) ---------------------------------------

TOOL_OFFERS_MAX = 5


async def tool_flight_offers(ctx) -> dict[str, Any]:
    """``flight_offers {origin, destination, date}``: flight offers for one traveller, cheapest
    first — read-only (a tool may not write: the sample provider's offers stay in memory and
    nothing is stored), so its card has no Book button: it opens the trip's search, where
    offers are stored and booked together."""
    args = ctx.arguments
    try:
        origin, destination = (
            airport_code(args.get("origin")),
            airport_code(args.get("destination")),
        )
        day = parse_date(args.get("date"))
        if day < today_in(air.airport_zone(origin)):
            raise TravelError("dates_in_past", f"{day.isoformat()} is in the past.")
        if providers.kind(ctx) == "sample":
            provider = air.SampleProvider(air.MemoryStore(), label=texts.SAMPLE_LABEL)
        else:
            provider = providers.flights(ctx)
        offers = (await provider.search(origin, destination, day, 1))[:TOOL_OFFERS_MAX]
    except TravelError as exc:
        return {"result": {"error": exc.code, "message": exc.message}}
    except ProviderError as exc:
        return {"result": {"error": exc.code, "message": exc.message}}
    label = getattr(provider, "label", None)
    rows = []
    for offer in offers:
        first, last = offer.slices[0].segments[0], offer.slices[-1].segments[-1]
        rows.append(
            {
                "price": air.to_decimal(offer.total_amount, offer.total_currency),
                "currency": offer.total_currency,
                "departs": f"{_local(first.departing_local)} ({first.origin_zone})",
                "arrives": f"{_local(last.arriving_local)} ({last.destination_zone})",
                "stops": stops_text(offer),
                "carrier": first.carrier,
            }
        )
    card = Card(f"Flights {origin} → {destination} · {day.isoformat()}"[:100])
    for offer in offers:
        money = providers.format_money(offer.total_amount, offer.total_currency, ctx.locale)
        card.fields.append(Field(money, flight_title(offer, ctx.locale)))
    card.text = (label + " · " if label else "") + "Prices for one traveller."
    card.buttons.append(Button.webview("Search in the trip", path="#search"))
    return {"result": {"offers": rows, "label": label}, "card": card if rows else None}


TOOLS = {"flight_offers": tool_flight_offers}
