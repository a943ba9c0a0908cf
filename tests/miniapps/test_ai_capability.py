"""The ``ai`` capability through the platform: a real gateway, the ``asker`` test app
(tests/miniapps/apps/asker) in a real sandboxed process, real Socket.IO and HTTP clients, the
embedded MongoDB — and, as the model server, the OpenAI-compatible stub (tests/ai_stub.py)
driven by the host's real ``openai`` client. The app asks, the host answers a request id at
once and runs the completion in the background; what the model said reaches the app as the
signed event ``ai.completed``, which the app posts into the chat ("ai <status>: …").

Covered: streamed chunks assembled; the answer streamed into a chat message; tool-call deltas
arriving in fragments (two calls, interleaved) assembled into complete calls and a tool round;
429 with retry-after retried; 500 retried, then failed cleanly; a slow stream cancelled by
``ai.cancel``, by a stop of its message, by a cancel written from another node (the request
document) — the stub sees its connection closed; the budgets per app / conversation / user
(nothing sent to the stub); ``too_many_requests``; ``ai_not_configured``;
``vision_unsupported``; images sent as data URLs; usage recorded and read by an admin (and
refused to others). The runner's use of ``host.streams`` is also checked against a minimal fake
of that interface. Outcomes only, never timings (bench/ai_overhead.py measures those)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.keys import MINIAPPS
from miniapps.host.ai.client import Answer, _retry_after
from miniapps.host.host import MiniappHost
from miniapps.host.registry import discover
from sdk.errors import HostError
from storage.mongo import now_ms
from tests.ai_stub import AiStub, ai_stub_fixture  # noqa: F401  (the ai_stub fixture)
from tests.conftest import base_url, make_config, node_configs, start_nodes
from tests.helpers import eventually
from tests.media.media_helpers import jpeg, upload
from tests.messaging.chat_helpers import Person, close_all, group, people, person
from tests.miniapps.conftest import APPS_DIR
from tests.miniapps.test_capabilities import _world_readable

pytestmark = pytest.mark.timeout(90)

APP = "asker"
_ids = itertools.count(1)


@dataclass
class Chat:
    """A gateway with the asker app, and ann and bea in a group that has it."""

    host: MiniappHost
    base: str
    ann: Person
    bea: Person
    cid: str

    async def command(self, text: str, who: Person | None = None) -> None:
        who = who or self.ann
        ack = await who.socket.call(
            "message.send",
            {"conversation_id": self.cid, "client_msg_id": f"ai-{next(_ids)}", "text": text},
            timeout=10,
        )
        assert ack == {"ok": True, "routed_to": {"app_id": APP}}, ack

    def texts(self, prefix: str) -> list[str]:
        return [t for t in self.bea.texts(self.cid) if t.startswith(prefix)]

    async def text(self, prefix: str, count: int = 1, timeout: float = 15) -> str:
        """The ``count``-th text of the app starting with ``prefix`` (as bea received it)."""
        found = await eventually(
            lambda: self.texts(prefix)[count - 1 :], timeout, what=f"text {prefix!r} #{count}"
        )
        return found[0]

    async def asked(self, count: int = 1) -> str:
        """The request id of the ``count``-th "asked <id>"."""
        return (await self.text("asked ", count)).removeprefix("asked ")

    async def outcome(self, count: int = 1, timeout: float = 15) -> dict[str, Any]:
        """The ``count``-th ``ai.completed`` the app posted, parsed."""
        line = await self.text("ai ", count, timeout)
        head, tools, error, signed, stream = line.rsplit(" | ", 4)
        status, _, content = head.removeprefix("ai ").partition(": ")
        return {
            "status": status,
            "content": content,
            "tool_calls": json.loads(tools.removeprefix("tools=")),
            "error": error.removeprefix("error="),
            "signed": signed == "signed=True",
            "stream_to": stream.removeprefix("stream="),
        }

    async def refusal(self) -> str:
        """The app's private answer to a refused ``ai.chat``: "refused <code>: <message>"."""
        found = await eventually(
            lambda: [
                d["text"]
                for name, d in self.ann.socket.events
                if name == "miniapp.ephemeral" and str(d.get("text", "")).startswith("refused ")
            ],
            what="a refusal",
        )
        return found[-1]


