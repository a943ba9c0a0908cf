"""Live quiz in a group (Kahoot style): one question at a time, everyone answers with buttons.

- ``/course live <course id> <lesson id> [seconds 10-120]`` (role ``instructor``, in a group):
  takes the quiz of that lesson (the ``quizzes`` collection, key ``<course>:<lesson>``) and
  plays its **single-choice** questions (numeric and multiple-choice questions cannot be answered
  with one button press: they are skipped; a quiz without single-choice questions, or with more
  than 10 options in all of them, is refused). One live quiz at a time per chat.
- Each question is a card with one button per option (``live.answer``, value
  ``<quiz id>:<question>:<option>``). A member's first answer to a question counts; a second is
  ignored ("already answered"). The timer ``live.next`` closes the question after N seconds: from
  then on answers are refused ("too late") — lateness is decided by the timer (the question that
  is open), not by a clock.
- At the close the question card turns into its results (the correct option, how many got it
  right) with the leaderboard so far; the next question is posted; after the last one the podium
  card. Scoring: 100 points for a right answer, +50 for the first right answer of a question
  (speed by order of arrival: the host sends no clock to the app).

Data: ``live_quizzes`` key ``lq-<token>``: ``{conversation_id, host, course_id, lesson_id, title,
seconds, questions: [{text, options, correct}] (never sent before the question closes), index,
state: running|done, message_ids: {index: message id}, answers: {index: {per-app id: {option,
n}}}, scores: {per-app id: {name, points, right}}, podium_message_id}``; key ``chat:<conversation
id>``: ``{quiz_id}`` while a quiz runs there (created only if absent: one per chat).

Exactly once: closing question ``i`` is one conditional write (``index i → i+1``, or ``state →
done``); a retried firing that finds question ``i+1`` without its card posts it then.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta

from assignments import display_name, group_only, load_course, update_doc

from sdk import Button, Card, Conflict, Field, HostError, Reply

log = logging.getLogger("app.courses.livequiz")

LIVE = "live_quizzes"
NEXT_TIMER = "live.next"
QUIZ_ID = re.compile(r"^lq-[0-9a-f]{12}$")
VALUE = re.compile(r"^(lq-[0-9a-f]{12}):([0-9]{1,3}):([0-9]{1,2})$")
LESSON_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SECONDS_MIN, SECONDS_MAX, SECONDS_DEFAULT = 10, 120, 20
MAX_OPTIONS = 10  # a card holds at most 10 buttons
POINTS, FIRST_BONUS = 100, 50
LEADERS_SHOWN = 10
USAGE = "Usage: /course live <course id> <lesson id> [seconds per question 10-120]"


def playable(questions: list) -> list[dict]:
    """The quiz's single-choice questions a card can hold, as ``{text, options, correct}``."""
    kept = []
    for question in questions:
        if not isinstance(question, dict) or question.get("kind") != "single":
            continue
        options = [str(o) for o in question.get("options") or []]
        correct = question.get("correct")
        if isinstance(correct, list) and len(correct) == 1:
            correct = correct[0]
        if not 2 <= len(options) <= MAX_OPTIONS or not isinstance(correct, int):
            continue
        if not 0 <= correct < len(options):
            continue
        text = str(question.get("text") or question.get("prompt") or "")
        kept.append({"text": text, "options": options, "correct": correct})
    return kept


def leaderboard(scores: dict, limit: int = LEADERS_SHOWN) -> list[dict]:
    """Players by points (then right answers, then name), best first."""
    ranked = sorted(scores.values(), key=lambda s: (-s["points"], -s["right"], s["name"]))
    return ranked[:limit]


def question_card(quiz: dict, index: int) -> Card:
    question = quiz["questions"][index]
    buttons = [
        Button("live.answer", option[:100], value=f"{quiz['id']}:{index}:{n}")
        for n, option in enumerate(question["options"])
    ]
    return Card(
        title=f"❓ {index + 1}/{len(quiz['questions'])} · {quiz['title']}"[:100],
        text=f"{question['text']}\n\n⏱ {quiz['seconds']} s to answer"[:2000],
        buttons=buttons,
    )


