"""Quizzes: definitions written by the course's instructor, attempts graded on the server.

**A quiz** is a lesson of kind ``quiz`` in a course; its definition lives in
``quizzes/<course>:<lesson>`` with the answers, and never leaves the app except to the course's
instructor: questions (at most 50) of kind ``single`` (``options`` + the ``correct`` index),
``multiple`` (``options`` + the list of ``correct`` indexes) or ``numeric`` (``value`` ±
``tolerance``), each with a ``weight`` (default 1); a ``passing_grade`` (0-100), an
``attempt_limit`` (1-10) and a ``time_limit`` in seconds (30-7200, or none). See
``check_definition``; grading rules in grading.py.

**An attempt** (``quiz.start``, an enrolled learner): one slot of the limit is taken first, with
``storage_incr("attempt_counts", "<learner>:<course>:<lesson>", "used", 1, max=limit)`` — so
however many starts race, at most ``limit`` attempts exist (a crash right after loses that slot,
never gives an extra one) — then the attempt ``attempts/a-<hex>`` is written with its learner,
``started_at``, ``deadline`` and its own copy of the answer key (a quiz edited meanwhile grades
the attempt as it was started). The learner gets the questions without answers.

**A submission** (``quiz.submit``) is accepted from the attempt's learner only (anyone else:
``not_found``), until ``deadline`` + ``GRACE_MS`` (2 s for the network; later: ``time_up``,
nothing written). The time is the app's clock (``now_ms``), since the host sends none with a
call. The attempt goes ``open`` → ``submitted`` by one conditional update, so of concurrent or
retried submits one grades it and every one answers that same stored result. Then, each time
(all of it idempotent, so a retry completes what a crash interrupted): the best grade goes into
the learner's ``progress`` (``quiz_results``, see ``record_result``), a passed quiz gives
``PASS_XP`` once ever (``xp.award``, reason ``quiz:<course>:<lesson>:<learner>``) and
``completion.check`` runs. The answer shows which questions were right; the correct answers are
shown once the quiz is passed or no attempt is left.

Views: ``quiz.save``, ``quiz.get``, ``quiz.start``, ``quiz.submit``, ``quiz.grades``. Others
use ``save_quiz``, ``result_of`` and ``record_result``. A refused input is a ``QuizError``,
answered as a ``ViewError`` with the same code and message.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

import grading
import xp

from sdk import Conflict, HostError, ViewError

QUESTIONS_MAX = 50
OPTIONS_MIN, OPTIONS_MAX = 2, 10
TEXT_MAX = 500  # a question's text
OPTION_MAX = 200  # an option's text
WEIGHT_MAX = 100
ATTEMPTS_MIN, ATTEMPTS_MAX = 1, 10
TIME_LIMIT_MIN, TIME_LIMIT_MAX = 30, 7200  # seconds
QUIZ_MAX_BYTES = 48_000  # a definition as JSON (a stored value holds 64 KiB)
GRACE_MS = 2_000  # a submission this late after the deadline still counts: network latency
PASS_XP = 50
RETRIES = 25  # conditional updates of a learner's progress under contention

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ATTEMPT_ID_RE = re.compile(r"a-[0-9a-f]{16}")
NO_SUCH_ATTEMPT = "No such attempt."


class QuizError(Exception):
    """A refused request: ``code`` for the page, ``message`` for the person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def now_ms() -> int:
    """The app's clock, epoch milliseconds (tests replace it to play a late submission)."""
    return int(time.time() * 1000)


# --- definitions ------------------------------------------------------------------------------


