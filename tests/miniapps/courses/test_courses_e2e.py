"""Courses through the running platform: gateway nodes sharing MongoDB and Redis, the courses
app as a real sandboxed process on each, people on real Socket.IO and HTTP clients.

- A group's weekly league cuts over exactly once while firings of its cutover race on two nodes.
- A paid course enrols after the learner confirms the wallet's payment; cancelling enrols no
  one; a retried enrol asks for (and takes) the money once; the ledger stays balanced.
- A group as a cohort: an assignment card that shows who finished, and a live quiz whose cards
  carry the leaderboard and end on a podium.
"""

from __future__ import annotations

import datetime
import zoneinfo

from gateway.keys import MESSAGING
from tests.conftest import base_url, node_configs, start_nodes
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, group, person
from tests.miniapps.courses.e2e_helpers import (
    asked_to_pay,
    call,
    card_text,
    consent,
    due_now,
    install,
    live_timers,
    make_admin,
    read_lessons,
    refused,
    stored,
    titled,
)
from tests.miniapps.shop.e2e_helpers import button, command, ephemerals, grant_role, press, top_up
from tests.miniapps.timer_race import fire_racing
from tests.wallet.wallet_helpers import balance, check_ledger
from wallet.store.accounts import merchant_account

ZONE = "Europe/Berlin"
PYTHON_LESSONS = ["l-hello", "l-values", "l-loops"]  # the demo's free course, 10 XP each


async def two_nodes(aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path):
    """Two gateways on one database and one Redis, scanning for due timers every 50 ms."""
    configs = node_configs(mongo_url, mongo_db_name, tmp_path, redis_url, jobs_interval=0.05)
    nodes = await start_nodes(aiohttp_server, configs)
    return nodes, [base_url(node) for node in nodes], nodes[0].app[MESSAGING].db


def is_monday_midnight(ms: int, zone: zoneinfo.ZoneInfo) -> bool:
    local = datetime.datetime.fromtimestamp(ms / 1000, zone)
    return (local.weekday(), local.hour, local.minute, local.second) == (0, 0, 0, 0)


def version_of(person, cid: str, message_id: str, prefix: str) -> dict | None:
    """The card ``message_id`` as ``person`` last received it, once its title starts with
    ``prefix``."""
    found = [m for m in titled(person, cid, prefix) if m["id"] == message_id]
    return found[0] if found else None