async def open_chat(server) -> Chat:
    host = server.app[MINIAPPS]
    _world_readable(APPS_DIR)
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    host.apps[APP] = apps[APP]
    base = base_url(server)
    ann, bea = await people(base, 2)
    cid = await group(ann, [bea], "AI")
    status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
    assert status == 201, body
    return Chat(host, base, ann, bea, cid)


@pytest.fixture
async def make_chat(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    """``await make_chat(**settings)``: a gateway whose config has ``settings`` (the ``AI_*``
    ones: ``ai_stub.settings(...)``), with the asker app and a chat."""
    from gateway.app import create_app

    opened: list[Chat] = []

    async def make(**settings: Any) -> Chat:
        config = make_config(mongo_url, mongo_db_name, tmp_path / "var", **settings)
        chat = await open_chat(await aiohttp_server(create_app(config)))
        opened.append(chat)
        return chat

    try:
        yield make
    finally:
        await close_all([p for chat in opened for p in (chat.ann, chat.bea)])


def stream_events(who: Person, message_id: str) -> list[dict]:
    return [d for d in who.received("message.stream") if d["message_id"] == message_id]


def final_message(who: Person, message_id: str) -> list[dict]:
    return [
        d["message"]
        for d in who.received("message.updated")
        if d["message"]["id"] == message_id and d["message"].get("streaming") is False
    ]


# --- streamed answers ---------------------------------------------------------------------


async def test_streamed_chunks_are_assembled_into_the_answer(make_chat, ai_stub):
    chat = await make_chat(**ai_stub.settings())
    ai_stub.reply("The capital of Portugal is Lisbon.", chunk_size=3, delay=0.005)
    await chat.command("/ask What is the capital of Portugal?")
    request_id = await chat.asked()
    done = await chat.outcome()
    assert done == {
        "status": "completed",
        "content": "The capital of Portugal is Lisbon.",
        "tool_calls": [],
        "error": "None",
        "signed": True,  # signed with the app's own secret, like payment events
        "stream_to": "None",
    }
    # What the model server was sent: the app's message, streamed, usage asked for, our key.
    (sent,) = ai_stub.requests
    assert sent["model"] == "stub-model" and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == [{"role": "user", "content": "What is the capital of Portugal?"}]
    assert sent["max_tokens"] == 1024
    assert ai_stub.headers[0]["Authorization"] == "Bearer stub-key-not-secret"
    assert ai_stub.answers[0]["chunks"] > 10  # it really came in many pieces
    record = await chat.host.ai.requests.get_request(request_id)
    assert record["status"] == "completed" and record["error_code"] is None
    assert record["app_id"] == APP and record["conversation_id"] == chat.cid
    assert record["prompt_tokens"] > 0 and record["completion_tokens"] > 0


async def test_the_answer_streams_into_a_chat_message(make_chat, ai_stub):
    chat = await make_chat(**ai_stub.settings())
    answer = "Lisbon is sunny today, with a light breeze from the sea."
    ai_stub.reply(answer, chunk_size=5, delay=0.02)
    await chat.command("/stream How is Lisbon?")
    line = await chat.text("streaming ")
    request_id, _, message_id = line.removeprefix("streaming ").partition(" into ")
    done = await chat.outcome()
    assert (done["status"], done["content"], done["stream_to"]) == ("completed", answer, message_id)
    # Members saw it grow, ending at the whole answer; the runner does not stop the message.
    await eventually(
        lambda: any(e["text"] == answer for e in stream_events(chat.bea, message_id)),
        what="the whole answer streamed",
    )
    texts = [e["text"] for e in stream_events(chat.bea, message_id)]
    assert all(answer.startswith(t) for t in texts) and len(set(texts)) == len(texts)
    stored = await chat.host.messaging.db["messages"].find_one({"_id": message_id})
    assert stored["streaming"] is True and stored["text"] == answer
    await chat.command(f"/stop {message_id}")
    assert await chat.text("stopped: ") == f"stopped: {answer}"
    (final,) = await eventually(lambda: final_message(chat.bea, message_id), what="the stop")
    assert final["text"] == answer
    assert (await chat.host.ai.requests.get_request(request_id))["status"] == "completed"


async def test_tool_call_fragments_are_assembled_and_a_tool_round_completes(make_chat, ai_stub):
    chat = await make_chat(**ai_stub.settings())
    ai_stub.reply(
        "",
        tool_calls=[
            ai_stub.tool_call("weather", {"city": "Lisbon"}, id="call_lis"),
            ai_stub.tool_call("weather", {"city": "Porto"}, id="call_opo"),
        ],
        fragment_size=3,
        interleave=True,  # parallel calls: their fragments alternate, keyed by index
    )
    ai_stub.reply("Sunny in Lisbon and in Porto.")
    await chat.command("/tools Weather in Lisbon and Porto?")
    assert (await chat.text("tool round: ")).startswith("tool round: asked ")
    done = await chat.outcome()
    assert (done["status"], done["content"]) == ("completed", "Sunny in Lisbon and in Porto.")
    first, second = ai_stub.requests
    assert first["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "The weather in a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    # The second request carries the first answer's calls, whole, and the tool results.
    assistant, *results = second["messages"][1:]
    assert assistant == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_lis",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Lisbon"}'},
            },
            {
                "id": "call_opo",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Porto"}'},
            },
        ],
    }
    assert results == [
        {"role": "tool", "content": "sunny in Lisbon", "tool_call_id": "call_lis"},
        {"role": "tool", "content": "sunny in Porto", "tool_call_id": "call_opo"},
    ]