def _text(raw: Any, limit: int, what: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise QuizError("bad_quiz", f"{what}: some text")
    text = raw.strip()
    if len(text) > limit:
        raise QuizError("bad_quiz", f"{what}: at most {limit} characters")
    return text


def _whole(raw: Any, low: int, high: int, what: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise QuizError("bad_quiz", f"{what}: a whole number from {low} to {high}")
    return raw


def _number(raw: Any, what: str, *, low: float | None = None, high: float | None = None) -> float:
    number = grading.parse_number(raw)
    if number is None or (low is not None and number < low) or (high is not None and number > high):
        bounds = f" from {low:g} to {high:g}" if low is not None and high is not None else ""
        raise QuizError("bad_quiz", f"{what}: a number{bounds}")
    return number


def _question(raw: Any, position: int) -> dict[str, Any]:
    where = f"question {position}"
    if not isinstance(raw, dict):
        raise QuizError("bad_quiz", f"{where}: an object")
    kind = raw.get("kind")
    if kind not in grading.KINDS:
        raise QuizError("bad_quiz", f"{where}: kind is one of {', '.join(grading.KINDS)}")
    question: dict[str, Any] = {
        "id": f"q{position}",
        "kind": kind,
        "text": _text(raw.get("text"), TEXT_MAX, f"{where} text"),
        "weight": 1.0,
    }
    if raw.get("weight") is not None:
        question["weight"] = _number(raw["weight"], f"{where} weight", low=0, high=WEIGHT_MAX)
        if question["weight"] <= 0:
            raise QuizError("bad_quiz", f"{where} weight: more than 0")
    if kind == "numeric":
        question["value"] = _number(raw.get("value"), f"{where} value")
        question["tolerance"] = _number(raw.get("tolerance", 0), f"{where} tolerance", low=0)
        return question
    options = raw.get("options")
    if not isinstance(options, list) or not OPTIONS_MIN <= len(options) <= OPTIONS_MAX:
        raise QuizError("bad_quiz", f"{where}: {OPTIONS_MIN} to {OPTIONS_MAX} options")
    question["options"] = [
        _text(option, OPTION_MAX, f"{where} option {index + 1}")
        for index, option in enumerate(options)
    ]
    if len(set(question["options"])) != len(options):
        raise QuizError("bad_quiz", f"{where}: two options are the same")
    correct = raw.get("correct")
    if kind == "single":
        question["correct"] = _whole(correct, 0, len(options) - 1, f"{where} correct option")
        return question
    if not isinstance(correct, list) or not correct:
        raise QuizError("bad_quiz", f"{where}: correct is the list of the right options")
    picked = {_whole(index, 0, len(options) - 1, f"{where} correct option") for index in correct}
    if len(picked) != len(correct):
        raise QuizError("bad_quiz", f"{where}: an option is listed twice in correct")
    question["correct"] = sorted(picked)
    return question


def check_definition(definition: Any) -> dict[str, Any]:
    """A quiz definition checked and in its stored form — ``{questions, passing_grade,
    attempt_limit, time_limit}``, questions numbered ``q1``… — or ``QuizError`` ``bad_quiz``
    naming the first problem."""
    if not isinstance(definition, dict):
        raise QuizError("bad_quiz", "definition: an object")
    questions = definition.get("questions")
    if not isinstance(questions, list) or not 1 <= len(questions) <= QUESTIONS_MAX:
        raise QuizError("bad_quiz", f"questions: 1 to {QUESTIONS_MAX}")
    time_limit = definition.get("time_limit")
    clean = {
        "questions": [_question(raw, position) for position, raw in enumerate(questions, 1)],
        "passing_grade": _number(
            definition.get("passing_grade", 50), "passing_grade", low=0, high=100
        ),
        "attempt_limit": _whole(
            definition.get("attempt_limit", 1), ATTEMPTS_MIN, ATTEMPTS_MAX, "attempt_limit"
        ),
        "time_limit": None
        if time_limit is None
        else _whole(time_limit, TIME_LIMIT_MIN, TIME_LIMIT_MAX, "time_limit (seconds)"),
    }
    if len(json.dumps(clean).encode()) > QUIZ_MAX_BYTES:
        raise QuizError("quiz_too_large", f"a quiz is limited to {QUIZ_MAX_BYTES} bytes: split it")
    return clean


def public_questions(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a learner sees of the questions: no ``correct``, ``value`` or ``tolerance``."""
    shown = []
    for question in questions:
        item = {key: question[key] for key in ("id", "kind", "text", "weight")}
        if "options" in question:
            item["options"] = list(question["options"])
        shown.append(item)
    return shown


def answer_key(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answers only (what an attempt keeps to be graded with)."""
    keys = []
    for question in questions:
        key = {"id": question["id"], "kind": question["kind"], "weight": question["weight"]}
        if question["kind"] == "numeric":
            key.update(value=question["value"], tolerance=question["tolerance"])
        else:
            key.update(correct=question["correct"], options=len(question["options"]))
        keys.append(key)
    return keys


def solutions(keys: list[dict[str, Any]]) -> dict[str, Any]:
    """The correct answers, by question id (shown after a pass or the last attempt)."""
    return {
        key["id"]: key["correct"]
        if key["kind"] != "numeric"
        else {"value": key["value"], "tolerance": key["tolerance"]}
        for key in keys
    }


# --- courses, enrolment -----------------------------------------------------------------------


def _id(raw: Any, what: str) -> str:
    if not isinstance(raw, str) or not ID_RE.fullmatch(raw):
        raise QuizError("not_found", f"No such {what}.")
    return raw


async def quiz_lesson(ctx, course_id: Any, lesson_id: Any) -> tuple[dict, dict]:
    """The course and its quiz lesson, or ``QuizError`` ``not_found`` (a lesson of another
    course, a text lesson, a course that does not exist)."""
    course_id, lesson_id = _id(course_id, "course"), _id(lesson_id, "quiz")
    course = await ctx.storage_get("courses", course_id)
    if not isinstance(course, dict):
        raise QuizError("not_found", "No such course.")
    for section in course.get("sections") or []:
        for lesson in section.get("lessons") or []:
            if lesson.get("id") == lesson_id and lesson.get("kind") == "quiz":
                return course, lesson
    raise QuizError("not_found", "No such quiz in this course.")


def is_instructor_of(ctx, course: dict) -> bool:
    return ctx.has_role("instructor") and course.get("instructor") == ctx.user_id


async def is_enrolled(ctx, learner: str, course_id: str) -> bool:
    return await ctx.storage_get("enrolments", f"{learner}:{course_id}") is not None


async def get_quiz(ctx, course_id: str, lesson_id: str) -> dict | None:
    return await ctx.storage_get("quizzes", f"{course_id}:{lesson_id}")


# --- saving -----------------------------------------------------------------------------------


async def save_quiz(ctx, course_id: str, lesson_id: str, definition: dict) -> dict[str, Any]:
    """Save the quiz of lesson ``lesson_id`` (a ``quiz`` lesson of ``course_id``) for the
    course's instructor (role ``instructor``, the course's ``instructor``): ``QuizError``
    ``not_found``, ``not_instructor``, ``bad_quiz``, ``quiz_too_large``, ``quiz_busy`` (saved by
    someone else meanwhile), nothing written then. Returns the stored quiz, answers included.
    Attempts already started keep the questions they started with."""
    course, _ = await quiz_lesson(ctx, course_id, lesson_id)
    if not is_instructor_of(ctx, course):
        raise QuizError("not_instructor", "Only the course's instructor can edit its quizzes.")
    clean = check_definition(definition)
    key = f"{course_id}:{lesson_id}"
    stored, version = await ctx.storage_get_versioned("quizzes", key)
    quiz = {
        "course_id": course_id,
        "lesson_id": lesson_id,
        **clean,
        "revision": int((stored or {}).get("revision") or 0) + 1,
        "updated_by": ctx.user_id,
        "updated_at": now_ms(),
    }
    try:
        await ctx.storage_update(
            "quizzes", key, quiz, expected_version=version, upsert=version == 0
        )
    except Conflict:
        raise QuizError("quiz_busy", "The quiz was saved meanwhile: reload it.") from None
    return quiz


# --- results ----------------------------------------------------------------------------------


async def record_result(ctx, learner: str, course_id: str, lesson_id: str, grade: float) -> float:
    """Keep ``grade`` in the learner's progress (``progress/<learner>:<course>``, field
    ``quiz_results: {lesson id: best grade}``) when it beats the best so far; the best grade.
    Conditional updates, retried on ``Conflict``: concurrent results keep the highest."""
    key = f"{learner}:{course_id}"
    for _ in range(RETRIES):
        progress, version = await ctx.storage_get_versioned("progress", key)
        results = dict((progress or {}).get("quiz_results") or {})
        best = results.get(lesson_id)
        if best is not None and best >= grade:
            return best
        results[lesson_id] = grade
        change: dict[str, Any] = {"quiz_results": results}
        if version == 0:
            change.update(learner=learner, course_id=course_id)
        try:
            await ctx.storage_update(
                "progress", key, change, expected_version=version, upsert=version == 0
            )
        except Conflict:
            continue
        return grade
    raise QuizError("busy", "Too many results at once: try again.")


async def result_of(ctx, learner: str, course_id: str, lesson_id: str) -> dict | None:
    """The learner's standing in a quiz — ``{grade (the best), passed, passing_grade,
    attempts_used, attempt_limit}`` — or None when they have no graded attempt (or the quiz has
    no definition)."""
    quiz = await get_quiz(ctx, course_id, lesson_id)
    progress = await ctx.storage_get("progress", f"{learner}:{course_id}") or {}
    best = (progress.get("quiz_results") or {}).get(lesson_id)
    if quiz is None or best is None:
        return None
    counts = await ctx.storage_get("attempt_counts", f"{learner}:{course_id}:{lesson_id}") or {}
    return {
        "grade": best,
        "passed": best >= quiz["passing_grade"],
        "passing_grade": quiz["passing_grade"],
        "attempts_used": int(counts.get("used") or 0),
        "attempt_limit": quiz["attempt_limit"],
    }


# --- attempts ---------------------------------------------------------------------------------


def _deadline_passed(attempt: dict, now: int) -> bool:
    return attempt.get("deadline") is not None and now > attempt["deadline"] + GRACE_MS


async def start_attempt(ctx, course_id: Any, lesson_id: Any) -> dict[str, Any]:
    """A new attempt for the invoker (enrolled in the course): its id, deadline and questions
    without answers. ``QuizError`` ``not_found``, ``not_enrolled``, ``no_attempts_left``."""
    await quiz_lesson(ctx, course_id, lesson_id)
    learner = ctx.user_id
    if not await is_enrolled(ctx, learner, course_id):
        raise QuizError("not_enrolled", "Enrol in the course to take its quizzes.")
    quiz = await get_quiz(ctx, course_id, lesson_id)
    if quiz is None:
        raise QuizError("not_found", "This quiz has no questions yet.")
    limit = quiz["attempt_limit"]
    count_key = f"{learner}:{course_id}:{lesson_id}"
    try:
        number = await ctx.storage_incr("attempt_counts", count_key, "used", 1, max=limit)
    except HostError as exc:
        if exc.code != "limit_reached":
            raise
        raise QuizError(
            "no_attempts_left", f"You have used all {limit} attempts of this quiz."
        ) from None
    started_at = now_ms()
    deadline = None if quiz["time_limit"] is None else started_at + quiz["time_limit"] * 1000
    attempt_id = f"a-{secrets.token_hex(8)}"
    await ctx.storage_put(
        "attempts",
        attempt_id,
        {
            "id": attempt_id,
            "learner": learner,
            "course_id": course_id,
            "lesson_id": lesson_id,
            "number": number,
            "state": "open",
            "started_at": started_at,
            "deadline": deadline,
            "quiz_revision": quiz.get("revision"),
            "passing_grade": quiz["passing_grade"],
            "attempt_limit": limit,
            "key": answer_key(quiz["questions"]),
        },
    )
    await ctx.storage_update("attempt_counts", count_key, {"last_attempt": attempt_id})
    return {
        "attempt_id": attempt_id,
        "number": number,
        "attempts_left": limit - number,
        "started_at": started_at,
        "deadline": deadline,
        "time_limit": quiz["time_limit"],
        "passing_grade": quiz["passing_grade"],
        "questions": public_questions(quiz["questions"]),
    }


def _result_view(attempt: dict, used: int) -> dict[str, Any]:
    """What the learner gets for a submitted attempt (the same for every retry)."""
    result = dict(attempt["result"])
    reveal = result["passed"] or used >= attempt["attempt_limit"]
    result.update(
        attempt_id=attempt["id"],
        number=attempt["number"],
        attempts_left=max(attempt["attempt_limit"] - used, 0),
        solutions=solutions(attempt["key"]) if reveal else None,
    )
    return result


def _checked_answers(keys: list[dict], raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise QuizError("bad_answers", "answers: an object, question id → answer")
    known = {key["id"]: key for key in keys}
    unknown = [question_id for question_id in raw if question_id not in known]
    if unknown:
        raise QuizError("bad_answers", f"answers: no question {str(unknown[0])[:20]!r}")
    try:
        return {
            question_id: grading.check_answer(known[question_id], answer)
            for question_id, answer in raw.items()
        }
    except grading.AnswerError as exc:
        raise QuizError("bad_answers", str(exc)) from None


async def submit_attempt(ctx, attempt_id: Any, raw_answers: Any) -> dict[str, Any]:
    """Grade the invoker's attempt once; every submit of it, first or retried, answers the same
    result (see the module's docstring). ``QuizError`` ``not_found``, ``time_up``,
    ``bad_answers``."""
    if not isinstance(attempt_id, str) or not ATTEMPT_ID_RE.fullmatch(attempt_id):
        raise QuizError("not_found", NO_SUCH_ATTEMPT)
    attempt, version = await ctx.storage_get_versioned("attempts", attempt_id)
    if not isinstance(attempt, dict) or attempt.get("learner") != ctx.user_id:
        raise QuizError("not_found", NO_SUCH_ATTEMPT)
    if attempt["state"] == "open":
        submitted_at = now_ms()
        if _deadline_passed(attempt, submitted_at):
            raise QuizError("time_up", "The time for this attempt is over.")
        answers = _checked_answers(attempt["key"], raw_answers)
        result = grading.grade_answers(attempt["key"], answers, attempt["passing_grade"])
        submitted = {
            "state": "submitted",
            "submitted_at": submitted_at,
            "answers": answers,
            "result": {
                "grade": result["grade"],
                "passed": result["passed"],
                "correct": result["correct"],
                "passing_grade": attempt["passing_grade"],
                "submitted_at": submitted_at,
            },
        }
        try:
            await ctx.storage_update("attempts", attempt_id, submitted, expected_version=version)
            attempt = {**attempt, **submitted}
        except Conflict:  # another submit of this attempt wrote first: its result is the one
            attempt = await ctx.storage_get("attempts", attempt_id)
    learner, course_id, lesson_id = ctx.user_id, attempt["course_id"], attempt["lesson_id"]
    grade, passed = attempt["result"]["grade"], attempt["result"]["passed"]
    best = await record_result(ctx, learner, course_id, lesson_id, grade)
    if passed:
        await xp.award(ctx, learner, PASS_XP, f"quiz:{course_id}:{lesson_id}:{learner}")
        import lessons  # here: the catalogue's modules import this one

        await lessons.mark_seen(ctx, learner, course_id, lesson_id)  # counts as a done lesson
    import completion

    await completion.check(ctx, learner, course_id)
    counts = await ctx.storage_get("attempt_counts", f"{learner}:{course_id}:{lesson_id}") or {}
    return {**_result_view(attempt, int(counts.get("used") or 0)), "best_grade": best}


# --- views ------------------------------------------------------------------------------------


async def view_save(ctx) -> dict:
    params = ctx.params
    quiz = await save_quiz(
        ctx, params.get("course_id"), params.get("lesson_id"), params.get("definition")
    )
    return {"quiz": quiz}


async def view_get(ctx) -> dict:
    """A quiz as its reader may see it: the instructor the whole definition; an enrolled learner
    its rules, their attempts, best grade, and the attempt they may resume."""
    course_id, lesson_id = ctx.params.get("course_id"), ctx.params.get("lesson_id")
    course, lesson = await quiz_lesson(ctx, course_id, lesson_id)
    quiz = await get_quiz(ctx, course_id, lesson_id)
    answer: dict[str, Any] = {
        "course_id": course_id,
        "lesson_id": lesson_id,
        "title": lesson.get("title"),
    }
    if is_instructor_of(ctx, course):
        answer["quiz"] = quiz
        return answer
    if not await is_enrolled(ctx, ctx.user_id, course_id):
        raise QuizError("not_enrolled", "Enrol in the course to take its quizzes.")
    if quiz is None:
        raise QuizError("not_found", "This quiz has no questions yet.")
    counts = await ctx.storage_get("attempt_counts", f"{ctx.user_id}:{course_id}:{lesson_id}") or {}
    used = int(counts.get("used") or 0)
    standing = await result_of(ctx, ctx.user_id, course_id, lesson_id)
    open_attempt = None
    if counts.get("last_attempt"):
        last = await ctx.storage_get("attempts", counts["last_attempt"])
        resumable = (
            last is not None
            and last["state"] == "open"
            and last.get("quiz_revision") == quiz.get("revision")
            and not _deadline_passed(last, now_ms())
        )
        if resumable:
            open_attempt = {
                "attempt_id": last["id"],
                "number": last["number"],
                "started_at": last["started_at"],
                "deadline": last["deadline"],
                "questions": public_questions(quiz["questions"]),
            }
    answer.update(
        questions=len(quiz["questions"]),
        passing_grade=quiz["passing_grade"],
        attempt_limit=quiz["attempt_limit"],
        time_limit=quiz["time_limit"],
        attempts_used=used,
        attempts_left=max(quiz["attempt_limit"] - used, 0),
        best_grade=standing["grade"] if standing else None,
        passed=bool(standing and standing["passed"]),
        open_attempt=open_attempt,
    )
    return answer


async def view_start(ctx) -> dict:
    return await start_attempt(ctx, ctx.params.get("course_id"), ctx.params.get("lesson_id"))


async def view_submit(ctx) -> dict:
    return await submit_attempt(ctx, ctx.params.get("attempt_id"), ctx.params.get("answers"))


async def view_grades(ctx) -> dict:
    """The invoker's grades in a course: each quiz's best grade and the course grade
    (grading.course_grade: section weights, drop-lowest)."""
    course_id = _id(ctx.params.get("course_id"), "course")
    course = await ctx.storage_get("courses", course_id)
    if not isinstance(course, dict):
        raise QuizError("not_found", "No such course.")
    if not await is_enrolled(ctx, ctx.user_id, course_id):
        raise QuizError("not_enrolled", "Enrol in the course to see your grades.")
    progress = await ctx.storage_get("progress", f"{ctx.user_id}:{course_id}") or {}
    results = {
        lesson_id: float(grade) for lesson_id, grade in (progress.get("quiz_results") or {}).items()
    }
    sections = course.get("sections") or []
    return {
        "course_id": course_id,
        "quiz_results": results,
        "sections": grading.section_scores(sections, results),
        "course_grade": grading.course_grade(sections, results),
    }


def as_view(handler):
    """The view handler answering ``handler(ctx)``, a ``QuizError`` as a ``ViewError``."""

    async def view(ctx) -> dict:
        try:
            return await handler(ctx)
        except QuizError as exc:
            raise ViewError(exc.code, exc.message) from None

    view.__name__ = view.__qualname__ = handler.__name__
    view.__doc__ = handler.__doc__
    return view


SUBCOMMANDS = dict(xp.SUBCOMMANDS)
ACTIONS: dict = {}
EVENTS: dict = {}
TIMERS: dict = {}
VIEWS = {
    "quiz.save": as_view(view_save),
    "quiz.get": as_view(view_get),
    "quiz.start": as_view(view_start),
    "quiz.submit": as_view(view_submit),
    "quiz.grades": as_view(view_grades),
}
PAYMENTS: dict = {}
