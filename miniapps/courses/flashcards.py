"""Flashcards with spaced repetition (FSRS, the ``fsrs`` package) — optional per course.

- The instructor turns a course's deck on or off and writes its cards in the web view: views
  ``cards.deck {course_id, enabled}`` and ``cards.add {course_id, front, back}`` /
  ``cards.delete {card_id}`` (role ``instructor``). A deck that is off is not reviewed.
  ``cards.list {course_id}``: the deck (on or off) and its cards, for the editor.
- ``/course cards``: how many cards are due across the learner's enrolled courses, with a
  "Review" button opening the web view (``#cards``); it also sets the learner's morning message
  (``/course cards off`` stops it).
- Views for the learner: ``cards.due {course_id?}`` → the due cards (new cards count as due),
  ``cards.review {card_id, rating 1-4}`` (1 Again, 2 Hard, 3 Good, 4 Easy) → the card is
  scheduled with ``fsrs.Scheduler`` and its next due time returned. Only enrolled learners of a
  course with its deck on.
- Timer ``cards.morning`` (key ``cards-morning:<learner>``): at 08:00 in the learner's time zone
  (``ctx.time_zone``, the scheduler's zone in a timer; ``UTC`` when unknown) a service message with
  the due count (nothing when none is due), then rescheduled for the next 08:00 — computed with
  ``zoneinfo`` for that date, so it stays 08:00 across DST changes. Sent at most once per local
  day (``morning:<learner>`` records the last day, conditionally).

Data: ``flashcards`` key ``fc-<token>``: ``{course_id, front, back, created_at}``; key
``deck:<course id>``: ``{course_id, enabled}``. ``reviews`` key ``<learner>:<card id>``:
``{learner, course_id, card_id, due (epoch ms), fsrs (fsrs.Card.to_dict()), reviews}``; key
``morning:<learner>``: ``{day}``. ``storage_find`` looks at the first 1000 documents of a
collection, so a learner's due count covers at most that many cards and reviews.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import fsrs
from assignments import load_course, now_ms, update_doc

from sdk import Button, Card, Conflict, HostError, Reply, ScopeDenied, ViewError
from sdk.documents import find_all

FLASHCARDS, REVIEWS = "flashcards", "reviews"
MORNING_TIMER = "cards.morning"
MORNING = time(8, 0)
CARD_ID = re.compile(r"^fc-[0-9a-f]{12}$")
FRONT_MAX, BACK_MAX = 500, 2000
CARDS_PER_DECK = 1000
DUE_SHOWN = 50


def scheduler() -> fsrs.Scheduler:
    return fsrs.Scheduler()


def zone_of(ctx) -> ZoneInfo:
    try:
        return ZoneInfo(getattr(ctx, "time_zone", None) or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def next_morning(after_ms: int, zone: ZoneInfo) -> datetime:
    """The first 08:00 in ``zone`` strictly after ``after_ms``."""
    local = datetime.fromtimestamp(after_ms / 1000, zone)
    day: date = local.date()
    while True:
        candidate = datetime.combine(day, MORNING, tzinfo=zone)
        if candidate.timestamp() * 1000 > after_ms:
            return candidate
        day += timedelta(days=1)


def local_day(ms: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ms / 1000, zone).date().isoformat()


# --- decks --------------------------------------------------------------------------------


async def deck_enabled(ctx, course_id: str) -> bool:
    deck = await ctx.storage_get(FLASHCARDS, f"deck:{course_id}")
    return bool(isinstance(deck, dict) and deck.get("enabled"))


async def enrolled(ctx, learner: str, course_id: str) -> bool:
    return bool(await ctx.storage_get("enrolments", f"{learner}:{course_id}"))


async def instructor_course(ctx, course_id) -> dict:
    """The course whose deck the invoking instructor edits: their own (ViewError otherwise)."""
    if not ctx.has_role("instructor"):
        raise ViewError("not_instructor", "Only instructors can edit flashcards.")
    course = await load_course(ctx, str(course_id or ""))
    if course is None:
        raise ViewError("unknown_course", "No such course.")
    if course.get("instructor") != ctx.user_id:
        raise ViewError("not_your_course", "Only the course's own instructor edits its deck.")
    return course


async def view_deck(ctx) -> dict:
    """``cards.deck {course_id, enabled}``: turn a course's flashcards on or off."""
    course_id = str(ctx.params.get("course_id") or "")
    await instructor_course(ctx, course_id)
    enabled = ctx.params.get("enabled")
    if not isinstance(enabled, bool):
        raise ViewError("invalid_enabled", "enabled must be true or false.")
    await ctx.storage_put(
        FLASHCARDS, f"deck:{course_id}", {"course_id": course_id, "enabled": enabled}
    )
    return {"course_id": course_id, "enabled": enabled}