async def test_a_league_cuts_over_exactly_once_when_its_firings_race_on_two_nodes(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path
):
    nodes, bases, db = await two_nodes(
        aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path
    )
    admin, teacher = await person(bases[0]), await person(bases[1])
    members = [await person(bases[index % 2]) for index in range(4)]
    try:
        await make_admin(db, admin)
        await grant_role(admin, teacher, "courses", "instructor")
        cid = await group(teacher, members, "Study group")
        await install(teacher, cid)
        await call(teacher, cid, "demo.seed")
        await command(teacher, cid, f"/course league start {ZONE}")
        [board] = await eventually(
            lambda: titled(members[0], cid, "🏆 Weekly league"), what="the leaderboard card"
        )
        league, _ = await stored(db, "leagues", cid)
        zone = zoneinfo.ZoneInfo(ZONE)
        [timer] = await live_timers(db)
        assert (timer["name"], timer["state"]) == ("league.cutover", "pending")
        assert timer["due_at"] > league["started_at"]
        assert is_monday_midnight(timer["due_at"], zone)
        started = datetime.datetime.fromtimestamp(league["started_at"] / 1000, zone).isocalendar()
        week = f"{started.year}-W{started.week:02d}"

        # XP counts in the league when earned in the group's invocations: each member reads
        # lessons of the free demo course in the web view opened from the group (10 XP each).
        for member, reads in zip(members, (3, 2, 1, 1), strict=True):
            await consent(member)  # their name on the cards
            assert (await call(member, cid, "enrol", {"course_id": "python-101"}))["enrolled"]
            await read_lessons(member, cid, "python-101", PYTHON_LESSONS[:reads])
        league, _ = await stored(db, "leagues", cid)
        assert len(league["members"]) == 4
        assert {m["tier"] for m in league["members"].values()} == {"Bronze"}
        names = [m.username for m in members]

        def board_shows_everyone():
            latest = version_of(members[1], cid, board["id"], "🏆")
            text = card_text(latest) if latest else ""
            return text if all(f"{name} · 🥉 Bronze" in text for name in names) else None

        text = await eventually(board_shows_everyone, what="the leaderboard with four members")
        assert f"1. {names[0]} · 🥉 Bronze · 30 XP" in text
        _, week_version = await stored(db, "league_weeks", f"{cid}:{week}")

        # The cutover timer is due next Monday: it is made due now, and fired four times at
        # once, two on each node (how, and why that is the race a cutover can meet:
        # tests.miniapps.timer_race).
        now = await fire_racing(nodes, db, timer, copies=3)

        # The week closed once (one conditional write), with its ranking.
        closed, version = await stored(db, "league_weeks", f"{cid}:{week}")
        assert (closed["state"], closed["closed_at"], version) == ("closed", now, week_version + 1)
        ranking = [
            (r["name"], r["xp"], r["tier_before"], r["tier_after"]) for r in closed["results"]
        ]
        assert ranking == [
            (names[0], 30, "Bronze", "Silver"),
            (names[1], 20, "Bronze", "Silver"),
            (names[2], 10, "Bronze", "Silver"),
            (names[3], 10, "Bronze", "Bronze"),
        ]
        # The tiers were applied once.
        league, _ = await stored(db, "leagues", cid)
        assert league["applied_week"] == week
        tiers = {m["name"]: m["tier"] for m in league["members"].values()}
        assert tiers == dict(zip(names, ["Silver"] * 3 + ["Bronze"], strict=True))
        # One results card in the group, and the leaderboard shows the promotions.
        results = await db["messages"].count_documents(
            {"conversation_id": cid, "card.title": {"$regex": "^🏁 League results"}}
        )
        assert results == 1
        for member in members[:2]:  # one on each node
            [card] = await eventually(
                lambda member=member: titled(member, cid, "🏁 League results"),
                what="the results card",
            )
            assert f"1. {names[0]} · 30 XP · Bronze → Silver ⬆" in card_text(card)

            def promoted(member=member) -> list[str]:
                latest = version_of(member, cid, board["id"], "🏆")
                lines = card_text(latest).splitlines() if latest else []
                return [line for line in lines if "🥈 Silver" in line]

            shown = await eventually(
                lambda: len(promoted()) == 3 and promoted(), what="the leaderboard promoted"
            )
            assert [line.split(" · ")[0] for line in shown] == [
                f"{rank}. {name}" for rank, name in enumerate(names[:3], 1)
            ]
        # Exactly one next cutover: the group's one timer, at a later Monday 00:00; every copy
        # that fired is done.
        [following] = await live_timers(db)
        assert (following["_id"], following["name"]) == (timer["_id"], "league.cutover")
        assert following["state"] == "pending" and following["version"] > timer["version"]
        assert following["due_at"] > now and is_monday_midnight(following["due_at"], zone)
    finally:
        await close_all([admin, teacher, *members])


async def test_a_paid_course_enrols_after_the_wallet_payment_and_charges_once(gateway):
    base = base_url(gateway)
    db = gateway.app[MESSAGING].db
    admin, teacher, ana, ben = [await person(base) for _ in range(4)]
    try:
        await make_admin(db, admin)
        await grant_role(admin, teacher, "courses", "instructor")
        cid = await group(teacher, [ana, ben], "Data class")
        await install(teacher, cid)
        await call(teacher, cid, "demo.seed")  # "data-science": 19.00 USD, two lessons
        course = {"course_id": "data-science"}
        for learner in (ana, ben):
            await top_up(learner, 5000)

        # Ana enrols: the wallet asks her to confirm 19.00 USD for the course.
        first = await call(ana, cid, "enrol", course)
        assert first["enrolled"] is False and first["payment"]["status"] == "pending"
        [sheet] = await eventually(lambda: asked_to_pay(ana), what="Ana's payment sheet")
        assert (sheet["id"], sheet["amount"], sheet["currency"]) == (
            first["payment"]["payment_id"],
            1900,
            "USD",
        )
        # The page calls enrol again (its first answer was lost): the same payment, not another.
        again = await call(ana, cid, "enrol", course)
        assert again["payment"]["payment_id"] == first["payment"]["payment_id"]
        await eventually(lambda: len(asked_to_pay(ana)) == 2, what="the sheet shown again")
        assert {shown["id"] for shown in asked_to_pay(ana)} == {sheet["id"]}
        lesson = {**course, "lesson_id": "l-data"}
        assert await refused(ana, cid, "lesson.get", lesson) == "not_enrolled"

        confirmed = await ana.socket.call("payment.confirm", {"payment_id": sheet["id"]})
        assert confirmed["ok"] and confirmed["payment"]["status"] == "paid", confirmed

        async def enrolled(learner) -> bool:
            return (await call(learner, cid, "course.get", course))["course"]["enrolled"]

        await eventually(lambda: enrolled(ana), what="Ana enrolled once paid")
        read = await call(ana, cid, "lesson.get", lesson)
        assert "What is data science?" in read["lesson"]["html"]
        # Enrolled, enrolling again asks for nothing; confirming again takes nothing.
        assert await call(ana, cid, "enrol", course) == {"enrolled": True, **course}
        twice = await ana.socket.call("payment.confirm", {"payment_id": sheet["id"]})
        assert twice["ok"] and twice["payment"]["status"] == "paid", twice
        assert await balance(ana) == 5000 - 1900

        # Ben enrols and cancels the sheet: not enrolled, nothing taken.
        asked = await call(ben, cid, "enrol", course)
        [ben_sheet] = await eventually(lambda: asked_to_pay(ben), what="Ben's payment sheet")
        assert ben_sheet["id"] == asked["payment"]["payment_id"]
        cancelled = await ben.socket.call("payment.cancel", {"payment_id": ben_sheet["id"]})
        assert cancelled["ok"] and cancelled["payment"]["status"] == "cancelled", cancelled
        assert await enrolled(ben) is False
        assert await refused(ben, cid, "lesson.get", lesson) == "not_enrolled"
        # Changing his mind, he is asked again: a new payment (the cancelled one is over).
        later = await call(ben, cid, "enrol", course)
        assert later["payment"]["status"] == "pending"
        assert later["payment"]["payment_id"] != ben_sheet["id"]
        assert await balance(ben) == 5000

        enrolments = [
            doc["key"]
            async for doc in db["app_storage"].find(
                {"app_id": "courses", "collection": "enrolments"}
            )
        ]
        assert len(enrolments) == 1 and enrolments[0].endswith(":data-science")
        balances = await check_ledger(db)
        assert balances[merchant_account("courses", "USD")] == 1900
    finally:
        await close_all([admin, teacher, ana, ben])


