"""The trip itself: ``/trip new``, who travels (join, leave), its dates, home airport and end,
and the trip card in the group.

- ``/trip new "Lisbon" 2027-05-01 2027-05-05 [from MAD]`` (view ``trip.create``): one trip being
  planned per chat at a time (``trip_exists``: ``/trip end`` it first), any chat (a group, or a
  direct chat). The destination is resolved with ``airportsdata`` (``resolve``, below) into its
  airport, zone, country and coordinates; a place it does not know is fine (times then in the
  creator's zone, no airport). The trip's currency is the destination country's (babel), else
  EUR. ``from MAD`` (the home airport) must be a known airport. The creator is the first
  traveller; the trip card is posted and its message id kept.
- Two ``/trip new`` at once give exactly one trip: the chat's pointer ``current/<conversation>``
  is claimed with a conditional write (``expected_version``) before the trip is written.
- ``/trip`` alone shows the card to the invoker (``show``); ``/trip card`` posts it again at the
  bottom of the chat; ``join``/``leave`` (also buttons and views), ``dates``, ``home``, ``end``.
- Leaving, or ending the trip, while a booking collects holds is refused
  (``booking_in_progress``) for whoever has a share in it.

Resolving a destination (``resolve``): a 3-letter IATA code (``LIS``) is that airport. A name
(accents and case aside, optionally qualified by a country: ``Rome, IT`` or ``Rome, Italy``) is
matched against the airports' cities, or a time zone's city in English or the invoker's
language (``Lisboa``); among several airports the pick is, in order: one in the zone named
after that city (``Rome`` → ``Europe/Rome``), one in the invoker's part of the world (the first
part of their zone, ``Europe/…``), the country with the most airports of that name, a name
saying "International", the one nearest the middle of that country's airports of that name,
the code alphabetically. The reply names the pick when there was a choice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
import secrets
import unicodedata
import zoneinfo
from collections import Counter
from typing import Any

import card
import clock
import flights
import itinerary
import reminders
import store
from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.numbers import get_territory_currencies
from store import TravelError, answers, viewing

from sdk import Card, Conflict, HostError, Reply
from sdk.documents import update_doc

TRIP_DAYS_MAX = 60
TITLE_MAX = 60
DEFAULT_CURRENCY = "EUR"
CLAIM_STALE_MS = 60_000  # a claimed pointer whose trip was never written frees up after this
CLAIM_ATTEMPTS = 20
BOOKING_OPEN = ("collecting", "booking")
_DATEISH = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$")
_IATA = re.compile(r"^[A-Za-z]{3}$")
USAGE = 'Usage: /trip new "Lisbon" 2027-05-01 2027-05-05 [from MAD]'


# --- places -----------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Accents, case, hyphens and extra spaces aside: ``São-Paulo`` → ``sao paulo``."""
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return " ".join(plain.casefold().replace("-", " ").replace("_", " ").split())


@functools.cache
def _airports_by_city() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for code, airport in flights.airports().items():
        if airport.get("city"):
            found.setdefault(_fold(airport["city"]), []).append(code)
    return found


@functools.lru_cache(maxsize=32)
def _zone_cities(locale: str) -> dict[str, str]:
    """``{folded city: zone}`` of every time zone, by its English name (from its id) and its
    name in ``locale`` (CLDR's exemplar city)."""
    zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z)
    found = {_fold(card.zone_city(zone)): zone for zone in zones if not zone.startswith("Etc/")}
    try:
        names = Locale.parse(locale.replace("-", "_")).time_zones
    except (UnknownLocaleError, ValueError, TypeError):
        names = {}
    for zone in zones:
        city = (names.get(zone) or {}).get("city")
        if city:
            found.setdefault(_fold(city), zone)
    return found


@functools.lru_cache(maxsize=32)
def _countries(locale: str) -> dict[str, str]:
    """``{folded country name or code: code}`` in English and ``locale``."""
    found: dict[str, str] = {}
    for tag in ("en", locale.replace("-", "_")):
        try:
            territories = Locale.parse(tag).territories
        except (UnknownLocaleError, ValueError, TypeError):
            continue
        for code, name in territories.items():
            if len(code) == 2 and code.isalpha():
                found.setdefault(_fold(name), code)
                found.setdefault(code.casefold(), code)
    return found