async def view_add(ctx) -> dict:
    """``cards.add {course_id, front, back}``: a new card in the course's deck."""
    course_id = str(ctx.params.get("course_id") or "")
    await instructor_course(ctx, course_id)
    front, back = ctx.params.get("front"), ctx.params.get("back")
    if not isinstance(front, str) or not front.strip() or len(front) > FRONT_MAX:
        raise ViewError("invalid_front", f"The front is 1-{FRONT_MAX} characters.")
    if not isinstance(back, str) or not back.strip() or len(back) > BACK_MAX:
        raise ViewError("invalid_back", f"The back is 1-{BACK_MAX} characters.")
    cards = await find_all(ctx, FLASHCARDS, {"course_id": course_id, "front": {"$exists": True}})
    if len(cards) >= CARDS_PER_DECK:
        raise ViewError("deck_full", f"A deck holds at most {CARDS_PER_DECK} cards.")
    card_id = f"fc-{secrets.token_hex(6)}"
    card = {"course_id": course_id, "front": front.strip(), "back": back.strip()}
    await ctx.storage_put(FLASHCARDS, card_id, {**card, "created_at": now_ms(ctx)})
    return {"card": {"card_id": card_id, **card}}


async def view_list(ctx) -> dict:
    """``cards.list {course_id}``: a course's deck for its editor — on or off, and its cards
    (oldest first, at most ``CARDS_PER_DECK``)."""
    course_id = str(ctx.params.get("course_id") or "")
    await instructor_course(ctx, course_id)
    found = await find_all(ctx, FLASHCARDS, {"course_id": course_id, "front": {"$exists": True}})
    found.sort(key=lambda item: (item["value"].get("created_at", 0), item["key"]))
    return {
        "course_id": course_id,
        "enabled": await deck_enabled(ctx, course_id),
        "cards": [
            {"card_id": item["key"], "front": item["value"]["front"], "back": item["value"]["back"]}
            for item in found
        ],
    }


async def view_delete(ctx) -> dict:
    """``cards.delete {card_id}``: remove a card from its deck."""
    card_id = str(ctx.params.get("card_id") or "")
    card = await ctx.storage_get(FLASHCARDS, card_id) if CARD_ID.match(card_id) else None
    if not isinstance(card, dict):
        raise ViewError("unknown_card", "No such card.")
    await instructor_course(ctx, card["course_id"])
    await ctx.storage_delete(FLASHCARDS, card_id)
    return {"deleted": card_id}


# --- what is due --------------------------------------------------------------------------


async def learner_decks(ctx, learner: str) -> list[str]:
    """The learner's enrolled courses whose deck is on."""
    enrolments = await find_all(ctx, "enrolments", {"learner": learner})
    courses = []
    for item in enrolments:
        course_id = (item["value"] or {}).get("course_id") or item["key"].split(":", 1)[-1]
        if await deck_enabled(ctx, course_id):
            courses.append(course_id)
    return courses


async def due_cards(ctx, learner: str, courses: list[str], now: int) -> list[dict]:
    """The cards of ``courses`` due for ``learner`` at ``now`` (never reviewed = due), soonest
    first."""
    if not courses:
        return []
    cards = await find_all(
        ctx, FLASHCARDS, {"course_id": {"$in": courses[:100]}, "front": {"$exists": True}}
    )
    reviewed = await find_all(ctx, REVIEWS, {"learner": learner, "card_id": {"$exists": True}})
    due_at = {item["value"]["card_id"]: item["value"]["due"] for item in reviewed}
    due = []
    for item in cards:
        when = due_at.get(item["key"], 0)
        if when <= now:
            card = item["value"]
            due.append(
                {
                    "card_id": item["key"],
                    "course_id": card["course_id"],
                    "front": card["front"],
                    "back": card["back"],
                    "due": when,
                }
            )
    return sorted(due, key=lambda c: (c["due"], c["card_id"]))


async def view_due(ctx) -> dict:
    """``cards.due {course_id?}``: the learner's due cards (at most 50) and the due count."""
    courses = await learner_decks(ctx, ctx.user_id)
    course_id = ctx.params.get("course_id")
    if course_id is not None:
        if course_id not in courses:
            raise ViewError("unknown_course", "No flashcards of yours in that course.")
        courses = [course_id]
    due = await due_cards(ctx, ctx.user_id, courses, now_ms(ctx))
    return {"due_count": len(due), "cards": due[:DUE_SHOWN]}


