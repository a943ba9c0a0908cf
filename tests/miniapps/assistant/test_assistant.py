"""The assistant in the SDK simulator: answers streamed into the chat, tool rounds through other
apps' read-only tools (their cards), /ai stop, privacy mode, the catch-up (with and without the
history grant), translate, and what a prompt injection can (not) do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdk.simulator import Simulator

ROOT = Path(__file__).resolve().parents[3]
ASSISTANT = ROOT / "miniapps" / "assistant"
TOOLBOX = ROOT / "tests" / "miniapps" / "apps" / "toolbox"


@pytest.fixture
def world():
    sim = Simulator(ASSISTANT)
    ann, bob = sim.user("ann"), sim.user("bob")
    chat = sim.conversation([ann, bob], title="Crew")
    return sim, chat, ann, bob


def streams(sim: Simulator, chat) -> list[dict]:
    """The app's streamed answers in ``chat``, oldest first."""
    found = []
    for message in sim.messages(chat):
        try:
            found.append(sim.stream(message["id"]))
        except KeyError:  # not a streamed message
            continue
    return found


async def test_a_question_streams_its_answer_into_one_message(world) -> None:
    sim, chat, ann, _ = world
    sim.ai_script({"content": ["Lisbon ", "is ", "sunny."]})
    await sim.command(ann, chat, "/ai what is the weather in Lisbon?")
    [asked] = sim.ai_requests
    assert asked["messages"][0]["role"] == "system"
    assert asked["messages"][-1] == {"role": "user", "content": "what is the weather in Lisbon?"}
    [stream] = streams(sim, chat)
    assert stream["streaming"] and stream["text"] == ""
    [done] = await sim.ai_complete()
    assert done["status"] == "completed"
    [stream] = streams(sim, chat)
    assert stream["text"] == "Lisbon is sunny." and not stream["streaming"]
    assert stream["stopped_by"] == "app"


async def test_tools_of_other_apps_answer_with_their_cards_and_feed_the_model(world) -> None:
    sim, chat, ann, _ = world
    toolbox = sim.install_app(TOOLBOX)
    await toolbox.command(toolbox.user("ann"), toolbox.mirror(chat), "/stock mug")
    sim.ai_script(
        {"tool_calls": [{"id": "c1", "name": "toolbox__lookup", "arguments": {"query": "mug"}}]},
        {"content": ["We have ", "a mug."]},
    )
    await sim.command(ann, chat, "/ai do we have mugs?")
    assert [f["name"] for f in sim.ai_requests[0]["tools"]] == [
        "toolbox__lookup",
        "toolbox__sneaky",
    ]
    await sim.ai_complete()
    second = sim.ai_requests[1]["messages"]
    assert (
        second[-2]["role"] == "assistant"
        and second[-2]["tool_calls"][0]["name"] == "toolbox__lookup"
    )
    assert second[-1]["role"] == "tool" and "mug" in second[-1]["content"]
    # The tool app's card is in the chat (its buttons go to it), and the answer continued.
    assert any(m["type"] == "card" for m in toolbox.messages(toolbox.mirror(chat)))
    [stream] = streams(sim, chat)
    assert stream["text"].endswith("We have a mug.") and not stream["streaming"]


async def test_a_made_up_tool_or_bad_arguments_go_back_to_the_model_as_errors(world) -> None:
    sim, chat, ann, _ = world
    sim.ai_script(
        {
            "tool_calls": [
                {"id": "c1", "name": "wallet__pay", "arguments": {"to": "x", "amount": 100}},
                {"id": "c2", "name": "toolbox__lookup", "arguments": "not json"},
            ]
        },
        "Sorry, I cannot do that.",
    )
    await sim.command(ann, chat, "/ai pay 100 to bob")
    await sim.ai_complete()
    results = [m for m in sim.ai_requests[1]["messages"] if m["role"] == "tool"]
    assert "There is no tool called 'wallet__pay'" in results[0]["content"]
    assert "no tool" in results[1]["content"]  # no toolbox here: not installed in this chat
    assert sim.payments == {}  # the assistant cannot ask for money at all


async def test_stop_keeps_what_was_written(world) -> None:
    sim, chat, ann, _ = world
    sim.ai_script({"content": ["Once ", "upon ", "a ", "time"], "cancel_after": 2})
    await sim.command(ann, chat, "/ai tell me a story")
    await sim.command(ann, chat, "/ai stop")
    assert "Stopped" in sim.ephemeral(ann)[-1]["text"]
    [stream] = streams(sim, chat)
    assert not stream["streaming"]
    await sim.ai_complete()  # the cancelled request ends: nothing more is written
    [stream] = streams(sim, chat)
    assert not stream["streaming"]
    await sim.command(ann, chat, "/ai stop")
    assert "Nothing to stop" in sim.ephemeral(ann)[-1]["text"]


