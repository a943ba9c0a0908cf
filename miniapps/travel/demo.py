"""The demo trip: ``demo.seed {step}`` — called by ``gateway/demo.py`` (``python run.py
seed-demo``) in the demo group, through the app's own code paths like a person would:

- step ``trip`` (the organiser): a trip to Lisbon from Amsterdam about two months ahead (a
  Friday to a Tuesday), its card in the group; the outbound and return flights and a stay from the
  provider (the labelled **sample** provider by default — not real flights or hotels) in the plan
  as *planned* items, an evening activity, and an open vote on a day trip. Seeding again, when the
  group already has a trip, creates nothing (``created: false``).
- then every other demo person presses I'm in (``trip.join``, in gateway/demo.py);
- step ``expenses`` (the organiser): three shared expenses in euros, paid by different people and
  split equally, exactly, by shares — so the balances card has something to simplify and settle.
  Once per trip (the expenses are looked for by title).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import clock
import expenses
import itinerary
import search
import store
import trips
import votes
from store import TravelError, viewing

DESTINATION, HOME = "Lisbon", "AMS"
LEAD_DAYS = 60  # the trip starts about two months ahead, on a Friday
NIGHTS = 4
EXPENSES = (
    # (title, amount in cents, who paid (traveller index), mode, among or weights by index)
    ("Airport taxi", 4800, 0, "equal", None),
    ("Dinner at Ramiro", 12640, 1, "equal", None),
    ("Tram passes", 2600, 2, "shares", {2: 1, 3: 1}),
)


def trip_dates(now_ms: int) -> tuple[dt.date, dt.date]:
    """The Friday ``LEAD_DAYS`` or a little more from now, and ``NIGHTS`` later."""
    today = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).date()
    start = today + dt.timedelta(days=LEAD_DAYS)
    start += dt.timedelta(days=(4 - start.weekday()) % 7)
    return start, start + dt.timedelta(days=NIGHTS)


def _cheapest_direct(offers: list[dict[str, Any]]) -> dict[str, Any]:
    """The cheapest offer of one flight (else the cheapest of all)."""
    direct = [o for o in offers if len(o["items"]) == 1] or offers
    return min(direct, key=lambda o: (o["total"]["amount"], o["id"]))


async def seed_trip(ctx) -> dict[str, Any]:
    if await store.current_trip(ctx) is not None:
        return {"created": False, "summary": "already seeded"}
    start, end = trip_dates(clock.now_ms())
    trip, _ = await trips.create(ctx, DESTINATION, start.isoformat(), end.isoformat(), HOME)
    airport = trip["destination"]["airport"]
    out = _cheapest_direct(await search.find_flights(ctx, trip, HOME, airport, start.isoformat()))
    back = _cheapest_direct(await search.find_flights(ctx, trip, airport, HOME, end.isoformat()))
    stays = await search.find_stays(ctx, trip, None, None, None)
    stay = min(stays, key=lambda o: (o["total"]["amount"], o["id"]))
    evening = {
        "kind": "activity",
        "title": "Fado night in Alfama",
        "date": (start + dt.timedelta(days=1)).isoformat(),
        "time": "21:00",
        "place": "Alfama",
    }

    def plan(doc: dict[str, Any]) -> int:
        specs = [*out["items"], *stay["items"], itinerary.build(doc, evening), *back["items"]]
        return len(itinerary.add_items(doc, specs, ctx.user_id))

    count, trip = await store.update(ctx, trip["id"], plan)
    day_trip = (start + dt.timedelta(days=2)).isoformat()
    await votes.create(
        ctx,
        "activity",
        "Day trip on Sunday?",
        [
            {"label": f"Sintra palaces {day_trip} 09:30"},
            {"label": f"Cascais beach {day_trip} 10:00"},
        ],
    )
    await itinerary.after_change(ctx, await store.load(ctx, trip["id"]))
    label = out.get("label") or "provider flights"
    return {
        "created": True,
        "trip_id": trip["id"],
        "summary": f"trip to {DESTINATION} {start} to {end} with {count} plan items ({label}) "
        "and a vote",
    }


async def seed_expenses(ctx) -> dict[str, Any]:
    trip = await store.require_trip(ctx)
    people = sorted(trip["travellers"], key=lambda uid: trip["travellers"][uid]["joined_at"])
    have = {e["title"] for e in await expenses.trip_expenses(ctx, trip["id"])}
    added = []
    for title, amount, payer, mode, weights in EXPENSES:
        if title in have or max([payer, *(weights or {})]) >= len(people):
            continue
        fields = expenses.build(
            trip,
            ctx.user_id,
            title=title,
            amount=amount,
            currency="EUR",
            paid={people[payer]: amount},
            mode=mode,
            among=[people[i] for i in weights] if weights else None,
            shares={people[i]: w for i, w in weights.items()} if weights else None,
        )
        await expenses.add_expense(ctx, trip, fields)
        added.append(title)
    if not added:
        return {"added": [], "summary": "expenses already there"}
    return {"added": added, "summary": f"{len(added)} shared expenses"}


async def view_seed(ctx) -> dict[str, Any]:
    step = ctx.params.get("step")
    if step == "trip":
        return await seed_trip(ctx)
    if step == "expenses":
        return await seed_expenses(ctx)
    raise TravelError("usage", "demo.seed: step is trip or expenses.")


VIEWS = {"demo.seed": viewing(view_seed)}
