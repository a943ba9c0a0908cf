"""Helpers for the cohort tests (assignments, live quizzes, flashcards): the courses app in the
SDK simulator, with courses, quizzes and enrolments written straight into its storage, as the
catalogue, the quiz editor and enrolment would leave them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdk.simulator import Simulator

COURSES_DIR = Path(__file__).resolve().parents[3] / "miniapps" / "courses"
COURSE_ID = "c-python101"


def new_sim() -> Simulator:
    return Simulator(COURSES_DIR)


async def put(sim: Simulator, collection: str, key: str, value: Any) -> None:
    """Write a document into the app's storage (with every check of the host)."""
    status, result = await sim.call_capability(
        None, None, "storage.put", {"collection": collection, "key": key, "value": value}
    )
    assert status == "ok", result


async def add_course(
    sim: Simulator,
    course_id: str = COURSE_ID,
    title: str = "Python 101",
    instructor: str = "someone",
):
    await put(
        sim,
        "courses",
        course_id,
        {
            "id": course_id,
            "title": title,
            "description": "Learn Python",
            "price": 0,
            "currency": None,
            "instructor": instructor,
            "sections": [],
            "published": True,
            "created_at": 0,
        },
    )


async def enrol(sim: Simulator, user, course_id: str = COURSE_ID) -> None:
    await put(
        sim,
        "enrolments",
        f"{user.id}:{course_id}",
        {"learner": user.id, "course_id": course_id, "via": "free", "at": 0},
    )


def quiz_definition() -> dict:
    """A quiz of four questions: three single-choice (played live) and one numeric (skipped)."""
    return {
        "title": "Basics quiz",
        "questions": [
            {"kind": "single", "text": "2 + 2?", "options": ["3", "4", "5"], "correct": 1},
            {"kind": "numeric", "text": "pi?", "value": 3.14, "tolerance": 0.01},
            {
                "kind": "single",
                "text": "print is a…",
                "options": ["function", "loop"],
                "correct": 0,
            },
            {"kind": "single", "text": "len([1]) ?", "options": ["0", "1", "2"], "correct": 1},
        ],
        "passing_grade": 50,
    }


async def add_quiz(sim: Simulator, course_id: str = COURSE_ID, lesson_id: str = "l-quiz1"):
    await put(sim, "quizzes", f"{course_id}:{lesson_id}", quiz_definition())


def make_instructor(sim: Simulator, name: str = "ines"):
    user = sim.user(name)
    sim.grant_role(user, "instructor")
    return user


def last_ephemeral(sim: Simulator, user) -> str:
    return sim.ephemeral(user)[-1].get("text") or sim.ephemeral(user)[-1]["card"]["text"]
