"""Flight search and booking behind one provider interface with Duffel's API shape.

An offer request (origin, destination, date, passengers) gives **offers**; an offer is re-priced
before paying (``get_offer``) and turned into an **order** (``create_order``), either paid at once
(``instant``) or held until ``payment_required_by`` (``hold``). Two providers speak it:

- ``DuffelProvider`` talks to Duffel's API (``https://api.duffel.com``, ``Duffel-Version: v2``)
  through an async ``fetch(url, method=, headers=, body=) -> {"status", "headers", "body"}``
  callable, the shape of the SDK's ``ctx.fetch`` (``http.fetch``), so the app never opens a socket.
- ``SampleProvider`` is a **sample**, offline provider for ``make run`` and demos: deterministic
  made-up offers between any two airports ``airportsdata`` knows. Its flights are not real.

Times: Duffel gives ``departing_at`` / ``arriving_at`` as the airport's *local* wall-clock time
(no offset); a ``Segment`` keeps that local time together with the airport's IANA zone (from
``airportsdata``), so ``departing_local`` is an aware datetime in the right zone, across DST.

Money: Duffel gives amounts as decimal strings (``"123.45"``); here they are integer minor units
with the currency (``12345, "EUR"``), converted by the currency's exponent.

Idempotent orders: every order carries ``metadata.idempotency_key``. When creating an order times
out, the order may still exist at the provider, so the caller looks it up before creating it
again. Duffel's ``GET /air/orders`` list does not filter on metadata (its filters are booking
reference, awaiting payment, origin/destination, dates, passenger name), so the look-up pages
through the list (``limit`` / ``after`` cursor, newest first) and filters client-side:
``find_order_page`` reads one page (one request: ``(order or None, the next page's cursor)``),
``find_order`` pages through at most ``ORDER_MAX_PAGES``.

**One request per call**: ``create_order``, ``find_order_page``, ``get_order`` and ``pay_order``
each make exactly one request, so a caller with a deadline (an app invocation must answer within
3 s, a request may take the host's 2.5 s fetch timeout) can do one of them per invocation and
keep its own state between them (``providers.step``, driven by ``booking``'s timer).

Paying a hold order: ``pay_order`` (Duffel ``POST /air/payments``, from the balance, exactly the
order's amount) — one request; an order paid already (``already_paid``) counts as paid, so it may
simply be sent again. After a ``timeout`` the caller looks the order up (``get_order``, ``GET
/air/orders/{id}``: ``awaiting_payment`` false once paid) before paying again.

Errors are ``ProviderError(code, message)`` with a stable ``code``: ``no_offers``,
``offer_expired``, ``price_changed``, ``timeout``, ``provider_error`` (and ``unknown_airport``,
``bad_request`` for input refused before any request is made).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import airportsdata
from duffel import (  # the providers' shared HTTP client and error, used from here too
    DUFFEL_URL,
    DuffelAPI,
    Fetch,
    ProviderError,
)

ORDER_PAGE_LIMIT = 200  # Duffel's maximum page size for lists
ORDER_MAX_PAGES = 10

# ISO 4217 exponents other than 2 (the common ones; anything else is taken as 2).
_EXPONENTS = {
    "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "XOF": 0, "XAF": 0, "UGX": 0,
    "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}  # fmt: skip

_IATA = re.compile(r"^[A-Z]{3}$")
_AIRPORTS: dict[str, dict[str, Any]] | None = None


# --- airports, money --------------------------------------------------------------------------


def airports() -> dict[str, dict[str, Any]]:
    """Airports by IATA code (``airportsdata``), loaded once."""
    global _AIRPORTS
    if _AIRPORTS is None:
        _AIRPORTS = {k: v for k, v in airportsdata.load("IATA").items() if v.get("tz")}
    return _AIRPORTS


def airport(code: str) -> dict[str, Any]:
    """The airport for an IATA code, or ``ProviderError("unknown_airport")``."""
    code = code.strip().upper() if isinstance(code, str) else ""
    found = airports().get(code) if _IATA.match(code) else None
    if found is None:
        raise ProviderError("unknown_airport", f"no airport with the code {code or '(empty)'}")
    return found


def airport_zone(code: str) -> str:
    return airport(code)["tz"]


def distance_km(a: str, b: str) -> float:
    """Great-circle distance between two airports (haversine)."""
    pa, pb = airport(a), airport(b)
    lat1, lon1, lat2, lon2 = map(math.radians, (pa["lat"], pa["lon"], pb["lat"], pb["lon"]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor(amount: str, currency: str) -> int:
    """``"123.45", "EUR"`` → ``12345``; refuses amounts finer than the currency allows."""
    try:
        value = Decimal(str(amount)) * (10 ** exponent(currency))
    except InvalidOperation:
        raise ProviderError("provider_error", f"bad amount {amount!r}") from None
    if value != value.to_integral_value():
        raise ProviderError("provider_error", f"amount {amount!r} too fine for {currency}")
    return int(value)


def to_decimal(minor: int, currency: str) -> str:
    """``12345, "EUR"`` → ``"123.45"`` (the string Duffel expects)."""
    exp = exponent(currency)
    return str(Decimal(minor).scaleb(-exp).quantize(Decimal(1).scaleb(-exp)))


# --- data model (Duffel's shape) --------------------------------------------------------------


def _parse_time(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ProviderError("provider_error", f"bad time {text!r}") from None


@dataclass(frozen=True)
class Segment:
    """One flight. ``departing_at`` / ``arriving_at`` are local wall-clock times (naive, as Duffel
    gives them) at ``origin`` / ``destination``; ``*_zone`` are the airports' IANA zones."""

    origin: str
    destination: str
    departing_at: dt.datetime
    arriving_at: dt.datetime
    origin_zone: str
    destination_zone: str
    carrier: str
    flight_number: str = ""

    @property
    def departing_local(self) -> dt.datetime:
        return self.departing_at.replace(tzinfo=ZoneInfo(self.origin_zone))

    @property
    def arriving_local(self) -> dt.datetime:
        return self.arriving_at.replace(tzinfo=ZoneInfo(self.destination_zone))

    @classmethod
    def from_duffel(cls, data: dict[str, Any]) -> Segment:
        origin = data["origin"]["iata_code"]
        destination = data["destination"]["iata_code"]
        carrier = data.get("marketing_carrier") or data.get("operating_carrier") or {}
        return cls(
            origin=origin,
            destination=destination,
            departing_at=_parse_time(data["departing_at"]).replace(tzinfo=None),
            arriving_at=_parse_time(data["arriving_at"]).replace(tzinfo=None),
            origin_zone=data["origin"].get("time_zone") or airport_zone(origin),
            destination_zone=data["destination"].get("time_zone") or airport_zone(destination),
            carrier=carrier.get("iata_code") or carrier.get("name") or "",
            flight_number=str(data.get("marketing_carrier_flight_number") or ""),
        )

    def to_duffel(self) -> dict[str, Any]:
        return {
            "origin": {"iata_code": self.origin, "time_zone": self.origin_zone},
            "destination": {"iata_code": self.destination, "time_zone": self.destination_zone},
            "departing_at": self.departing_at.isoformat(),
            "arriving_at": self.arriving_at.isoformat(),
            "marketing_carrier": {"iata_code": self.carrier},
            "marketing_carrier_flight_number": self.flight_number,
        }


