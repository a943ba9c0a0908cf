"""Privacy mode in the simulator, as on the host (``sdk.addressing``, ``sdk._sim_route``): the
``addressee`` test app hears only what is addressed to it — a mention of its bot, a reply to
one of its messages, its person's service chat — with the message replied to; whatever else is
said reaches it never. ``messages.history`` needs the chat's grant (``sim.grant_history``),
and ``since_read`` gives what that person missed."""

from __future__ import annotations

import json

import pytest

from sdk import App
from sdk.addressing import mentions_app, reason_for, split_mentions
from sdk.simulator import HostRefused, Simulator
from tests.miniapps.conftest import APPS_DIR


@pytest.fixture
def world():
    sim = Simulator(APPS_DIR / "addressee")
    ann, bea = sim.user("ann"), sim.user("bea")
    chat = sim.conversation(members=[ann, bea])
    return sim, ann, bea, chat


def heard(sim) -> dict:
    """What the app kept of what reached it, by message id."""
    return {key: value for key, value in sim.storage("heard").items()}


def texts(sim, chat) -> list[str]:
    return [m["text"] for m in sim.messages(chat) if m["type"] == "text"]


async def recall(sim, user, chat, *args: str) -> dict:
    await sim.command(user, chat, " ".join(["/recall", *args]))
    return json.loads(sim.ephemeral(user)[-1]["text"])


async def test_a_group_message_not_addressed_to_the_app_never_reaches_it(world):
    sim, ann, bea, chat = world
    await sim.say(ann, chat, "lunch at one?")
    await sim.say(bea, chat, "mail me at bea@addressee.io", mentions=[])
    await sim.say(bea, chat, "@addressees is another name")
    first = await sim.say(ann, chat, "a person's message")
    await sim.say(bea, chat, "replying to a person", reply_to=first)
    assert sim.received == [] and heard(sim) == {} and sim.messages(chat) == []


async def test_a_mention_reaches_it_in_text_or_among_the_mentions(world):
    sim, ann, bea, chat = world
    by_text = await sim.say(ann, chat, "@Addressee what's up?")
    by_picker = await sim.mention(bea, chat, "and you?")
    kept = heard(sim)
    assert kept[by_text]["reason"] == kept[by_picker]["reason"] == "mention"
    assert kept[by_text]["message"] == {
        "id": by_text,
        "text": "@Addressee what's up?",
        "sender": ann.id,
        "reply_to": None,
        "media": [],
    }
    assert kept[by_text]["user_id"] == ann.id and kept[by_picker]["user_id"] == bea.id
    assert texts(sim, chat) == [
        "addressee heard mention: @Addressee what's up?",
        "addressee heard mention: and you?",
    ]
    assert [r["message"]["id"] for r in sim.received] == [by_text, by_picker]


async def test_a_reply_to_its_message_reaches_it_with_the_message_replied_to(world):
    sim, ann, bea, chat = world
    await sim.mention(ann, chat, "hello")
    answer = sim.messages(chat)[-1]["id"]
    said = await sim.say(bea, chat, "thanks!", reply_to=answer)
    got = heard(sim)[said]
    assert got["reason"] == "reply"
    assert got["message"]["reply_to"] == {
        "id": answer,
        "text": "addressee heard mention: hello",
        "sender": "app:addressee",
    }
    # A mention replying to a person's photo brings that message along, media included.
    photo = await sim.say(ann, chat, "", media=[{"media_id": "a" * 24, "kind": "image"}])
    asked = await sim.mention(bea, chat, "what is this?", reply_to=photo)
    assert heard(sim)[asked]["message"]["reply_to"] == {
        "id": photo,
        "text": "",
        "sender": ann.id,
        "media": [{"media_id": "a" * 24, "kind": "image"}],
    }
    assert photo not in heard(sim)  # the photo itself was addressed to nobody


async def test_everything_said_in_the_service_chat_reaches_it(world):
    sim, ann, _bea, _chat = world
    said = await sim.direct(ann, "just between us")
    chat = sim.service_chat(ann)
    assert chat.type == "service" and chat.members == [ann]
    assert heard(sim)[said]["reason"] == "direct"
    assert texts(sim, chat) == ["addressee heard direct: just between us"]


