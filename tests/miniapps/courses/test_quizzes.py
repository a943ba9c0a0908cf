"""Quizzes in the simulator: saving a definition, attempts under the limit however many starts
race, submissions graded once on the server however many retries race, the time limit, answers
kept from the client, and every refused input writing nothing."""

from __future__ import annotations

import asyncio
import copy

import pytest

from sdk import ViewError
from tests.miniapps.courses.quiz_fixtures import (
    ALL_RIGHT,
    COURSE_ID,
    DEFINITION,
    OTHER_COURSE_ID,
    QUIZ_ID,
    open_classroom,
    run_as,
)

ANSWER_FIELDS = ("correct", "value", "tolerance")


@pytest.fixture
async def room(monkeypatch):
    return await open_classroom(monkeypatch)


def progress_of(room, user=None):
    return room.stored("progress", f"{(user or room.learner).id}:{COURSE_ID}")


def xp_of(room, user=None):
    return (room.stored("xp", (user or room.learner).id) or {}).get("total", 0)


async def refused(code: str, call) -> ViewError:
    with pytest.raises(ViewError) as caught:
        await call
    assert caught.value.code == code, caught.value.message
    return caught.value


# --- the answers stay on the server -----------------------------------------------------------


async def test_start_gives_the_questions_without_their_answers(room):
    attempt = await room.start()
    assert [q["id"] for q in attempt["questions"]] == ["q1", "q2", "q3"]
    assert attempt["questions"][0]["options"] == ["3", "4", "5"]
    for question in attempt["questions"]:
        assert not set(ANSWER_FIELDS) & set(question)
    assert "3.14" not in repr(attempt)
    assert attempt["deadline"] == attempt["started_at"] + 60_000
    assert (attempt["number"], attempt["attempts_left"]) == (1, 2)

    status = await room.view(
        room.learner, "quiz.get", {"course_id": COURSE_ID, "lesson_id": QUIZ_ID}
    )
    assert status["open_attempt"]["attempt_id"] == attempt["attempt_id"]
    assert "3.14" not in repr(status) and "correct" not in repr(status)
    # The instructor sees the whole definition.
    full = await room.view(room.teacher, "quiz.get", {"course_id": COURSE_ID, "lesson_id": QUIZ_ID})
    assert full["quiz"]["questions"][2]["value"] == 3.14


async def test_a_failed_attempt_shows_what_was_wrong_but_not_the_answers_while_attempts_remain(
    room,
):
    attempt = await room.start()
    result = await room.submit(attempt["attempt_id"], {"q1": 1, "q2": [0], "q3": "2.5"})
    assert (result["grade"], result["passed"]) == (25.0, False)
    assert result["correct"] == {"q1": True, "q2": False, "q3": False}
    assert result["solutions"] is None and result["attempts_left"] == 2
    assert progress_of(room)["quiz_results"] == {QUIZ_ID: 25.0}
    assert xp_of(room) == 0

    second = await room.start()
    passed = await room.submit(second["attempt_id"], {"q1": 1, "q2": [2], "q3": 3.135})
    assert (passed["grade"], passed["passed"], passed["best_grade"]) == (75.0, True, 75.0)
    assert passed["solutions"] == {"q1": 1, "q2": [0, 2], "q3": {"value": 3.14, "tolerance": 0.01}}
    assert progress_of(room)["quiz_results"] == {QUIZ_ID: 75.0}
    assert xp_of(room) == 50
    standing = await run_as(room, room.learner, lambda ctx: quizzes_result_of(ctx, room))
    assert standing == {
        "grade": 75.0,
        "passed": True,
        "passing_grade": 75.0,
        "attempts_used": 2,
        "attempt_limit": 3,
    }


async def quizzes_result_of(ctx, room):
    import quizzes

    return await quizzes.result_of(ctx, room.learner.id, COURSE_ID, QUIZ_ID)


