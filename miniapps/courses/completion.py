"""Completion: a learner completes a course when every text lesson is seen and every quiz
lesson passed (``quizzes.result_of(ctx, learner, course_id, lesson_id)`` → ``{"passed": …}``).

``check(ctx, learner, course_id) -> bool`` is called after each lesson read (``lessons``) and
each quiz submitted (``quizzes``). It sets ``completed_at`` in ``progress`` once — a conditional
update at the version it read, so of concurrent calls exactly one writes — and only that call
goes on to ``badges.on_completed(ctx, learner, course_id)`` and the group assignments.
Returns whether the course is completed (now or before). A course without lessons never is.
"""

from __future__ import annotations

import time
from typing import Any

from sdk import Conflict

RETRIES = 32


async def quiz_passed(ctx, learner: str, course_id: str, lesson_id: str) -> bool:
    import quizzes  # here: quizzes imports this module

    result = await quizzes.result_of(ctx, learner, course_id, lesson_id)
    return bool(result and result.get("passed"))


async def is_complete(ctx, learner: str, course: dict[str, Any], progress: dict) -> bool:
    lessons = [x for s in course.get("sections", []) for x in s["lessons"]]
    if not lessons:
        return False
    seen = set(progress.get("seen", []))
    for lesson in lessons:
        if lesson["kind"] == "text" and lesson["id"] not in seen:
            return False
        if lesson["kind"] == "quiz" and not await quiz_passed(
            ctx, learner, course["id"], lesson["id"]
        ):
            return False
    return True


async def on_completed(ctx, learner: str, course_id: str) -> None:
    """What follows a completion: the badge, then the group assignments that wait for it."""
    import assignments
    import badges

    await badges.on_completed(ctx, learner, course_id)
    await assignments.on_completed(ctx, learner, course_id)


async def check(ctx, learner: str, course_id: str) -> bool:
    """Mark ``learner``'s ``course_id`` completed once when its rule holds (see above)."""
    course = await ctx.storage_get("courses", course_id)
    if not course:
        return False
    key = f"{learner}:{course_id}"
    for _ in range(RETRIES):
        progress, version = await ctx.storage_get_versioned("progress", key)
        progress = progress or {}
        if progress.get("completed_at"):
            return True
        if not await is_complete(ctx, learner, course, progress):
            return False
        fields = {"completed_at": int(time.time() * 1000)}
        if version == 0:
            fields.update(learner=learner, course_id=course_id, seen=[])
        try:
            await ctx.storage_update(
                "progress", key, fields, expected_version=version, upsert=version == 0
            )
        except Conflict:
            continue
        await on_completed(ctx, learner, course_id)
        return True
    return False
