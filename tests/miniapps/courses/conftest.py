"""Shared fixtures for the courses tests: the app in the SDK simulator, an instructor, learners,
a group chat, and helpers that author a course through the web view's calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdk.simulator import Simulator

COURSES_DIR = Path(__file__).resolve().parents[3] / "miniapps" / "courses"


@pytest.fixture
def sim() -> Simulator:
    return Simulator(COURSES_DIR)


@pytest.fixture
def instructor(sim):
    """Iris, who has the ``instructor`` role."""
    user = sim.user("iris")
    sim.grant_role(user, "instructor")
    return user


@pytest.fixture
def learner(sim):
    return sim.user("leo")


@pytest.fixture
def chat(sim, instructor, learner):
    return sim.conversation(members=[instructor, learner])


async def make_course(sim, instructor, chat, *, price: int = 0, lessons: int = 2, **fields):
    """A published course with one section of ``lessons`` text lessons, authored through the
    views; returns the course as ``course.get`` shows it to its instructor."""
    params = {"title": "Python 101", "price": price, "currency": "USD", "published": True}
    params.update(fields)
    course = (await sim.view(instructor, chat, "course.save", params))["course"]
    course = (
        await sim.view(
            instructor, chat, "section.save", {"course_id": course["id"], "title": "Basics"}
        )
    )["course"]
    section_id = course["sections"][0]["id"]
    for n in range(lessons):
        params = {
            "course_id": course["id"],
            "section_id": section_id,
            "title": f"Lesson {n + 1}",
            "markdown": f"# Lesson {n + 1}\n\nSome **text**.",
        }
        course = (await sim.view(instructor, chat, "lesson.save", params))["course"]
    return course


def lesson_ids(course: dict) -> list[str]:
    return [x["id"] for s in course["sections"] for x in s["lessons"]]
