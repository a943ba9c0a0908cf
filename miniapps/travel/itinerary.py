"""The trip's day-by-day plan: items (flights, stays, activities, notes) with local times, and
versioned edits so that two members editing at once never lose an edit silently.

An item (``trip["items"]``) is ``{id: "i7", kind, title, start, zone, end, end_zone, place,
details, booking_id, status, version, updated_by, updated_at}``. ``start``/``end`` are local
wall-clock times in their zone: ``"2027-05-02T10:00"``, or a date alone (``"2027-05-02"``) for an
item without a time (all day). ``zone`` defaults to the destination's zone.

- Adding (``/trip plan add …``, view ``item.add``): travellers only; dates within the trip's dates
  ± 1 day (travel days), the end not before the start.
- Editing (view ``item.edit``) and removing (view ``item.remove``, ``/trip plan remove i3``):
  the page sends the ``version`` of the item it showed; ``store.update`` redoes the edit on the
  fresh trip after a lost race, so edits of *different* items by two members both land, while
  an edit whose version is no longer the item's is refused (``conflict``: the message names who
  changed it and what it is now) and writes nothing. An item that came with a booking
  (``booking_id``) follows the booking, not hands (``booked_item``).
- For other modules (pure, inside ``store.update``): ``add_items`` (booking.py) and
  ``mark_changed`` (changes.py, a schedule change from the provider).

Every change redraws the trip card and calls ``reminders.sync``.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

import card
import clock
import reminders
import store
from store import TravelError, viewing

from sdk import Button, Card, Field, Reply

KINDS = ("flight", "stay", "activity", "note")
STATUSES = ("planned", "booked", "changed", "cancelled")
TITLE_MAX = 100
PLACE_MAX = 100
ITEMS_MAX = 300  # items of one trip
TRAVEL_DAYS = 1  # items may fall this many days before the start / after the end
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_ITEM_ID = re.compile(r"^i\d{1,9}$")
_KEYWORDS = ("at", "until")


# --- dates and local times --------------------------------------------------------------------


def parse_date(text: Any, what: str = "date") -> dt.date:
    """``"2027-05-01"`` → a date, else ``TravelError("bad_date")``."""
    if isinstance(text, str) and _DATE.match(text.strip()):
        try:
            return dt.date.fromisoformat(text.strip())
        except ValueError:
            pass
    raise TravelError("bad_date", f"The {what} {text!r} is not a date like 2027-05-01.")


def parse_time(text: Any) -> str:
    """``"9:30"`` → ``"09:30"``, else ``TravelError("bad_date")``."""
    match = _TIME.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise TravelError("bad_date", f"The time {text!r} is not a time like 10:30.")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def is_time(text: str) -> bool:
    return bool(_TIME.match(text))


def check_zone(zone: Any) -> str:
    """An IANA time zone name, else ``TravelError("bad_item")``."""
    if isinstance(zone, str) and zone and not zone.startswith("/"):
        try:
            zoneinfo.ZoneInfo(zone)
            return zone
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    raise TravelError("bad_item", f"{zone!r} is not a time zone like Europe/Lisbon.")


def local_date(local: str) -> dt.date:
    """The date of a local time ``"2027-05-01T07:05"`` (or of a date alone)."""
    return dt.date.fromisoformat(local[:10])


def local_time(local: str) -> str | None:
    """``"07:05"`` of ``"2027-05-01T07:05"``; None for a date alone (all day)."""
    return local[11:16] if len(local) > 10 else None


def aware(local: str, zone: str) -> dt.datetime:
    """The local time (a date alone: its midnight) in ``zone`` as an aware datetime."""
    naive = dt.datetime.fromisoformat(local if len(local) > 10 else local + "T00:00")
    return naive.replace(tzinfo=zoneinfo.ZoneInfo(zone))


def instant_ms(local: str, zone: str) -> int:
    """The local time in ``zone`` as epoch ms."""
    return round(aware(local, zone).timestamp() * 1000)


def sort_key(item: dict[str, Any]) -> tuple:
    """Items of a day: all-day ones first, then by instant (a 07:05 flight from Madrid is
    before an 08:00 tour in Lisbon), then by id."""
    start = item["start"]
    number = int(item["id"][1:]) if _ITEM_ID.match(item.get("id", "")) else 0
    return (local_date(start), len(start) > 10, instant_ms(start, item["zone"]), number)


def trip_range(trip: dict[str, Any], slack: int = 0) -> tuple[dt.date, dt.date]:
    start = dt.date.fromisoformat(trip["start"]) - dt.timedelta(days=slack)
    return start, dt.date.fromisoformat(trip["end"]) + dt.timedelta(days=slack)


def days(trip: dict[str, Any], *, include_cancelled: bool = True) -> list[dict[str, Any]]:
    """``[{date, items}]``: every date of the trip, and the travel days that have items, each
    with its items in order (by their local start date)."""
    first, last = trip_range(trip)
    by_date: dict[str, list[dict[str, Any]]] = {}
    day = first
    while day <= last:
        by_date[day.isoformat()] = []
        day += dt.timedelta(days=1)
    for item in sorted(trip.get("items") or [], key=sort_key):
        if item.get("status") == "cancelled" and not include_cancelled:
            continue
        by_date.setdefault(item["start"][:10], []).append(item)
    return [{"date": date, "items": by_date[date]} for date in sorted(by_date)]


def find(trip: dict[str, Any], item_id: Any) -> dict[str, Any]:
    for item in trip.get("items") or []:
        if item["id"] == item_id:
            return item
    raise TravelError("unknown_item", f"This trip has no plan item {item_id!r} (any more).")


# --- pure edits for other modules -------------------------------------------------------------


def next_id(trip: dict[str, Any], prefix: str) -> str:
    """A new id for an item (``i``) or a vote (``v``) of ``trip``, from its ``seq``."""
    number = int(trip.get("seq") or 1)
    trip["seq"] = number + 1
    return f"{prefix}{number}"


def add_items(
    trip: dict[str, Any],
    items: list[dict[str, Any]],
    user_id: str | None,
    booking_id: str | None = None,
) -> list[dict[str, Any]]:
    """Add ``items`` (``{kind, title, start, zone, end?, end_zone?, place?, details?}``) to the
    trip doc in place (use inside ``store.update``): each gets an id, version 1 and the status
    ``booked`` when it comes with ``booking_id`` (else ``planned``). Returns the new items."""
    now = clock.now_ms()
    added = []
    for spec in items:
        item = {
            "id": next_id(trip, "i"),
            "kind": spec.get("kind") or "activity",
            "title": spec["title"],
            "start": spec["start"],
            "zone": spec.get("zone") or trip["destination"]["zone"],
            "end": spec.get("end"),
            "end_zone": spec.get("end_zone") or (spec.get("zone") if spec.get("end") else None),
            "place": spec.get("place"),
            "details": dict(spec.get("details") or {}),
            "booking_id": booking_id,
            "status": "booked" if booking_id else "planned",
            "version": 1,
            "updated_by": user_id,
            "updated_at": now,
        }
        if item["end"] and not item["end_zone"]:
            item["end_zone"] = item["zone"]
        trip.setdefault("items", []).append(item)
        added.append(item)
    return added


def mark_changed(
    trip: dict[str, Any], booking_id: str, new_items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A schedule change from the provider, in place (pure; inside ``store.update``): the
    booking's items, in their order, take the times (and title/place/details when given) of
    ``new_items`` in theirs — status ``changed``, version + 1. Items the change no longer has
    become ``cancelled``; extra new ones are added as ``changed``. Returns the items touched."""
    now = clock.now_ms()
    mine = [i for i in trip.get("items") or [] if i.get("booking_id") == booking_id]
    mine.sort(key=lambda i: int(i["id"][1:]) if _ITEM_ID.match(i["id"]) else 0)
    touched = []
    for item, new in zip(mine, new_items, strict=False):
        for field in ("start", "zone", "end", "end_zone"):
            item[field] = new.get(field, item.get(field))
        for field in ("title", "place", "details"):
            if new.get(field) is not None:
                item[field] = new[field]
        if item.get("end") and not item.get("end_zone"):
            item["end_zone"] = item["zone"]
        item.update(status="changed", version=item["version"] + 1, updated_by=None)
        item["updated_at"] = now
        touched.append(item)
    for item in mine[len(new_items) :]:
        if item["status"] != "cancelled":
            item.update(status="cancelled", version=item["version"] + 1, updated_by=None)
            item["updated_at"] = now
            touched.append(item)
    extra = add_items(trip, new_items[len(mine) :], None, booking_id)
    for item in extra:
        item["status"] = "changed"
    return touched + extra


