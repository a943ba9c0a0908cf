"""Catalog: authoring views (instructor only), the catalogue, /course, the demo."""

from __future__ import annotations

import pytest

from sdk import ViewError
from tests.miniapps.courses.conftest import lesson_ids, make_course


async def test_course_card_lists_published_courses_and_opens_the_web_view(
    sim, instructor, learner, chat
):
    await make_course(sim, instructor, chat, title="Python 101")
    await make_course(sim, instructor, chat, title="Draft", published=False)
    await make_course(sim, instructor, chat, title="Stats", price=1900)
    reply = await sim.command(learner, chat, "/course")
    card = reply["card"]
    assert "Python 101 — Free" in card["text"] and "Stats — $19.00" in card["text"]
    assert "Draft" not in card["text"]
    assert card["buttons"] == [{"label": "Open courses", "opens": "webview"}]


async def test_authoring_needs_the_instructor_role_and_writes_nothing(sim, learner, chat):
    with pytest.raises(ViewError) as refused:
        await sim.view(learner, chat, "course.save", {"title": "Mine", "published": True})
    assert refused.value.code == "not_instructor"
    assert sim.storage("courses") == {}
    for name in ("section.save", "lesson.save", "lesson.order", "demo.seed", "course.authored"):
        with pytest.raises(ViewError) as refused:
            await sim.view(learner, chat, name, {"course_id": "python-101"})
        assert refused.value.code == "not_instructor"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"title": ""}, "invalid_title"),
        ({"title": "x" * 101}, "invalid_title"),
        ({"title": "T", "price": -1}, "invalid_price"),
        ({"title": "T", "price": "12"}, "invalid_price"),
        ({"title": "T", "currency": "XXQ"}, "invalid_currency"),
        ({"title": "T", "published": "yes"}, "invalid_published"),
        ({"title": "T", "cover": "http://evil/x.png"}, "invalid_cover"),
        ({"title": "T", "course_id": "python-101"}, "unknown_course"),
    ],
)
async def test_course_save_refuses_bad_input(sim, instructor, chat, params, code):
    with pytest.raises(ViewError) as refused:
        await sim.view(instructor, chat, "course.save", params)
    assert refused.value.code == code
    assert sim.storage("courses") == {}


async def test_only_the_courses_instructor_changes_it(sim, instructor, chat):
    course = await make_course(sim, instructor, chat)
    other = sim.user("olga")
    sim.grant_role(other, "instructor")
    sim.add_member(chat, other)
    params = {"course_id": course["id"], "title": "Taken over"}
    with pytest.raises(ViewError) as refused:
        await sim.view(other, chat, "course.save", params)
    assert refused.value.code == "not_your_course"
    assert sim.storage("courses")[course["id"]]["title"] == "Python 101"


async def test_sections_weights_and_lesson_order(sim, instructor, chat):
    course = await make_course(sim, instructor, chat, lessons=3)
    params = {"course_id": course["id"], "title": "Advanced", "weight": 2.5, "drop_lowest": 1}
    course = (await sim.view(instructor, chat, "section.save", params))["course"]
    basics, advanced = course["sections"]
    assert (advanced["weight"], advanced["drop_lowest"]) == (2.5, 1)
    for bad in ({"weight": -1}, {"drop_lowest": -1}, {"section_id": "s-nope"}):
        with pytest.raises(ViewError):
            await sim.view(instructor, chat, "section.save", {**params, **bad})
    first, second, third = lesson_ids(course)
    order = {basics["id"]: [third, first], advanced["id"]: [second]}
    course = (
        await sim.view(
            instructor, chat, "lesson.order", {"course_id": course["id"], "order": order}
        )
    )["course"]
    assert [[x["id"] for x in s["lessons"]] for s in course["sections"]] == [
        [third, first],
        [second],
    ]
    for bad in (
        {basics["id"]: [third, first]},  # a section and a lesson missing
        {basics["id"]: [third, first, first], advanced["id"]: [second]},  # twice
        {basics["id"]: [third, first, "l-other"], advanced["id"]: [second]},  # unknown
    ):
        with pytest.raises(ViewError) as refused:
            await sim.view(
                instructor, chat, "lesson.order", {"course_id": course["id"], "order": bad}
            )
        assert refused.value.code == "invalid_order"
    stored = sim.storage("courses")[course["id"]]
    assert [[x["id"] for x in s["lessons"]] for s in stored["sections"]] == [
        [third, first],
        [second],
    ]


async def test_catalogue_view_prices_in_the_readers_locale_and_enrolment(sim, instructor, chat):
    reader = sim.user("dora", locale="de-DE")
    sim.add_member(chat, reader)
    free = await make_course(sim, instructor, chat, title="Free one")
    await make_course(sim, instructor, chat, title="Paid one", price=1900)
    await make_course(sim, instructor, chat, title="Hidden", published=False)
    await sim.view(reader, chat, "enrol", {"course_id": free["id"]})
    answer = await sim.view(reader, chat, "catalogue")
    shown = {c["title"]: (c["price_text"], c["enrolled"]) for c in answer["courses"]}
    assert shown == {"Free one": ("Free", True), "Paid one": ("19,00\xa0$", False)}
    assert answer["instructor"] is False


async def test_course_get_unknown_and_unpublished(sim, instructor, learner, chat):
    draft = await make_course(sim, instructor, chat, published=False)
    for course_id in ("c-nothere", "../x", 42, draft["id"]):
        with pytest.raises(ViewError) as refused:
            await sim.view(learner, chat, "course.get", {"course_id": course_id})
        assert refused.value.code == "unknown_course"
    # its instructor sees it, and lists it among their courses
    mine = await sim.view(instructor, chat, "course.get", {"course_id": draft["id"]})
    assert mine["course"]["progress"]["total"] == 2
    authored = await sim.view(instructor, chat, "course.authored")
    assert [c["id"] for c in authored["courses"]] == [draft["id"]]


async def test_demo_seed_is_idempotent(sim, instructor, learner, chat):
    first = await sim.view(instructor, chat, "demo.seed")
    assert first["created"] == ["python-101", "data-science"]
    again = await sim.view(instructor, chat, "demo.seed")
    assert again["created"] == []
    courses = sim.storage("courses")
    assert set(courses) == {"python-101", "data-science"}
    python = courses["python-101"]
    assert [len(s["lessons"]) for s in python["sections"]] == [2, 2]
    assert [x["kind"] for s in python["sections"] for x in s["lessons"]].count("quiz") == 1
    assert len(sim.storage("quizzes")["python-101:l-quiz"]["questions"]) == 3
    assert (courses["data-science"]["price"], courses["data-science"]["currency"]) == (1900, "USD")
    assert len(sim.storage("lessons")) == 5
    text = (await sim.command(learner, chat, "/course"))["card"]["text"]
    assert "Python 101 — Free" in text and "Data Science Basics — $19.00" in text
