"""An OpenAI-compatible model server for tests: ``POST /v1/chat/completions`` on loopback
(aiohttp, no network), answering from a script, recording everything it was sent. The host's
``ai`` capability talks to it with the real ``openai`` client, exactly as to OpenAI, Ollama or
vLLM; it is the only double the ``ai`` tests use.

Start it with the ``ai_stub`` fixture (import ``ai_stub_fixture`` into your test module) or
``async with AiStub() as stub:``, and point the platform at it::

    from tests.ai_stub import ai_stub_fixture  # noqa: F401  (the ai_stub fixture)

    @pytest.fixture
    def config(mongo_url, mongo_db_name, tmp_path, ai_stub):
        return make_config(mongo_url, mongo_db_name, tmp_path / "var", **ai_stub.settings())

``stub.settings(**more)`` gives ``ai_base_url`` (``stub.base_url``, ending in ``/v1``),
``ai_model`` (``"stub-model"``) and ``ai_api_key``; ``more`` overrides or adds (``ai_vision=True``,
``ai_app_tokens_per_day=…``).

**The script.** Each request takes the next step, first in first out; with none left it gets
``stub.default`` (a reply "ok"). The steps:

- ``stub.reply(content, *, tool_calls=(), chunk_size=8, delay=0.0, first_delay=0.0,
  fragment_size=8, interleave=False, usage=None, finish_reason=None, break_after=None)``: a
  streamed answer — ``content`` cut into ``data:`` chunks of ``chunk_size`` characters,
  ``first_delay`` seconds before the first and ``delay`` between the others; each tool call
  (``stub.tool_call(name, arguments, id=None)``; ``arguments`` a dict or JSON text) sent as
  fragments: the ``id`` and ``name`` in the first, the ``arguments`` text in pieces of
  ``fragment_size`` characters after it (``interleave=True``: the calls' fragments alternate,
  keyed by their ``index``, as parallel tool calls arrive); then a chunk with the
  ``finish_reason`` (default ``tool_calls`` when there are calls, else ``stop``), a final chunk
  with ``usage`` when the request asked for it (``stream_options.include_usage``; ``usage=None``
  counts characters / 4, a dict is sent as given, ``usage=False`` sends none), and ``data:
  [DONE]``. ``break_after=n`` cuts the connection after n chunks (a stream that breaks).
  Returns the ``Reply`` (a dataclass; change it before the request comes if you like).
- ``stub.slow(content="…", delay=0.5)``: a reply slow enough to be cancelled mid-way.
- ``stub.rate_limit(retry_after="1", *, times=1, header="retry-after")``: ``times`` answers
  429 with that header (``header="retry-after-ms"`` for OpenAI's millisecond one).
- ``stub.fail(status=500, *, times=1, message="…")``: ``times`` error answers with an OpenAI
  error body ``{"error": {"message", "type", "code"}}``.
- ``stub.clear()``: forget the steps not taken yet.

A request without ``"stream": true`` gets the same answer as one JSON ``chat.completion``.

**What it saw.** ``stub.requests``: every request's JSON body, in order (assert on what a model
was sent: privacy mode, images as data URLs, tool specs); ``stub.headers``: each request's
headers; ``stub.answers``: per request ``{status, chunks, first_chunk_ms, total_ms,
closed_early}`` — the stub's own timing (from the request's arrival to its first chunk and to
its end; the bench compares the host's timing with it), and whether the client went away before
the end (a cancelled answer's connection is closed: ``closed_early`` True); and
``received_at``, ``first_chunk_at``, ``done_at``, the ``time.monotonic()`` of those moments, for
a client in the same process to compare with its own clock. ``await
stub.wait_for_requests(n)`` and ``await stub.wait_closed_early(n)`` wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

MODEL = "stub-model"
API_KEY = "stub-key-not-secret"


@dataclass
class ToolCall:
    name: str
    arguments: str  # JSON text
    id: str


@dataclass
class Reply:
    """A streamed answer (see the module docstring for each field)."""

    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    chunk_size: int = 8
    delay: float = 0.0
    first_delay: float = 0.0
    fragment_size: int = 8
    interleave: bool = False
    usage: dict[str, int] | bool | None = None
    finish_reason: str | None = None
    break_after: int | None = None


@dataclass
class Status:
    """An error answer: HTTP ``status`` with ``headers`` and an OpenAI error body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = ""


