"""Flashcards: decks, FSRS scheduling of reviews, the due count, the morning service message
and bad input, in the SDK simulator."""

from __future__ import annotations

import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from sdk import ViewError
from tests.miniapps.courses.cohort_fixtures import (
    COURSE_ID,
    add_course,
    enrol,
    last_ephemeral,
    make_instructor,
    new_sim,
)

DAY = 86_400_000


async def setup_deck(cards: int = 2):
    sim = new_sim()
    teacher = make_instructor(sim)
    await add_course(sim, instructor=teacher.id)
    lea = sim.user("lea")
    chat = sim.conversation(members=[teacher, lea], type="direct")
    await sim.view(teacher, chat, "cards.deck", {"course_id": COURSE_ID, "enabled": True})
    ids = []
    for n in range(cards):
        answer = await sim.view(
            teacher, chat, "cards.add", {"course_id": COURSE_ID, "front": f"Q{n}", "back": f"A{n}"}
        )
        ids.append(answer["card"]["card_id"])
    await enrol(sim, lea)
    return sim, teacher, lea, chat, ids


@pytest.fixture
def clock(monkeypatch):
    """The flashcards module's clock, set by the test (a timer keeps its own due time)."""
    new_sim()  # loads the app and its modules
    module = sys.modules["flashcards"]
    state = {"now": int(datetime(2025, 3, 3, 12, 0, tzinfo=ZoneInfo("UTC")).timestamp() * 1000)}
    original = module.now_ms

    def now_ms(ctx=None):
        return original(ctx) if getattr(ctx, "due_at", None) else state["now"]

    monkeypatch.setattr(module, "now_ms", now_ms)
    return state


async def test_reviews_are_scheduled_with_fsrs(clock):
    sim, _teacher, lea, chat, (first, second) = await setup_deck()
    due = await sim.view(lea, chat, "cards.due", {})
    assert due["due_count"] == 2 and {c["card_id"] for c in due["cards"]} == {first, second}

    easy = await sim.view(lea, chat, "cards.review", {"card_id": first, "rating": 4})
    again = await sim.view(lea, chat, "cards.review", {"card_id": second, "rating": 1})
    assert easy["state"] == "review" and easy["due"] >= clock["now"] + DAY
    assert again["state"] == "learning" and clock["now"] < again["due"] < clock["now"] + DAY
    assert (await sim.view(lea, chat, "cards.due", {}))["due_count"] == 0

    clock["now"] = again["due"]  # the "again" card comes back first
    assert [c["card_id"] for c in (await sim.view(lea, chat, "cards.due", {}))["cards"]] == [second]
    good = await sim.view(lea, chat, "cards.review", {"card_id": second, "rating": 3})
    assert good["reviews"] == 2 and good["due"] > clock["now"]

    clock["now"] = easy["due"] + 1
    assert first in [c["card_id"] for c in (await sim.view(lea, chat, "cards.due", {}))["cards"]]
    stored = sim.storage("reviews")[f"{lea.id}:{first}"]
    assert stored["fsrs"]["state"] == 2 and stored["reviews"] == 1


async def test_cards_command_and_the_morning_message(clock):
    sim, _teacher, lea, chat, (first, _second) = await setup_deck()
    clock["now"] = sim.now
    await sim.command(lea, chat, "/course cards")
    reply = sim.ephemeral(lea)[-1]["card"]
    assert reply["text"] == "2 cards due for review."
    assert reply["buttons"][0]["opens"] == "webview" and reply["buttons"][0]["path"] == "#cards"
    [timer] = sim.pending_timers()
    assert timer["name"] == "cards.morning"
    due_at = datetime.fromtimestamp(timer["due_at"] / 1000, ZoneInfo("UTC"))
    assert (due_at.hour, due_at.minute) == (8, 0) and 0 < timer["due_at"] - sim.now <= DAY

    await sim.advance(days=1)
    assert sim.notifications(lea)[-1]["text"] == "2 cards due for review."
    assert len(sim.notifications(lea)) == 1
    [timer] = sim.pending_timers()  # tomorrow's, at 08:00 again
    assert datetime.fromtimestamp(timer["due_at"] / 1000, ZoneInfo("UTC")).hour == 8

    clock["now"] = sim.now
    await sim.view(lea, chat, "cards.review", {"card_id": first, "rating": 4})
    await sim.view(lea, chat, "cards.review", {"card_id": _second, "rating": 4})
    await sim.advance(days=1)  # nothing due: no message, still rescheduled
    assert len(sim.notifications(lea)) == 1 and len(sim.pending_timers()) == 1

    await sim.command(lea, chat, "/course cards off")
    assert sim.pending_timers() == []


