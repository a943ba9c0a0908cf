"""grading.py: the pure rules — answers' shapes, numeric tolerance, weighted grades, and the
course grade with section weights and drop-lowest (Open edX style)."""

from __future__ import annotations

import importlib
import sys

import pytest

from tests.miniapps.courses.quiz_fixtures import COURSES_DIR

if str(COURSES_DIR) not in sys.path:
    sys.path.insert(0, str(COURSES_DIR))
grading = importlib.import_module("grading")

SINGLE = {"id": "q1", "kind": "single", "weight": 1.0, "correct": 1, "options": 3}
MULTIPLE = {"id": "q2", "kind": "multiple", "weight": 1.0, "correct": [0, 2], "options": 3}
NUMERIC = {"id": "q3", "kind": "numeric", "weight": 2.0, "value": 3.14, "tolerance": 0.01}


@pytest.mark.parametrize(
    ("answer", "right"),
    [
        (3.14, True),
        (3.15, True),
        (3.13, True),
        (3.1501, False),
        (3.1299, False),
        ("3,145", True),
        ("3.2", False),
        (None, False),
    ],
)
def test_numeric_answers_are_right_within_the_tolerance(answer, right):
    assert grading.is_correct(NUMERIC, grading.check_answer(NUMERIC, answer)) is right


def test_numeric_tolerance_zero_is_exact_but_float_safe():
    key = {"id": "q", "kind": "numeric", "weight": 1.0, "value": 0.3, "tolerance": 0.0}
    assert grading.is_correct(key, 0.1 + 0.2)
    assert not grading.is_correct(key, 0.3001)


def test_multiple_choice_needs_exactly_the_correct_set():
    assert grading.is_correct(MULTIPLE, grading.check_answer(MULTIPLE, [2, 0]))
    assert grading.is_correct(MULTIPLE, grading.check_answer(MULTIPLE, [0, 2, 2]))
    assert not grading.is_correct(MULTIPLE, grading.check_answer(MULTIPLE, [0]))
    assert not grading.is_correct(MULTIPLE, grading.check_answer(MULTIPLE, [0, 1, 2]))


@pytest.mark.parametrize(
    ("key", "answer"),
    [
        (SINGLE, 3),
        (SINGLE, -1),
        (SINGLE, True),
        (SINGLE, "1"),
        (SINGLE, 1.0),
        (MULTIPLE, 0),
        (MULTIPLE, [0, 5]),
        (MULTIPLE, [False]),
        (NUMERIC, "pi"),
        (NUMERIC, "nan"),
        (NUMERIC, float("inf")),
        (NUMERIC, [3.14]),
        (NUMERIC, True),
    ],
)
def test_answers_of_the_wrong_shape_are_refused(key, answer):
    with pytest.raises(grading.AnswerError):
        grading.check_answer(key, answer)


def test_the_grade_weighs_each_question_and_passes_on_the_rounded_grade():
    keys = [SINGLE, MULTIPLE, NUMERIC]
    result = grading.grade_answers(keys, {"q1": 1, "q2": [0], "q3": 3.14}, 75)
    assert (result["earned"], result["total"], result["grade"]) == (3.0, 4.0, 75.0)
    assert result["passed"] is True
    assert result["correct"] == {"q1": True, "q2": False, "q3": True}
    assert grading.grade_answers(keys, {"q1": 1, "q2": [0], "q3": 3.14}, 75.01)["passed"] is False
    nothing = grading.grade_answers(keys, {}, 0)
    assert nothing["grade"] == 0.0 and nothing["passed"] is True  # a passing grade of 0
    thirds = grading.grade_answers([SINGLE, MULTIPLE, dict(NUMERIC, weight=1.0)], {"q1": 1}, 33.33)
    assert thirds["grade"] == 33.33 and thirds["passed"]


def section(section_id, weight, drop_lowest, *quiz_ids, text_lessons=()):
    lessons = [{"id": q, "kind": "quiz", "title": q} for q in quiz_ids]
    lessons += [{"id": t, "kind": "text", "title": t} for t in text_lessons]
    return {
        "id": section_id,
        "title": section_id,
        "weight": weight,
        "drop_lowest": drop_lowest,
        "lessons": lessons,
    }


def test_section_score_drops_the_lowest_but_never_all():
    assert grading.section_score([50, 100, 80], 1) == 90
    assert grading.section_score([50, 100, 80], 0) == pytest.approx(230 / 3)
    assert grading.section_score([50, 100], 5) == 100  # the best one stays
    assert grading.section_score([], 2) == 0


def test_course_grade_weights_sections_that_need_not_sum_to_one():
    sections = [
        section("homework", 0.3, 1, "h1", "h2", "h3"),  # 40 is dropped → (80 + 100) / 2 = 90
        section("exam", 0.5, 0, "e1"),  # 60
        section("reading", 7, 0, text_lessons=["r1"]),  # no quiz: neither adds nor weighs
    ]
    results = {"h1": 80, "h2": 40, "h3": 100, "e1": 60}
    assert grading.course_grade(sections, results) == pytest.approx(
        round((0.3 * 90 + 0.5 * 60) / 0.8, 2)
    )
    scored = grading.section_scores(sections, results)
    assert [item["id"] for item in scored] == ["homework", "exam"]
    assert scored[0]["dropped"] == ["h2"] and scored[1]["dropped"] == []


def test_a_quiz_not_taken_counts_zero_and_can_be_the_one_dropped():
    sections = [section("homework", 2, 1, "h1", "h2", "h3")]
    assert grading.course_grade(sections, {"h1": 90, "h3": 70}) == 80
    assert grading.section_scores(sections, {"h1": 90, "h3": 70})[0]["dropped"] == ["h2"]


def test_zero_total_weight_or_no_quiz_gives_zero():
    assert (
        grading.course_grade(
            [section("a", 0, 0, "q1"), section("b", 0, 0, "q2")], {"q1": 100, "q2": 100}
        )
        == 0
    )
    assert grading.course_grade([section("a", 1, 0, text_lessons=["t"])], {}) == 0
    assert grading.course_grade([], {}) == 0
