"""A live quiz in a group: a full run with three members, late and double answers, the podium,
and bad input, in the SDK simulator."""

from __future__ import annotations

from tests.miniapps.courses.cohort_fixtures import (
    COURSE_ID,
    add_course,
    add_quiz,
    last_ephemeral,
    make_instructor,
    new_sim,
)


async def setup_group():
    sim = new_sim()
    await add_course(sim)
    await add_quiz(sim)
    teacher = make_instructor(sim)
    ana, ben, cy = sim.user("ana"), sim.user("ben"), sim.user("cy")
    group = sim.conversation(members=[teacher, ana, ben, cy])
    return sim, teacher, (ana, ben, cy), group


def press_option(sim, user, message_id: str, label: str):
    card = sim.card(message_id)
    [button] = [b for b in card["buttons"] if b["label"] == label]
    return sim.press(user, message_id, "live.answer", value=button["value"])


async def test_full_run_with_three_members_late_and_double_answers_and_podium():
    sim, teacher, (ana, ben, cy), group = await setup_group()
    await sim.command(teacher, group, f"/course live {COURSE_ID} l-quiz1 15")
    [q1] = sim.messages(group)
    assert q1["card"]["title"].startswith("❓ 1/3")  # the numeric question is skipped
    assert [b["label"] for b in q1["card"]["buttons"]] == ["3", "4", "5"]
    assert "correct" not in str(q1["card"])

    await press_option(sim, ben, q1["id"], "4")  # first right answer: +50
    await press_option(sim, ana, q1["id"], "4")
    await press_option(sim, cy, q1["id"], "3")
    await press_option(sim, cy, q1["id"], "4")  # a second answer does not count
    assert last_ephemeral(sim, cy) == "You already answered this question."

    fired = await sim.advance(seconds=15)
    assert [f["name"] for f in fired] == ["live.next"]
    results = sim.card(q1["id"])
    assert results["title"].startswith("✅ 1/3") and results.get("buttons", []) == []
    assert {f["label"]: f["value"] for f in results["fields"]} == {"Answer": "4", "Right": "2 / 3"}
    assert results["text"].splitlines()[-3:] == ["1. Ben — 150", "2. Ana — 100", "3. Cy — 0"]

    q2 = sim.messages(group)[-1]
    assert q2["card"]["title"].startswith("❓ 2/3")
    # a late answer to question 1, sent with the value of its old button: refused
    first_value = sim.card_history(q1["id"])[0]["buttons"][1]["value"]
    await sim.press(ana, q2["id"], "live.answer", value=first_value)
    assert last_ephemeral(sim, ana) == "Too late: this question is closed."

    await press_option(sim, cy, q2["id"], "function")
    await press_option(sim, ana, q2["id"], "loop")
    await sim.advance(seconds=15)
    q3 = sim.messages(group)[-1]
    assert q3["card"]["title"].startswith("❓ 3/3")
    await press_option(sim, ana, q3["id"], "1")
    await press_option(sim, cy, q3["id"], "1")
    await sim.advance(seconds=15)

    podium = sim.messages(group)[-1]["card"]
    assert podium["title"].startswith("🏆")
    assert [(f["label"], f["value"]) for f in podium["fields"]] == [
        ("🥇 Ana", "250 points · 2 right"),
        ("🥈 Cy", "250 points · 2 right"),
        ("🥉 Ben", "150 points · 1 right"),
    ]
    assert len(sim.messages(group)) == 4 and sim.pending_timers() == []
    # after the quiz, another one may start in the chat
    await sim.command(teacher, group, f"/course live {COURSE_ID} l-quiz1")
    assert sim.messages(group)[-1]["card"]["title"].startswith("❓ 1/3")


async def test_answers_after_the_timer_are_refused_even_from_an_open_card():
    sim, teacher, (ana, _ben, _cy), group = await setup_group()
    await sim.command(teacher, group, f"/course live {COURSE_ID} l-quiz1 10")
    [q1] = sim.messages(group)
    value = q1["card"]["buttons"][1]["value"]
    await sim.advance(seconds=10)
    assert sim.card(q1["id"]).get("buttons", []) == []  # the closed question has no buttons
    # a client replaying the old press on the next question's card:
    q2 = sim.messages(group)[-1]
    await sim.press(ana, q2["id"], "live.answer", value=value)
    assert last_ephemeral(sim, ana) == "Too late: this question is closed."
    [quiz] = [v for k, v in sim.storage("live_quizzes").items() if k.startswith("lq-")]
    assert quiz["answers"] == {}


async def test_one_live_quiz_per_chat_and_forged_values():
    sim, teacher, (ana, _ben, _cy), group = await setup_group()
    await sim.command(teacher, group, f"/course live {COURSE_ID} l-quiz1")
    await sim.command(teacher, group, f"/course live {COURSE_ID} l-quiz1")
    assert last_ephemeral(sim, teacher) == "A live quiz is already running in this chat."
    [q1] = sim.messages(group)
    quiz_id = q1["card"]["buttons"][0]["value"].split(":")[0]
    for value in (f"{quiz_id}:0:9", f"{quiz_id}:7:0", "lq-000000000000:0:0", "nonsense"):
        await sim.press(ana, q1["id"], "live.answer", value=value)
        assert last_ephemeral(sim, ana) in ("No such answer.", "No such live quiz in this chat.")
    assert sim.storage("live_quizzes")[quiz_id]["answers"] == {}


async def test_bad_input_is_refused_and_nothing_is_written():
    sim, teacher, (ana, _ben, _cy), group = await setup_group()
    await add_course(sim, "c-empty", "Empty")
    status, _ = await sim.call_capability(
        None,
        None,
        "storage.put",
        {
            "collection": "quizzes",
            "key": "c-empty:l-num",
            "value": {"questions": [{"kind": "numeric", "text": "?", "value": 1, "tolerance": 0}]},
        },
    )
    assert status == "ok"
    cases = [
        (ana, f"/course live {COURSE_ID} l-quiz1", "Only instructors can run a live quiz."),
        (teacher, f"/course live {COURSE_ID}", "Usage: /course live"),
        (teacher, f"/course live {COURSE_ID} l-quiz1 9", "Seconds per question must be 10-120."),
        (teacher, f"/course live {COURSE_ID} l-quiz1 121", "Seconds per question must be 10-120."),
        (teacher, f"/course live {COURSE_ID} l-quiz1 fast", "Seconds per question must be"),
        (teacher, "/course live c-nope l-quiz1", "No course 'c-nope'."),
        (teacher, f"/course live {COURSE_ID} l-nope", "No quiz 'l-nope' in this course."),
        (teacher, "/course live c-empty l-quiz1", "No quiz 'l-quiz1' in this course."),
        (teacher, "/course live c-empty l-num", "This quiz has no single-choice questions"),
    ]
    for user, text, expected in cases:
        await sim.command(user, group, text)
        assert last_ephemeral(sim, user).startswith(expected), text
    direct = sim.conversation(members=[teacher, ana], type="direct")
    await sim.command(teacher, direct, f"/course live {COURSE_ID} l-quiz1")
    assert "group" in last_ephemeral(sim, teacher)
    assert sim.storage("live_quizzes") == {} and sim.pending_timers() == []
    assert sim.messages(group) == [] and sim.messages(direct) == []