async def test_an_app_that_does_not_accept_message_received_hears_nothing():
    app = App("deaf")
    sim = Simulator(
        app,
        manifest={"id": "deaf", "name": "Deaf", "version": "1.0.0", "permissions": []},
    )
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    await sim.mention(ann, chat, "@deaf hello?")
    await sim.direct(ann, "hello?")
    assert sim.received == []


async def test_bad_messages_are_refused(world):
    sim, ann, _bea, chat = world
    carl = sim.user("carl")
    with pytest.raises(HostRefused) as refused:
        await sim.mention(carl, chat, "let me in")
    assert refused.value.code == "not_member"
    with pytest.raises(HostRefused) as refused:
        await sim.say(ann, chat, "   ")
    assert refused.value.code == "empty_message"
    with pytest.raises(HostRefused) as refused:
        await sim.say(ann, chat, "re", reply_to="h-404")
    assert refused.value.code == "message_not_found"
    assert sim.received == []


async def test_history_needs_the_grant_and_goes_with_it(world):
    sim, ann, bea, chat = world
    await sim.say(ann, chat, "we pick the blue mugs")
    await sim.say(bea, chat, "agreed")
    refused = await recall(sim, ann, chat)
    assert refused["error"] == "history_not_granted"
    assert "messages.read_history" in refused["message"]

    sim.grant_history(chat)
    found = await recall(sim, ann, chat)
    assert [(m["text"], m["sender"], m["sender_name"]) for m in found["messages"]] == [
        ("we pick the blue mugs", ann.id, "Ann"),
        ("agreed", bea.id, "Bea"),
    ]
    assert (found["from_seq"], found["to_seq"], found["has_more"]) == (1, 2, False)
    assert (await recall(sim, ann, chat, "1"))["messages"][0]["text"] == "agreed"
    assert (await recall(sim, ann, chat, "1"))["has_more"] is True

    sim.revoke_history(chat)
    assert (await recall(sim, ann, chat))["error"] == "history_not_granted"


async def test_since_read_gives_what_that_person_missed(world):
    sim, ann, bea, chat = world
    sim.grant_history(chat)
    await sim.say(ann, chat, "old news")
    sim.mark_read(bea, chat)  # bea read everything so far
    await sim.say(ann, chat, "we moved the meeting to 3")
    await sim.mention(ann, chat, "@addressee note it")  # its answer is in the chat too
    missed = await recall(sim, bea, chat, "50", "missed")
    assert [m["text"] for m in missed["messages"]] == [
        "we moved the meeting to 3",
        "@addressee note it",
        "addressee heard mention: @addressee note it",
    ]
    assert missed["messages"][-1]["sender"] == "app:addressee"
    # Ann wrote those herself: she missed only the app's answer.
    mine = await recall(sim, ann, chat, "50", "missed")
    assert [m["sender"] for m in mine["messages"]] == ["app:addressee"]


def test_the_addressing_rule():
    assert split_mentions(["u1", "app:assistant", "all", "app:assistant"]) == (
        ["u1", "all"],
        ["assistant"],
    )
    assert mentions_app("assistant", "hey @Assistant, sum up")
    assert not mentions_app("assistant", "mail bob@assistant.io")
    assert not mentions_app("assistant", "@assistant_bot hi")
    assert not mentions_app("assistant", "@assistant-two hi")
    group = {"conversation_type": "group", "service_app_id": None}
    assert reason_for("assistant", text="@assistant hi", reply_sender="app:assistant", **group) == (
        "mention"
    )
    assert reason_for("assistant", text="ok", reply_sender="app:assistant", **group) == "reply"
    assert reason_for("assistant", text="ok", reply_sender="app:poll", **group) is None
    assert reason_for("assistant", text="ok", reply_sender="u-1", **group) is None
    service = {"conversation_type": "service", "text": "hi"}
    assert reason_for("assistant", service_app_id="assistant", **service) == "direct"
    assert reason_for("assistant", service_app_id="poll", **service) is None