TRIVIA_QUIZ = {
    "passing_grade": 50,
    "attempt_limit": 3,
    "questions": [
        {
            "kind": "single",
            "text": "The capital of France?",
            "options": ["Lyon", "Paris"],
            "correct": 1,
        },
        {"kind": "single", "text": "2 + 2?", "options": ["3", "4", "5"], "correct": 1},
    ],
}


async def author_trivia(teacher, cid: str) -> tuple[str, str, str]:
    """A free course of one text lesson and a two-question quiz, written in the web view:
    ``(course id, text lesson id, quiz lesson id)``."""
    params = {"title": "Trivia 101", "price": 0, "currency": "USD", "published": True}
    course = (await call(teacher, cid, "course.save", params))["course"]
    course_id = course["id"]
    course = (await call(teacher, cid, "section.save", {"course_id": course_id, "title": "All"}))[
        "course"
    ]
    section = {"course_id": course_id, "section_id": course["sections"][0]["id"]}
    text = {**section, "title": "Read me", "markdown": "# Capitals\n\nParis is in France."}
    text_id = (await call(teacher, cid, "lesson.save", text))["lesson"]["id"]
    quiz = {**section, "title": "Check yourself", "kind": "quiz"}
    quiz_id = (await call(teacher, cid, "lesson.save", quiz))["lesson"]["id"]
    await call(
        teacher,
        cid,
        "quiz.save",
        {"course_id": course_id, "lesson_id": quiz_id, "definition": TRIVIA_QUIZ},
    )
    return course_id, text_id, quiz_id


def recorded(player, cid: str) -> int:
    return sum(text.startswith("Answer recorded") for text in ephemerals(player, cid))


async def answer_live(player, cid: str, question: dict, option: int) -> None:
    """``player`` presses an option of a live question card and waits until the app recorded
    it (so a press that follows is known to come after it)."""
    before = recorded(player, cid)
    value = question["card"]["buttons"][option]["value"]
    ack = await press(player, cid, question["id"], "live.answer", value)
    assert ack["ok"], ack
    await eventually(lambda: recorded(player, cid) > before, what="the answer recorded")