def test_answer_assembles_fragments_however_servers_send_them():
    """Fragments as OpenAI sends them, a name repeated in each (some local servers), a name
    cut in pieces, a call without an id, content and usage."""

    class Obj:
        def __init__(self, **kw: Any) -> None:
            self.__dict__.update(kw)

    def chunk(*, content=None, calls=None, finish=None, usage=None, choices=True) -> Obj:
        delta = Obj(content=content, tool_calls=calls)
        choice = Obj(index=0, delta=delta, finish_reason=finish)
        return Obj(choices=[choice] if choices else [], usage=usage)

    def call(index, id=None, name=None, arguments=None) -> Obj:
        return Obj(index=index, id=id, function=Obj(name=name, arguments=arguments))

    answer = Answer()
    for piece in (
        chunk(content="Let me "),
        chunk(content="check."),
        chunk(calls=[call(0, "c0", "price", "")]),
        chunk(calls=[call(1, None, "wea", '{"ci')]),
        chunk(calls=[call(0, None, "price", '{"sym')]),
        chunk(calls=[call(1, None, "ther", 'ty": "Oslo"}')]),
        chunk(calls=[call(0, None, None, 'bol": "BTC"}')]),
        chunk(finish="tool_calls"),
        chunk(usage=Obj(prompt_tokens=12, completion_tokens=7), choices=False),
    ):
        answer.feed(piece)
    assert answer.content == "Let me check."
    assert answer.tool_calls() == [
        {"id": "c0", "name": "price", "arguments": '{"symbol": "BTC"}'},
        {"id": "call_1", "name": "weather", "arguments": '{"city": "Oslo"}'},
    ]
    assert answer.finish_reason == "tool_calls"
    assert answer.usage == {"prompt_tokens": 12, "completion_tokens": 7}


def test_retry_after_is_read_as_the_server_says_it():
    assert _retry_after({"retry-after": "2"}) == 2.0
    assert _retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert _retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # past
    assert _retry_after({"retry-after": "soon"}) is None
    assert _retry_after({}) is None


# --- retries and failures -----------------------------------------------------------------