async def test_result_of_is_none_before_a_graded_attempt(room):
    await room.start()
    assert await run_as(room, room.learner, lambda ctx: quizzes_result_of(ctx, room)) is None


# --- concurrency ------------------------------------------------------------------------------


async def test_concurrent_submits_of_one_attempt_grade_it_once_and_give_xp_once(room):
    attempt = await room.start()
    wrong = {"q1": 0, "q2": [0], "q3": 1}
    submits = [room.submit(attempt["attempt_id"], ALL_RIGHT if i % 2 else wrong) for i in range(20)]
    results = await asyncio.gather(*submits)
    stored = room.stored("attempts", attempt["attempt_id"])
    assert stored["state"] == "submitted"
    assert {(r["grade"], r["submitted_at"]) for r in results} == {
        (stored["result"]["grade"], stored["result"]["submitted_at"])
    }
    assert progress_of(room)["quiz_results"] == {QUIZ_ID: stored["result"]["grade"]}
    expected_xp = 50 if stored["result"]["passed"] else 0
    assert xp_of(room) == expected_xp
    assert len(room.sim.storage("xp_awards")) == (1 if expected_xp else 0)


async def test_xp_is_exact_after_retries_and_a_second_pass(room):
    first = await room.start()
    for _ in range(3):
        again = await room.submit(first["attempt_id"], ALL_RIGHT)
        assert (again["grade"], again["passed"]) == (100.0, True)
    # A retry with other answers still answers the stored result.
    retry = await room.submit(first["attempt_id"], {"q1": 0})
    assert retry["grade"] == 100.0 and retry["correct"]["q1"] is True
    second = await room.start()
    await asyncio.gather(*(room.submit(second["attempt_id"], ALL_RIGHT) for _ in range(5)))
    assert xp_of(room) == 50
    assert list(room.sim.storage("xp_awards")) == [f"quiz:{COURSE_ID}:{QUIZ_ID}:{room.learner.id}"]


async def test_concurrent_starts_never_exceed_the_attempt_limit(room):
    outcomes = await asyncio.gather(*(room.start() for _ in range(12)), return_exceptions=True)
    started = [o for o in outcomes if isinstance(o, dict)]
    refusals = [o for o in outcomes if isinstance(o, ViewError)]
    assert len(started) == 3 and len(refusals) == 9
    assert {r.code for r in refusals} == {"no_attempts_left"}
    assert sorted(s["number"] for s in started) == [1, 2, 3]
    assert len(room.sim.storage("attempts")) == 3
    assert room.stored("attempt_counts", f"{room.learner.id}:{COURSE_ID}:{QUIZ_ID}")["used"] == 3
    await refused("no_attempts_left", room.start())


async def test_a_fourth_attempt_of_three_is_refused_and_writes_nothing(room):
    for _ in range(3):
        attempt = await room.start()
        await room.submit(attempt["attempt_id"], {"q1": 0})
    before = copy.deepcopy(room.sim.storage("attempts"))
    await refused("no_attempts_left", room.start())
    assert room.sim.storage("attempts") == before


# --- the time limit ---------------------------------------------------------------------------


async def test_a_submission_after_the_time_limit_is_refused_and_writes_nothing(room):
    attempt = await room.start()
    room.clock.advance(62.001)  # 60 s + the 2 s grace, and a millisecond
    await refused("time_up", room.submit(attempt["attempt_id"], ALL_RIGHT))
    assert room.stored("attempts", attempt["attempt_id"])["state"] == "open"
    assert progress_of(room) is None and xp_of(room) == 0
    status = await room.view(
        room.learner, "quiz.get", {"course_id": COURSE_ID, "lesson_id": QUIZ_ID}
    )
    assert status["open_attempt"] is None and status["attempts_left"] == 2


async def test_a_submission_within_the_grace_counts(room):
    attempt = await room.start()
    room.clock.advance(61.5)
    assert (await room.submit(attempt["attempt_id"], ALL_RIGHT))["passed"] is True