async def test_privacy_mode_only_what_is_addressed_reaches_the_model(world) -> None:
    sim, chat, ann, bob = world
    sim.ai_script("At 8, at the station.", "Hi!")
    await sim.say(bob, chat, "the code for the door is 4711")
    assert sim.ai_requests == []
    first = await sim.say(bob, chat, "we meet at 8 at the station")
    await sim.mention(ann, chat, "@assistant when do we meet?", reply_to=first)
    [asked] = sim.ai_requests
    everything = json.dumps(asked["messages"])
    assert "8 at the station" in everything and "4711" not in everything
    # Her service chat with the assistant reaches it too.
    await sim.direct(ann, "hello")
    assert sim.ai_requests[-1]["messages"][-1]["content"] == "hello"


async def test_the_catch_up_needs_the_groups_grant_and_is_shown_to_the_reader(world) -> None:
    sim, chat, ann, bob = world
    await sim.command(ann, chat, "/ai summary")
    assert "admin" in sim.ephemeral(ann)[-1]["text"] and sim.ai_requests == []
    sim.grant_history(chat)
    await sim.say(bob, chat, "Decided: we take the 9:10 train")
    await sim.say(bob, chat, "@ann can you buy the tickets?")
    sim.ai_script("Decisions: the 9:10 train. For you: buy the tickets.")
    await sim.command(ann, chat, "/ai summary")
    sent = sim.ai_requests[-1]["messages"][-1]["content"]
    assert "9:10 train" in sent and "buy the tickets" in sent
    await sim.ai_complete()
    card = sim.ephemeral(ann)[-1]["card"]
    assert card["title"] == "Catch-up" and "9:10" in card["text"]
    assert not streams(sim, chat)  # nothing posted in the group
    await sim.press(ann, sim.ephemeral(ann)[-1]["ephemeral_id"], "summary.share")
    shared = sim.messages(chat)[-1]
    assert shared["type"] == "card" and "9:10" in shared["card"]["text"]


async def test_the_catch_up_starts_where_the_client_had_read_when_it_opened_the_chat(
    world,
) -> None:
    """Opening the chat marked it all read; the client sends where it had read up to then
    (``catch_up_from``), and the summary covers what came after that — not nothing."""
    sim, chat, ann, bob = world
    sim.grant_history(chat)
    last_read = await sim.say(bob, chat, "Yesterday: the hike is off")
    sim.mark_read(ann, chat)
    read_up_to = sim.seq(chat, last_read)  # where her client had read up to
    await sim.say(bob, chat, "New plan: we take the 9:10 train")
    await sim.say(bob, chat, "Bring a sandwich")
    sim.mark_read(ann, chat)  # she opens the chat: all read
    await sim.command(ann, chat, "/ai summary")
    assert "all caught up" in sim.ephemeral(ann)[-1]["text"]  # since_read finds nothing now
    sim.ai_script("The 9:10 train; bring a sandwich.")
    await sim.command(ann, chat, "/ai summary", catch_up_from=read_up_to)
    sent = sim.ai_requests[-1]["messages"][-1]["content"]
    assert "9:10 train" in sent and "sandwich" in sent and "hike" not in sent


async def test_translate_a_replied_message(world) -> None:
    sim, chat, ann, bob = world
    original = await sim.say(bob, chat, "Wir treffen uns um acht.")
    sim.ai_script("We meet at eight.")
    await sim.mention(ann, chat, "@assistant translate English", reply_to=original)
    asked = sim.ai_requests[-1]["messages"]
    assert "English" in asked[0]["content"] and asked[-1]["content"] == "Wir treffen uns um acht."
    await sim.ai_complete()
    assert streams(sim, chat)[-1]["text"] == "We meet at eight."


async def test_without_a_model_the_answer_says_how_to_set_one_up(world) -> None:
    sim, chat, ann, _ = world
    await sim.command(ann, chat, "/ai hello?")
    [stream] = streams(sim, chat)
    assert not stream["streaming"] and "AI_BASE_URL" in stream["text"]


async def test_usage_and_no_question(world) -> None:
    sim, chat, ann, _ = world
    await sim.command(ann, chat, "/ai")
    assert "/ai summary" in sim.ephemeral(ann)[-1]["text"] and sim.ai_requests == []


def test_the_assistant_cannot_pay_book_or_join() -> None:
    manifest = json.loads((ASSISTANT / "manifest.json").read_text())
    assert not [p for p in manifest["permissions"] if p.startswith(("payments.", "calls."))]


async def test_a_command_typed_as_a_reply_brings_the_replied_message(world) -> None:
    sim, chat, ann, bob = world
    original = await sim.say(bob, chat, "Rendez-vous à huit heures.")
    sim.ai_script("Meet at eight.", "It says to meet at eight.")
    await sim.command(ann, chat, "/ai translate English", reply_to=original)
    assert sim.ai_requests[-1]["messages"][-1]["content"] == "Rendez-vous à huit heures."
    await sim.command(ann, chat, "/ai what does it say?", reply_to=original)
    asked = sim.ai_requests[-1]["messages"][-1]["content"]
    assert "Rendez-vous à huit heures." in asked and "what does it say?" in asked
    # Without a reply, translate says how to use it, and nothing is asked.
    await sim.command(ann, chat, "/ai translate English")
    assert "Reply to the message" in sim.ephemeral(ann)[-1]["text"]
    assert len(sim.ai_requests) == 2
