"""Stays (hotels) behind one provider interface with the shape of Duffel's **Stays** API.

A search around a point (``POST /stays/search``: ``location {radius, geographic_coordinates
{latitude, longitude}}``, ``check_in_date``, ``check_out_date``, ``rooms``, ``guests``) gives
**results**, one per accommodation, each with its rooms and their **rates**; a rate is priced
again as a **quote** (``POST /stays/quotes {rate_id}``), and a quote becomes a **booking**
(``POST /stays/bookings {quote_id, guests, email, phone_number}``). Two providers speak it:

- ``DuffelStays`` talks to Duffel through an async ``fetch`` with the shape of the SDK's
  ``ctx.fetch`` (``DuffelAPI`` is the small HTTP client; ``changes`` uses it for webhooks too).
- ``SampleStays`` is a **sample**, offline provider: deterministic made-up hotels around the
  point, priced in the currency it is given. Its hotels are not real. It keeps its rates, quotes
  and bookings in a ``Store`` (the app storage through ``providers.CtxStorage``, so two app
  processes see the same ones; ``MemoryStore`` in tests).

Duffel Stays has no idempotency key on bookings, so a booking whose answer was lost is looked up
(``GET /stays/bookings``, paged, matched on the quote or on ``metadata.idempotency_key``) before
it is created again: a stay is never booked twice. Each of ``quote``, ``create_booking`` and
``find_booking_page`` makes one request (``providers.step`` does one of them per app invocation;
``find_booking`` pages through several).

Money is integer minor units with the currency (``flights.to_minor`` / ``to_decimal``); errors are
``flights.ProviderError`` with the same codes as flights (``no_offers``, ``offer_expired``,
``price_changed``, ``timeout``, ``provider_error``, ``bad_request``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flights import (
    DUFFEL_URL,
    DuffelAPI,
    Fetch,
    MemoryStore,  # noqa: F401 (stays.MemoryStore: the sample stays keep to it in tests)
    ProviderError,
    Store,
    _h,
    exponent,
    to_decimal,
    to_minor,
)

BOOKING_PAGE_LIMIT = 200
BOOKING_MAX_PAGES = 10
SEARCH_RADIUS_KM = 5
MAX_NIGHTS = 30
MAX_GUESTS = 9

# Duffel error codes (``errors[].code``) → ours.
_CODES = {
    "rate_unavailable": "offer_expired",
    "rate_no_longer_available": "offer_expired",
    "quote_expired": "offer_expired",
    "quote_not_found": "offer_expired",
    "accommodation_unavailable": "offer_expired",
    "not_found": "offer_expired",
    "price_changed": "price_changed",
}


# --- data model (Duffel's shape) --------------------------------------------------------------


@dataclass(frozen=True)
class StayOffer:
    """One accommodation with its cheapest rate for the stay asked for."""

    rate_id: str
    total_amount: int  # minor units, the whole stay
    total_currency: str
    accommodation_id: str
    name: str
    rating: int | None
    latitude: float | None
    longitude: float | None
    address: str
    check_in: dt.date
    check_out: dt.date
    guests: int
    rooms: int

    @property
    def nights(self) -> int:
        return (self.check_out - self.check_in).days

    def to_raw(self) -> dict[str, Any]:
        """What ``offers/<id>.raw`` keeps of it (JSON)."""
        return {
            "rate_id": self.rate_id,
            "accommodation_id": self.accommodation_id,
            "name": self.name,
            "rating": self.rating,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "address": self.address,
            "check_in": self.check_in.isoformat(),
            "check_out": self.check_out.isoformat(),
            "guests": self.guests,
            "rooms": self.rooms,
            "total_amount": to_decimal(self.total_amount, self.total_currency),
            "total_currency": self.total_currency,
        }


@dataclass(frozen=True)
class Quote:
    id: str
    total_amount: int
    total_currency: str
    check_in: dt.date
    check_out: dt.date
    accommodation_id: str

    @classmethod
    def from_duffel(cls, data: dict[str, Any]) -> Quote:
        try:
            currency = data["total_currency"]
            return cls(
                id=data["id"],
                total_amount=to_minor(data["total_amount"], currency),
                total_currency=currency,
                check_in=dt.date.fromisoformat(data["check_in_date"]),
                check_out=dt.date.fromisoformat(data["check_out_date"]),
                accommodation_id=str((data.get("accommodation") or {}).get("id") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError("provider_error", f"malformed quote: {exc}") from None


@dataclass(frozen=True)
class StayBooking:
    id: str
    reference: str
    status: str
    quote_id: str
    idempotency_key: str

    @classmethod
    def from_duffel(cls, data: dict[str, Any]) -> StayBooking:
        try:
            return cls(
                id=data["id"],
                reference=data.get("reference") or data.get("booking_reference") or "",
                status=data.get("status") or "confirmed",
                quote_id=data.get("quote_id") or "",
                idempotency_key=(data.get("metadata") or {}).get("idempotency_key", ""),
            )
        except (KeyError, TypeError) as exc:
            raise ProviderError("provider_error", f"malformed booking: {exc}") from None


def _stay_offers(results: list[dict[str, Any]], search: dict[str, Any]) -> list[StayOffer]:
    """The cheapest rate of each result, cheapest first."""
    offers = []
    for result in results:
        accommodation = result.get("accommodation") or {}
        rates = [
            rate
            for room in accommodation.get("rooms") or []
            for rate in room.get("rates") or []
            if rate.get("id") and rate.get("total_amount") and rate.get("total_currency")
        ]
        if not rates or not accommodation.get("id"):
            continue
        priced = [(to_minor(r["total_amount"], r["total_currency"]), r) for r in rates]
        amount, rate = min(priced, key=lambda pair: (pair[0], pair[1]["id"]))
        location = accommodation.get("location") or {}
        point = location.get("geographic_coordinates") or {}
        address = location.get("address") or {}
        rating = accommodation.get("rating")
        offers.append(
            StayOffer(
                rate_id=rate["id"],
                total_amount=amount,
                total_currency=rate["total_currency"],
                accommodation_id=accommodation["id"],
                name=str(accommodation.get("name") or "Accommodation")[:80],
                rating=int(rating) if isinstance(rating, int | float) else None,
                latitude=point.get("latitude"),
                longitude=point.get("longitude"),
                address=", ".join(
                    str(address[k]) for k in ("line_one", "city_name") if address.get(k)
                ),
                check_in=search["check_in"],
                check_out=search["check_out"],
                guests=search["guests"],
                rooms=search["rooms"],
            )
        )
    return sorted(offers, key=lambda o: (o.total_amount, o.rate_id))


def check_search(
    latitude: float, longitude: float, check_in: dt.date, check_out: dt.date, guests: int
) -> None:
    """``bad_request`` for a search no provider can answer."""
    if not (isinstance(latitude, int | float) and isinstance(longitude, int | float)) or not (
        -90 <= latitude <= 90 and -180 <= longitude <= 180
    ):
        raise ProviderError("bad_request", "the place to search around has no valid coordinates")
    if not isinstance(check_in, dt.date) or not isinstance(check_out, dt.date):
        raise ProviderError("bad_request", "check-in and check-out must be dates")
    if check_out <= check_in:
        raise ProviderError("bad_request", "check-out must be after check-in")
    if (check_out - check_in).days > MAX_NIGHTS:
        raise ProviderError("bad_request", f"a stay is at most {MAX_NIGHTS} nights")
    if not isinstance(guests, int) or not 1 <= guests <= MAX_GUESTS:
        raise ProviderError("bad_request", f"guests must be between 1 and {MAX_GUESTS}")


def rooms_for(guests: int) -> int:
    """Rooms asked for: two guests a room."""
    return max(1, math.ceil(guests / 2))


# --- Duffel -----------------------------------------------------------------------------------


class DuffelStays:
    """Duffel Stays through ``fetch``."""

    name = "duffel"
    label: str | None = None

    def __init__(self, fetch: Fetch, api_key: str, base_url: str = DUFFEL_URL) -> None:
        self.api = DuffelAPI(fetch, api_key, base_url, codes=_CODES)

    async def search(
        self,
        latitude: float,
        longitude: float,
        check_in: dt.date,
        check_out: dt.date,
        guests: int,
        rooms: int | None = None,
    ) -> list[StayOffer]:
        """The cheapest rate of each accommodation around the point, cheapest first;
        ``no_offers`` when there is none."""
        check_search(latitude, longitude, check_in, check_out, guests)
        rooms = rooms or rooms_for(guests)
        request = {
            "location": {
                "radius": SEARCH_RADIUS_KM,
                "geographic_coordinates": {"latitude": latitude, "longitude": longitude},
            },
            "check_in_date": check_in.isoformat(),
            "check_out_date": check_out.isoformat(),
            "rooms": rooms,
            "guests": [{"type": "adult"} for _ in range(guests)],
        }
        data = await self.api.call("POST", "/stays/search", request)
        results = (data.get("data") or {}).get("results") or []
        search = {"check_in": check_in, "check_out": check_out, "guests": guests, "rooms": rooms}
        offers = _stay_offers(results, search)
        if not offers:
            raise ProviderError("no_offers", f"no stays available from {check_in} to {check_out}")
        return offers

    async def quote(self, rate_id: str) -> Quote:
        """The rate priced now (``offer_expired`` when it is gone)."""
        data = await self.api.call("POST", "/stays/quotes", {"rate_id": rate_id})
        return Quote.from_duffel(data.get("data") or {})

    async def create_booking(
        self,
        quote_id: str,
        guests: list[dict[str, str]],
        email: str,
        phone_number: str,
        idempotency_key: str,
    ) -> StayBooking:
        """Book the quote. On ``timeout`` call ``find_booking`` before trying again."""
        payload = {
            "quote_id": quote_id,
            "guests": guests,
            "email": email,
            "phone_number": phone_number,
            "metadata": {"idempotency_key": idempotency_key},
        }
        data = await self.api.call("POST", "/stays/bookings", payload)
        return StayBooking.from_duffel(data.get("data") or {})

    async def find_booking_page(
        self, quote_id: str, idempotency_key: str, after: str | None = None
    ) -> tuple[StayBooking | None, str | None]:
        """One page of ``GET /stays/bookings`` (newest first, from the cursor ``after``) →
        ``(the booking made from quote_id or with idempotency_key, None)`` when it is on the
        page, else ``(None, the next page's cursor, None on the last page)``. One request."""
        path = f"/stays/bookings?limit={BOOKING_PAGE_LIMIT}" + (f"&after={after}" if after else "")
        data = await self.api.call("GET", path)
        for item in data.get("data") or []:
            booking = StayBooking.from_duffel(item)
            if (quote_id and booking.quote_id == quote_id) or (
                idempotency_key and booking.idempotency_key == idempotency_key
            ):
                return booking, None
        return None, (data.get("meta") or {}).get("after") or None

    async def find_booking(self, quote_id: str, idempotency_key: str) -> StayBooking | None:
        """The booking made from ``quote_id`` (or with ``idempotency_key``), or None:
        ``find_booking_page`` page after page, at most ``BOOKING_MAX_PAGES``."""
        after: str | None = None
        for _ in range(BOOKING_MAX_PAGES):
            found, after = await self.find_booking_page(quote_id, idempotency_key, after)
            if found is not None or not after:
                return found
        return None


# --- the sample provider ----------------------------------------------------------------------

SAMPLE_RATES = "sample_rates"
SAMPLE_QUOTES = "sample_quotes"
SAMPLE_BOOKINGS = "sample_stay_bookings"
SAMPLE_NAMES = (
    "Sample Hotel Central",
    "Sample Riverside Suites",
    "Sample Old Town Inn",
    "Sample Garden Apartments",
    "Sample Harbour Hostel",
    "Sample Station Hotel",
)
# Rough worth of one euro in a few currencies, so sample prices look plausible in each.
_PER_EURO = {
    "EUR": 1, "USD": 1.1, "GBP": 0.85, "CHF": 0.95, "CAD": 1.5, "AUD": 1.65, "NZD": 1.8,
    "JPY": 160, "KRW": 1450, "CNY": 7.8, "HKD": 8.5, "SGD": 1.45, "INR": 90, "THB": 38,
    "SEK": 11.5, "NOK": 11.5, "DKK": 7.5, "PLN": 4.3, "CZK": 25, "HUF": 390, "TRY": 35,
    "BRL": 6, "MXN": 19, "ZAR": 20, "AED": 4, "ILS": 4, "ISK": 150,
}  # fmt: skip


class SampleStays:
    """**Sample** stays for offline use: deterministic, made up, not bookable for real.

    Around any point: six hotels a short walk apart, each with two rates (room only, with
    breakfast), priced per night in ``currency`` — the same search gives the same hotels and
    prices. Rates, quotes and bookings live in ``store``; bookings are idempotent by key."""

    name = "sample"
    label = "Sample stays (not real)"

    def __init__(
        self, store: Store, currency: str = "EUR", now: Callable[[], dt.datetime] | None = None
    ) -> None:
        self._store = store
        self._currency = currency
        self._now = now or (lambda: dt.datetime.now(dt.UTC))

    async def search(
        self,
        latitude: float,
        longitude: float,
        check_in: dt.date,
        check_out: dt.date,
        guests: int,
        rooms: int | None = None,
    ) -> list[StayOffer]:
        check_search(latitude, longitude, check_in, check_out, guests)
        rooms = rooms or rooms_for(guests)
        nights = (check_out - check_in).days
        factor = _PER_EURO.get(self._currency, 1)
        place = (round(latitude, 2), round(longitude, 2))
        results = []
        for n, name in enumerate(SAMPLE_NAMES):
            h = _h("stay", *place, n)
            per_night = (55 + h % 150) * rooms * (1 + 0.15 * (guests > rooms))
            hotel_id = f"acc_sample_{_h('hotel', *place, n) % 10**12:012d}"
            rates = []
            for k, extra in enumerate((0, 12 * guests)):
                amount = _round_price((per_night + extra) * nights * factor, self._currency)
                key = _h(hotel_id, check_in, check_out, guests, self._currency, k)
                rate_id = f"rat_sample_{key % 10**12:012d}"
                rates.append(
                    {
                        "id": rate_id,
                        "total_amount": to_decimal(amount, self._currency),
                        "total_currency": self._currency,
                    }
                )
            results.append(
                {
                    "accommodation": {
                        "id": hotel_id,
                        "name": name,
                        "rating": 2 + h % 4,
                        "location": {
                            "geographic_coordinates": {
                                "latitude": round(latitude + ((h >> 8) % 200 - 100) / 10000, 5),
                                "longitude": round(longitude + ((h >> 16) % 200 - 100) / 10000, 5),
                            },
                            "address": {"line_one": f"{1 + (h >> 24) % 180} Sample Street"},
                        },
                        "rooms": [{"name": "Double room", "rates": rates}],
                    }
                }
            )
        search = {"check_in": check_in, "check_out": check_out, "guests": guests, "rooms": rooms}
        offers = _stay_offers(results, search)
        for offer in offers:
            await self._store.put(SAMPLE_RATES, offer.rate_id, offer.to_raw())
        return offers

    async def quote(self, rate_id: str) -> Quote:
        rate = await self._store.get(SAMPLE_RATES, rate_id) if rate_id else None
        if rate is None:
            raise ProviderError("offer_expired", "that room is no longer available; search again")
        quote = {
            "id": f"quo_sample_{_h('quote', rate_id) % 10**12:012d}",
            "rate_id": rate_id,
            "total_amount": rate["total_amount"],
            "total_currency": rate["total_currency"],
            "check_in_date": rate["check_in"],
            "check_out_date": rate["check_out"],
            "accommodation": {"id": rate["accommodation_id"], "name": rate["name"]},
        }
        await self._store.put(SAMPLE_QUOTES, quote["id"], quote)
        return Quote.from_duffel(quote)

    async def create_booking(
        self,
        quote_id: str,
        guests: list[dict[str, str]],
        email: str,
        phone_number: str,
        idempotency_key: str,
    ) -> StayBooking:
        if not guests:
            raise ProviderError("bad_request", "a booking needs guests")
        if not isinstance(idempotency_key, str) or not 8 <= len(idempotency_key) <= 100:
            raise ProviderError("bad_request", "the idempotency key must be 8-100 characters")
        quote = await self._store.get(SAMPLE_QUOTES, quote_id)
        if quote is None:
            raise ProviderError("offer_expired", "that quote is no longer valid; search again")
        n = _h("stay-booking", idempotency_key)
        booking = {
            "id": f"bok_sample_{n % 10**12:012d}",
            "reference": "".join("ABCDEFGHJKLMNPQRSTUVWXYZ"[(n >> (5 * i)) % 24] for i in range(6)),
            "status": "confirmed",
            "quote_id": quote_id,
            "metadata": {"idempotency_key": idempotency_key},
            "guests": guests,
            "email": email,
            "phone_number": phone_number,
        }
        stored = await self._store.create(SAMPLE_BOOKINGS, idempotency_key, booking)
        if stored.get("quote_id") != quote_id:
            raise ProviderError("bad_request", "that idempotency key booked another stay")
        return StayBooking.from_duffel(stored)

    async def find_booking(self, quote_id: str, idempotency_key: str) -> StayBooking | None:
        stored = await self._store.get(SAMPLE_BOOKINGS, idempotency_key)
        return StayBooking.from_duffel(stored) if stored else None

    async def find_booking_page(
        self, quote_id: str, idempotency_key: str, after: str | None = None
    ) -> tuple[StayBooking | None, str | None]:
        """As ``DuffelStays.find_booking_page``: the stored bookings are one page."""
        return await self.find_booking(quote_id, idempotency_key), None


def _round_price(value: float, currency: str) -> int:
    """A sample price in minor units, rounded to a whole unit of ``currency``."""
    unit = 10 ** exponent(currency)
    return max(unit, round(value) * unit)