async def test_a_quiz_without_time_limit_takes_any_time(room):
    await room.save(time_limit=None)
    attempt = await room.start()
    assert attempt["deadline"] is None
    room.clock.advance(7 * 24 * 3600)
    assert (await room.submit(attempt["attempt_id"], ALL_RIGHT))["grade"] == 100.0


# --- whose attempt, which quiz ----------------------------------------------------------------


async def test_another_learners_attempt_is_not_found_and_untouched(room):
    attempt = await room.start()
    mallory = room.join("mallory")
    await room.enrol(mallory)
    error = await refused("not_found", room.submit(attempt["attempt_id"], ALL_RIGHT, user=mallory))
    assert error.message == "No such attempt."
    stored = room.stored("attempts", attempt["attempt_id"])
    assert stored["state"] == "open" and stored["learner"] == room.learner.id
    assert progress_of(room, mallory) is None and xp_of(room, mallory) == 0
    for bogus in ("a-0000000000000000", "../x", 7, None):
        await refused("not_found", room.submit(bogus, ALL_RIGHT))


async def test_a_quiz_of_another_course_or_a_text_lesson_is_not_found(room):
    other_sections = [
        {
            "id": "s",
            "title": "S",
            "weight": 1,
            "drop_lowest": 0,
            "lessons": [{"id": "borrow", "kind": "quiz", "title": "Borrowing"}],
        }
    ]
    await room.course(OTHER_COURSE_ID, sections=other_sections)
    await room.enrol(room.learner, OTHER_COURSE_ID)
    await refused("not_found", room.start(lesson_id="borrow"))  # borrow is the other course's
    await refused("not_found", room.start(course_id=OTHER_COURSE_ID, lesson_id=QUIZ_ID))
    await refused("not_found", room.start(lesson_id="intro"))  # a text lesson
    await refused("not_found", room.start(course_id="c-nope"))
    await refused("not_found", room.start(course_id={"$gt": ""}))
    await refused(
        "not_found",
        room.view(
            room.teacher,
            "quiz.save",
            {"course_id": COURSE_ID, "lesson_id": "borrow", "definition": DEFINITION},
        ),
    )
    assert room.stored("quizzes", f"{COURSE_ID}:borrow") is None
    assert room.sim.storage("attempts") == {} and room.sim.storage("attempt_counts") == {}


async def test_a_learner_who_is_not_enrolled_cannot_start(room):
    stranger = room.join("sam")
    await refused("not_enrolled", room.start(user=stranger))
    await refused(
        "not_enrolled",
        room.view(stranger, "quiz.get", {"course_id": COURSE_ID, "lesson_id": QUIZ_ID}),
    )
    assert room.sim.storage("attempt_counts") == {}


async def test_bad_answers_are_refused_and_the_attempt_stays_open(room):
    attempt = await room.start()
    for answers in ({"q1": 7}, {"q2": "0,2"}, {"q3": "pi"}, {"q9": 1}, ["q1", 1], None):
        await refused("bad_answers", room.submit(attempt["attempt_id"], answers))
    assert room.stored("attempts", attempt["attempt_id"])["state"] == "open"
    assert progress_of(room) is None
    assert (await room.submit(attempt["attempt_id"], ALL_RIGHT))["grade"] == 100.0


# --- saving -----------------------------------------------------------------------------------


async def test_only_the_courses_instructor_saves_its_quiz(room):
    other_teacher = room.join("olga")
    room.sim.grant_role(other_teacher, "instructor")
    before = copy.deepcopy(room.stored("quizzes", f"{COURSE_ID}:{QUIZ_ID}"))
    params = {
        "course_id": COURSE_ID,
        "lesson_id": QUIZ_ID,
        "definition": dict(DEFINITION, passing_grade=1),
    }
    await refused("not_instructor", room.view(room.learner, "quiz.save", params))
    await refused("not_instructor", room.view(other_teacher, "quiz.save", params))
    room.sim.revoke_role(room.teacher, "instructor")
    await refused("not_instructor", room.view(room.teacher, "quiz.save", params))
    assert room.stored("quizzes", f"{COURSE_ID}:{QUIZ_ID}") == before