@dataclass(frozen=True)
class Slice:
    origin: str
    destination: str
    segments: tuple[Segment, ...]

    @property
    def stops(self) -> int:
        return len(self.segments) - 1

    @classmethod
    def from_duffel(cls, data: dict[str, Any]) -> Slice:
        segments = tuple(Segment.from_duffel(s) for s in data.get("segments") or [])
        if not segments:
            raise ProviderError("provider_error", "a slice without segments")
        return cls(segments[0].origin, segments[-1].destination, segments)

    def to_duffel(self) -> dict[str, Any]:
        return {
            "origin": {"iata_code": self.origin},
            "destination": {"iata_code": self.destination},
            "segments": [s.to_duffel() for s in self.segments],
        }


@dataclass(frozen=True)
class Offer:
    """A priced itinerary. ``requires_instant_payment`` False means it can be held (a ``hold``
    order) until ``payment_required_by``."""

    id: str
    total_amount: int  # minor units
    total_currency: str
    expires_at: dt.datetime  # aware, UTC
    slices: tuple[Slice, ...]
    requires_instant_payment: bool = True
    payment_required_by: dt.datetime | None = None

    @property
    def stops(self) -> int:
        return sum(s.stops for s in self.slices)

    @property
    def holdable(self) -> bool:
        return not self.requires_instant_payment

    def expired(self, now: dt.datetime) -> bool:
        return now >= self.expires_at

    @classmethod
    def from_duffel(cls, data: dict[str, Any]) -> Offer:
        try:
            currency = data["total_currency"]
            pay = data.get("payment_requirements") or {}
            by = pay.get("payment_required_by")
            return cls(
                id=data["id"],
                total_amount=to_minor(data["total_amount"], currency),
                total_currency=currency,
                expires_at=_aware(_parse_time(data["expires_at"])),
                slices=tuple(Slice.from_duffel(s) for s in data["slices"]),
                requires_instant_payment=bool(pay.get("requires_instant_payment", True)),
                payment_required_by=_aware(_parse_time(by)) if by else None,
            )
        except (KeyError, TypeError) as exc:
            raise ProviderError("provider_error", f"malformed offer: {exc}") from None

    def to_duffel(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "total_amount": to_decimal(self.total_amount, self.total_currency),
            "total_currency": self.total_currency,
            "expires_at": _iso(self.expires_at),
            "slices": [s.to_duffel() for s in self.slices],
            "payment_requirements": {
                "requires_instant_payment": self.requires_instant_payment,
                "payment_required_by": _iso(self.payment_required_by)
                if self.payment_required_by
                else None,
            },
        }


