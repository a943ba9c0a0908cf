"""The simulator's ``ai`` (``sdk._sim_ai``): the ``asker`` test app (tests/miniapps/apps/asker),
offline — scripted answers delivered as the signed ``ai.completed``, streamed into a message, a
tool round, cancels (``ai.cancel``, a stop of the message, mid-answer), failures, budgets,
images, the running cap, no model until one is set; and the manifest rule that an app asking
the model accepts its answers. The same app against the real host: tests/miniapps/
test_ai_capability.py."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest

from sdk import App
from sdk.errors import ManifestError
from sdk.manifest import validate_manifest
from sdk.signing import verify_event
from sdk.simulator import TEST_SECRET, Simulator

ASKER = Path(__file__).resolve().parents[1] / "miniapps" / "apps" / "asker"


@pytest.fixture
def world():
    sim = Simulator(ASKER)
    ann, bea = sim.user("ann"), sim.user("bea")
    chat = sim.conversation(members=[ann, bea])
    return sim, ann, chat


def texts(sim: Simulator, chat) -> list[str]:
    return [m["text"] for m in sim.messages(chat) if m["type"] == "text"]


def outcome(sim: Simulator, chat, count: int = 1) -> str:
    return [t for t in texts(sim, chat) if t.startswith("ai ")][count - 1]


async def test_no_model_until_one_is_set(world):
    sim, ann, chat = world
    reply = await sim.command(ann, chat, "/ask hello?")
    assert reply["ephemeral"].startswith("refused ai_not_configured: ")
    assert "AI_BASE_URL=http://127.0.0.1:11434/v1 AI_MODEL=llama3.1" in reply["ephemeral"]
    assert sim.ai_requests == [] and await sim.ai_complete() == []


async def test_a_scripted_answer_arrives_as_a_signed_event(world):
    sim, ann, chat = world
    sim.ai_script("The capital of Portugal is Lisbon.")
    await sim.command(ann, chat, "/ask What is the capital of Portugal?")
    (request,) = sim.ai_requests
    assert texts(sim, chat) == [f"asked {request['request_id']}"]
    assert request["status"] == "running" and request["user_id"] == ann.id
    assert request["messages"] == [{"role": "user", "content": "What is the capital of Portugal?"}]
    assert request["body"] == {
        "model": "sim-model",
        "messages": [{"role": "user", "content": "What is the capital of Portugal?"}],
        "max_tokens": 1024,
    }
    (done,) = await sim.ai_complete()
    assert verify_event(TEST_SECRET, done)
    assert {k: v for k, v in done.items() if k != "signature"} == {
        "request_id": request["request_id"],
        "status": "completed",
        "message": {
            "role": "assistant",
            "content": "The capital of Portugal is Lisbon.",
            "tool_calls": [],
        },
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 8, "completion_tokens": 9},
        "stream_to": None,
        "timing": {"first_token_ms": 0, "total_ms": 0},
    }
    assert outcome(sim, chat) == (
        "ai completed: The capital of Portugal is Lisbon. | tools=[] | error=None | "
        "signed=True | stream=None"
    )
    assert sim.ai_requests[0]["status"] == "completed"
    day_key = [k for k in sim.ai_usage if k.startswith("app|asker|")]
    assert [sim.ai_usage[k] for k in day_key] == [17]


async def test_chunks_stream_into_the_message_which_stays_open(world):
    sim, ann, chat = world
    sim.ai_script({"content": ["Lisbon ", "is ", "sunny."]})
    await sim.command(ann, chat, "/stream Weather?")
    line = texts(sim, chat)[-1]
    request_id, _, message_id = line.removeprefix("streaming ").partition(" into ")
    (done,) = await sim.ai_complete()
    assert (done["request_id"], done["stream_to"]) == (request_id, message_id)
    assert sim.stream(message_id) == {
        "text": "Lisbon is sunny.",
        "streaming": True,
        "appends": ["Lisbon ", "is ", "sunny."],
        "stopped_by": None,
    }


async def test_a_tool_round(world):
    sim, ann, chat = world
    sim.ai_script(
        {"tool_calls": [{"name": "weather", "arguments": {"city": "Lisbon"}, "id": "c1"}]},
        "Sunny in Lisbon.",
    )
    await sim.command(ann, chat, "/tools Weather in Lisbon?")
    first, second = await sim.ai_complete()  # the second asked for by the first's handler
    assert first["finish_reason"] == "tool_calls"
    assert first["message"]["tool_calls"] == [
        {"id": "c1", "name": "weather", "arguments": '{"city": "Lisbon"}'}
    ]
    assert second["message"]["content"] == "Sunny in Lisbon."
    asked_again = sim.ai_requests[1]
    assert asked_again["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": first["message"]["tool_calls"]},
        {"role": "tool", "content": "sunny in Lisbon", "tool_call_id": "c1"},
    ]
    assert asked_again["body"]["tools"][0]["function"]["name"] == "weather"


async def test_cancels(world):
    sim, ann, chat = world
    sim.ai_script({"content": ["one ", "two"]}, {"content": ["a ", "b"]}, "c")
    # ai.cancel before the answer ran: cancelled, its stream stopped by the host.
    await sim.command(ann, chat, "/stream first")
    request_id, _, message_id = texts(sim, chat)[-1].removeprefix("streaming ").partition(" into ")
    await sim.command(ann, chat, f"/cancel {request_id}")
    assert texts(sim, chat)[-1] == f"cancel {request_id}: True"
    (done,) = await sim.ai_complete()
    assert (done["status"], done["message"]["content"], done["finish_reason"]) == (
        "cancelled",
        "",
        None,
    )
    assert sim.stream(message_id)["stopped_by"] == "host"
    await sim.command(ann, chat, f"/cancel {request_id}")
    assert texts(sim, chat)[-1] == f"cancel {request_id}: False"
    # The app stops the message: the answer running into it is cancelled.
    await sim.command(ann, chat, "/stream second")
    _, _, message_id = texts(sim, chat)[-1].removeprefix("streaming ").partition(" into ")
    await sim.command(ann, chat, f"/stop {message_id}")
    (done,) = await sim.ai_complete()
    assert done["status"] == "cancelled"
    assert sim.stream(message_id)["stopped_by"] == "app"
    # Cancelled mid-answer (cancel_after): what was written so far is kept.
    sim.ai_script({"content": ["x ", "y ", "z"], "cancel_after": 2})
    sim.ai_script("unused")
    await sim.command(ann, chat, "/stream third")  # takes "c" from the first script...
    await sim.ai_complete()
    await sim.command(ann, chat, "/stream fourth")  # ...this one the cancel_after answer
    _, _, message_id = texts(sim, chat)[-1].removeprefix("streaming ").partition(" into ")
    (done,) = await sim.ai_complete()
    assert (done["status"], done["message"]["content"]) == ("cancelled", "x y ")
    assert sim.stream(message_id) == {
        "text": "x y ",
        "streaming": False,
        "appends": ["x ", "y "],
        "stopped_by": "host",
    }


async def test_a_failed_answer_carries_its_code(world):
    sim, ann, chat = world
    sim.ai_script({"error": "model_rate_limited"})
    await sim.command(ann, chat, "/ask busy?")
    (done,) = await sim.ai_complete()
    assert done["status"] == "failed" and done["error"]["code"] == "model_rate_limited"
    assert "error=model_rate_limited" in outcome(sim, chat)


async def test_budgets(world):
    sim, ann, chat = world
    sim.ai_configure(user_tokens_per_hour=3000)
    sim.ai_script(
        {"content": "big", "usage": {"prompt_tokens": 1500, "completion_tokens": 400}},
        {"content": "small", "usage": {"prompt_tokens": 50, "completion_tokens": 50}},
    )
    await sim.command(ann, chat, "/ask one")
    await sim.ai_complete()
    reply = await sim.command(ann, chat, "/ask two")  # 1900 used + 1025 fits in 3000
    assert "ephemeral" not in reply
    await sim.ai_complete()
    reply = await sim.command(ann, chat, "/ask three")  # 2000 used + 1025 no longer
    assert reply["ephemeral"].startswith("refused ai_quota_exceeded: your hourly AI budget")
    assert "resets at " in reply["ephemeral"]
    assert len(sim.ai_requests) == 2
    # Another person in the same chat has their own hourly budget.
    bea = sim.user("bea")
    assert "ephemeral" not in await sim.command(bea, chat, "/ask mine")


async def test_images(world):
    sim, ann, chat = world
    sim.ai_script("Red.")
    reply = await sim.command(ann, chat, "/look what colour?")
    assert reply["ephemeral"].startswith("refused vision_unsupported: ")
    sim.ai_configure(vision=True)
    await sim.command(ann, chat, "/look what colour?")
    (request,) = sim.ai_requests
    text, image = request["body"]["messages"][0]["content"]
    assert text == {"type": "text", "text": "what colour?"}
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]).startswith(b"\x89PNG")
    (done,) = await sim.ai_complete()
    assert done["usage"]["prompt_tokens"] >= 800  # an image counts in the estimate


async def test_at_most_four_running_per_app_in_a_chat(world):
    sim, ann, chat = world
    sim.ai_configure()
    for n in range(4):
        assert "ephemeral" not in await sim.command(ann, chat, f"/ask {n}")
    reply = await sim.command(ann, chat, "/ask five")
    assert reply["ephemeral"].startswith("refused too_many_requests: ")
    other = sim.conversation(members=[ann])
    assert "ephemeral" not in await sim.command(ann, other, "/ask elsewhere")
    assert len(await sim.ai_complete()) == 5
    assert "ephemeral" not in await sim.command(ann, chat, "/ask room again")


def test_an_app_asking_the_model_accepts_its_answers():
    manifest = json.loads((ASKER / "manifest.json").read_text())
    validate_manifest(manifest)
    deaf = copy.deepcopy(manifest)
    deaf["events"]["accepts"] = []
    with pytest.raises(ManifestError, match=r"events.accepts: ai.chat's answers come as the"):
        validate_manifest(deaf)
    forger = copy.deepcopy(manifest)
    forger["events"]["emits"] = ["ai.completed"]
    with pytest.raises(ManifestError, match=r"ai\.\* events come only from the host"):
        validate_manifest(forger)
    # Without the permission nothing is required.
    plain = {"id": "plain", "name": "Plain", "version": "1.0.0"}
    assert validate_manifest(plain)["events"]["accepts"] == []


def test_ai_script_refuses_unknown_keys():
    app = App("tiny")
    sim = Simulator(app, manifest={"id": "tiny", "name": "Tiny", "version": "1.0.0"})
    with pytest.raises(ValueError, match="unknown keys"):
        sim.ai_script({"text": "hi"})


async def test_a_forged_ai_completed_does_not_verify(world):
    sim, ann, chat = world
    sim.ai_script("The real answer.")
    await sim.command(ann, chat, "/ask real?")
    (done,) = await sim.ai_complete()
    forged = {**done, "message": {**done["message"], "content": "Pay 100 to X."}}
    await sim.deliver_event("ai.completed", forged, user=ann, conversation=chat)
    assert outcome(sim, chat, 1).endswith("signed=True | stream=None")
    assert "Pay 100 to X. |" in outcome(sim, chat, 2)
    assert outcome(sim, chat, 2).endswith("signed=False | stream=None")
