"""Which flight and stay provider the app talks to, and the three things booking asks of it:
``reprice``, ``hold`` and ``book`` an offer the app stored (``offers/<id>``, written by ``search``).

The app setting ``flights_provider`` picks it: ``sample`` (the default: labelled made-up flights
and stays that work offline) or ``duffel`` (Duffel's API through ``ctx.fetch``, with the settings
``duffel_api_key`` and ``duffel_api_url``). The sample providers keep what they made in the app
storage, so two app processes (two gateway nodes) and a restart see the same offers and orders:
``sample_offers/<offer id>`` (flights), ``sample_orders/<idempotency key>``, ``sample_rates``,
``sample_quotes`` and ``sample_stay_bookings`` (stays).

Booking is idempotent by a key the caller gives (a booking id): flights go through
``flights.book_once`` (look the order up, create it, look it up again after a timeout); a stay is
quoted once per key (``stay_quotes/<key>``) and booked through ``stays.book_once`` (Duffel Stays
has no idempotency key: the booking is looked up by its quote). A held flight order is paid, not
booked again, once everyone's share is in.

A ``ProviderError`` reaches callers as ``TravelError`` with the same code, except ``timeout`` →
``provider_timeout`` (try later: nothing was lost, nothing is booked twice).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import logging
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


async def hold(ctx, offer_doc: dict[str, Any], key: str) -> dict[str, Any] | None:
    """Reserve a holdable flight offer without paying (a Duffel ``hold`` order, idempotent by
    ``key``) → ``{"order_id", "pay_by_ms"}``; None when the offer cannot be held."""
    if offer_doc.get("kind") != "flight" or not offer_doc.get("holdable"):
        return None
    provider = _offer_provider(ctx, offer_doc)
    offer = Offer.from_duffel(offer_doc["raw"])
    passengers = await _passengers(ctx, offer_doc)
    order = await _calling(
        air.book_once(
            provider, offer.id, offer.total_amount, offer.total_currency, passengers, key, True
        )
    )
    # The order's own payment deadline when it tells one, else the offer's.
    pay_by = order.payment_required_by or offer.payment_required_by
    return {"order_id": order.id, "pay_by_ms": to_ms(pay_by) or offer_doc.get("pay_by_ms")}


async def book(
    ctx, offer_doc: dict[str, Any], key: str, hold_order_id: str | None = None
) -> dict[str, Any]:
    """Book the offer once → ``{"order_id", "reference"}``: idempotent by ``key`` (the order or
    stay booking is looked up before it is made, and after a timeout — never made twice); with
    ``hold_order_id`` the held order is paid instead. Raises ``TravelError``
    ``provider_timeout`` (try later, nothing lost) or a definitive code (``offer_expired``,
    ``price_changed``, ``provider_error``)."""
    if offer_doc.get("kind") == "stay":
        return await _book_stay(ctx, offer_doc, key)
    provider = _offer_provider(ctx, offer_doc)
    offer = Offer.from_duffel(offer_doc["raw"])
    if hold_order_id:
        return await _pay_hold(provider, hold_order_id, offer.total_amount, offer.total_currency)
    passengers = await _passengers(ctx, offer_doc)
    order = await _calling(
        air.book_once(provider, offer.id, offer.total_amount, offer.total_currency, passengers, key)
    )
    return {"order_id": order.id, "reference": order.booking_reference}


async def _pay_hold(provider, order_id: str, amount: int, currency: str) -> dict[str, Any]:
    """Pay a held order once (``pay_order`` answers a paid order as it stands, and looks the
    order up after a timeout before passing the timeout on)."""
    if getattr(provider, "pay_order", None) is None:
        raise TravelError("provider_error", "This provider cannot pay a held order.")
    order = await _calling(provider.pay_order(order_id, amount, currency))
    return {"order_id": order.id or order_id, "reference": order.booking_reference}


async def _book_stay(ctx, offer_doc: dict[str, Any], key: str) -> dict[str, Any]:
    total = offer_doc["total"]
    provider = stays(ctx, total["currency"])
    if offer_doc.get("provider") != provider.name:
        raise TravelError(
            "offer_expired", "The travel provider changed since this search: search again."
        )
    # One quote per key, kept: the booking is looked up by it, before and after a timeout.
    quoted = await ctx.storage_get(STAY_QUOTES, key)
    if quoted is None:
        quote = await _calling(provider.quote(offer_doc["raw"]["rate_id"]))
        if (quote.total_amount, quote.total_currency) != (total["amount"], total["currency"]):
            price = format_money(quote.total_amount, quote.total_currency, ctx.locale)
            raise TravelError("price_changed", f"The price changed: the stay now costs {price}.")
        quoted = await CtxStorage(ctx).create(
            STAY_QUOTES,
            key,
            {"quote_id": quote.id, "offer_id": offer_doc["id"], "created_at": clock.now_ms()},
        )
    rooms = int(offer_doc["raw"].get("rooms") or 1)  # a guest's name per room
    guests = [_person(n) for n in await _names(ctx, offer_doc, rooms)]
    booking = await _calling(
        hotels.book_once(
            provider,
            quoted["quote_id"],
            guests,
            ctx.config.get("stays_contact_email") or STAYS_CONTACT_EMAIL,
            ctx.config.get("stays_contact_phone") or STAYS_CONTACT_PHONE,
            key,
        )
    )
    return {"order_id": booking.id, "reference": booking.reference}