def _destination(airport: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "name": name,
        "airport": airport["iata"],
        "zone": airport["tz"],
        "country": airport.get("country") or None,
        "lat": airport.get("lat"),
        "lon": airport.get("lon"),
    }


def _pick(codes: list[str], zones: set[str], region: str) -> dict[str, Any]:
    """The airport of ``codes`` by the rule in the module's docstring."""
    rows = [flights.airports()[code] for code in codes]
    counts = Counter(row["country"] for row in rows)
    middles = {}
    for country in counts:
        mine = [row for row in rows if row["country"] == country]
        middles[country] = (
            sum(r["lat"] for r in mine) / len(mine),
            sum(r["lon"] for r in mine) / len(mine),
        )

    def rank(row: dict[str, Any]) -> tuple:
        lat, lon = middles[row["country"]]
        return (
            row["tz"] not in zones,
            not (region and row["tz"].startswith(region + "/")),
            -counts[row["country"]],
            "international" not in row["name"].casefold(),
            (row["lat"] - lat) ** 2 + (row["lon"] - lon) ** 2,
            row["iata"],
        )

    return min(rows, key=rank)


def resolve(text: str, locale: str = "en", time_zone: str = "UTC") -> tuple[dict | None, str]:
    """``(destination, note)`` for what someone typed; ``(None, note)`` when no airport or zone
    is known by that name. ``note`` says what was picked when there was a choice."""
    name = " ".join(text.split())
    airports = flights.airports()
    by_city = _airports_by_city()
    if (
        _IATA.match(name)
        and name.upper() in airports
        and (name.isupper() or not by_city.get(_fold(name)))
    ):
        airport = airports[name.upper()]
        return _destination(airport, airport.get("city") or airport["name"]), ""
    country = None
    if "," in name:
        place, _, qualifier = name.rpartition(",")
        country = _countries(locale).get(_fold(qualifier))
        if country:
            name = place.strip()
    key = _fold(name)
    zone_names = {**_zone_cities("en"), **_zone_cities(locale)}
    named_zone = zone_names.get(key)
    codes = list(by_city.get(key, []))
    if not codes and named_zone:
        codes = list(by_city.get(_fold(card.zone_city(named_zone)), []))
    if country:
        codes = [c for c in codes if airports[c]["country"] == country]
    if not codes:
        if named_zone and (not country or _zone_country(named_zone) == country):
            return {
                "name": name,
                "airport": None,
                "zone": named_zone,
                "country": _zone_country(named_zone),
                "lat": None,
                "lon": None,
            }, ""
        return None, ""
    region = time_zone.split("/", 1)[0] if "/" in time_zone else ""
    airport = _pick(codes, {named_zone} if named_zone else set(), region)
    note = ""
    if len(codes) > 1:
        countries = sorted({airports[c]["country"] for c in codes})
        note = (
            f"{name}: {len(codes)} airports by that name"
            + (f" in {', '.join(countries)}" if len(countries) > 1 else "")
            + f"; I picked {airport['name']} ({airport['iata']}, {airport['country']}). "
            f'Another? /trip end, then /trip new with its code or "{name}, XX" (a country).'
        )
    return _destination(airport, airport.get("city") or name), note


def _zone_country(zone: str) -> str | None:
    territories = get_global("zone_territories").get(zone)
    return territories if isinstance(territories, str) and len(territories) == 2 else None


def currency_of(country: str | None) -> str:
    """The country's currency today (babel), else EUR."""
    if country:
        try:
            found = get_territory_currencies(country, tender=True)
        except Exception:  # babel raises bare errors for unknown territories
            found = []
        if found:
            return found[0]
    return DEFAULT_CURRENCY


def check_home(code: Any) -> str:
    """A known IATA airport code (upper case), else ``TravelError("unknown_airport")``."""
    try:
        return flights.airport(code if isinstance(code, str) else "")["iata"]
    except flights.ProviderError:
        raise TravelError(
            "unknown_airport", f"I know no airport with the code {code!r} (try MAD, LIS…)."
        ) from None


