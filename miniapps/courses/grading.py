"""Grading: pure functions, no storage — an attempt's grade and a course's grade.

**An attempt** (``grade_answers``): each question scores 1 or 0 — single choice: the one correct
option; multiple choice: exactly the set of correct options (no partial credit, like Open edX's
checkbox problems); numeric: ``|answer - value| ≤ tolerance``. The grade is
``100 * Σ(weight * score) / Σ(weight)``, rounded to two decimals, and *passed* is that grade ≥
the passing grade — the same comparison as a stored best grade's (``quizzes.result_of``).

**A course** (``course_grade``), Open edX style: each section's score is the mean of its quiz
grades (a quiz not taken counts 0) after dropping the lowest ``drop_lowest`` of them — never all:
at least one always counts; the course grade is ``Σ(weight * score) / Σ(weight)`` over the
sections that have quizzes (weights need not sum to 1 or 100; a section without quizzes neither
adds nor weighs; a zero total weight gives 0).
"""

from __future__ import annotations

import math
from typing import Any

KINDS = ("single", "multiple", "numeric")


class AnswerError(ValueError):
    """An answer of the wrong shape (an option that does not exist, text for a number): the
    submission is refused, nothing is graded."""


def parse_number(raw: Any) -> float | None:
    """A finite number from a number or its text (``"3.5"``, ``"3,5"``); None otherwise."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        number = float(raw)
    elif isinstance(raw, str) and 0 < len(raw.strip()) <= 40:
        try:
            number = float(raw.strip().replace(",", "."))
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def check_answer(key: dict[str, Any], raw: Any) -> Any:
    """The learner's answer to the question whose answer key is ``key``, in its canonical form
    (an index, a sorted list of indexes, a number); None for no answer. ``AnswerError`` when it
    has the wrong shape."""
    if raw is None:
        return None
    kind, options = key["kind"], key.get("options", 0)
    if kind == "single":
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw < options:
            raise AnswerError(f"question {key['id']}: pick one option, 0 to {options - 1}")
        return raw
    if kind == "multiple":
        if not isinstance(raw, list) or len(raw) > options:
            raise AnswerError(f"question {key['id']}: give a list of options")
        picked = set()
        for index in raw:
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < options:
                raise AnswerError(f"question {key['id']}: options are 0 to {options - 1}")
            picked.add(index)
        return sorted(picked)
    number = parse_number(raw)
    if number is None:
        raise AnswerError(f"question {key['id']}: give a number")
    return number


def is_correct(key: dict[str, Any], answer: Any) -> bool:
    """Whether a canonical ``answer`` (see ``check_answer``) is right for ``key``."""
    if answer is None:
        return False
    if key["kind"] == "single":
        return answer == key["correct"]
    if key["kind"] == "multiple":
        return sorted(answer) == sorted(key["correct"])
    # A hair of slack so that 0.1 + 0.2 against 0.3 with tolerance 0 is still right.
    slack = 1e-9 * max(1.0, abs(key["value"]))
    return abs(answer - key["value"]) <= key["tolerance"] + slack


def grade_answers(
    keys: list[dict[str, Any]], answers: dict[str, Any], passing_grade: float
) -> dict[str, Any]:
    """Grade canonical ``answers`` (question id → answer) against the answer ``keys``
    (``[{id, kind, weight, correct | value, tolerance, options}]``): ``{grade, passed, earned,
    total, correct: {question id: bool}}``."""
    earned = total = 0.0
    correct: dict[str, bool] = {}
    for key in keys:
        right = is_correct(key, answers.get(key["id"]))
        correct[key["id"]] = right
        total += key["weight"]
        earned += key["weight"] if right else 0.0
    grade = round(100 * earned / total, 2) if total > 0 else 0.0
    passed = total > 0 and grade >= passing_grade
    return {
        "grade": grade,
        "passed": passed,
        "earned": earned,
        "total": total,
        "correct": correct,
    }


def section_score(grades: list[float], drop_lowest: int) -> float:
    """The mean of ``grades`` after dropping the lowest ``drop_lowest`` (at least one stays);
    0 for no grades."""
    if not grades:
        return 0.0
    kept = sorted(grades)[min(max(drop_lowest, 0), len(grades) - 1) :]
    return sum(kept) / len(kept)


def section_scores(
    sections: list[dict[str, Any]], results: dict[str, float]
) -> list[dict[str, Any]]:
    """Each section with quizzes as ``{id, title, weight, score, dropped: [lesson ids]}``:
    ``sections`` as the course stores them (``[{id, title, weight, drop_lowest, lessons:
    [{id, kind, title}]}]``), ``results``: lesson id → best grade (0-100)."""
    scored = []
    for section in sections:
        quiz_ids = [
            lesson["id"] for lesson in section.get("lessons") or [] if lesson.get("kind") == "quiz"
        ]
        if not quiz_ids:
            continue
        grades = sorted((float(results.get(q) or 0.0), q) for q in quiz_ids)
        drop = min(max(int(section.get("drop_lowest") or 0), 0), len(grades) - 1)
        scored.append(
            {
                "id": section.get("id"),
                "title": section.get("title"),
                "weight": max(float(section.get("weight", 1) or 0), 0.0),
                "score": section_score([grade for grade, _ in grades], drop),
                "dropped": [lesson_id for _, lesson_id in grades[:drop]],
            }
        )
    return scored


def course_grade(sections: list[dict[str, Any]], results: dict[str, float]) -> float:
    """The course grade, 0-100, rounded to two decimals: ``Σ(weight * section score) /
    Σ(weight)`` over the sections with quizzes (see ``section_scores``); 0 when the weights sum
    to 0 or no section has a quiz."""
    scored = section_scores(sections, results)
    total = sum(item["weight"] for item in scored)
    if total <= 0:
        return 0.0
    return round(sum(item["weight"] * item["score"] for item in scored) / total, 2)
