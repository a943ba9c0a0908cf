"""The poll mini-program, through the SDK simulator only (no gateway, no database)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sdk.simulator import HostRefused, Simulator

POLL_DIR = Path(__file__).resolve().parents[2] / "miniapps" / "poll"


@pytest.fixture
def sim():
    return Simulator(POLL_DIR)


@pytest.fixture
def people(sim):
    return [sim.user(name) for name in ("alice", "bob", "carol")]


@pytest.fixture
def chat(sim, people):
    return sim.conversation(members=people)


async def start(sim, user, chat, text='/poll "Lunch?" pizza sushi tacos') -> str:
    await sim.command(user, chat, text)
    message = sim.messages(chat)[-1]
    assert message["type"] == "card"
    return message["id"]


def button(card: dict, label_start: str) -> dict:
    return next(b for b in card["buttons"] if b["label"].startswith(label_start))


def counts(card: dict) -> dict[str, str]:
    return {
        b["label"].rsplit(" (", 1)[0]: b["label"].rsplit("(", 1)[1].rstrip(")")
        for b in card.get("buttons", [])
        if b["action_id"] == "vote"
    }


async def vote(sim, user, card_id, option):
    await sim.press(user, card_id, "vote", value=button(sim.card(card_id), option)["value"])


async def test_create_posts_a_card_with_a_button_per_option(sim, people, chat):
    alice = people[0]
    card_id = await start(sim, alice, chat)
    card = sim.card(card_id)
    assert card["title"] == "Lunch?"
    assert [b["label"] for b in card["buttons"]] == [
        "pizza (0)",
        "sushi (0)",
        "tacos (0)",
        "Close poll",
    ]
    assert card["buttons"][-1]["action_id"] == "close"
    ((poll_id, poll),) = sim.group_state(chat)["polls"].items()
    assert poll == {
        "question": "Lunch?",
        "options": ["pizza", "sushi", "tacos"],
        "votes": {},
        "creator": alice.id,
        "closed": False,
        "message_id": card_id,
    }
    assert card["buttons"][1]["value"] == f"{poll_id}:1"


async def test_vote_change_and_idempotent_repeat(sim, people, chat):
    alice, bob, _ = people
    card_id = await start(sim, alice, chat)
    await vote(sim, bob, card_id, "pizza")
    assert counts(sim.card(card_id)) == {"pizza": "1", "sushi": "0", "tacos": "0"}
    await vote(sim, bob, card_id, "sushi")  # changes the vote
    assert counts(sim.card(card_id)) == {"pizza": "0", "sushi": "1", "tacos": "0"}
    version = sim.group_state_version(chat)
    await vote(sim, bob, card_id, "sushi")  # the same again: kept, nothing written
    assert counts(sim.card(card_id)) == {"pizza": "0", "sushi": "1", "tacos": "0"}
    assert sim.group_state_version(chat) == version
    await vote(sim, alice, card_id, "sushi")
    card = sim.card(card_id)
    assert counts(card) == {"pizza": "0", "sushi": "2", "tacos": "0"}
    assert {"label": "sushi", "value": "2 votes · 100%"} in card["fields"]
    (poll,) = sim.group_state(chat)["polls"].values()
    assert poll["votes"] == {bob.id: 1, alice.id: 1}


async def test_the_creator_closes_and_the_card_shows_results(sim, people, chat):
    alice, bob, carol = people
    card_id = await start(sim, alice, chat)
    await vote(sim, bob, card_id, "tacos")
    await vote(sim, carol, card_id, "tacos")
    await vote(sim, alice, card_id, "pizza")
    await sim.press(alice, card_id, "close")
    card = sim.card(card_id)
    assert "buttons" not in card
    assert card["text"] == "Closed · 3 votes · tacos wins"
    assert card["fields"] == [
        {"label": "pizza", "value": "1 vote · 33%"},
        {"label": "sushi", "value": "0 votes · 0%"},
        {"label": "tacos", "value": "2 votes · 67%"},
    ]
    (poll,) = sim.group_state(chat)["polls"].values()
    assert poll["closed"] is True
    # No vote buttons remain to press; a replayed press of an old button value is refused.
    with pytest.raises(HostRefused, match="no_such_button"):
        await sim.press(bob, card_id, "vote", value="x:0")


async def test_others_cannot_close(sim, people, chat):
    alice, bob, _ = people
    card_id = await start(sim, alice, chat)
    await sim.press(bob, card_id, "close")
    assert sim.ephemeral(bob)[-1]["text"] == "Only the person who started this poll can close it."
    assert not sim.group_state(chat)["polls"][sim.card(card_id)["buttons"][-1]["value"]]["closed"]
    assert "buttons" in sim.card(card_id)


async def test_forged_values_are_refused(sim, people, chat):
    alice, bob, _ = people
    first = await start(sim, alice, chat)
    second = await start(sim, alice, chat, '/poll "Dinner?" soup salad')
    other_poll_value = button(sim.card(second), "soup")["value"]
    poll_id = other_poll_value.split(":")[0]
    for value in (other_poll_value, f"{poll_id}:7", "nonsense", ""):
        await sim.press(bob, first, "vote", value=value)
        assert sim.ephemeral(bob)[-1]["text"] == "This poll no longer exists."
    assert all(not p["votes"] for p in sim.group_state(chat)["polls"].values())


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("/poll", "A poll needs a question and at least 2 options."),
        ('/poll "Lunch?" pizza', "A poll needs a question and at least 2 options."),
        ('/poll "  " a b', "The question is empty."),
        ("/poll " + '"' + "q" * 201 + '" a b', "The question is 201 characters long"),
        ('/poll "Q?" ' + " ".join(f"o{i}" for i in range(10)), "at most 9 options; you gave 10"),
        ('/poll "Q?" a ' + "b" * 61, "longer than 60 characters"),
        ('/poll "Q?" a "  "', "An option is empty."),
        ('/poll "Q?" Pizza pizza', "Two options are the same."),
    ],
)
async def test_bad_commands_get_an_ephemeral_error(sim, people, chat, text, error):
    alice = people[0]
    await sim.command(alice, chat, text)
    assert error in sim.ephemeral(alice)[-1]["text"]
    assert sim.messages(chat) == []
    assert sim.ephemeral(people[1]) == []


async def test_long_questions_and_the_most_options(sim, people, chat):
    question = "Which " + "very " * 35 + "long option?"
    options = " ".join(f"option{i}" for i in range(9))
    card_id = await start(sim, people[0], chat, f'/poll "{question}" {options}')
    card = sim.card(card_id)
    assert len(card["title"]) == 100 and card["title"].endswith("…")
    assert card["text"].startswith(question)
    assert len(card["buttons"]) == 10


async def test_ten_members_voting_concurrently_converge(sim):
    members = [sim.user(f"member{i}") for i in range(10)]
    chat = sim.conversation(members=members)
    card_id = await start(sim, members[0], chat)
    values = [b["value"] for b in sim.card(card_id)["buttons"][:3]]
    await asyncio.gather(
        *(
            sim.press(member, card_id, "vote", value=values[i % 3])
            for i, member in enumerate(members)
        )
    )
    assert sim.conflicts > 0  # they really raced
    (poll,) = sim.group_state(chat)["polls"].values()
    assert len(poll["votes"]) == 10
    assert sorted(poll["votes"].values()) == sorted(i % 3 for i in range(10))
    assert counts(sim.card(card_id)) == {"pizza": "4", "sushi": "3", "tacos": "3"}
    # And all change their vote at once, to the same option.
    await asyncio.gather(
        *(sim.press(member, card_id, "vote", value=values[2]) for member in members)
    )
    assert counts(sim.card(card_id)) == {"pizza": "0", "sushi": "0", "tacos": "10"}
    await sim.press(members[0], card_id, "close")
    assert sim.card(card_id)["text"] == "Closed · 10 votes · tacos wins"


async def test_polls_in_different_chats_are_separate(sim, people):
    alice, bob, carol = people
    one = sim.conversation(members=[alice, bob])
    two = sim.conversation(members=[alice, carol])
    card_one = await start(sim, alice, one)
    await start(sim, alice, two)
    await vote(sim, bob, card_one, "pizza")
    assert len(sim.group_state(one)["polls"]) == 1
    (poll_two,) = sim.group_state(two)["polls"].values()
    assert poll_two["votes"] == {}
    with pytest.raises(HostRefused, match="not_member"):
        await vote(sim, carol, card_one, "pizza")


async def test_old_closed_polls_leave_the_group_state(sim, people, chat):
    alice = people[0]
    for index in range(12):
        card_id = await start(sim, alice, chat, f'/poll "Q{index}?" a b')
        await sim.press(alice, card_id, "close")
    await start(sim, alice, chat, '/poll "Last?" a b')
    polls = sim.group_state(chat)["polls"]
    assert len(polls) == 11
    assert [p["question"] for p in polls.values()][-1] == "Last?"