# --- dates ------------------------------------------------------------------------------------


def check_dates(start: Any, end: Any, zone: str, now_ms: int | None = None) -> tuple[str, str]:
    """``(start, end)`` as ``YYYY-MM-DD`` after the checks every trip's dates pass: real dates
    (``bad_date``), the end not before the start (``return_before_departure``), the start not
    before today at the destination (``dates_in_past``), at most 60 days
    (``trip_too_long``)."""
    first = itinerary.parse_date(start, "start date")
    last = itinerary.parse_date(end, "end date")
    if last < first:
        raise TravelError(
            "return_before_departure",
            f"The trip would end ({card.day_label(last)}) before it starts "
            f"({card.day_label(first)}).",
        )
    now = clock.now_ms() if now_ms is None else now_ms
    today = dt.datetime.fromtimestamp(now / 1000, zoneinfo.ZoneInfo(zone)).date()
    if first < today:
        raise TravelError(
            "dates_in_past",
            f"{card.day_label(first)} {first.year} is already past at the destination.",
        )
    if (last - first).days + 1 > TRIP_DAYS_MAX:
        raise TravelError("trip_too_long", f"A trip lasts at most {TRIP_DAYS_MAX} days.")
    return first.isoformat(), last.isoformat()


# --- people -----------------------------------------------------------------------------------


async def my_name(ctx) -> str:
    """The invoker's display name (``users.profile``), "Traveller" without it."""
    try:
        profile = await ctx.get_profile()
    except HostError:
        return "Traveller"
    return str(profile.get("display_name") or "Traveller")[:80]


async def has_open_share(ctx, trip: dict[str, Any], user_id: str | None) -> bool:
    """Whether ``user_id`` has a share in the trip's booking while it collects holds (a
    booking whose document cannot be read counts as theirs)."""
    booking = trip.get("booking") or {}
    if booking.get("state") not in BOOKING_OPEN:
        return False
    doc = await ctx.storage_get("bookings", booking["id"]) if booking.get("id") else None
    return doc is None or user_id in (doc.get("shares") or {})


def _booking_refusal(trip: dict[str, Any], what: str) -> TravelError:
    title = (trip.get("booking") or {}).get("title") or "an offer"
    return TravelError(
        "booking_in_progress",
        f"The group is booking {title} and you have a share in it: {what} once it is done "
        "or cancelled (/trip book).",
    )


# --- creating ---------------------------------------------------------------------------------


def _exists(old: dict[str, Any] | None) -> TravelError:
    what = (
        f"{old['title']} ({card.range_label(old['start'], old['end'])})"
        if old
        else "a trip that is being created"
    )
    return TravelError("trip_exists", f"This chat is already planning {what}: /trip end it first.")


async def _claim(ctx, trip_id: str) -> None:
    """Point the chat at ``trip_id`` unless it has a trip being planned (``trip_exists``):
    conditional on the pointer's version, so of two claims at once exactly one wins."""
    conversation = ctx.conversation_id
    for _ in range(CLAIM_ATTEMPTS):
        pointer, version = await ctx.storage_get_versioned(store.CURRENT, conversation)
        if pointer and pointer.get("trip_id") and pointer.get("status") != "ended":
            old = await store.load(ctx, pointer["trip_id"])
            if old is None:
                # Its creator is writing it, unless the claim is old (a creation that failed).
                if clock.now_ms() - int(pointer.get("since") or 0) < CLAIM_STALE_MS:
                    raise _exists(None)
            elif old.get("status") != "ended":
                raise _exists(old)
        claim = {"trip_id": trip_id, "status": "planning", "since": clock.now_ms()}
        try:
            await ctx.storage_update(
                store.CURRENT, conversation, set=claim, expected_version=version, upsert=True
            )
            return
        except Conflict:
            continue  # someone else wrote the pointer: look again
    raise TravelError("busy", "The chat is busy: try again.")


