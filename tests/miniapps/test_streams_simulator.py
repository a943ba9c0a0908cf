"""Streaming messages in the simulator as on the host: the ``streamer`` test app starts a
streaming text (``messages.stream_start``), adds to it (``stream_append``) and stops it
(``stream_stop``); ``sim.messages(chat)`` shows its text so far and ``sim.stream(id)`` its
state and every piece; refusals carry the host's codes (``not_found``, ``not_streaming``,
``text_too_long``, ``invalid_params``) and change nothing; a stream left unwritten for 10
minutes of ``sim.now`` is stopped as the host's sweep does. The same calls against the host:
tests/miniapps/test_streams_e2e.py (and every case of the contract in
tests/miniapps/test_capability_contract.py)."""

from __future__ import annotations

import pytest

from sdk._capability_services import STREAM_TEXT_MAX
from sdk.simulator import Simulator
from tests.miniapps.conftest import APPS_DIR


@pytest.fixture
def world():
    sim = Simulator(APPS_DIR / "streamer")
    ann, bea = sim.user("ann"), sim.user("bea")
    chat = sim.conversation(members=[ann, bea])
    return sim, ann, chat


async def said(sim, user, chat, text: str) -> str:
    """``user`` runs ``text``; the app's private answer, without its ``streamer: `` prefix."""
    await sim.command(user, chat, text)
    answer = sim.ephemeral(user)[-1]["text"]
    assert answer.startswith("streamer: "), answer
    return answer.removeprefix("streamer: ")


async def started(sim, user, chat, text: str = "") -> str:
    answer = await said(sim, user, chat, f"/stream start {text}".rstrip())
    assert answer.startswith("started "), answer
    return answer.removeprefix("started ")


async def test_a_stream_grows_then_stops_with_what_was_streamed(world):
    sim, ann, chat = world
    message_id = await started(sim, ann, chat, "Thinking")
    assert sim.messages(chat) == [{"id": message_id, "type": "text", "text": "Thinking"}]
    assert sim.stream(message_id)["streaming"] is True

    assert await said(sim, ann, chat, f"/stream append {message_id} … done.") == "appended"
    assert await said(sim, ann, chat, f"/stream burst {message_id} 3 0 w") == "burst done"
    text = "Thinking… done.w0 w1 w2 "
    assert sim.messages(chat)[0]["text"] == text
    assert await said(sim, ann, chat, f"/stream stop {message_id}") == f"stopped {text}"
    assert sim.stream(message_id) == {
        "text": text,
        "streaming": False,
        "appends": ["… done.", "w0 ", "w1 ", "w2 "],
        "stopped_by": "app",
    }
    assert sim.messages(chat) == [{"id": message_id, "type": "text", "text": text}]


async def test_the_stop_may_give_the_final_text(world):
    sim, ann, chat = world
    answer = await said(sim, ann, chat, "/stream whole 4 0 x")
    assert answer == "stopped x0 x1 x2 x3 "
    message_id = await started(sim, ann, chat)
    assert sim.messages(chat)[-1]["text"] == ""  # empty while it starts: allowed
    assert await said(sim, ann, chat, f"/stream stop {message_id} The answer.") == (
        "stopped The answer."
    )
    assert sim.stream(message_id)["text"] == "The answer."
    assert sim.stream(message_id)["appends"] == []


async def test_refusals_carry_the_hosts_codes_and_change_nothing(world):
    sim, ann, chat = world
    message_id = await started(sim, ann, chat, "kept")
    other_chat = sim.conversation(members=[ann])
    for command in (
        "/stream append m-404 x",  # no such message
        "/stream stop m-404",
    ):
        assert await said(sim, ann, chat, command) == "error not_found"
    assert await said(sim, ann, other_chat, f"/stream append {message_id} x") == (
        "error not_found"  # this app's stream, but in another chat
    )
    outcome = await sim.call_capability(
        ann, chat, "messages.stream_append", {"message_id": message_id, "text": ""}
    )
    assert outcome == ("error", "invalid_params")
    too_long = "x" * (STREAM_TEXT_MAX - len("kept") + 1)
    outcome = await sim.call_capability(
        ann, chat, "messages.stream_append", {"message_id": message_id, "text": too_long}
    )
    assert outcome == ("error", "text_too_long")
    outcome = await sim.call_capability(
        ann, chat, "messages.stream_start", {"text": "x" * (STREAM_TEXT_MAX + 1)}
    )
    assert outcome == ("error", "text_too_long")
    outcome = await sim.call_capability(
        ann,
        chat,
        "messages.stream_stop",
        {"message_id": message_id, "text": "x" * (STREAM_TEXT_MAX + 1)},
    )
    assert outcome == ("error", "text_too_long")
    assert sim.stream(message_id) == {
        "text": "kept",
        "streaming": True,
        "appends": [],
        "stopped_by": None,
    }
    # Exactly up to the limit is fine.
    outcome = await sim.call_capability(
        ann, chat, "messages.stream_append", {"message_id": message_id, "text": too_long[1:]}
    )
    assert outcome == ("ok", {})
    assert len(sim.stream(message_id)["text"]) == STREAM_TEXT_MAX

    assert (await said(sim, ann, chat, f"/stream stop {message_id}")).startswith("stopped ")
    assert await said(sim, ann, chat, f"/stream append {message_id} x") == "error not_streaming"
    assert await said(sim, ann, chat, f"/stream stop {message_id}") == "error not_streaming"
    assert len(sim.messages(chat)) == 1  # refusals posted nothing


async def test_a_stream_left_idle_for_ten_minutes_is_stopped(world):
    sim, ann, chat = world
    message_id = await started(sim, ann, chat, "Hello")
    await sim.advance(minutes=9)
    assert await said(sim, ann, chat, f"/stream append {message_id} again") == "appended"
    await sim.advance(minutes=9)  # 9 minutes since it was last written: still open
    assert sim.stream(message_id)["streaming"] is True
    await sim.advance(minutes=1)
    assert sim.stream(message_id) == {
        "text": "Helloagain",
        "streaming": False,
        "appends": ["again"],
        "stopped_by": "idle",
    }
    assert await said(sim, ann, chat, f"/stream append {message_id} x") == "error not_streaming"


async def test_the_ai_simulation_writes_into_a_stream_and_hears_its_stop(world):
    """The hooks the ``ai`` simulation uses, as the host's runner uses ``host.streams``."""
    sim, ann, chat = world
    message_id = await started(sim, ann, chat)
    assert sim._streams_is_open(chat, message_id)
    assert not sim._streams_is_open(sim.conversation(members=[ann]), message_id)
    stopped: list[str] = []
    sim._streams_on_stop(message_id, stopped.append)
    sim._streams_append(message_id, "Sunny ")
    sim._streams_append(message_id, "today.")
    assert sim.messages(chat)[-1]["text"] == "Sunny today."
    assert not sim._streams_is_stopped(message_id)
    assert await said(sim, ann, chat, f"/stream stop {message_id}") == "stopped Sunny today."
    assert stopped == [message_id]
    assert sim._streams_is_stopped(message_id) and sim._streams_is_stopped("m-404")
    assert sim._streams_stop(message_id) is False
