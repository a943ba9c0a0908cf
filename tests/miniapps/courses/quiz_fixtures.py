"""Helpers for the quiz, grading and XP tests: the courses app in the SDK simulator with a course
written straight into the app's storage (``storage.put`` through ``sim.call_capability``, every
check of the host) — its instructor, an enrolled learner and a chat — so these tests need none
of the catalogue's views. ``Clock`` replaces ``quizzes.now_ms`` to play time passing.
"""

from __future__ import annotations

import importlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.simulator import SimConversation, Simulator, SimUser

COURSES_DIR = Path(__file__).resolve().parents[3] / "miniapps" / "courses"
COURSE_ID = "c-py101"
OTHER_COURSE_ID = "c-rust"
QUIZ_ID = "quiz-1"
T0 = 1_767_000_000_000  # epoch ms: the clock's start
_RUNS = itertools.count(1)

SECTIONS = [
    {
        "id": "s1",
        "title": "Basics",
        "weight": 1,
        "drop_lowest": 0,
        "lessons": [
            {"id": "intro", "kind": "text", "title": "Hello"},
            {"id": QUIZ_ID, "kind": "quiz", "title": "Check yourself"},
        ],
    }
]

# Answers: q1 → 1, q2 → [0, 2], q3 → 3.14 ± 0.01 (weights 1, 1, 2).
DEFINITION: dict[str, Any] = {
    "questions": [
        {"kind": "single", "text": "2 + 2?", "options": ["3", "4", "5"], "correct": 1},
        {
            "kind": "multiple",
            "text": "Which are Python types?",
            "options": ["int", "char", "str"],
            "correct": [0, 2],
        },
        {
            "kind": "numeric",
            "text": "Pi to two places?",
            "value": 3.14,
            "tolerance": 0.01,
            "weight": 2,
        },
    ],
    "passing_grade": 75,
    "attempt_limit": 3,
    "time_limit": 60,
}
ALL_RIGHT = {"q1": 1, "q2": [2, 0], "q3": 3.141}


class Clock:
    """``quizzes.now_ms`` for a test: ``now`` in epoch ms, moved by hand."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


@dataclass
class Classroom:
    """The app in a simulator, a course with a quiz lesson, its instructor, an enrolled learner
    and a chat with both."""

    sim: Simulator
    teacher: SimUser
    learner: SimUser
    chat: SimConversation
    clock: Clock = field(default_factory=Clock)

    async def call(self, method: str, params: dict, user: SimUser | None = None) -> Any:
        status, result = await self.sim.call_capability(user, self.chat, method, params)
        assert status == "ok", (method, result)
        return result

    async def put(self, collection: str, key: str, value: Any) -> None:
        await self.call("storage.put", {"collection": collection, "key": key, "value": value})

    def stored(self, collection: str, key: str) -> Any:
        return self.sim.storage(collection).get(key)

    async def course(self, course_id: str = COURSE_ID, sections=None, teacher=None) -> None:
        await self.put(
            "courses",
            course_id,
            {
                "id": course_id,
                "title": f"Course {course_id}",
                "instructor": (teacher or self.teacher).id,
                "sections": SECTIONS if sections is None else sections,
                "published": True,
            },
        )

    async def enrol(self, user: SimUser, course_id: str = COURSE_ID) -> None:
        await self.put(
            "enrolments",
            f"{user.id}:{course_id}",
            {"learner": user.id, "course_id": course_id, "via": "free", "at": T0},
        )

    def join(self, name: str) -> SimUser:
        user = self.sim.user(name)
        self.sim.add_member(self.chat, user)
        return user

    async def view(self, user: SimUser, name: str, params: dict | None = None) -> dict:
        return await self.sim.view(user, self.chat, name, params or {})

    async def save(self, definition=None, lesson_id: str = QUIZ_ID, **changes) -> dict:
        quiz = dict(DEFINITION if definition is None else definition, **changes)
        answer = await self.view(
            self.teacher,
            "quiz.save",
            {"course_id": COURSE_ID, "lesson_id": lesson_id, "definition": quiz},
        )
        return answer["quiz"]

    async def start(self, user: SimUser | None = None, **params) -> dict:
        params = {"course_id": COURSE_ID, "lesson_id": QUIZ_ID, **params}
        return await self.view(user or self.learner, "quiz.start", params)

    async def submit(self, attempt_id: str, answers: dict, user: SimUser | None = None) -> dict:
        params = {"attempt_id": attempt_id, "answers": answers}
        return await self.view(user or self.learner, "quiz.submit", params)


async def open_classroom(monkeypatch) -> Classroom:
    """A classroom with the course and its quiz saved, the learner enrolled and the quiz clock
    at ``T0``."""
    sim = Simulator(COURSES_DIR)
    teacher, learner = sim.user("tess"), sim.user("leo")
    sim.grant_role(teacher, "instructor")
    room = Classroom(sim, teacher, learner, sim.conversation(members=[teacher, learner]))
    monkeypatch.setattr(importlib.import_module("quizzes"), "now_ms", room.clock)
    await room.course()
    await room.enrol(learner)
    await room.save()
    return room


async def run_as(room: Classroom, user: SimUser, work) -> Any:
    """Run ``await work(ctx)`` inside a real invocation of the app for ``user`` (a view
    registered for the test on the simulator's app): what it returned, under ``"result"``; a
    raised exception comes back as the ``ViewError``/``AppCallError`` the page would get."""
    name = f"test.run.{next(_RUNS)}"

    async def handler(ctx):
        return {"result": await work(ctx)}

    room.sim.app.view(name)(handler)
    return (await room.view(user, name))["result"]
