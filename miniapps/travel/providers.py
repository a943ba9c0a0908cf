"""Which flight and stay provider the app talks to, and what booking asks of it: ``reprice`` an
offer the app stored (``offers/<id>``, written by ``search``) and book it one ``step`` at a time.

The app setting ``flights_provider`` picks it: ``sample`` (the default: labelled made-up flights
and stays that work offline) or ``duffel`` (Duffel's API through ``ctx.fetch``, with the settings
``duffel_api_key`` and ``duffel_api_url``). The sample providers keep what they made in the app
storage, so two app processes (two gateway nodes) and a restart see the same offers and orders:
``sample_offers/<offer id>`` (flights), ``sample_orders/<idempotency key>``, ``sample_rates``,
``sample_quotes`` and ``sample_stay_bookings`` (stays).

**At most one provider request per step.** An app invocation must answer within 3 s and one
request may take the host's whole 2.5 s fetch timeout, so booking never makes two requests that
may be slow in one invocation: ``step(ctx, offer_doc, key, phase, …)`` makes exactly one (or
none) and says what comes next — ``booking`` runs one step per firing of its ``booking.finish``
timer and keeps the phase on the booking. The phases:

- ``reserve``: a holdable flight is held without paying (a hold order, idempotency key
  ``<key>-hold``) → done ``{order_id, pay_by_ms, reference}``; its answer lost →
  ``reserve_lookup``: one page of the orders list, looking for that key (found → done; not on
  this page → the next page; on none → ``reserve`` again).
- ``quote`` (stays): the rate priced again, once per key (``stay_quotes/<key>``) → ``create``;
  a price not the offer's is ``price_changed``.
- ``create``: the order (flights: instant, paid from the balance, key ``<key>``), or the payment
  of the held order (``hold_order``), or the stay booking of the quote → done
  ``{order_id, reference}``; its answer lost → ``lookup``: the order by its key (one page at a
  time), the held order's payment status, or the stay booking by its quote (found or paid →
  done; not made → ``create`` again).

A ``create`` (or ``reserve``) whose answer was lost is always followed by its look-up before it
is sent again, so nothing is ordered, paid or booked twice. The sample providers do no network
I/O: their steps complete at once, through the same phases.

A ``ProviderError`` reaches callers as ``TravelError`` with the same code; a step's ``timeout``
is its outcome ``"timeout"`` (with the phase to run next), ``reprice``'s is ``provider_timeout``
(try again: nothing was written).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import clock
import flights as air
import stays as hotels
import store
import texts
from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency
from flights import Offer, ProviderError
from store import TravelError

from sdk.documents import update_doc
from sdk.errors import Conflict

log = logging.getLogger("travel.providers")

OFFERS = "offers"
STAY_QUOTES = "stay_quotes"
PROVIDERS = ("sample", "duffel")
# Who the hotel writes to about a stay booking (the app collects no guest's address).
STAYS_CONTACT_EMAIL = "travel-bookings@example.invalid"
STAYS_CONTACT_PHONE = "+10000000000"

TIMEOUT_MESSAGE = "The travel provider did not answer in time: try again in a minute."


# --- choosing a provider ----------------------------------------------------------------------


def kind(ctx) -> str:
    """``"sample"`` or ``"duffel"`` (the ``flights_provider`` setting)."""
    name = (ctx.config.get("flights_provider") or "sample").strip().lower()
    if name not in PROVIDERS:
        raise TravelError(
            "provider_error",
            f"Unknown flights_provider {name!r}: an administrator must set sample or duffel.",
        )
    return name


def _duffel_settings(ctx) -> tuple[str, str]:
    key = (ctx.config.get("duffel_api_key") or "").strip()
    if not key:
        raise TravelError("provider_error", "an administrator must set duffel_api_key")
    return key, (ctx.config.get("duffel_api_url") or air.DUFFEL_URL).strip()


def duffel_api(ctx) -> air.DuffelAPI:
    """Duffel's HTTP client with the app's settings (``changes`` registers its webhook with it)."""
    key, url = _duffel_settings(ctx)
    return air.DuffelAPI(ctx.fetch, key, url)


def flights(ctx) -> air.DuffelProvider | air.SampleProvider:
    """The flights provider the settings name."""
    if kind(ctx) == "duffel":
        key, url = _duffel_settings(ctx)
        return air.DuffelProvider(ctx.fetch, key, url)
    return air.SampleProvider(CtxStorage(ctx), now=now, label=texts.SAMPLE_LABEL)


def stays(ctx, currency: str = "EUR") -> hotels.DuffelStays | hotels.SampleStays:
    """The stays provider the settings name (the sample one prices in ``currency``)."""
    if kind(ctx) == "duffel":
        key, url = _duffel_settings(ctx)
        return hotels.DuffelStays(ctx.fetch, key, url)
    return hotels.SampleStays(CtxStorage(ctx), currency=currency, now=now)


def label(ctx) -> str | None:
    """``texts.SAMPLE_LABEL`` when the sample providers answer, else None."""
    return texts.SAMPLE_LABEL if kind(ctx) == "sample" else None


def now() -> dt.datetime:
    return dt.datetime.fromtimestamp(clock.now_ms() / 1000, dt.UTC)


def to_ms(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


# --- errors and money -------------------------------------------------------------------------


def travel_error(exc: ProviderError) -> TravelError:
    """The ``TravelError`` a provider's refusal becomes (``timeout`` → ``provider_timeout``)."""
    if exc.code == "timeout":
        return TravelError("provider_timeout", TIMEOUT_MESSAGE)
    message = exc.message[:1].upper() + exc.message[1:]
    if exc.code == "provider_error":
        message = f"The travel provider refused: {exc.message}"
    return TravelError(exc.code, message if message.endswith(".") else message + ".")