async def test_the_morning_message_is_at_eight_in_the_learners_time_zone(clock):
    sim = new_sim()
    if "time_zone" not in sim.user.__code__.co_varnames:
        pytest.skip("the simulator has no time zones yet (sim.user(time_zone=…))")
    teacher = make_instructor(sim)
    await add_course(sim, instructor=teacher.id)
    lea = sim.user("lea", time_zone="America/New_York")
    chat = sim.conversation(members=[teacher, lea], type="direct")
    await sim.view(teacher, chat, "cards.deck", {"course_id": COURSE_ID, "enabled": True})
    await sim.view(teacher, chat, "cards.add", {"course_id": COURSE_ID, "front": "Q", "back": "A"})
    await enrol(sim, lea)
    clock["now"] = sim.now
    await sim.command(lea, chat, "/course cards")
    for _ in range(3):
        [timer] = sim.pending_timers()
        local = datetime.fromtimestamp(timer["due_at"] / 1000, ZoneInfo("America/New_York"))
        assert (local.hour, local.minute) == (8, 0)
        await sim.advance(days=1)


async def test_bad_input_is_refused_and_nothing_is_written(clock):
    sim, teacher, lea, chat, (first, _second) = await setup_deck(cards=2)
    outsider = sim.user("otto")
    sim.add_member(chat, outsider)
    olga = make_instructor(sim, "olga")  # an instructor, but of other courses
    sim.add_member(chat, olga)
    refused = [
        (lea, "cards.add", {"course_id": COURSE_ID, "front": "x", "back": "y"}, "not_instructor"),
        (lea, "cards.deck", {"course_id": COURSE_ID, "enabled": False}, "not_instructor"),
        (
            olga,
            "cards.add",
            {"course_id": COURSE_ID, "front": "x", "back": "y"},
            "not_your_course",
        ),
        (
            teacher,
            "cards.add",
            {"course_id": "c-nope", "front": "x", "back": "y"},
            "unknown_course",
        ),
        (
            teacher,
            "cards.add",
            {"course_id": COURSE_ID, "front": " ", "back": "y"},
            "invalid_front",
        ),
        (
            teacher,
            "cards.add",
            {"course_id": COURSE_ID, "front": "x", "back": "y" * 2001},
            "invalid_back",
        ),
        (teacher, "cards.deck", {"course_id": COURSE_ID, "enabled": "yes"}, "invalid_enabled"),
        (lea, "cards.review", {"card_id": first, "rating": 5}, "invalid_rating"),
        (lea, "cards.review", {"card_id": first, "rating": "4"}, "invalid_rating"),
        (lea, "cards.review", {"card_id": "fc-000000000000", "rating": 3}, "unknown_card"),
        (outsider, "cards.review", {"card_id": first, "rating": 3}, "unknown_card"),  # not enrolled
        (lea, "cards.due", {"course_id": "c-nope"}, "unknown_course"),
    ]
    for user, view, params, code in refused:
        with pytest.raises(ViewError) as error:
            await sim.view(user, chat, view, params)
        assert error.value.code == code, (view, params)
    assert len(sim.storage("flashcards")) == 3 and sim.storage("reviews") == {}

    await sim.view(teacher, chat, "cards.deck", {"course_id": COURSE_ID, "enabled": False})
    with pytest.raises(ViewError):  # a deck that is off is not reviewed
        await sim.view(lea, chat, "cards.review", {"card_id": first, "rating": 3})
    await sim.command(lea, chat, "/course cards")
    assert last_ephemeral(sim, lea) == "None of your courses has flashcards."
    await sim.command(lea, chat, "/course cards now")
    assert last_ephemeral(sim, lea).startswith("Usage: /course cards")
    assert sim.pending_timers() == [] and sim.storage("reviews") == {}