@dataclass(frozen=True)
class Order:
    id: str
    booking_reference: str
    offer_id: str
    total_amount: int  # minor units
    total_currency: str
    type: str  # "instant" or "hold"
    metadata: dict[str, str] = field(default_factory=dict)
    # Duffel's ``payment_status``: a hold order awaits payment until ``payment_required_by``.
    awaiting_payment: bool = False
    payment_required_by: dt.datetime | None = None  # aware, UTC

    @property
    def idempotency_key(self) -> str:
        return self.metadata.get("idempotency_key", "")

    @classmethod
    def from_duffel(cls, data: dict[str, Any]) -> Order:
        try:
            currency = data["total_currency"]
            status = data.get("payment_status") or {}
            by = status.get("payment_required_by")
            return cls(
                id=data["id"],
                booking_reference=data.get("booking_reference") or "",
                offer_id=data.get("offer_id") or "",
                total_amount=to_minor(data["total_amount"], currency),
                total_currency=currency,
                type=data.get("type") or "instant",
                metadata=dict(data.get("metadata") or {}),
                awaiting_payment=bool(status.get("awaiting_payment", False)),
                payment_required_by=_aware(_parse_time(by)) if by else None,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ProviderError("provider_error", f"malformed order: {exc}") from None


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_search(origin: str, destination: str, date: dt.date, passengers: int) -> None:
    airport(origin)
    airport(destination)
    if origin.upper() == destination.upper():
        raise ProviderError("bad_request", "origin and destination are the same airport")
    if not isinstance(date, dt.date):
        raise ProviderError("bad_request", "the date must be a date")
    if not isinstance(passengers, int) or not 1 <= passengers <= 9:
        raise ProviderError("bad_request", "passengers must be between 1 and 9")


def _check_order(amount: int, currency: str, passengers: list[dict], key: str) -> None:
    if not isinstance(amount, int) or amount <= 0:
        raise ProviderError("bad_request", "the amount must be a positive integer (minor units)")
    if not isinstance(currency, str) or not re.match(r"^[A-Z]{3}$", currency):
        raise ProviderError("bad_request", "the currency must be an ISO 4217 code")
    if not passengers:
        raise ProviderError("bad_request", "an order needs passengers")
    if not isinstance(key, str) or not 8 <= len(key) <= 100:
        raise ProviderError("bad_request", "the idempotency key must be 8-100 characters")


_ORDER_ID = re.compile(r"^[A-Za-z0-9_]{1,100}$")


def _check_payment(order_id: str, amount: int, currency: str) -> None:
    _check_order_id(order_id)
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ProviderError("bad_request", "the amount must be a positive integer (minor units)")
    if not isinstance(currency, str) or not re.match(r"^[A-Z]{3}$", currency):
        raise ProviderError("bad_request", "the currency must be an ISO 4217 code")


def _check_order_id(order_id: str) -> None:
    # it goes into a URL path: letters, digits and _ only (Duffel's ids: ord_0000…)
    if not isinstance(order_id, str) or not _ORDER_ID.match(order_id):
        raise ProviderError("bad_request", "an order id is 1-100 letters, digits or _")


# --- Duffel -----------------------------------------------------------------------------------

# Duffel error codes (``errors[].code``) → ours.
_DUFFEL_CODES = {
    "offer_no_longer_available": "offer_expired",
    "offer_expired": "offer_expired",
    "price_changed": "price_changed",
    "total_amount_mismatch": "price_changed",
    "already_paid": "already_paid",  # pay_order: paid before, so done
}


class DuffelProvider:
    """Duffel's flights API through ``fetch`` (the shape of ``ctx.fetch``)."""

    name = "duffel"

    def __init__(self, fetch: Fetch, api_key: str, base_url: str = DUFFEL_URL) -> None:
        self._api = DuffelAPI(fetch, api_key, base_url, codes=_DUFFEL_CODES)

    async def _call(self, method: str, path: str, payload: Any = None) -> dict[str, Any]:
        return await self._api.call(method, path, payload)

    async def search(
        self, origin: str, destination: str, date: dt.date, passengers: int = 1
    ) -> list[Offer]:
        """Offers for a one-way trip, cheapest first; ``no_offers`` when there are none."""
        _check_search(origin, destination, date, passengers)
        request = {
            "slices": [
                {
                    "origin": origin.upper(),
                    "destination": destination.upper(),
                    "departure_date": date.isoformat(),
                }
            ],
            "passengers": [{"type": "adult"} for _ in range(passengers)],
            "cabin_class": "economy",
        }
        data = await self._call("POST", "/air/offer_requests?return_offers=true", request)
        offers = [Offer.from_duffel(o) for o in (data.get("data") or {}).get("offers") or []]
        if not offers:
            raise ProviderError("no_offers", f"no flights from {origin} to {destination} on {date}")
        return sorted(offers, key=lambda o: (o.total_amount, o.id))

    async def get_offer(self, offer_id: str) -> Offer:
        """The offer as it stands now (Duffel re-prices on this call)."""
        data = await self._call("GET", f"/air/offers/{offer_id}")
        return Offer.from_duffel(data.get("data") or {})

    async def reprice(self, offer: Offer, now: dt.datetime | None = None) -> Offer:
        """``get_offer``, refusing an expired offer (``offer_expired``) or a different price
        (``price_changed``, with the new offer on the error)."""
        fresh = await self.get_offer(offer.id)
        return _check_fresh(offer, fresh, now)

    async def create_order(
        self,
        offer_id: str,
        amount: int,
        currency: str,
        passengers: list[dict[str, Any]],
        idempotency_key: str,
        hold: bool = False,
    ) -> Order:
        """Book ``offer_id``: ``hold`` reserves without paying (holdable offers only), otherwise
        paid from the Duffel balance for exactly ``amount``. On ``timeout`` call ``find_order``
        before retrying."""
        _check_order(amount, currency, passengers, idempotency_key)
        payload: dict[str, Any] = {
            "type": "hold" if hold else "instant",
            "selected_offers": [offer_id],
            "passengers": passengers,
            "metadata": {"idempotency_key": idempotency_key},
        }
        if not hold:
            payload["payments"] = [
                {"type": "balance", "amount": to_decimal(amount, currency), "currency": currency}
            ]
        data = await self._call("POST", "/air/orders", payload)
        # Duffel refuses an instant payment that is not the offer's price (``price_changed``); a
        # hold order's amount is on the returned order for the caller to compare.
        return Order.from_duffel(data.get("data") or {})

    async def find_order_page(
        self, idempotency_key: str, after: str | None = None
    ) -> tuple[Order | None, str | None]:
        """One page of ``GET /air/orders`` (newest first, from the cursor ``after``) →
        ``(the order created with idempotency_key, None)`` when it is on the page, else
        ``(None, the next page's cursor, None on the last page)``. One request."""
        path = f"/air/orders?limit={ORDER_PAGE_LIMIT}" + (f"&after={after}" if after else "")
        data = await self._call("GET", path)
        for item in data.get("data") or []:
            if (item.get("metadata") or {}).get("idempotency_key") == idempotency_key:
                return Order.from_duffel(item), None
        return None, (data.get("meta") or {}).get("after") or None

    async def find_order(self, idempotency_key: str) -> Order | None:
        """The order created with ``idempotency_key``, or None: ``find_order_page`` page after
        page, at most ``ORDER_MAX_PAGES`` (several requests)."""
        after: str | None = None
        for _ in range(ORDER_MAX_PAGES):
            found, after = await self.find_order_page(idempotency_key, after)
            if found is not None or not after:
                return found
        return None

    async def get_order(self, order_id: str) -> Order:
        """The order as it stands (``GET /air/orders/{id}``): a hold order's
        ``awaiting_payment`` and ``payment_required_by`` among the rest."""
        _check_order_id(order_id)
        data = await self._call("GET", f"/air/orders/{order_id}")
        return Order.from_duffel(data.get("data") or {})

    async def pay_order(self, order_id: str, amount: int, currency: str) -> bool:
        """Pay a hold order from the Duffel balance, exactly ``amount`` of ``currency``
        (``POST /air/payments``; one request) → True when this call paid it, False when it was
        paid already (``already_paid``: done, nothing paid twice). A different amount is
        ``price_changed`` (nothing paid); after a ``timeout`` the payment may have been made:
        look the order up (``get_order``) before paying again."""
        _check_payment(order_id, amount, currency)
        payment = {
            "order_id": order_id,
            "payment": {
                "type": "balance",
                "amount": to_decimal(amount, currency),
                "currency": currency,
            },
        }
        try:
            await self._call("POST", "/air/payments", payment)
        except ProviderError as exc:
            if exc.code == "already_paid":
                return False
            raise
        return True


def _check_fresh(old: Offer, fresh: Offer, now: dt.datetime | None) -> Offer:
    if fresh.expired(now or dt.datetime.now(dt.UTC)):
        raise ProviderError("offer_expired", "the offer has expired; search again")
    if (fresh.total_amount, fresh.total_currency) != (old.total_amount, old.total_currency):
        raise ProviderError(
            "price_changed",
            f"the price changed from {to_decimal(old.total_amount, old.total_currency)} "
            f"to {to_decimal(fresh.total_amount, fresh.total_currency)} {fresh.total_currency}",
            offer=fresh,
        )
    return fresh


# --- where the sample providers keep things ------------------------------------------------


class Store(Protocol):
    """Where the sample providers keep what must outlive one process: JSON documents by
    collection and key (``providers.CtxStorage``: the app storage)."""

    async def get(self, collection: str, key: str) -> Any: ...

    async def put(self, collection: str, key: str, value: Any) -> None: ...

    async def create(self, collection: str, key: str, value: Any) -> Any:
        """Store ``value`` unless ``key`` is taken; returns what is stored now (the first one)."""
        ...

    async def find_one(self, collection: str, field: str, value: Any) -> Any: ...

    async def update(self, collection: str, key: str, edit: Callable[[Any], Any]) -> Any:
        """Apply ``edit(doc)`` in place to a fresh copy and write it (redone after a lost race);
        returns what ``edit`` returned."""
        ...


class MemoryStore:
    """A ``Store`` in a dict (one process only: tests and scripts)."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    async def get(self, collection: str, key: str) -> Any:
        return json.loads(json.dumps(self.data.get(collection, {}).get(key)))

    async def put(self, collection: str, key: str, value: Any) -> None:
        self.data.setdefault(collection, {})[key] = json.loads(json.dumps(value))

    async def create(self, collection: str, key: str, value: Any) -> Any:
        items = self.data.setdefault(collection, {})
        items.setdefault(key, json.loads(json.dumps(value)))
        return await self.get(collection, key)

    async def find_one(self, collection: str, field: str, value: Any) -> Any:
        for doc in self.data.get(collection, {}).values():
            if isinstance(doc, dict) and doc.get(field) == value:
                return json.loads(json.dumps(doc))
        return None

    async def update(self, collection: str, key: str, edit: Callable[[Any], Any]) -> Any:
        doc = await self.get(collection, key)
        outcome = edit(doc)
        if doc is not None:
            await self.put(collection, key, doc)
        return outcome


# --- the sample provider ----------------------------------------------------------------------

SAMPLE_HUBS = ("FRA", "AMS", "CDG", "IST", "DXB", "ATL", "ORD", "SIN", "HKG", "MAD", "LHR")
SAMPLE_CARRIERS = ("ZZ", "XS", "ZY")  # not real airlines
SAMPLE_CURRENCY = "EUR"
SAMPLE_OFFER_TTL = dt.timedelta(minutes=30)
SAMPLE_HOLD_FOR = dt.timedelta(hours=24)
SAMPLE_OFFERS, SAMPLE_ORDERS = "sample_offers", "sample_orders"  # the Store's collections


def _h(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


class SampleProvider:
    """**Sample** flights for offline use: deterministic, made up, not bookable for real.

    Between any two known airports on a date: a morning and an evening direct flight, a one-stop
    itinerary via a hub (skipped when no hub fits), and the evening flight holdable for 24 h.
    Prices grow with the haversine distance; times are local in each airport's zone. Its offers
    and orders live in a ``Store`` — the app storage in the app (``providers.CtxStorage``), so an
    offer searched on one node is booked on the other and an order made before a restart is found
    after it; ``MemoryStore`` by default. Orders are Duffel-shaped, idempotent by key, with
    ``payment_status`` (a hold order awaits payment until ``pay_order``)."""

    name = "sample"

    def __init__(
        self,
        store: Store | None = None,
        now: Callable[[], dt.datetime] | None = None,
        label: str = "Sample flights (not real)",
    ) -> None:
        self._store = store if store is not None else MemoryStore()
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self.label = label

    async def search(
        self, origin: str, destination: str, date: dt.date, passengers: int = 1
    ) -> list[Offer]:
        _check_search(origin, destination, date, passengers)
        origin, destination = origin.upper(), destination.upper()
        now = self._now()
        km = distance_km(origin, destination)
        carrier = SAMPLE_CARRIERS[_h(origin, destination) % len(SAMPLE_CARRIERS)]
        offers = []
        for n, (hour, holdable) in enumerate(((7, False), (18, True))):
            minute = 5 * (_h(origin, destination, date, n) % 12)
            leg = self._segment(origin, destination, date, hour, minute, carrier, n)
            price = self._price(km, passengers, 1.0 + 0.15 * n)
            offers.append(self._offer(origin, destination, date, n, (leg,), price, holdable, now))
        hub = self._hub(origin, destination, km)
        if hub:
            first = self._segment(origin, hub, date, 10, 30, carrier, 2)
            connect = self._local_utc(first.arriving_local) + dt.timedelta(minutes=95)
            second_start = connect.astimezone(ZoneInfo(airport_zone(hub)))
            second = self._segment_at(hub, destination, second_start, carrier, 3)
            price = self._price(distance_km(origin, hub) + distance_km(hub, destination), 1, 0.8)
            price = price * passengers
            offers.append(
                self._offer(origin, destination, date, 2, (first, second), price, False, now)
            )
        for offer in offers:
            await self._store.put(SAMPLE_OFFERS, offer.id, offer.to_duffel())
        return sorted(offers, key=lambda o: (o.total_amount, o.id))

    async def get_offer(self, offer_id: str) -> Offer:
        raw = await self._store.get(SAMPLE_OFFERS, offer_id) if offer_id else None
        if raw is None:
            raise ProviderError("offer_expired", "no such offer; search again")
        return Offer.from_duffel(raw)

    async def reprice(self, offer: Offer, now: dt.datetime | None = None) -> Offer:
        return _check_fresh(offer, await self.get_offer(offer.id), now or self._now())

    async def find_order(self, idempotency_key: str) -> Order | None:
        raw = await self._store.get(SAMPLE_ORDERS, idempotency_key)
        return Order.from_duffel(raw) if raw else None

    async def find_order_page(
        self, idempotency_key: str, after: str | None = None
    ) -> tuple[Order | None, str | None]:
        """As ``DuffelProvider.find_order_page``: the stored orders are one page."""
        return await self.find_order(idempotency_key), None

    async def create_order(
        self,
        offer_id: str,
        amount: int,
        currency: str,
        passengers: list[dict[str, Any]],
        idempotency_key: str,
        hold: bool = False,
    ) -> Order:
        _check_order(amount, currency, passengers, idempotency_key)
        existing = await self._store.get(SAMPLE_ORDERS, idempotency_key)
        if existing is None:
            offer = await self.reprice(await self.get_offer(offer_id), self._now())
            if (amount, currency) != (offer.total_amount, offer.total_currency):
                raise ProviderError("price_changed", "the amount is not the offer's price")
            if hold and not offer.holdable:
                raise ProviderError("bad_request", "this offer cannot be held")
            n = _h("order", idempotency_key)
            pay_by = offer.payment_required_by if hold else None
            order = {
                "id": f"ord_sample_{n % 10**12:012d}",
                "booking_reference": "".join(
                    "ABCDEFGHJKLMNPQRSTUVWXYZ"[(n >> (5 * i)) % 24] for i in range(6)
                ),
                "offer_id": offer_id,
                "type": "hold" if hold else "instant",
                "total_amount": to_decimal(amount, currency),
                "total_currency": currency,
                "metadata": {"idempotency_key": idempotency_key},
                "passengers": passengers,
                "slices": offer.to_duffel()["slices"],
                "payment_status": {
                    "awaiting_payment": hold,
                    "payment_required_by": _iso(pay_by) if pay_by else None,
                },
            }
            existing = await self._store.create(SAMPLE_ORDERS, idempotency_key, order)
        if existing.get("offer_id") != offer_id:
            raise ProviderError("bad_request", "that idempotency key booked another offer")
        return Order.from_duffel(existing)

    async def get_order(self, order_id: str) -> Order:
        """The order as it stands (with ``awaiting_payment`` / ``payment_required_by``)."""
        _check_order_id(order_id)
        found = await self._store.find_one(SAMPLE_ORDERS, "id", order_id)
        if found is None:
            raise ProviderError("provider_error", f"no order {order_id}")
        return Order.from_duffel(found)

    async def pay_order(self, order_id: str, amount: int, currency: str) -> bool:
        """Pay a held order once, for exactly its amount (as ``DuffelProvider.pay_order``: True
        when this call paid it, False when it was paid already; ``price_changed``;
        ``offer_expired`` past its payment deadline) — the stored order, so any process pays it
        at most once."""
        _check_payment(order_id, amount, currency)
        order = await self.get_order(order_id)
        moment = self._now()

        def pay(doc: dict[str, Any] | None) -> str:
            status = (doc or {}).get("payment_status") or {}
            if doc is None or not status.get("awaiting_payment"):
                return "already_paid"
            due = to_minor(doc["total_amount"], doc["total_currency"])
            if (due, doc["total_currency"]) != (amount, currency):
                return "price_changed"
            by = status.get("payment_required_by")
            if by and moment >= _aware(_parse_time(by)):
                return "offer_expired"
            status["awaiting_payment"] = False
            status["paid_at"] = _iso(moment)
            return "paid"

        outcome = await self._store.update(SAMPLE_ORDERS, order.idempotency_key, pay)
        if outcome == "price_changed":
            raise ProviderError(outcome, "the amount is not the order's price")
        if outcome == "offer_expired":
            raise ProviderError(outcome, "the hold expired before it was paid")
        return outcome == "paid"

    # -- helpers

    @staticmethod
    def _price(km: float, passengers: int, factor: float) -> int:
        per_person = int((2900 + km * 9) * factor) // 100 * 100 + 99  # "…x.99" prices, cents
        return per_person * passengers

    @staticmethod
    def _duration(km: float) -> dt.timedelta:
        return dt.timedelta(minutes=int(30 + km / 800 * 60) // 5 * 5)

    @staticmethod
    def _local_utc(value: dt.datetime) -> dt.datetime:
        return value.astimezone(dt.UTC)

    def _segment(
        self, a: str, b: str, date: dt.date, hour: int, minute: int, carrier: str, n: int
    ) -> Segment:
        start = dt.datetime.combine(date, dt.time(hour, minute), ZoneInfo(airport_zone(a)))
        # a wall time skipped by a DST jump does not exist: normalise it through UTC
        start = start.astimezone(dt.UTC).astimezone(ZoneInfo(airport_zone(a)))
        return self._segment_at(a, b, start, carrier, n)

    def _segment_at(self, a: str, b: str, start: dt.datetime, carrier: str, n: int) -> Segment:
        end = (start.astimezone(dt.UTC) + self._duration(distance_km(a, b))).astimezone(
            ZoneInfo(airport_zone(b))
        )
        return Segment(
            origin=a,
            destination=b,
            departing_at=start.replace(tzinfo=None),
            arriving_at=end.replace(tzinfo=None),
            origin_zone=airport_zone(a),
            destination_zone=airport_zone(b),
            carrier=carrier,
            flight_number=str(100 + _h(a, b, n) % 900),
        )

    @staticmethod
    def _hub(origin: str, destination: str, km: float) -> str | None:
        best = None
        for hub in SAMPLE_HUBS:
            if hub in (origin, destination):
                continue
            detour = distance_km(origin, hub) + distance_km(hub, destination)
            if detour <= km * 1.5 + 300 and (best is None or detour < best[0]):
                best = (detour, hub)
        return best[1] if best else None

    def _offer(
        self,
        origin: str,
        destination: str,
        date: dt.date,
        n: int,
        segments: tuple[Segment, ...],
        price: int,
        holdable: bool,
        now: dt.datetime,
    ) -> Offer:
        return Offer(
            id=f"off_sample_{_h(origin, destination, date, n, price) % 10**12:012d}",
            total_amount=price,
            total_currency=SAMPLE_CURRENCY,
            expires_at=now + SAMPLE_OFFER_TTL,
            slices=(Slice(origin, destination, segments),),
            requires_instant_payment=not holdable,
            payment_required_by=now + SAMPLE_HOLD_FOR if holdable else None,
        )