async def view_review(ctx) -> dict:
    """``cards.review {card_id, rating 1-4}``: schedule the card with FSRS."""
    card_id, rating = str(ctx.params.get("card_id") or ""), ctx.params.get("rating")
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 4:
        raise ViewError("invalid_rating", "rating is 1 (Again), 2 (Hard), 3 (Good) or 4 (Easy).")
    card = await ctx.storage_get(FLASHCARDS, card_id) if CARD_ID.match(card_id) else None
    if not isinstance(card, dict):
        raise ViewError("unknown_card", "No such card.")
    course_id = card["course_id"]
    if not await enrolled(ctx, ctx.user_id, course_id) or not await deck_enabled(ctx, course_id):
        raise ViewError("unknown_card", "No such card.")
    now = now_ms(ctx)
    review_at = datetime.fromtimestamp(now / 1000, UTC)
    key = f"{ctx.user_id}:{card_id}"

    def review(doc: dict | None) -> dict:
        state = fsrs.Card.from_dict(doc["fsrs"]) if doc else fsrs.Card(card_id=0, due=review_at)
        state, _ = scheduler().review_card(state, fsrs.Rating(rating), review_datetime=review_at)
        due = int(state.due.timestamp() * 1000)
        fresh = {
            "learner": ctx.user_id,
            "course_id": course_id,
            "card_id": card_id,
            "due": due,
            "fsrs": state.to_dict(),
            "reviews": (doc or {}).get("reviews", 0) + 1,
        }
        if doc is None:
            return fresh  # created below (update_doc writes nothing for a None doc)
        doc.update(fresh)
        return fresh

    result, _ = await update_doc(ctx, REVIEWS, key, review)
    if result["reviews"] == 1:
        try:  # first review: create only if absent (a concurrent first review wins once)
            await ctx.storage_update(REVIEWS, key, set=result, expected_version=0, upsert=True)
        except Conflict:
            raise ViewError("busy", "This card was just reviewed: reload.") from None
    return {
        "card_id": card_id,
        "due": result["due"],
        "state": fsrs.State(result["fsrs"]["state"]).name.lower(),
        "reviews": result["reviews"],
    }


# --- /course cards and the morning message ------------------------------------------------


def due_card(count: int) -> Card:
    text = f"{count} card{'s' if count != 1 else ''} due for review." if count else "Nothing due."
    buttons = [Button.webview("Review", path="#cards", style="primary")] if count else []
    return Card(title="🗂 Flashcards", text=text, buttons=buttons)


async def cards(ctx, args: list[str]) -> Reply | None:
    """``/course cards [off]``."""
    if args and args[0].lower() == "off":
        await ctx.cancel_schedule(f"cards-morning:{ctx.user_id}")
        return Reply(ephemeral="No more morning flashcard messages.")
    if args:
        return Reply(ephemeral="Usage: /course cards · /course cards off")
    courses = await learner_decks(ctx, ctx.user_id)
    if not courses:
        return Reply(ephemeral="None of your courses has flashcards.")
    due = await due_cards(ctx, ctx.user_id, courses, now_ms(ctx))
    await ctx.schedule(
        MORNING_TIMER,
        at=next_morning(now_ms(ctx), zone_of(ctx)),
        payload={"learner": ctx.user_id},
        key=f"cards-morning:{ctx.user_id}",
    )
    with contextlib.suppress(HostError):
        await ctx.request_subscription()
    return Reply(ephemeral=due_card(len(due)))


async def on_morning(ctx) -> None:
    """08:00 local: the due count as a service message (once per local day), then tomorrow."""
    learner = str(ctx.payload.get("learner") or ctx.user_id)
    zone, now = zone_of(ctx), now_ms(ctx)
    courses = await learner_decks(ctx, learner)
    if not courses:
        return  # no decks any more: the daily message stops
    await ctx.schedule(
        MORNING_TIMER,
        at=next_morning(now + 60_000, zone),
        payload={"learner": learner},
        key=f"cards-morning:{learner}",
    )
    day = local_day(now, zone)

    def mark(doc: dict | None) -> bool:
        if doc is not None and doc.get("day") == day:
            return False
        if doc is None:
            return True  # first morning: created below
        doc["day"] = day
        return True

    first, doc = await update_doc(ctx, REVIEWS, f"morning:{learner}", mark)
    if first and doc is None:
        try:
            await ctx.storage_update(
                REVIEWS, f"morning:{learner}", set={"day": day}, expected_version=0, upsert=True
            )
        except Conflict:
            return
    if not first:
        return
    due = await due_cards(ctx, learner, courses, now)
    if not due:
        return
    with contextlib.suppress(ScopeDenied):
        await ctx.send_service_message(learner, card=due_card(len(due)))


SUBCOMMANDS = {"cards": cards}
TIMERS = {MORNING_TIMER: on_morning}
VIEWS = {
    "cards.deck": view_deck,
    "cards.add": view_add,
    "cards.list": view_list,
    "cards.delete": view_delete,
    "cards.due": view_due,
    "cards.review": view_review,
}