async def test_a_cohort_sees_who_finished_an_assignment_and_plays_a_live_quiz(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path
):
    _nodes, bases, db = await two_nodes(
        aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path
    )
    admin, teacher = await person(bases[0]), await person(bases[1])
    ann, bob = await person(bases[0]), await person(bases[1])
    try:
        await make_admin(db, admin)
        await grant_role(admin, teacher, "courses", "instructor")
        cid = await group(teacher, [ann, bob], "Cohort")
        await install(teacher, cid)
        for member in (ann, bob):
            await consent(member)  # their names on the cards
        course_id, text_id, quiz_id = await author_trivia(teacher, cid)

        # The instructor sets the course as homework; both members take part.
        await command(teacher, cid, f"/course assign {course_id} 7")
        [card] = await eventually(
            lambda: titled(bob, cid, "📚 Assignment: Trivia 101"), what="the assignment card"
        )
        assert "Due " in card["card"]["text"]
        join = button(card, "assign.join")
        for member in (ann, bob):
            ack = await press(member, cid, card["id"], "assign.join", join["value"])
            assert ack["ok"], ack

        def assignment_says(*lines: str):
            latest = version_of(bob, cid, card["id"], "📚")
            text = card_text(latest) if latest else ""
            return text if all(line in text for line in lines) else None

        await eventually(lambda: assignment_says("Finished: 0 / 2"), what="two members in")

        # Ann completes the course (reads its lesson, passes its quiz): the card, as Bob sees
        # it on the other node, counts her as finished.
        assert (await call(ann, cid, "enrol", {"course_id": course_id}))["enrolled"]
        await read_lessons(ann, cid, course_id, [text_id])
        attempt = await call(ann, cid, "quiz.start", {"course_id": course_id, "lesson_id": quiz_id})
        first, second = (q["id"] for q in attempt["questions"])
        result = await call(
            ann,
            cid,
            "quiz.submit",
            {"attempt_id": attempt["attempt_id"], "answers": {first: 1, second: 1}},
        )
        assert result["passed"] is True
        text = await eventually(
            lambda: assignment_says("Finished: 1 / 2", f"Done ✓: {ann.username}"),
            what="the card showing Ann finished",
        )
        assert bob.username not in text

        # A live quiz of the course's quiz, 10 s per question (the shortest the app allows).
        await command(teacher, cid, f"/course live {course_id} {quiz_id} 10")
        [q1] = await eventually(lambda: titled(ann, cid, "❓ 1/2"), what="question 1")
        assert [b["label"] for b in q1["card"]["buttons"]] == ["Lyon", "Paris"]
        live_id = q1["card"]["buttons"][0]["value"].split(":")[0]
        await answer_live(ann, cid, q1, 1)  # right, and first: 100 + 50
        await answer_live(bob, cid, q1, 0)  # wrong
        # Both answered: the question closes now rather than when its 10 s are up.
        await eventually(lambda: due_now(db, f"live:{live_id}:0"), what="question 1's timer")
        closed = await eventually(
            lambda: version_of(bob, cid, q1["id"], "✅ 1/2"), what="question 1's results"
        )
        text = card_text(closed)
        assert "Answer: Paris" in text and "Right: 1 / 2" in text
        assert f"1. {ann.username} — 150\n2. {bob.username} — 0" in text

        [q2] = await eventually(lambda: titled(bob, cid, "❓ 2/2"), what="question 2")
        await answer_live(bob, cid, q2, 1)  # right, and first: 150
        await answer_live(ann, cid, q2, 1)  # right: 100
        # Question 1's card lost its buttons when it closed: a late press is refused.
        late = await press(bob, cid, q1["id"], "live.answer", q1["card"]["buttons"][1]["value"])
        assert late["ok"] is False and late["error"]["code"] == "invalid_field", late
        await eventually(lambda: due_now(db, f"live:{live_id}:1"), what="question 2's timer")
        closed = await eventually(
            lambda: version_of(ann, cid, q2["id"], "✅ 2/2"), what="question 2's results"
        )
        assert f"1. {ann.username} — 250\n2. {bob.username} — 150" in card_text(closed)

        [podium] = await eventually(
            lambda: titled(bob, cid, "🏆 Trivia 101: final podium"), what="the podium"
        )
        assert podium["card"]["fields"] == [
            {"label": f"🥇 {ann.username}", "value": "250 points · 2 right"},
            {"label": f"🥈 {bob.username}", "value": "150 points · 1 right"},
        ]

        async def finished() -> bool:  # the podium recorded, the chat free for another quiz
            quiz, _ = await stored(db, "live_quizzes", live_id)
            lock, _ = await stored(db, "live_quizzes", f"chat:{cid}")
            return quiz["state"] == "done" and quiz["podium_message_id"] and lock is None

        await eventually(finished, what="the live quiz over")
        quiz, _ = await stored(db, "live_quizzes", live_id)
        assert quiz["podium_message_id"] == podium["id"]
        podiums = await db["messages"].count_documents(
            {"conversation_id": cid, "card.title": {"$regex": "final podium$"}}
        )
        assert podiums == 1
    finally:
        await close_all([admin, teacher, ann, bob])