async def test_a_429_with_retry_after_is_retried_and_the_answer_completes(make_chat, ai_stub):
    chat = await make_chat(**ai_stub.settings())
    ai_stub.rate_limit("1")
    ai_stub.reply("Worth the wait.")
    await chat.command("/ask again?")
    done = await chat.outcome()
    assert (done["status"], done["content"]) == ("completed", "Worth the wait.")
    assert [a["status"] for a in ai_stub.answers] == [429, 200]
    assert len(ai_stub.requests) == 2 and ai_stub.requests[0] == ai_stub.requests[1]


async def test_a_500_is_retried_then_fails_cleanly(make_chat, ai_stub):
    chat = await make_chat(**ai_stub.settings())
    ai_stub.fail(500, times=3)
    await chat.command("/ask anything?")
    request_id = await chat.asked()
    done = await chat.outcome()
    assert (done["status"], done["content"], done["error"]) == ("failed", "", "model_error")
    assert [a["status"] for a in ai_stub.answers] == [500, 500, 500]  # three tries in all
    record = await chat.host.ai.requests.get_request(request_id)
    assert (record["status"], record["error_code"]) == ("failed", "model_error")
    # A model that refuses (4xx other than 429) is not retried.
    ai_stub.fail(404, message="model 'stub-model' not found")
    await chat.command("/ask still there?")
    done = await chat.outcome(2)
    assert (done["status"], done["error"]) == ("failed", "model_refused")
    assert len(ai_stub.requests) == 4
    # After failures the next answer works (nothing stuck as running).
    ai_stub.reply("Back.")
    await chat.command("/ask back?")
    assert (await chat.outcome(3))["content"] == "Back."


async def test_a_stream_that_breaks_midway_fails_without_a_retry(make_chat, ai_stub):
    chat = await make_chat(**ai_stub.settings())
    ai_stub.reply("This answer will not finish in one piece.", chunk_size=4, break_after=4)
    await chat.command("/ask break?")
    done = await chat.outcome()
    assert done["status"] == "failed" and done["error"] == "model_error"
    assert done["content"] and "This answer".startswith(done["content"][:11])
    assert len(ai_stub.requests) == 1  # text may already be in a chat: never asked twice


# --- cancels ------------------------------------------------------------------------------


async def test_a_slow_stream_is_cancelled_by_ai_cancel(make_chat, ai_stub):
    chat = await make_chat(**ai_stub.settings())
    ai_stub.slow("one two three four five six seven eight nine ten", delay=0.3)
    await chat.command("/stream count slowly")
    line = await chat.text("streaming ")
    request_id, _, message_id = line.removeprefix("streaming ").partition(" into ")
    await eventually(lambda: stream_events(chat.bea, message_id), what="the first words")
    await chat.command(f"/cancel {request_id}")
    assert await chat.text("cancel ") == f"cancel {request_id}: True"
    done = await chat.outcome()
    assert done["status"] == "cancelled" and done["stream_to"] == message_id
    assert "one two three four five six seven eight nine ten".startswith(done["content"])
    assert done["content"] != "one two three four five six seven eight nine ten"
    await ai_stub.wait_closed_early(1)  # the model's connection was closed
    # The message was stopped, keeping what was written.
    (final,) = await eventually(lambda: final_message(chat.bea, message_id), what="the stop")
    assert final["text"] == done["content"]
    assert (await chat.host.ai.requests.get_request(request_id))["status"] == "cancelled"
    # A second cancel, and one of a request that is not there: False.
    await chat.command(f"/cancel {request_id}")
    await chat.command("/cancel 0123456789abcdef01234567")
    assert await chat.text("cancel ", 2) == f"cancel {request_id}: False"
    assert await chat.text("cancel ", 3) == "cancel 0123456789abcdef01234567: False"