# --- checking what people send ----------------------------------------------------------------


def _text(value: Any, what: str, limit: int, *, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise TravelError("bad_item", f"Give the item a {what}.")
        return None
    if not isinstance(value, str) or not value.strip():
        raise TravelError("bad_item", f"The {what} must be some text.")
    value = " ".join(value.split())
    if len(value) > limit:
        raise TravelError("bad_item", f"The {what} is too long (at most {limit} characters).")
    return value


def _local(date: Any, time: Any, what: str) -> str:
    day = parse_date(date, what)
    return day.isoformat() if time in (None, "") else f"{day.isoformat()}T{parse_time(time)}"


def check_times(
    trip: dict[str, Any], start: str, zone: str, end: str | None, end_zone: str | None
) -> None:
    """The item falls within the trip's dates (± the travel days) and ends after it starts."""
    first, last = trip_range(trip, TRAVEL_DAYS)
    for local in (start, end):
        if local and not first <= local_date(local) <= last:
            raise TravelError(
                "outside_trip",
                f"Plan items fall within the trip's dates, give or take a travel day "
                f"({card.day_label(first)} {card.DASH} {card.day_label(last)}).",
            )
    if end is None:
        return
    if (len(start) > 10) != (len(end) > 10):
        raise TravelError("bad_date", "Give both a start and an end time, or neither.")
    if instant_ms(end, end_zone or zone) < instant_ms(start, zone):
        raise TravelError("bad_date", "The item ends before it starts.")


def build(trip: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """An item to add from the page's (or the command's) fields ``{kind?, title, date, time?,
    end_date?, end_time?, place?, zone?}``, checked against the trip."""
    kind = spec.get("kind") or "activity"
    if kind not in KINDS:
        raise TravelError("bad_item", f"An item is one of {', '.join(KINDS)}.")
    zone = trip["destination"]["zone"] if spec.get("zone") is None else check_zone(spec["zone"])
    start = _local(spec.get("date"), spec.get("time"), "date")
    end = None
    if spec.get("end_date") not in (None, "") or spec.get("end_time") not in (None, ""):
        end_date = spec.get("end_date") or start[:10]
        end = _local(end_date, spec.get("end_time"), "end date")
    check_times(trip, start, zone, end, zone if end else None)
    return {
        "kind": kind,
        "title": _text(spec.get("title"), "title", TITLE_MAX, required=True),
        "start": start,
        "zone": zone,
        "end": end,
        "end_zone": zone if end else None,
        "place": _text(spec.get("place"), "place", PLACE_MAX, required=False),
        "details": {},
    }


def _check_open(trip: dict[str, Any], user_id: str | None) -> None:
    if trip.get("status") == "ended":
        raise TravelError("trip_ended", "This trip has ended: its plan no longer changes.")
    store.require_traveller(trip, user_id)


def _check_version(trip: dict[str, Any], item: dict[str, Any], version: Any) -> None:
    if item.get("booking_id"):
        raise TravelError(
            "booked_item", f"“{item['title']}” came with a booking: it changes with the booking."
        )
    if isinstance(version, bool) or not isinstance(version, int):
        raise TravelError("bad_item", "Send the version of the item you edited.")
    if version != item["version"]:
        who = (trip.get("travellers") or {}).get(item.get("updated_by") or "", {}).get("name")
        raise TravelError(
            "conflict",
            f"{who or 'Someone'} changed this item meanwhile; it is now “{item['title']}”, "
            f"{card.when_text(item)}{' at ' + item['place'] if item.get('place') else ''} "
            f"(version {item['version']}). Nothing was saved: look again and redo your edit.",
        )


# --- doing ------------------------------------------------------------------------------------


async def do_add(ctx, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Add one item for the invoker → ``(item, trip)``."""
    trip = await store.require_trip(ctx)
    item = build(trip, spec)

    def edit(doc: dict[str, Any]) -> dict[str, Any]:
        _check_open(doc, ctx.user_id)
        if len(doc.get("items") or []) >= ITEMS_MAX:
            raise TravelError("bad_item", f"A trip holds at most {ITEMS_MAX} plan items.")
        check_times(doc, item["start"], item["zone"], item["end"], item["end_zone"])
        return add_items(doc, [item], ctx.user_id)[0]

    added, trip = await store.update(ctx, trip["id"], edit)
    await after_change(ctx, trip)
    return added, trip


async def do_edit(ctx, item_id: Any, version: Any, changes: dict[str, Any]) -> dict[str, Any]:
    """Edit one item if it is still at ``version`` → the trip."""
    trip = await store.require_trip(ctx)

    def edit(doc: dict[str, Any]) -> None:
        _check_open(doc, ctx.user_id)
        item = find(doc, item_id)
        _check_version(doc, item, version)
        spec = {
            "kind": item["kind"],
            "title": item["title"],
            "date": item["start"][:10],
            "time": local_time(item["start"]),
            "end_date": item["end"][:10] if item.get("end") else None,
            "end_time": local_time(item["end"]) if item.get("end") else None,
            "place": item.get("place"),
            "zone": item["zone"],
        }
        spec.update({k: v for k, v in changes.items() if k in spec})
        if "date" in changes and "end_date" not in changes and item.get("end"):
            # Moving the day moves the end by as many days.
            shift = parse_date(changes["date"]) - local_date(item["start"])
            spec["end_date"] = (local_date(item["end"]) + shift).isoformat()
        fresh = build(doc, spec)
        del fresh["details"]  # kept as they are
        before = {k: item.get(k) for k in fresh}
        if fresh == before:
            return
        item.update(fresh, version=item["version"] + 1, updated_by=ctx.user_id)
        item["updated_at"] = clock.now_ms()

    _, trip = await store.update(ctx, trip["id"], edit)
    await after_change(ctx, trip)
    return trip


async def do_remove(ctx, item_id: Any, version: Any = None) -> tuple[dict[str, Any], dict]:
    """Remove one item (if still at ``version``, when given) → ``(item, trip)``."""
    trip = await store.require_trip(ctx)

    def edit(doc: dict[str, Any]) -> dict[str, Any]:
        _check_open(doc, ctx.user_id)
        item = find(doc, item_id)
        _check_version(doc, item, item["version"] if version is None else version)
        doc["items"] = [i for i in doc["items"] if i["id"] != item["id"]]
        return item

    removed, trip = await store.update(ctx, trip["id"], edit)
    await reminders.forget(ctx, trip["id"], removed)
    await after_change(ctx, trip)
    return removed, trip


async def after_change(ctx, trip: dict[str, Any]) -> None:
    """What follows any change of the plan: the card redrawn, the reminders set again."""
    await store.refresh_card(ctx, trip)
    await reminders.sync(ctx, trip)


def trip_answer(ctx, trip: dict[str, Any] | None) -> dict[str, Any]:
    """What the web view gets: ``{trip (with days), me, is_traveller, names}``."""
    travellers = (trip or {}).get("travellers") or {}
    shown = None
    if trip is not None:
        shown = {**trip, "days": days(trip)}
    return {
        "trip": shown,
        "me": ctx.user_id,
        "is_traveller": store.is_traveller(trip or {}, ctx.user_id),
        "names": {uid: person.get("name") for uid, person in travellers.items()},
    }


# --- the command ------------------------------------------------------------------------------

USAGE = (
    'Usage: /trip plan · /trip plan add 2027-05-02 10:00 "Tram 28" [at "Graça"] '
    "[until 12:00] · /trip plan remove i3"
)


def parse_add(args: list[str]) -> dict[str, Any]:
    """``[kind] DATE [TIME] title… [at place…] [until [DATE] TIME]`` → the fields of ``build``."""
    words = list(args)
    spec: dict[str, Any] = {}
    if words and words[0].lower() in KINDS:
        spec["kind"] = words.pop(0).lower()
    if not words:
        raise TravelError("bad_item", USAGE)
    spec["date"] = words.pop(0)
    if words and is_time(words[0]):
        spec["time"] = words.pop(0)
    parts: dict[str, list[str]] = {"title": [], "at": [], "until": []}
    current = "title"
    for word in words:
        if word.lower() in _KEYWORDS and parts["title"]:
            current = word.lower()
            continue
        parts[current].append(word)
    spec["title"] = " ".join(parts["title"]) or None
    if parts["at"]:
        spec["place"] = " ".join(parts["at"])
    until = parts["until"]
    if until:
        if len(until) == 2:
            spec["end_date"], spec["end_time"] = until
        elif len(until) == 1 and is_time(until[0]):
            spec["end_time"] = until[0]
        elif len(until) == 1:
            spec["end_date"] = until[0]
        else:
            raise TravelError("bad_item", USAGE)
    return spec


def plan_card(trip: dict[str, Any]) -> Card:
    """The whole plan, day by day, with the items' ids (``/trip plan``)."""
    plan = Card(f"Plan · {trip['title']}"[:100])
    shown = [d for d in days(trip, include_cancelled=False) if d["items"]]
    if not shown:
        plan.text = 'Nothing planned yet: /trip plan add 2027-05-02 10:00 "Tram 28"'
    for day in shown[: card.FIELDS_MAX - 1]:
        lines = [f"{i['id']} · {card.item_line(i)}" for i in day["items"]]
        plan.fields.append(Field(card.day_label(day["date"]), card.clip("\n".join(lines), 1000)))
    if len(shown) > card.FIELDS_MAX - 1:
        plan.fields.append(Field("More", f"{len(shown) - card.FIELDS_MAX + 1} more days"))
    plan.buttons.append(Button.webview("Open plan", path="#plan"))
    return plan


async def plan(ctx, args: list[str]) -> Reply:
    """``/trip plan``, ``/trip plan add …``, ``/trip plan remove i3``."""
    if not args:
        return Reply(ephemeral=plan_card(await store.require_trip(ctx)))
    action, rest = args[0].lower(), args[1:]
    if action == "add":
        item, _ = await do_add(ctx, parse_add(rest))
        return Reply(ephemeral=f"Added {item['id']}: {card.item_line(item)}")
    if action in ("remove", "delete", "rm") and len(rest) == 1:
        item, _ = await do_remove(ctx, rest[0].lower())
        return Reply(ephemeral=f"Removed {item['id']}: {item['title']}")
    return Reply(ephemeral=USAGE)


# --- the web view's calls ---------------------------------------------------------------------

_EDITABLE = ("title", "date", "time", "end_date", "end_time", "place", "zone")


@viewing
async def view_add(ctx) -> dict[str, Any]:
    fields = ("kind", "title", "date", "time", "end_date", "end_time", "place", "zone")
    _, trip = await do_add(ctx, {k: ctx.params.get(k) for k in fields})
    return trip_answer(ctx, trip)


@viewing
async def view_edit(ctx) -> dict[str, Any]:
    changes = {k: ctx.params[k] for k in _EDITABLE if k in ctx.params}
    trip = await do_edit(ctx, ctx.params.get("item_id"), ctx.params.get("version"), changes)
    return trip_answer(ctx, trip)


@viewing
async def view_remove(ctx) -> dict[str, Any]:
    version = ctx.params.get("version")
    if version is None:
        raise TravelError("bad_item", "Send the version of the item you remove.")
    _, trip = await do_remove(ctx, ctx.params.get("item_id"), version)
    return trip_answer(ctx, trip)


SUBCOMMANDS = {"plan": plan}
VIEWS = {"item.add": view_add, "item.edit": view_edit, "item.remove": view_remove}