def question(**fields):
    return {"kind": "single", "text": "?", "options": ["a", "b"], "correct": 0, **fields}


@pytest.mark.parametrize(
    "changes",
    [
        {"questions": []},
        {"questions": [question()] * 51},
        {"questions": [question(correct=2)]},
        {"questions": [question(options=["a"])]},
        {"questions": [question(options=["a", "a"])]},
        {"questions": [question(text=" ")]},
        {"questions": [question(text="x" * 501)]},
        {"questions": [question(kind="essay")]},
        {"questions": [question(weight=0)]},
        {"questions": [question(weight=-1)]},
        {"questions": [question(kind="multiple", correct=[])]},
        {"questions": [question(kind="multiple", correct=[0, 0])]},
        {"questions": [{"kind": "numeric", "text": "?", "tolerance": 1}]},
        {"questions": [{"kind": "numeric", "text": "?", "value": 1, "tolerance": -1}]},
        {"passing_grade": 101},
        {"passing_grade": "lots"},
        {"attempt_limit": 0},
        {"attempt_limit": 11},
        {"attempt_limit": 2.5},
        {"time_limit": 29},
        {"time_limit": 7201},
    ],
)
async def test_a_bad_definition_is_refused_and_nothing_is_written(room, changes):
    before = copy.deepcopy(room.stored("quizzes", f"{COURSE_ID}:{QUIZ_ID}"))
    await refused("bad_quiz", room.save(**changes))
    assert room.stored("quizzes", f"{COURSE_ID}:{QUIZ_ID}") == before


async def test_an_attempt_started_before_an_edit_is_graded_as_it_started(room):
    attempt = await room.start()
    edited = copy.deepcopy(DEFINITION)
    edited["questions"][0]["correct"] = 2
    quiz = await room.save(edited)
    assert quiz["revision"] == 2
    assert (await room.submit(attempt["attempt_id"], ALL_RIGHT))["grade"] == 100.0
    later = await room.start()
    assert (await room.submit(later["attempt_id"], ALL_RIGHT))["correct"]["q1"] is False


async def test_the_grades_view_gives_the_course_grade(room):
    attempt = await room.start()
    await room.submit(attempt["attempt_id"], {"q1": 1, "q2": [0, 2], "q3": 0})
    grades = await room.view(room.learner, "quiz.grades", {"course_id": COURSE_ID})
    assert grades["quiz_results"] == {QUIZ_ID: 50.0} and grades["course_grade"] == 50.0


async def test_course_xp_answers_the_invokers_own_total(room):
    attempt = await room.start()
    await room.submit(attempt["attempt_id"], ALL_RIGHT)
    await room.sim.command(room.learner, room.chat, "/course xp")
    assert room.sim.ephemeral(room.learner)[-1]["text"] == "You have 50 XP."
    await room.sim.command(room.teacher, room.chat, "/course xp")
    assert room.sim.ephemeral(room.teacher)[-1]["text"] == "You have 0 XP."


async def test_a_passed_quiz_counts_as_a_done_lesson_and_a_failed_one_does_not(room):
    wrong = {"q1": 0, "q2": [0], "q3": 1}
    attempt = await room.start()
    await room.submit(attempt["attempt_id"], wrong)
    course = (await room.view(room.learner, "course.get", {"course_id": COURSE_ID}))["course"]
    assert course["progress"]["done"] == 0
    attempt = await room.start()
    await room.submit(attempt["attempt_id"], ALL_RIGHT)
    course = (await room.view(room.learner, "course.get", {"course_id": COURSE_ID}))["course"]
    quiz = next(x for s in course["sections"] for x in s["lessons"] if x["id"] == QUIZ_ID)
    assert quiz["seen"] is True
    assert (course["progress"]["done"], course["progress"]["total"]) == (1, 2)