class AiStub:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.answers: list[dict[str, Any]] = []
        self.default = "ok"
        self._script: deque[Reply | Status] = deque()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()
        self.base_url = ""

    # --- running --------------------------------------------------------------------------

    async def start(self) -> AiStub:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        # handler_cancellation: a client that goes away cancels its handler (closed_early).
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}/v1"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> AiStub:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def settings(self, **more: Any) -> dict[str, Any]:
        """Config overrides pointing the platform at this stub (``make_config(**…)``)."""
        return {"ai_base_url": self.base_url, "ai_model": MODEL, "ai_api_key": API_KEY, **more}

    # --- the script -----------------------------------------------------------------------

    @staticmethod
    def tool_call(name: str, arguments: dict[str, Any] | str, id: str | None = None) -> ToolCall:
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        return ToolCall(name, text, id or f"call_{name}_{abs(hash(text)) % 10**8}")

    def reply(self, content: str = "", **options: Any) -> Reply:
        options["tool_calls"] = list(options.get("tool_calls") or [])
        step = Reply(content, **options)
        self._script.append(step)
        return step

    def slow(self, content: str = "one two three four five six", delay: float = 0.5) -> Reply:
        return self.reply(content, chunk_size=4, delay=delay)

    def rate_limit(
        self, retry_after: str = "1", *, times: int = 1, header: str = "retry-after"
    ) -> None:
        for _ in range(times):
            self._script.append(Status(429, {header: retry_after}, "Rate limit reached"))

    def fail(self, status: int = 500, *, times: int = 1, message: str = "") -> None:
        for _ in range(times):
            self._script.append(Status(status, {}, message or f"the stub failed ({status})"))

    def clear(self) -> None:
        self._script.clear()

    # --- waiting --------------------------------------------------------------------------

    async def _until(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the AI stub: no {what} within {timeout}s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_for_requests(self, count: int = 1, timeout: float = 10.0) -> None:
        await self._until(lambda: len(self.requests) >= count, timeout, f"{count} requests")

    async def wait_closed_early(self, count: int = 1, timeout: float = 10.0) -> None:
        await self._until(
            lambda: sum(a["closed_early"] for a in self.answers) >= count,
            timeout,
            f"{count} connections closed by the client",
        )

    def _note(self) -> None:
        self._changed.set()

    # --- answering ------------------------------------------------------------------------

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        received = time.monotonic()
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        record: dict[str, Any] = {
            "status": 200,
            "chunks": 0,
            "first_chunk_ms": None,
            "total_ms": None,
            "closed_early": False,
            # time.monotonic() of each moment, to compare with a client in the same process
            "received_at": received,
            "first_chunk_at": None,
            "done_at": None,
        }
        self.answers.append(record)
        self._note()
        step = self._script.popleft() if self._script else Reply(self.default)
        if isinstance(step, Status):
            record["status"] = step.status
            record["total_ms"] = (time.monotonic() - received) * 1000
            error = {"message": step.message, "type": "stub_error", "code": str(step.status)}
            return web.json_response({"error": error}, status=step.status, headers=step.headers)
        chunks = self._chunks(step, body)
        if not body.get("stream"):
            return web.json_response(self._whole(step, body))
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        try:
            for index, chunk in enumerate(chunks):
                if step.break_after is not None and index >= step.break_after:
                    assert request.transport is not None
                    request.transport.close()  # the stream breaks off mid-answer
                    return response
                wait = step.first_delay if index == 0 else step.delay
                if wait:
                    await asyncio.sleep(wait)
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                record["chunks"] += 1
                if record["first_chunk_ms"] is None:
                    record["first_chunk_at"] = time.monotonic()
                    record["first_chunk_ms"] = (record["first_chunk_at"] - received) * 1000
            await response.write(b"data: [DONE]\n\n")
            record["done_at"] = time.monotonic()
            record["total_ms"] = (record["done_at"] - received) * 1000
            await response.write_eof()
        except (asyncio.CancelledError, ConnectionResetError):
            record["closed_early"] = True
            self._note()
            raise
        finally:
            self._note()
        return response

    def _base(self, body: dict[str, Any], stream_id: str) -> dict[str, Any]:
        return {
            "id": stream_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", MODEL),
        }

    def _usage(self, step: Reply, body: dict[str, Any]) -> dict[str, int]:
        if isinstance(step.usage, dict):
            return step.usage
        prompt = len(json.dumps(body.get("messages", []))) // 4 + 1
        written = len(step.content) + sum(len(c.name) + len(c.arguments) for c in step.tool_calls)
        completion = written // 4 + 1
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _chunks(self, step: Reply, body: dict[str, Any]) -> list[dict[str, Any]]:
        stream_id = f"chatcmpl-stub-{next(self._ids)}"

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return {**self._base(body, stream_id), "choices": [choice]}

        chunks = [chunk({"role": "assistant", "content": ""})]
        size = max(1, step.chunk_size)
        for start in range(0, len(step.content), size):
            chunks.append(chunk({"content": step.content[start : start + size]}))
        per_call: list[list[dict[str, Any]]] = []
        for index, call in enumerate(step.tool_calls):
            pieces = [
                {
                    "index": index,
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
            ]
            width = max(1, step.fragment_size)
            for start in range(0, len(call.arguments), width):
                piece = call.arguments[start : start + width]
                pieces.append({"index": index, "function": {"arguments": piece}})
            per_call.append(pieces)
        if step.interleave:
            order = [p for group in itertools.zip_longest(*per_call) for p in group if p]
        else:
            order = [p for pieces in per_call for p in pieces]
        chunks += [chunk({"tool_calls": [piece]}) for piece in order]
        finish = step.finish_reason or ("tool_calls" if step.tool_calls else "stop")
        chunks.append(chunk({}, finish))
        wants_usage = (body.get("stream_options") or {}).get("include_usage")
        if wants_usage and step.usage is not False:
            chunks.append(
                {**self._base(body, stream_id), "choices": [], "usage": self._usage(step, body)}
            )
        return chunks

    def _whole(self, step: Reply, body: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": step.content}
        if step.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in step.tool_calls
            ]
        finish = step.finish_reason or ("tool_calls" if step.tool_calls else "stop")
        answer = {
            **self._base(body, f"chatcmpl-stub-{next(self._ids)}"),
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        }
        if step.usage is not False:
            answer["usage"] = self._usage(step, body)
        return answer


@pytest.fixture(name="ai_stub")
async def ai_stub_fixture() -> AsyncIterator[AiStub]:
    """The ``ai_stub`` fixture: a running ``AiStub`` for the test (closed after it). Import
    this function (``ai_stub_fixture``) into a test module to have it; the tests then take
    ``ai_stub``."""
    async with AiStub() as stub:
        yield stub