async def create(
    ctx, title: Any, start: Any, end: Any, home: Any = None
) -> tuple[dict[str, Any], str]:
    """A new trip in this chat, its card posted → ``(trip, note about the destination)``."""
    if not isinstance(title, str) or not title.strip():
        raise TravelError("bad_destination", "Where to? " + USAGE)
    title = " ".join(title.split())
    if len(title) > TITLE_MAX:
        raise TravelError("bad_destination", f"The destination is at most {TITLE_MAX} characters.")
    if not ctx.conversation_id or not ctx.user_id:
        raise TravelError("no_trip", "Start a trip from a chat.")
    destination, note = resolve(title, ctx.locale, ctx.time_zone)
    if destination is None:
        destination = {
            "name": title,
            "airport": None,
            "zone": ctx.time_zone,
            "country": None,
            "lat": None,
            "lon": None,
        }
        note = (
            f"I know no airport or city called {title}: times are in {ctx.time_zone}, and "
            "flight searches need an airport code."
        )
    if _IATA.match(title) and destination.get("airport") == title.upper():
        title = destination["name"]
    first, last = check_dates(start, end, destination["zone"])
    home_airport = None if home in (None, "") else check_home(home)
    now = clock.now_ms()
    trip = {
        "id": "tr" + secrets.token_hex(5),
        "conversation_id": ctx.conversation_id,
        "title": title,
        "status": "planning",
        "destination": destination,
        "home_airport": home_airport,
        "start": first,
        "end": last,
        "currency": currency_of(destination["country"]),
        "created_by": ctx.user_id,
        "created_at": now,
        "travellers": {ctx.user_id: {"name": await my_name(ctx), "joined_at": now}},
        "items": [],
        "votes": [],
        "booking": None,
        "spent": {},
        "card": None,
        "seq": 1,
    }
    await _claim(ctx, trip["id"])
    await ctx.storage_put(store.TRIPS, trip["id"], trip)
    message_id = await ctx.send_card(card.render(trip))

    def keep_card(doc: dict[str, Any]) -> None:
        doc["card"] = {"message_id": message_id}

    _, trip = await store.update(ctx, trip["id"], keep_card)
    await reminders.sync(ctx, trip)
    return trip, note


def parse_new(args: list[str]) -> tuple[str, str, str, str | None]:
    """``title… START END [from MAD]`` → ``(title, start, end, home)``."""
    at = next((i for i, word in enumerate(args) if _DATEISH.match(word)), None)
    if at is None or at == 0 or len(args) < at + 2:
        raise TravelError("bad_date", USAGE)
    title, start, end, rest = " ".join(args[:at]), args[at], args[at + 1], args[at + 2 :]
    if not rest:
        return title, start, end, None
    if len(rest) == 2 and rest[0].lower() == "from":
        return title, start, end, rest[1]
    raise TravelError("usage", USAGE)


async def new(ctx, args: list[str]) -> Reply | None:
    """``/trip new "Lisbon" 2027-05-01 2027-05-05 [from MAD]``."""
    _, note = await create(ctx, *parse_new(args))
    return Reply(ephemeral=note) if note else None


# --- joining and leaving ----------------------------------------------------------------------


async def _trip_of(ctx, trip_id: Any) -> dict[str, Any]:
    """The trip a button names (one of this chat's), else ``no_trip``."""
    trip = await store.load(ctx, trip_id) if isinstance(trip_id, str) and trip_id else None
    if trip is None or trip.get("conversation_id") != ctx.conversation_id:
        raise TravelError("no_trip", "That trip is not this chat's (any more).")
    return trip


