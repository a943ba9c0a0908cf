"""``cards.list``: the deck editor's view of a course's flashcards (the web view's Authoring tab),
in the SDK simulator."""

from __future__ import annotations

import pytest

from sdk import ViewError
from tests.miniapps.courses.cohort_fixtures import (
    COURSE_ID,
    add_course,
    enrol,
    make_instructor,
    new_sim,
)


async def test_the_deck_lists_its_cards_and_whether_it_is_on():
    sim = new_sim()
    teacher = make_instructor(sim)
    await add_course(sim, instructor=teacher.id)
    await add_course(sim, "c-other", "Other", instructor=teacher.id)
    lea = sim.user("lea")
    chat = sim.conversation(members=[teacher, lea], type="direct")

    empty = await sim.view(teacher, chat, "cards.list", {"course_id": COURSE_ID})
    assert empty == {"course_id": COURSE_ID, "enabled": False, "cards": []}

    await sim.view(teacher, chat, "cards.deck", {"course_id": COURSE_ID, "enabled": True})
    added = []
    for front, back in [("ownership", "one owner"), ("borrow", "&'a <T>")]:
        answer = await sim.view(
            teacher, chat, "cards.add", {"course_id": COURSE_ID, "front": front, "back": back}
        )
        added.append(answer["card"]["card_id"])
    await sim.view(teacher, chat, "cards.add", {"course_id": "c-other", "front": "x", "back": "y"})

    deck = await sim.view(teacher, chat, "cards.list", {"course_id": COURSE_ID})
    assert deck["enabled"] is True
    assert {c["card_id"] for c in deck["cards"]} == set(added)  # not the other course's card
    by_id = {c["card_id"]: c for c in deck["cards"]}
    assert (by_id[added[0]]["front"], by_id[added[0]]["back"]) == ("ownership", "one owner")
    assert by_id[added[1]]["back"] == "&'a <T>"  # as written: the page escapes it

    await sim.view(teacher, chat, "cards.delete", {"card_id": added[0]})
    await sim.view(teacher, chat, "cards.deck", {"course_id": COURSE_ID, "enabled": False})
    deck = await sim.view(teacher, chat, "cards.list", {"course_id": COURSE_ID})
    assert deck["enabled"] is False
    assert [c["card_id"] for c in deck["cards"]] == [added[1]]


async def test_only_instructors_list_a_deck_of_a_course_that_exists():
    sim = new_sim()
    teacher = make_instructor(sim)
    await add_course(sim, instructor=teacher.id)
    lea = sim.user("lea")
    chat = sim.conversation(members=[teacher, lea], type="direct")
    other_teacher = make_instructor(sim, "olga")  # an instructor, of other courses
    sim.add_member(chat, other_teacher)
    await enrol(sim, lea)  # an enrolled learner still reviews, never lists the deck
    await sim.view(teacher, chat, "cards.add", {"course_id": COURSE_ID, "front": "q", "back": "a"})
    refused = [
        (lea, {"course_id": COURSE_ID}, "not_instructor"),
        (other_teacher, {"course_id": COURSE_ID}, "not_your_course"),
        (teacher, {"course_id": "c-nope"}, "unknown_course"),
        (teacher, {"course_id": "../courses"}, "unknown_course"),
        (teacher, {}, "unknown_course"),
    ]
    for user, params, code in refused:
        with pytest.raises(ViewError) as error:
            await sim.view(user, chat, "cards.list", params)
        assert error.value.code == code, params