async def _calling(work):
    try:
        return await work
    except ProviderError as exc:
        raise travel_error(exc) from None


def babel_locale(name: str | None) -> Locale:
    try:
        return Locale.parse((name or "en").replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return Locale.parse("en")


def format_money(amount: int, currency: str, locale: str | None) -> str:
    """``18999, "EUR", "pt-PT"`` → ``"189,99 €"`` (babel, the reader's locale)."""
    value = Decimal(air.to_decimal(amount, currency))
    return format_currency(value, currency, locale=babel_locale(locale))


# --- the app storage as the sample providers' store -------------------------------------------


class CtxStorage:
    """``stays.Store`` on the app storage of an invocation: shared by every app process."""

    def __init__(self, ctx) -> None:
        self._ctx = ctx

    async def get(self, collection: str, key: str) -> Any:
        return await self._ctx.storage_get(collection, key)

    async def put(self, collection: str, key: str, value: Any) -> None:
        await self._ctx.storage_put(collection, key, value)

    async def create(self, collection: str, key: str, value: Any) -> Any:
        # Only if nobody stored one: two processes creating at once keep the first.
        with contextlib.suppress(Conflict):
            await self._ctx.storage_update(
                collection, key, set=value, expected_version=0, upsert=True
            )
        return await self._ctx.storage_get(collection, key)

    async def find_one(self, collection: str, field: str, value: Any) -> Any:
        found = await self._ctx.storage_find(collection, {field: value}, limit=1)
        return found[0]["value"] if found else None

    async def update(self, collection: str, key: str, edit) -> Any:
        outcome, _doc = await update_doc(self._ctx, collection, key, edit)
        return outcome


# --- what booking asks -------------------------------------------------------------------------


def _offer_provider(ctx, offer_doc: dict[str, Any]):
    provider = flights(ctx)
    if offer_doc.get("provider") != provider.name:
        raise TravelError(
            "offer_expired", "The travel provider changed since this search: search again."
        )
    return provider


def with_flight_offer(offer_doc: dict[str, Any], offer: Offer) -> dict[str, Any]:
    """``offer_doc`` with the price, expiry and hold terms of ``offer`` (a fresh copy)."""
    fresh = copy.deepcopy(offer_doc)
    fresh["total"] = {"amount": offer.total_amount, "currency": offer.total_currency}
    fresh["expires_ms"] = to_ms(offer.expires_at)
    fresh["holdable"] = offer.holdable
    fresh["pay_by_ms"] = to_ms(offer.payment_required_by) if offer.holdable else None
    fresh["raw"] = offer.to_duffel()
    return fresh


async def _price_changed(ctx, fresh: dict[str, Any]) -> TravelError:
    await ctx.storage_put(OFFERS, fresh["id"], fresh)
    total = fresh["total"]
    price = format_money(total["amount"], total["currency"], ctx.locale)
    return TravelError(
        "price_changed",
        f"The price changed: {fresh['title']} now costs {price}. "
        "Press Book again to book at the new price, or search again.",
    )


async def reprice(ctx, offer_doc: dict[str, Any]) -> dict[str, Any]:
    """The offer as the provider prices it now, re-stored in ``offers/<id>``. Raises
    ``TravelError`` ``offer_expired`` (gone, expired, or the group changed since the search),
    ``price_changed`` (the new price is stored and named), ``provider_timeout``,
    ``provider_error``."""
    if offer_doc.get("kind") == "stay":
        fresh = await _reprice_stay(ctx, offer_doc)
    else:
        fresh = await _reprice_flight(ctx, offer_doc)
    await ctx.storage_put(OFFERS, fresh["id"], fresh)
    return fresh


async def _reprice_flight(ctx, offer_doc: dict[str, Any]) -> dict[str, Any]:
    trip = await store.load(ctx, offer_doc.get("trip_id") or "")
    travellers = len((trip or {}).get("travellers") or {})
    if trip is not None and travellers != offer_doc.get("passengers"):
        raise TravelError(
            "offer_expired",
            f"The group changed since this search ({travellers} travellers now, "
            f"{offer_doc.get('passengers')} in the offer): search again.",
        )
    provider = _offer_provider(ctx, offer_doc)
    try:
        offer = Offer.from_duffel(offer_doc["raw"])
        fresh = await provider.reprice(offer, now())
    except ProviderError as exc:
        if exc.code == "price_changed" and exc.offer is not None:
            raise await _price_changed(ctx, with_flight_offer(offer_doc, exc.offer)) from None
        raise travel_error(exc) from None
    return with_flight_offer(offer_doc, fresh)


async def _reprice_stay(ctx, offer_doc: dict[str, Any]) -> dict[str, Any]:
    if clock.now_ms() >= int(offer_doc.get("expires_ms") or 0):
        raise TravelError("offer_expired", "This stay offer has expired: search again.")
    total = offer_doc["total"]
    provider = stays(ctx, total["currency"])
    if offer_doc.get("provider") != provider.name:
        raise TravelError(
            "offer_expired", "The travel provider changed since this search: search again."
        )
    quote = await _calling(provider.quote(offer_doc["raw"]["rate_id"]))
    fresh = copy.deepcopy(offer_doc)
    fresh["raw"]["quote_id"] = quote.id
    if (quote.total_amount, quote.total_currency) != (total["amount"], total["currency"]):
        fresh["total"] = {"amount": quote.total_amount, "currency": quote.total_currency}
        raise await _price_changed(ctx, fresh)
    return fresh


async def _names(ctx, offer_doc: dict[str, Any], count: int) -> list[str]:
    """The travellers' names, ``count`` of them (padded when the group shrank)."""
    trip = await store.load(ctx, offer_doc.get("trip_id") or "") or {}
    names = [
        str((person or {}).get("name") or "").strip() or f"Traveller {n + 1}"
        for n, person in enumerate((trip.get("travellers") or {}).values())
    ]
    names += [f"Traveller {n + 1}" for n in range(len(names), count)]
    return names[: max(count, 1)]


def _person(name: str) -> dict[str, str]:
    given, _, family = name.partition(" ")
    return {"given_name": given, "family_name": family.strip() or given}


async def _passengers(ctx, offer_doc: dict[str, Any]) -> list[dict[str, Any]]:
    count = int(offer_doc.get("passengers") or 1)
    return [{"type": "adult", **_person(n)} for n in await _names(ctx, offer_doc, count)]


# --- booking, one step at a time ------------------------------------------------------------

RESERVE, RESERVE_LOOKUP, QUOTE, CREATE, LOOKUP = (
    "reserve", "reserve_lookup", "quote", "create", "lookup",
)  # fmt: skip
PHASES = (RESERVE, RESERVE_LOOKUP, QUOTE, CREATE, LOOKUP)
# A phase that makes something at the provider → the look-up that finds it when its answer is lost.
CREATING = {RESERVE: RESERVE_LOOKUP, CREATE: LOOKUP}
# The phase after a step timed out: a creating one is looked up, any other tried again.
AFTER_TIMEOUT = {RESERVE: RESERVE_LOOKUP, RESERVE_LOOKUP: RESERVE_LOOKUP, QUOTE: QUOTE,
                 CREATE: LOOKUP, LOOKUP: LOOKUP}  # fmt: skip
LOOKUP_MAX_PAGES = air.ORDER_MAX_PAGES  # pages of the provider's list one look-up reads


@dataclass(frozen=True)
class Step:
    """What one ``step`` did: ``outcome`` ``"done"`` (``result``), ``"next"`` (run ``phase``
    next, with ``cursor`` for a look-up's next page) or ``"timeout"`` (the request timed out:
    run ``phase`` next)."""

    outcome: str
    phase: str | None = None
    result: dict[str, Any] | None = None
    cursor: dict[str, Any] | None = None


def reserves(offer_doc: dict[str, Any]) -> bool:
    """Whether booking the offer starts by reserving it (a holdable flight: ``reserve``)."""
    return offer_doc.get("kind") == "flight" and bool(offer_doc.get("holdable"))


def first_phase(offer_doc: dict[str, Any]) -> str:
    """The phase that books the offer once everyone's share is held (``quote`` for a stay)."""
    return QUOTE if offer_doc.get("kind") == "stay" else CREATE


def hold_key(key: str) -> str:
    """The idempotency key of the hold order reserved for booking ``key``."""
    return f"{key}-hold"


async def step(
    ctx,
    offer_doc: dict[str, Any],
    key: str,
    phase: str,
    *,
    hold_order: dict[str, Any] | None = None,
    cursor: dict[str, Any] | None = None,
) -> Step:
    """Run booking ``key``'s ``phase`` for the offer: at most one request to the provider (see
    the module's doc). ``hold_order`` (``{order_id, reference}``) is the reserved order a
    ``create`` pays; ``cursor`` the look-up's place (``Step.cursor`` of the step before). A
    definitive refusal raises ``TravelError`` (``offer_expired``, ``price_changed``,
    ``provider_error`` …); a timeout is the outcome ``"timeout"``."""
    if phase not in PHASES:
        raise TravelError("provider_error", f"Unknown booking step {phase!r}.")
    try:
        if offer_doc.get("kind") == "stay":
            return await _stay_step(ctx, offer_doc, key, phase, cursor)
        return await _flight_step(ctx, offer_doc, key, phase, hold_order, cursor)
    except ProviderError as exc:
        if exc.code == "timeout":
            return Step("timeout", AFTER_TIMEOUT[phase])
        raise travel_error(exc) from None


def _done(result: dict[str, Any]) -> Step:
    return Step("done", result=result)


def _not_on_page(after: str | None, cursor: dict[str, Any] | None, phase: str, again: str) -> Step:
    """A look-up page without it: the next page (``phase``), else ``again`` (not made)."""
    pages = int((cursor or {}).get("pages") or 0) + 1
    if after and pages < LOOKUP_MAX_PAGES:
        return Step("next", phase, cursor={"after": after, "pages": pages})
    return Step("next", again)


async def _flight_step(ctx, offer_doc, key, phase, hold_order, cursor) -> Step:
    provider = _offer_provider(ctx, offer_doc)
    offer = Offer.from_duffel(offer_doc["raw"])
    amount, currency = offer.total_amount, offer.total_currency
    after = (cursor or {}).get("after")
    if phase == RESERVE:
        passengers = await _passengers(ctx, offer_doc)
        held = await provider.create_order(
            offer.id, amount, currency, passengers, hold_key(key), True
        )
        return _done(_reserved(held, offer, offer_doc))
    if phase == RESERVE_LOOKUP:
        found, after = await provider.find_order_page(hold_key(key), after)
        if found is not None:
            return _done(_reserved(found, offer, offer_doc))
        return _not_on_page(after, cursor, RESERVE_LOOKUP, RESERVE)
    if phase == QUOTE:  # nothing to quote for a flight: the order is made from the offer
        return Step("next", CREATE)
    if hold_order:
        order_id = hold_order["order_id"]
        if phase == CREATE:
            if getattr(provider, "pay_order", None) is None:
                raise TravelError("provider_error", "This provider cannot pay a held order.")
            await provider.pay_order(order_id, amount, currency)  # paid already: done too
            if not hold_order.get("reference"):
                return Step("next", LOOKUP)  # the reference is on the order
            return _done({"order_id": order_id, "reference": hold_order["reference"]})
        order = await provider.get_order(order_id)
        if order.awaiting_payment:
            return Step("next", CREATE)
        return _done({"order_id": order.id or order_id, "reference": order.booking_reference})
    if phase == CREATE:
        passengers = await _passengers(ctx, offer_doc)
        order = await provider.create_order(offer.id, amount, currency, passengers, key)
        return _done({"order_id": order.id, "reference": order.booking_reference})
    found, after = await provider.find_order_page(key, after)
    if found is not None:
        return _done({"order_id": found.id, "reference": found.booking_reference})
    return _not_on_page(after, cursor, LOOKUP, CREATE)


def _reserved(order: air.Order, offer: Offer, offer_doc: dict[str, Any]) -> dict[str, Any]:
    """The hold order as the booking keeps it; one not at the offer's price is refused."""
    if (order.total_amount, order.total_currency) != (offer.total_amount, offer.total_currency):
        raise TravelError("price_changed", "The airline holds it at another price: search again.")
    # The order's own payment deadline when it tells one, else the offer's.
    pay_by = order.payment_required_by or offer.payment_required_by
    return {
        "order_id": order.id,
        "pay_by_ms": to_ms(pay_by) or offer_doc.get("pay_by_ms"),
        "reference": order.booking_reference,
    }


async def _stay_step(ctx, offer_doc, key, phase, cursor) -> Step:
    total = offer_doc["total"]
    provider = stays(ctx, total["currency"])
    if offer_doc.get("provider") != provider.name:
        raise TravelError(
            "offer_expired", "The travel provider changed since this search: search again."
        )
    # One quote per key, kept: the booking is made from it and looked up by it.
    quoted = await ctx.storage_get(STAY_QUOTES, key)
    if phase in (RESERVE, RESERVE_LOOKUP):  # a stay is not reserved
        return Step("next", QUOTE if quoted is None else CREATE)
    if phase == QUOTE or quoted is None:
        if quoted is not None:
            return Step("next", CREATE)
        quote = await provider.quote(offer_doc["raw"]["rate_id"])
        if (quote.total_amount, quote.total_currency) != (total["amount"], total["currency"]):
            price = format_money(quote.total_amount, quote.total_currency, ctx.locale)
            raise TravelError("price_changed", f"The price changed: the stay now costs {price}.")
        await CtxStorage(ctx).create(
            STAY_QUOTES,
            key,
            {"quote_id": quote.id, "offer_id": offer_doc["id"], "created_at": clock.now_ms()},
        )
        return Step("next", CREATE)
    quote_id = quoted["quote_id"]
    if phase == CREATE:
        rooms = int(offer_doc["raw"].get("rooms") or 1)  # a guest's name per room
        guests = [_person(n) for n in await _names(ctx, offer_doc, rooms)]
        booking = await provider.create_booking(
            quote_id,
            guests,
            ctx.config.get("stays_contact_email") or STAYS_CONTACT_EMAIL,
            ctx.config.get("stays_contact_phone") or STAYS_CONTACT_PHONE,
            key,
        )
        return _done({"order_id": booking.id, "reference": booking.reference})
    found, after = await provider.find_booking_page(quote_id, key, (cursor or {}).get("after"))
    if found is not None:
        return _done({"order_id": found.id, "reference": found.reference})
    return _not_on_page(after, cursor, LOOKUP, CREATE)


async def book(
    ctx, offer_doc: dict[str, Any], key: str, hold_order_id: str | None = None
) -> dict[str, Any]:
    """Every ``step`` of booking the offer in one go → ``{"order_id", "reference"}``, idempotent
    by ``key`` (with ``hold_order_id`` the held order is paid). **Several requests**: for
    scripts and tests only — never in an app invocation, which has 3 s (``booking`` runs one
    step per timer firing). Raises ``TravelError`` ``provider_timeout`` after two timeouts, or a
    definitive code."""
    hold_order = {"order_id": hold_order_id} if hold_order_id else None
    phase, cursor, timeouts = first_phase(offer_doc), None, 0
    for _ in range(4 * LOOKUP_MAX_PAGES):
        done = await step(ctx, offer_doc, key, phase, hold_order=hold_order, cursor=cursor)
        if done.outcome == "done":
            assert done.result is not None
            return {"order_id": done.result["order_id"], "reference": done.result["reference"]}
        if done.outcome == "timeout":
            timeouts += 1
            if timeouts >= 2:
                raise TravelError("provider_timeout", TIMEOUT_MESSAGE)
        assert done.phase is not None
        phase, cursor = done.phase, done.cursor
    raise TravelError("provider_error", "The travel provider did not settle the booking.")