def results_card(quiz: dict, index: int) -> Card:
    """The question card once closed: the answer, how many got it, the leaderboard so far."""
    question = quiz["questions"][index]
    answers = quiz["answers"].get(str(index), {})
    right = sum(1 for a in answers.values() if a["option"] == question["correct"])
    fields = [
        Field("Answer", question["options"][question["correct"]][:100]),
        Field("Right", f"{right} / {len(answers)}"),
    ]
    board = "\n".join(
        f"{n}. {s['name']} — {s['points']}" for n, s in enumerate(leaderboard(quiz["scores"]), 1)
    )
    return Card(
        title=f"✅ {index + 1}/{len(quiz['questions'])} · {quiz['title']}"[:100],
        text=(f"{question['text']}\n\nLeaderboard\n{board or 'nobody yet'}")[:2000],
        fields=fields,
    )


def podium_card(quiz: dict) -> Card:
    medals = ("🥇", "🥈", "🥉")
    ranked = leaderboard(quiz["scores"], limit=len(quiz["scores"]))
    fields = [
        Field(f"{medals[n]} {s['name']}"[:100], f"{s['points']} points · {s['right']} right")
        for n, s in enumerate(ranked[:3])
    ]
    rest = ", ".join(f"{s['name']} {s['points']}" for s in ranked[3:LEADERS_SHOWN])
    return Card(
        title=f"🏆 {quiz['title']}: final podium"[:100],
        text=(f"Also: {rest}" if rest else ("Nobody answered." if not ranked else "Well played!")),
        fields=fields,
    )


# --- /course live -------------------------------------------------------------------------


async def check_live(ctx, args: list[str]) -> tuple[str | None, dict | None]:
    """``(error, quiz)``: why the invoker cannot start this live quiz, or the new quiz doc."""
    if not ctx.has_role("instructor"):
        return "Only instructors can run a live quiz.", None
    refused = group_only(ctx, "Live quizzes")
    if refused:
        return refused, None
    if len(args) not in (2, 3):
        return USAGE, None
    seconds = SECONDS_DEFAULT
    if len(args) == 3:
        if not args[2].isdigit() or not SECONDS_MIN <= int(args[2]) <= SECONDS_MAX:
            return f"Seconds per question must be {SECONDS_MIN}-{SECONDS_MAX}. {USAGE}", None
        seconds = int(args[2])
    course_id, lesson_id = args[0], args[1]
    course = await load_course(ctx, course_id)
    if course is None:
        return f"No course {course_id[:64]!r}.", None
    definition = None
    if LESSON_ID.match(lesson_id):
        definition = await ctx.storage_get("quizzes", f"{course_id}:{lesson_id}")
    if not isinstance(definition, dict):
        return f"No quiz {lesson_id[:64]!r} in this course.", None
    questions = playable(definition.get("questions") or [])
    if not questions:
        return "This quiz has no single-choice questions to play live.", None
    return None, {
        "id": f"lq-{secrets.token_hex(6)}",
        "conversation_id": ctx.conversation_id,
        "host": ctx.user_id,
        "course_id": course_id,
        "lesson_id": lesson_id,
        "title": str(definition.get("title") or course.get("title") or lesson_id)[:60],
        "seconds": seconds,
        "questions": questions,
        "index": 0,
        "state": "running",
        "message_ids": {},
        "answers": {},
        "scores": {},
        "podium_message_id": None,
    }


async def live(ctx, args: list[str]) -> Reply | None:
    """``/course live <course id> <lesson id> [seconds]``."""
    error, quiz = await check_live(ctx, args)
    if error:
        return Reply(ephemeral=error)
    return await do_live(ctx, quiz)


async def do_live(ctx, quiz: dict) -> Reply | None:
    try:  # one live quiz per chat: the lock is created only if absent
        await ctx.storage_update(
            LIVE,
            f"chat:{ctx.conversation_id}",
            set={"quiz_id": quiz["id"]},
            expected_version=0,
            upsert=True,
        )
    except Conflict:
        return Reply(ephemeral="A live quiz is already running in this chat.")
    await ctx.storage_put(LIVE, quiz["id"], quiz)
    await post_question(ctx, quiz, 0)
    return None