async def test_stopping_the_message_cancels_the_answer(make_chat, ai_stub):
    chat = await make_chat(**ai_stub.settings())
    ai_stub.slow("alpha beta gamma delta epsilon zeta eta theta", delay=0.3)
    await chat.command("/stream greek")
    line = await chat.text("streaming ")
    request_id, _, message_id = line.removeprefix("streaming ").partition(" into ")
    await eventually(lambda: stream_events(chat.bea, message_id), what="the first words")
    await chat.command(f"/stop {message_id}")
    stopped = (await chat.text("stopped: ")).removeprefix("stopped: ")
    done = await chat.outcome()
    assert done["status"] == "cancelled"
    assert done["content"].startswith(stopped) or stopped.startswith(done["content"])
    await ai_stub.wait_closed_early(1)
    (final,) = final_message(chat.bea, message_id)
    assert final["text"] == stopped  # what the stop kept; the runner wrote nothing after it
    assert (await chat.host.ai.requests.get_request(request_id))["status"] == "cancelled"


async def test_a_cancel_written_by_another_node_is_seen_by_the_runner(make_chat, ai_stub):
    """``ai.cancel`` reaching another node sets ``cancel: true`` on the request's document;
    the runner (here) reads it within its poll — without any signal of this node."""
    chat = await make_chat(**ai_stub.settings())
    ai_stub.slow("slow words for a cancel from afar", delay=0.3)
    await chat.command("/ask slowly")
    request_id = await chat.asked()
    await ai_stub.wait_for_requests(1)
    assert await chat.host.ai.requests.set_cancel(request_id, APP)  # what the other node does
    done = await chat.outcome()
    assert done["status"] == "cancelled"
    await ai_stub.wait_closed_early(1)
    assert not await chat.host.ai.requests.set_cancel(request_id, APP)  # over: nothing to cancel


@pytest.mark.xdist_group("heavy")  # two nodes, a sandboxed app each
async def test_ai_cancel_on_the_other_node_cancels(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path, ai_stub
):
    configs = node_configs(mongo_url, mongo_db_name, tmp_path, redis_url, **ai_stub.settings())
    servers = await start_nodes(aiohttp_server, configs)
    _world_readable(APPS_DIR)
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    for server in servers:
        server.app[MINIAPPS].apps[APP] = apps[APP]
    ann = await person(base_url(servers[0]))
    bea = await person(base_url(servers[1]))
    try:
        cid = await group(ann, [bea], "Two nodes")
        status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
        assert status == 201, body
        chat = Chat(servers[0].app[MINIAPPS], base_url(servers[0]), ann, bea, cid)
        ai_stub.slow("a long answer written on node A only", delay=0.3)
        await chat.command("/ask on node A")  # ann's command: the runner is on node A
        request_id = await chat.asked()
        await ai_stub.wait_for_requests(1)
        await chat.command(f"/cancel {request_id}", who=bea)  # bea's: node B answers ai.cancel
        assert await chat.text("cancel ") == f"cancel {request_id}: True"
        assert (await chat.outcome())["status"] == "cancelled"
        await ai_stub.wait_closed_early(1)
        assert servers[1].app[MINIAPPS].ai.runner.running == 0  # node B ran nothing
    finally:
        await close_all([ann, bea])


# --- refusals: nothing is sent to the model -----------------------------------------------


async def test_not_configured_says_how_to_configure(make_chat, ai_stub):
    chat = await make_chat()  # no AI_BASE_URL, no AI_MODEL
    await chat.command("/ask hello?")
    refusal = await chat.refusal()
    assert refusal.startswith("refused ai_not_configured: ")
    assert "AI_BASE_URL=http://127.0.0.1:11434/v1 AI_MODEL=llama3.1" in refusal
    assert await chat.host.ai.requests.collection.count_documents({}) == 0


async def test_images_need_a_model_that_takes_them(make_chat, ai_stub):
    chat = await make_chat(**ai_stub.settings())  # AI_VISION off (the default)
    await chat.command("/look what colour is this?")
    assert (await chat.refusal()).startswith("refused vision_unsupported: ")
    assert ai_stub.requests == []


