"""Assignments in a group: the card's lifecycle (join, completion, reminder, deadline) and bad
input, in the SDK simulator."""

from __future__ import annotations

import sys

from tests.miniapps.courses.cohort_fixtures import (
    COURSE_ID,
    add_course,
    last_ephemeral,
    make_instructor,
    new_sim,
    put,
)


async def setup_group():
    sim = new_sim()
    await add_course(sim)
    teacher = make_instructor(sim)
    ana, ben, cy = sim.user("ana"), sim.user("ben"), sim.user("cy")
    group = sim.conversation(members=[teacher, ana, ben, cy])
    return sim, teacher, (ana, ben, cy), group


def field(card: dict, name: str) -> str | None:
    return next((f["value"] for f in card.get("fields", []) if f["label"] == name), None)


async def completed(sim, learner, course_id: str = COURSE_ID) -> int:
    """What ``completion.check`` does once ``learner`` completes the course: it records
    ``completed_at`` and calls the hook. The hook runs inside a real invocation: a test-only
    view registered on the app, opened by the learner from their direct chat."""
    await put(sim, "progress", f"{learner.id}:{course_id}", {"completed_at": 1})
    if "test.completed" not in sim.app.views:
        hook = sys.modules["assignments"].on_completed

        async def completed_view(ctx):
            return {"changed": await hook(ctx, ctx.user_id, ctx.params["course_id"])}

        sim.app.view("test.completed")(completed_view)
    chat = sim.conversation(members=[learner], type="direct")
    answer = await sim.view(learner, chat, "test.completed", {"course_id": course_id})
    return answer["changed"]


async def test_assignment_card_lifecycle_with_reminder_and_deadline():
    sim, teacher, (ana, ben, cy), group = await setup_group()
    await sim.command(teacher, group, f"/course assign {COURSE_ID} 3")
    [message] = sim.messages(group)
    card = message["card"]
    assert "Python 101" in card["title"] and card["text"].startswith("Due ")
    assert field(card, "Finished") == "0 / 0"
    assert [b.get("action_id") for b in card["buttons"]] == ["assign.join", None]
    timers = {t["name"] for t in sim.pending_timers()}
    assert timers == {"assign.remind", "assign.deadline"}

    for member in (ana, ben, cy):
        await sim.press(member, message["id"], "assign.join")
    await sim.press(ana, message["id"], "assign.join")  # a second press changes nothing
    assert last_ephemeral(sim, ana) == "You are already in."
    assert field(sim.card(message["id"]), "Finished") == "0 / 3"

    assert await completed(sim, ben) == 1
    assert await completed(sim, ben) == 0  # idempotent
    card = sim.card(message["id"])
    assert field(card, "Finished") == "1 / 3" and field(card, "Done ✓") == "Ben"

    fired = await sim.advance(days=2, hours=1)  # one day before the deadline
    assert [f["name"] for f in fired] == ["assign.remind"]
    assert len(sim.notifications(ana)) == 1 and "Python 101" in sim.notifications(ana)[0]
    assert len(sim.notifications(cy)) == 1
    assert sim.notifications(ben) == [] and sim.notifications(teacher) == []

    fired = await sim.advance(days=1)
    assert [f["name"] for f in fired] == ["assign.deadline"]
    card = sim.card(message["id"])
    assert card["text"].startswith("Closed")
    assert field(card, "Finished") == "1 / 3" and field(card, "Not finished") == "Ana, Cy"
    assert card.get("buttons", []) == []
    assert len(sim.notifications(ana)) == 1  # no second reminder
    assert await completed(sim, cy) == 0  # after the deadline nothing changes
    assert field(sim.card(message["id"]), "Finished") == "1 / 3"


async def test_a_member_who_already_completed_counts_at_once():
    sim, teacher, (ana, _ben, _cy), group = await setup_group()
    await put(sim, "progress", f"{ana.id}:{COURSE_ID}", {"completed_at": 5})
    await sim.command(teacher, group, f"/course assign {COURSE_ID} 1")
    [message] = sim.messages(group)
    assert {t["name"] for t in sim.pending_timers()} == {"assign.deadline"}  # no reminder: 1 day
    await sim.press(ana, message["id"], "assign.join")
    assert field(sim.card(message["id"]), "Finished") == "1 / 1"


async def test_joining_a_closed_or_forged_assignment_is_refused():
    sim, teacher, (ana, ben, _cy), group = await setup_group()
    await sim.command(teacher, group, f"/course assign {COURSE_ID} 1")
    [message] = sim.messages(group)
    await sim.press(ana, message["id"], "assign.join", value="as-000000000000")
    assert last_ephemeral(sim, ana) == "No such assignment in this chat."
    await sim.advance(days=1)
    before = sim.storage("assignments")
    status, _ = await sim.call_capability(
        None, None, "storage.get", {"collection": "x", "key": "y"}
    )
    assert status == "ok"
    assignment_id = next(iter(before))
    other = sim.conversation(members=[teacher, ben])
    await sim.command(teacher, other, f"/course assign {COURSE_ID} 2")
    other_card = sim.messages(other)[0]
    await sim.press(ben, other_card["id"], "assign.join", value=assignment_id)  # other chat's
    assert last_ephemeral(sim, ben) == "No such assignment in this chat."
    assert sim.storage("assignments")[assignment_id] == before[assignment_id]


async def test_bad_input_is_refused_and_nothing_is_written():
    sim, teacher, (ana, _ben, _cy), group = await setup_group()
    cases = [
        (ana, group, f"/course assign {COURSE_ID} 3", "Only instructors can set assignments."),
        (teacher, group, "/course assign", "Usage: /course assign <course id> <days 1-90>"),
        (teacher, group, f"/course assign {COURSE_ID} 0", "The number of days must be 1-90."),
        (teacher, group, f"/course assign {COURSE_ID} 91", "The number of days must be 1-90."),
        (teacher, group, f"/course assign {COURSE_ID} soon", "The number of days must be 1-90."),
        (teacher, group, "/course assign c-nope 3", "No course 'c-nope'."),
        (teacher, group, "/course assign ../x 3", "No course '../x'."),
    ]
    for user, chat, text, expected in cases:
        await sim.command(user, chat, text)
        assert last_ephemeral(sim, user).startswith(expected), text
    direct = sim.conversation(members=[teacher, ana], type="direct")
    await sim.command(teacher, direct, f"/course assign {COURSE_ID} 3")
    assert "group" in last_ephemeral(sim, teacher)
    assert sim.storage("assignments") == {} and sim.pending_timers() == []
    assert sim.messages(group) == [] and sim.messages(direct) == []