async def post_question(ctx, quiz: dict, index: int) -> None:
    """Post question ``index``'s card, remember it, and set the timer that closes it."""
    message_id = await ctx.send_card(question_card(quiz, index))

    def remember(doc: dict | None) -> None:
        if doc is not None:
            doc["message_ids"][str(index)] = message_id

    await update_doc(ctx, LIVE, quiz["id"], remember)
    await ctx.schedule(
        NEXT_TIMER,
        delay=timedelta(seconds=quiz["seconds"]),
        payload={"quiz_id": quiz["id"], "index": index},
        key=f"live:{quiz['id']}:{index}",
    )


# --- answers ------------------------------------------------------------------------------


async def answer(ctx) -> Reply | None:
    """``live.answer``: the member's first answer to the open question counts."""
    match = VALUE.match(ctx.value or "")
    quiz = await ctx.storage_get(LIVE, match.group(1)) if match else None
    if not quiz or quiz["conversation_id"] != ctx.conversation_id:
        return Reply(ephemeral="No such live quiz in this chat.")
    index, option = int(match.group(2)), int(match.group(3))
    if index >= len(quiz["questions"]) or option >= len(quiz["questions"][index]["options"]):
        return Reply(ephemeral="No such answer.")
    if quiz["state"] != "running" or quiz["index"] != index:
        return Reply(ephemeral="Too late: this question is closed.")
    if ctx.user_id in quiz["answers"].get(str(index), {}):
        return Reply(ephemeral="You already answered this question.")
    name = await display_name(ctx, f"Player {len(quiz['scores']) + 1}")

    def record(doc: dict | None) -> str:
        if doc is None or doc["state"] != "running" or doc["index"] != index:
            return "late"
        given = doc["answers"].setdefault(str(index), {})
        if ctx.user_id in given:
            return "again"
        given[ctx.user_id] = {"option": option, "n": len(given) + 1, "name": name}
        return "ok"

    outcome, _ = await update_doc(ctx, LIVE, quiz["id"], record)
    if outcome == "late":
        return Reply(ephemeral="Too late: this question is closed.")
    if outcome == "again":
        return Reply(ephemeral="You already answered this question.")
    return Reply(ephemeral=f"Answer recorded: {quiz['questions'][index]['options'][option]}")


def score(doc: dict, index: int) -> None:
    """Add question ``index``'s points to the scores."""
    question = doc["questions"][index]
    given = doc["answers"].get(str(index), {})
    first_right = True
    for player, entry in sorted(given.items(), key=lambda item: item[1]["n"]):
        row = doc["scores"].setdefault(player, {"name": entry["name"], "points": 0, "right": 0})
        if entry["option"] == question["correct"]:
            row["points"] += POINTS + (FIRST_BONUS if first_right else 0)
            row["right"] += 1
            first_right = False


# --- the timer ----------------------------------------------------------------------------


async def on_next(ctx) -> None:
    """Close question ``index`` (once), turn its card into the results, then post the next
    question or the podium."""
    quiz_id, index = str(ctx.payload.get("quiz_id", "")), int(ctx.payload.get("index", -1))
    if not QUIZ_ID.match(quiz_id):
        return

    def close(doc: dict | None) -> bool:
        if doc is None or doc["state"] != "running" or doc["index"] != index:
            return False
        score(doc, index)
        if index + 1 < len(doc["questions"]):
            doc["index"] = index + 1
        else:
            doc["state"] = "done"
        return True

    closed, quiz = await update_doc(ctx, LIVE, quiz_id, close)
    if quiz is None:
        return
    if not closed and ctx.attempt == 1:
        return  # closed by an earlier firing that finished its work
    message_id = quiz["message_ids"].get(str(index))
    if message_id:
        try:
            await ctx.update_card(message_id, results_card(quiz, index))
        except HostError as exc:
            log.warning("live quiz card %s not updated: %s", message_id, exc.code)
    if quiz["state"] == "running":
        if str(quiz["index"]) not in quiz["message_ids"]:
            await post_question(ctx, quiz, quiz["index"])
        return
    if quiz["podium_message_id"] is None:
        podium = await ctx.send_card(podium_card(quiz))

        def remember(doc: dict | None) -> None:
            if doc is not None:
                doc["podium_message_id"] = podium

        await update_doc(ctx, LIVE, quiz_id, remember)
        await ctx.storage_delete(LIVE, f"chat:{quiz['conversation_id']}")


SUBCOMMANDS = {"live": live}
ACTIONS = {"live.answer": answer}
TIMERS = {NEXT_TIMER: on_next}