async def join(ctx, trip: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """The invoker joins ``trip`` → ``(joined now, trip)``."""
    name = await my_name(ctx)

    def edit(doc: dict[str, Any]) -> bool:
        if doc.get("status") == "ended":
            raise TravelError("trip_ended", "This trip has ended.")
        if ctx.user_id in doc["travellers"]:
            return False
        doc["travellers"][ctx.user_id] = {"name": name, "joined_at": clock.now_ms()}
        return True

    joined, trip = await store.update(ctx, trip["id"], edit)
    if joined:
        await store.refresh_card(ctx, trip)
    return joined, trip


async def leave(ctx, trip: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """The invoker leaves ``trip`` → ``(left now, trip)``; refused while they have a share in
    a booking that collects holds."""
    if not store.is_traveller(trip, ctx.user_id):
        return False, trip
    checked = (trip.get("booking") or {}).get("id")
    if await has_open_share(ctx, trip, ctx.user_id):
        raise _booking_refusal(trip, "leave")

    def edit(doc: dict[str, Any]) -> bool:
        if doc.get("status") == "ended":
            raise TravelError("trip_ended", "This trip has ended.")
        booking = doc.get("booking") or {}
        if booking.get("state") in BOOKING_OPEN and booking.get("id") != checked:
            raise _booking_refusal(doc, "leave")  # a booking started meanwhile
        return doc["travellers"].pop(ctx.user_id, None) is not None

    left, trip = await store.update(ctx, trip["id"], edit)
    if left:
        await store.refresh_card(ctx, trip)
    return left, trip


async def join_command(ctx, args: list[str]) -> Reply:
    joined, trip = await join(ctx, await store.require_trip(ctx))
    return Reply(ephemeral=f"You're in: {trip['title']}." if joined else "You're already in.")


async def leave_command(ctx, args: list[str]) -> Reply:
    left, trip = await leave(ctx, await store.require_trip(ctx))
    return Reply(ephemeral=f"You left {trip['title']}." if left else "You weren't in this trip.")


@answers
async def join_button(ctx) -> Reply:
    joined, trip = await join(ctx, await _trip_of(ctx, ctx.value))
    return Reply(ephemeral=f"You're in: {trip['title']}." if joined else "You're already in.")


@answers
async def leave_button(ctx) -> Reply:
    left, trip = await leave(ctx, await _trip_of(ctx, ctx.value))
    return Reply(ephemeral=f"You left {trip['title']}." if left else "You weren't in this trip.")


# --- dates, home airport, end -----------------------------------------------------------------


def _require_open(doc: dict[str, Any], user_id: str | None) -> None:
    if doc.get("status") == "ended":
        raise TravelError("trip_ended", "This trip has ended.")
    store.require_traveller(doc, user_id)


async def change_dates(ctx, trip: dict[str, Any], start: Any, end: Any) -> dict[str, Any]:
    """New dates for the trip (checked as for a new one) → the trip."""
    store.require_traveller(trip, ctx.user_id)
    first, last = check_dates(start, end, trip["destination"]["zone"])

    def edit(doc: dict[str, Any]) -> None:
        _require_open(doc, ctx.user_id)
        doc["start"], doc["end"] = first, last

    _, trip = await store.update(ctx, trip["id"], edit)
    await itinerary.after_change(ctx, trip)
    return trip


async def dates(ctx, args: list[str]) -> Reply:
    """``/trip dates 2027-05-02 2027-05-06``."""
    if len(args) != 2:
        raise TravelError("bad_date", "Usage: /trip dates 2027-05-02 2027-05-06")
    trip = await change_dates(ctx, await store.require_trip(ctx), args[0], args[1])
    low, high = itinerary.trip_range(trip, itinerary.TRAVEL_DAYS)
    outside = [
        i["id"] for i in trip["items"] if not low <= itinerary.local_date(i["start"]) <= high
    ]
    text = f"{trip['title']}: {card.range_label(trip['start'], trip['end'])}."
    if outside:
        text += f" Now outside the dates: {', '.join(outside)} (/trip plan)."
    return Reply(ephemeral=text)


async def home(ctx, args: list[str]) -> Reply:
    """``/trip home MAD`` (the default origin of flight searches), ``/trip home none``."""
    trip = await store.require_trip(ctx)
    if len(args) != 1:
        return Reply(
            ephemeral=f"Home airport: {trip.get('home_airport') or 'none'}. "
            "Usage: /trip home MAD · /trip home none"
        )
    code = None if args[0].lower() == "none" else check_home(args[0])

    def edit(doc: dict[str, Any]) -> None:
        _require_open(doc, ctx.user_id)
        doc["home_airport"] = code

    _, trip = await store.update(ctx, trip["id"], edit)
    await store.refresh_card(ctx, trip)
    return Reply(ephemeral=f"Home airport: {code or 'none'}.")


def _may_end(trip: dict[str, Any], user_id: str | None) -> None:
    """A traveller or the trip's creator ends it (anyone in the chat once nobody travels)."""
    if trip.get("travellers") and user_id != trip.get("created_by"):
        store.require_traveller(trip, user_id)


async def end(ctx, args: list[str]) -> Reply:
    """``/trip end``: the trip is over (or off); its balances stay open, a new one can start."""
    trip = await store.require_trip(ctx)
    _may_end(trip, ctx.user_id)
    if (trip.get("booking") or {}).get("state") in BOOKING_OPEN:
        raise _booking_refusal(trip, "end the trip")

    def edit(doc: dict[str, Any]) -> bool:
        _may_end(doc, ctx.user_id)
        if doc.get("status") == "ended":
            return False
        if (doc.get("booking") or {}).get("state") in BOOKING_OPEN:
            raise _booking_refusal(doc, "end the trip")
        doc["status"] = "ended"
        return True

    ended, trip = await store.update(ctx, trip["id"], edit)

    def release(pointer: dict[str, Any] | None) -> None:
        if pointer and pointer.get("trip_id") == trip["id"]:
            pointer["status"] = "ended"

    # The chat's pointer stays on the ended trip (its balances) but frees the chat for a new one.
    await update_doc(ctx, store.CURRENT, trip["conversation_id"], release)
    if not ended:
        return Reply(ephemeral=f"{trip['title']} has ended already.")
    await store.refresh_card(ctx, trip)
    await reminders.sync(ctx, trip)
    return Reply(text=f"{trip['title']} has ended. Balances stay open: /trip balances")


async def repost(ctx, args: list[str]) -> Reply | None:
    """``/trip card``: the trip card again, at the bottom of the chat (the old one says so)."""
    trip = await store.require_trip(ctx)
    old = (trip.get("card") or {}).get("message_id")
    message_id = await ctx.send_card(card.render(trip))

    def edit(doc: dict[str, Any]) -> None:
        doc["card"] = {"message_id": message_id}

    _, trip = await store.update(ctx, trip["id"], edit)
    if old and old != message_id:
        moved = Card(
            card.clip(f"✈ {trip['title']}", card.TITLE_MAX),
            text="This card moved: see the trip card further down.",
        )
        with contextlib.suppress(HostError):  # the old card is gone: nothing to say there
            await ctx.update_card(old, moved, conversation_id=trip["conversation_id"])
    return None


# --- showing ----------------------------------------------------------------------------------


async def show(ctx) -> Reply | None:
    """``/trip`` alone: the trip card to the invoker, None when the chat has no trip."""
    trip = await store.current_trip(ctx)
    return Reply(ephemeral=card.render(trip)) if trip else None


@viewing
async def view_get(ctx) -> dict[str, Any]:
    return itinerary.trip_answer(ctx, await store.current_trip(ctx))


@viewing
async def view_create(ctx) -> dict[str, Any]:
    params = ctx.params
    trip, note = await create(
        ctx, params.get("title"), params.get("start"), params.get("end"), params.get("home_airport")
    )
    return {**itinerary.trip_answer(ctx, trip), "note": note or None}


@viewing
async def view_join(ctx) -> dict[str, Any]:
    _, trip = await join(ctx, await store.require_trip(ctx))
    return itinerary.trip_answer(ctx, trip)


@viewing
async def view_leave(ctx) -> dict[str, Any]:
    _, trip = await leave(ctx, await store.require_trip(ctx))
    return itinerary.trip_answer(ctx, trip)


SUBCOMMANDS = {
    "new": new,
    "join": join_command,
    "leave": leave_command,
    "dates": dates,
    "home": home,
    "end": end,
    "card": repost,
}
ACTIONS = {"trip.join": join_button, "trip.leave": leave_button}
VIEWS = {
    "trip.get": view_get,
    "trip.create": view_create,
    "trip.join": view_join,
    "trip.leave": view_leave,
}