async def test_images_are_sent_as_data_urls_when_the_model_takes_them(make_chat, ai_stub):
    chat = await make_chat(**ai_stub.settings(ai_vision=True))
    ai_stub.reply("A small red rectangle.")
    await chat.command("/look what colour is this?")
    assert (await chat.outcome())["content"] == "A small red rectangle."
    ((message,),) = [sent["messages"] for sent in ai_stub.requests]
    text, image = message["content"]
    assert text == {"type": "text", "text": "what colour is this?"}
    url = image["image_url"]["url"]
    assert image["type"] == "image_url" and url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")


async def test_a_photo_of_this_chat_is_sent_and_any_other_is_not_found(make_chat, ai_stub):
    """A person's photo shared in this chat may go to the model; the same photo asked for from
    another chat, an id nobody has, or a malformed one may not — and nothing is sent."""
    chat = await make_chat(**ai_stub.settings(ai_vision=True))
    host = chat.host
    status, body = await upload(chat.bea.api, jpeg(64, 48))
    assert status == 201, body
    photo = body["media"]["id"]
    ack = await chat.bea.socket.call(
        "message.send",
        {"conversation_id": chat.cid, "client_msg_id": "photo", "type": "image",
         "media_ids": [photo], "text": "look"},
    )  # fmt: skip
    assert ack["ok"], ack
    elsewhere = await group(chat.ann, [], "Elsewhere")
    status, body = await chat.ann.api.post(
        f"/api/v1/conversations/{elsewhere}/apps", json={"app_id": APP}
    )
    assert status == 201, body

    async def ask(conversation_id: str, media_id: str) -> Any:
        call_id = await host.calls.open(
            APP, chat.ann.user_id, "u-ann", conversation_id, 0, remote=False
        )
        content = [{"type": "text", "text": "what is it?"}, {"type": "image", "media_id": media_id}]
        params = {"call_id": call_id, "messages": [{"role": "user", "content": content}]}
        try:
            return await host.serve(APP, "ai.chat", params)
        except HostError as exc:
            return exc.code
        finally:
            await host.calls.close(call_id, remote=False)

    assert await ask(elsewhere, photo) == "not_found"
    assert await ask(chat.cid, "0123456789abcdef01234567") == "not_found"
    assert await ask(chat.cid, "../../etc/passwd") == "invalid_params"
    assert ai_stub.requests == []
    ai_stub.reply("A red photo.")
    assert "request_id" in await ask(chat.cid, photo)
    await ai_stub.wait_for_requests(1)
    url = ai_stub.requests[0]["messages"][0]["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(url.split(",", 1)[1]).startswith(b"\xff\xd8\xff")


@pytest.mark.parametrize(
    ("budget", "kind", "what"),
    [
        ("ai_app_tokens_per_day", "app", "this app's daily AI budget"),
        ("ai_conversation_tokens_per_day", "conversation", "this conversation's daily AI budget"),
        ("ai_user_tokens_per_hour", "user", "your hourly AI budget"),
    ],
)
async def test_each_budget_refuses_once_used_up(make_chat, ai_stub, budget, kind, what):
    chat = await make_chat(**ai_stub.settings(**{budget: 5000}))
    ai_stub.reply("Within budget.", usage={"prompt_tokens": 3000, "completion_tokens": 500})
    await chat.command("/ask one?")
    assert (await chat.outcome())["content"] == "Within budget."
    # 3500 used: the next request may take 1024 + its prompt (1025), which still fits...
    ai_stub.reply("Just.", usage={"prompt_tokens": 400, "completion_tokens": 100})
    await chat.command("/ask two?")
    assert (await chat.outcome(2))["content"] == "Just."
    # ...4000 used: this one no more (4000 + 1025 > 5000): refused, the stub hears nothing.
    sent = len(ai_stub.requests)
    await chat.command("/ask three?")
    refusal = await chat.refusal()
    assert refusal.startswith(f"refused ai_quota_exceeded: {what}"), refusal
    assert "resets at " in refusal
    assert len(ai_stub.requests) == sent
    # The counters: what the server reported, per app / conversation / user.
    key = {"app": APP, "conversation": chat.cid, "user": chat.ann.user_id}[kind]
    docs = await chat.host.ai.usage.collection.find({"kind": kind, "key": key}).to_list()
    assert sum(d["total_tokens"] for d in docs) == 4000 and sum(d["requests"] for d in docs) == 2


async def test_at_most_four_answers_run_per_app_in_a_chat(make_chat, ai_stub):
    chat = await make_chat(**ai_stub.settings())
    for _ in range(4):
        ai_stub.slow("slow slow slow slow", delay=0.4)
    for n in range(1, 5):
        await chat.command(f"/ask slow {n}")
        await chat.asked(n)
    await chat.command("/ask a fifth")
    assert (await chat.refusal()).startswith("refused too_many_requests: ")
    for n in range(1, 5):
        await chat.command(f"/cancel {await chat.asked(n)}")
    for n in range(1, 5):
        assert (await chat.outcome(n))["status"] == "cancelled"
    await chat.command("/ask now there is room")
    assert (await chat.outcome(5))["status"] == "completed"


# --- usage, for administrators ------------------------------------------------------------


async def test_usage_is_recorded_and_read_by_admins_only(make_chat, ai_stub):
    chat = await make_chat(**ai_stub.settings())
    ai_stub.reply("Counted.", usage={"prompt_tokens": 40, "completion_tokens": 2})
    await chat.command("/ask count me")
    assert (await chat.outcome())["content"] == "Counted."
    status, body = await chat.bea.api.get("/api/v1/admin/ai/usage")
    assert (status, body["error"]["code"]) == (403, "not_admin")
    await chat.host.messaging.db["users"].update_one(
        {"_id": chat.bea.user_id}, {"$set": {"role": "admin"}}
    )
    status, usage = await chat.bea.api.get("/api/v1/admin/ai/usage")
    assert status == 200, usage
    row = {"prompt_tokens": 40, "completion_tokens": 2, "total_tokens": 42, "requests": 1}
    assert usage["configured"] is True and usage["model"] == "stub-model"
    assert usage["apps"] == [{"app_id": APP, **row}]
    assert usage["conversations"] == [{"conversation_id": chat.cid, **row}]
    assert usage["users"] == [{"user_id": chat.ann.user_id, **row}]
    assert usage["totals"] == row
    assert usage["budgets"] == {
        "app_tokens_per_day": 200_000,
        "conversation_tokens_per_day": 50_000,
        "user_tokens_per_hour": 20_000,
    }
    status, same = await chat.bea.api.get(f"/api/v1/admin/ai/usage?day={usage['day']}")
    assert (status, same) == (200, usage)
    status, other = await chat.bea.api.get("/api/v1/admin/ai/usage?day=2001-01-01")
    assert status == 200 and other["apps"] == [] and other["totals"]["total_tokens"] == 0
    for bad in ("2025-02-30", "yesterday", "2025-1-1"):
        status, refused = await chat.bea.api.get(f"/api/v1/admin/ai/usage?day={bad}")
        assert (status, refused["error"]["code"]) == (400, "invalid_field"), bad


# --- the runner against host.streams: a minimal fake of that interface ---------------------


class FakeStreams:
    """``host.streams`` as the runner uses it (design section B): ``is_open``, ``append``,
    ``is_stopped``, ``stop``, ``on_stop``."""

    def __init__(self) -> None:
        self.appended: list[str] = []
        self.stopped = False
        self.stops: list[str] = []
        self.callbacks: list[Any] = []

    async def is_open(self, app_id: str, conversation_id: str, message_id: str) -> bool:
        return message_id == "m-stream" and not self.stopped

    async def append(self, message_id: str, delta: str) -> None:
        if self.stopped:
            from storage.errors import AppError

            raise AppError("not_streaming", "stopped")
        self.appended.append(delta)

    async def is_stopped(self, message_id: str) -> bool:
        return self.stopped

    async def stop(self, message_id: str, text: str | None = None) -> bool:
        self.stops.append(message_id)
        self.stopped = True
        return True

    def on_stop(self, message_id: str, callback) -> None:
        self.callbacks.append(callback)


async def test_the_runner_uses_the_streams_interface(make_chat, ai_stub):
    chat = await make_chat(**ai_stub.settings())
    real, fake = chat.host.streams, FakeStreams()
    chat.host.streams = fake
    try:
        await check_the_runner_against(chat, fake, ai_stub)
    finally:
        chat.host.streams = real


async def check_the_runner_against(chat: Chat, fake: FakeStreams, ai_stub: AiStub) -> None:
    host = chat.host

    async def ask(**more: Any) -> str:
        call_id = await host.calls.open(APP, chat.ann.user_id, "u-ann", chat.cid, 0, remote=False)
        try:
            params = {"call_id": call_id, "messages": [{"role": "user", "content": "go"}], **more}
            return (await host.serve(APP, "ai.chat", params))["request_id"]
        finally:
            await host.calls.close(call_id, remote=False)

    async def status(request_id: str) -> str:
        async def ended() -> str | None:
            doc = await host.ai.requests.get_request(request_id)
            return doc["status"] if doc["status"] != "running" else None

        return await eventually(ended, what="the request's end")

    # Deltas appended in order; the stream is left open after a completed answer.
    ai_stub.reply("Streamed to the fake.", chunk_size=4)
    assert await status(await ask(stream_to="m-stream")) == "completed"
    assert "".join(fake.appended) == "Streamed to the fake." and len(fake.appended) > 3
    assert fake.stops == [] and len(fake.callbacks) == 1
    # An unknown stream: stream_not_found, nothing sent.
    sent = len(ai_stub.requests)
    with pytest.raises(Exception) as refused:
        await ask(stream_to="m-other")
    assert refused.value.code == "stream_not_found" and len(ai_stub.requests) == sent
    # ai.cancel stops the stream (keeping its text); a stop of the stream cancels.
    ai_stub.slow("words words words words words", delay=0.3)
    request_id = await ask(stream_to="m-stream")
    await ai_stub.wait_for_requests(sent + 1)
    call_id = await host.calls.open(APP, chat.ann.user_id, "u-ann", chat.cid, 0, remote=False)
    try:
        cancel = {"call_id": call_id, "request_id": request_id}
        assert await host.serve(APP, "ai.cancel", cancel) == {"cancelled": True}
    finally:
        await host.calls.close(call_id, remote=False)
    assert await status(request_id) == "cancelled"
    assert fake.stops == ["m-stream"]
    fake.stopped = False
    ai_stub.slow("more words more words more words", delay=0.3)
    request_id = await ask(stream_to="m-stream")
    await ai_stub.wait_for_requests(sent + 2)
    fake.stopped = True  # stopped elsewhere: seen by is_stopped at the next poll
    assert await status(request_id) == "cancelled"
    assert fake.stops == ["m-stream"]  # the runner does not stop it again
    await ai_stub.wait_closed_early(2)


async def test_estimates_stand_in_for_a_missing_usage(make_chat, ai_stub):
    chat = await make_chat(**ai_stub.settings())
    ai_stub.reply("x" * 40, usage=False)  # a server that reports no usage
    await chat.command("/ask " + "y" * 400)
    request_id = await chat.asked()
    await chat.outcome()
    record = await chat.host.ai.requests.get_request(request_id)
    assert record["completion_tokens"] == 10  # 40 characters / 4
    assert record["prompt_tokens"] == 100  # the 400 characters of the question / 4
    assert now_ms() - record["created_at"] < 60_000


async def test_the_stub_runs_alone():
    """The stub outside the fixture (``async with``), as the bench uses it."""
    async with AiStub() as stub:
        assert stub.base_url.startswith("http://127.0.0.1:") and stub.base_url.endswith("/v1")
    await asyncio.sleep(0)
