"""Demo courses: ``demo.seed`` (instructor; idempotent) writes two published courses —
"Python 101" (``python-101``, free: 2 sections, 3 text lessons and a 3-question quiz) and
"Data Science Basics" (``data-science``, 19.00 USD, 2 lessons). ``python-101`` is the
``course_id`` of the shop demo's "Python 101 Course" product, so buying it there enrols here.

Each course is created only when absent (a create-only write), so seeding twice changes
nothing; the quiz goes through ``quizzes.save_quiz``.
"""

from __future__ import annotations

import time
from typing import Any

import catalog
import lessons

from sdk import Conflict

PYTHON_LESSONS = {
    "l-hello": (
        "Hello, Python",
        "# Hello, Python\n\nPython reads like English. Your first program:\n\n"
        '```python\nprint("Hello, world!")\n```\n\nRun it with `python hello.py`. '
        "More at [python.org](https://www.python.org).",
    ),
    "l-values": (
        "Values and variables",
        "# Values and variables\n\nA *variable* names a value:\n\n"
        '```python\nanswer = 42\nname = "Ana"\n```\n\n'
        '| type | example |\n|---|---|\n| int | `42` |\n| str | `"Ana"` |\n| bool | `True` |',
    ),
    "l-loops": (
        "Loops",
        "# Loops\n\n`for` walks through a sequence:\n\n"
        "```python\nfor n in range(3):\n    print(n)\n```\n\nThis prints 0, 1 and 2.",
    ),
}
PYTHON_QUIZ = {
    "passing_grade": 60,
    "attempt_limit": 3,
    "time_limit": 600,
    "questions": [
        {
            "kind": "single",
            "text": "What does print(1 + 1) show?",
            "options": ["11", "2", "an error"],
            "correct": 1,
        },
        {
            "kind": "multiple",
            "text": "Which of these are Python types?",
            "options": ["int", "str", "char", "bool"],
            "correct": [0, 1, 3],
        },
        {
            "kind": "numeric",
            "text": "How many numbers does range(3) give?",
            "value": 3,
            "tolerance": 0,
        },
    ],
}
DATA_LESSONS = {
    "l-data": (
        "What is data science?",
        "# What is data science?\n\nAsking questions of data: collect, clean, explore, "
        "model, **communicate**.",
    ),
    "l-pandas": (
        "Tables with pandas",
        "# Tables with pandas\n\n```python\nimport pandas as pd\n"
        'df = pd.read_csv("sales.csv")\ndf.describe()\n```',
    ),
}


def _course(course_id: str, title: str, description: str, price: int, instructor: str,
            sections: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    return {
        "id": course_id,
        "title": title,
        "description": description,
        "cover": None,
        "price": price,
        "currency": "USD",
        "instructor": instructor,
        "sections": sections,
        "published": True,
        "created_at": int(time.time() * 1000),
    }


def demo_courses(instructor: str) -> list[tuple[dict[str, Any], dict[str, tuple[str, str]]]]:
    python = _course(
        "python-101",
        "Python 101",
        "From your first line of Python to loops — with a quiz at the end.",
        0,
        instructor,
        [
            {
                "id": "s-basics",
                "title": "Basics",
                "weight": 1,
                "drop_lowest": 0,
                "lessons": [
                    {"id": "l-hello", "kind": "text", "title": PYTHON_LESSONS["l-hello"][0]},
                    {"id": "l-values", "kind": "text", "title": PYTHON_LESSONS["l-values"][0]},
                ],
            },
            {
                "id": "s-flow",
                "title": "Control flow",
                "weight": 1,
                "drop_lowest": 0,
                "lessons": [
                    {"id": "l-loops", "kind": "text", "title": PYTHON_LESSONS["l-loops"][0]},
                    {"id": "l-quiz", "kind": "quiz", "title": "Check yourself"},
                ],
            },
        ],
    )
    data = _course(
        "data-science",
        "Data Science Basics",
        "What data science is, and your first table with pandas.",
        1900,
        instructor,
        [
            {
                "id": "s-intro",
                "title": "Introduction",
                "weight": 1,
                "drop_lowest": 0,
                "lessons": [
                    {"id": k, "kind": "text", "title": v[0]} for k, v in DATA_LESSONS.items()
                ],
            }
        ],
    )
    return [(python, PYTHON_LESSONS), (data, DATA_LESSONS)]


async def save_demo_quiz(ctx) -> None:
    import quizzes  # here, as the catalogue's helpers import this module

    await quizzes.save_quiz(ctx, "python-101", "l-quiz", PYTHON_QUIZ)


async def do_seed(ctx) -> dict[str, Any]:
    """``demo.seed``: the two demo courses, created when absent. ``{created: [ids]}``."""
    catalog.check_instructor(ctx)
    created = []
    for course, texts in demo_courses(ctx.user_id):
        if await ctx.storage_get("courses", course["id"]):
            continue
        for lesson_id, (_title, markdown) in texts.items():
            html = lessons.render(markdown)
            value = {"markdown": markdown, "html": html, "kind": "text"}
            await ctx.storage_put("lessons", f"{course['id']}:{lesson_id}", value)
        try:
            await ctx.storage_update(
                "courses", course["id"], course, expected_version=0, upsert=True
            )
        except Conflict:
            continue
        if course["id"] == "python-101":  # the quiz's lesson must be in the course first
            await save_demo_quiz(ctx)
        created.append(course["id"])
    return {"created": created}


VIEWS = {"demo.seed": do_seed}
