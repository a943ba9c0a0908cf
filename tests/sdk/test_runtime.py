"""The runtime as a real subprocess: ``python -m sdk.runtime <app dir>`` speaking the protocol
over pipes, the test acting as the host."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class AppProcess:
    """A runtime child process and the host's side of its pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.next_id = 0

    @classmethod
    async def start(cls, app_dir: Path | str) -> AppProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sdk.runtime",
            str(app_dir),
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def send(self, message: dict) -> None:
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        await self.process.stdin.drain()

    async def request(self, method: str, params: dict | None = None) -> int:
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        return self.next_id

    async def receive(self) -> dict:
        line = await asyncio.wait_for(self.process.stdout.readline(), 10)
        assert line, "the runtime closed its stdout"
        message = json.loads(line)
        assert message["jsonrpc"] == "2.0"
        return message

    async def answer(self, request: dict, result: dict | None = None, error: dict | None = None):
        body = {"error": error} if error is not None else {"result": result or {}}
        await self.send({"jsonrpc": "2.0", "id": request["id"], **body})

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await asyncio.wait_for(self.process.wait(), 10)


def context(call_id: str = "c-1", user: str = "u-alice") -> dict:
    return {"call_id": call_id, "conversation_id": "conv-1", "user": {"id": user}, "locale": "en"}


@pytest.fixture
async def poll_process():
    process = await AppProcess.start("miniapps/poll")
    yield process
    await process.stop()


async def initialize(process: AppProcess, app_id: str = "poll") -> None:
    request_id = await process.request(
        "initialize", {"protocol": 1, "app_id": app_id, "manifest": {}}
    )
    assert await process.receive() == {
        "jsonrpc": "2.0",
        "id": request_id,
        "result": {"protocol": 1, "ready": True},
    }


async def test_initialize_command_capabilities_shutdown(poll_process):
    process = poll_process
    await initialize(process)
    ping_id = await process.request("ping")
    assert await process.receive() == {"jsonrpc": "2.0", "id": ping_id, "result": {}}

    command_id = await process.request(
        "command",
        {
            "command": "poll",
            "args": ["Lunch?", "pizza", "sushi"],
            "text": '"Lunch?" pizza sushi',
            "context": context(),
        },
    )
    # The poll goes into group state first (so a press that comes with the card finds it)...
    get = await process.receive()
    assert get["method"] == "group_state.get"
    assert isinstance(get["id"], str) and get["id"].startswith("a")
    assert get["params"]["call_id"] == "c-1"
    await process.answer(get, {"version": 4, "state": {}})
    first_set = await process.receive()
    assert first_set["method"] == "group_state.set"
    assert first_set["params"]["expected_version"] == 4
    # Someone else wrote in between: the app reads again and retries.
    await process.answer(
        first_set, error={"code": -32000, "message": "changed", "data": {"code": "conflict"}}
    )
    get = await process.receive()
    assert get["method"] == "group_state.get"
    await process.answer(get, {"version": 5, "state": {"polls": {}}})
    second_set = await process.receive()
    assert second_set["params"]["expected_version"] == 5
    (poll,) = second_set["params"]["state"]["polls"].values()
    assert poll["message_id"] is None and poll["creator"] == "u-alice"
    await process.answer(second_set, {"version": 6})
    # ...then the card, then the card's id is bound to the poll.
    send_card = await process.receive()
    assert send_card["method"] == "messages.send_card"
    assert send_card["params"]["card"]["title"] == "Lunch?"
    await process.answer(send_card, {"message_id": "m-1"})
    get = await process.receive()
    assert get["method"] == "group_state.get"
    await process.answer(get, {"version": 6, "state": second_set["params"]["state"]})
    bind = await process.receive()
    assert bind["method"] == "group_state.set"
    (poll,) = bind["params"]["state"]["polls"].values()
    assert poll["message_id"] == "m-1"
    assert len({first_set["id"], second_set["id"], get["id"], send_card["id"], bind["id"]}) == 5
    await process.answer(bind, {"version": 7})
    assert await process.receive() == {"jsonrpc": "2.0", "id": command_id, "result": {}}

    shutdown_id = await process.request("shutdown")
    assert await process.receive() == {"jsonrpc": "2.0", "id": shutdown_id, "result": {}}
    assert await asyncio.wait_for(process.process.wait(), 5) == 0


async def test_requests_are_handled_concurrently(poll_process):
    process = poll_process
    await initialize(process)
    first = await process.request(
        "command",
        {"command": "poll", "args": ["A?", "x", "y"], "text": "", "context": context("c-1")},
    )
    second = await process.request(
        "command",
        {"command": "poll", "args": ["B?", "x", "y"], "text": "", "context": context("c-2")},
    )
    # Both invocations are waiting on the host at once.
    calls = [await process.receive(), await process.receive()]
    assert {c["params"]["call_id"] for c in calls} == {"c-1", "c-2"}
    # Answer them in reverse order, then every later call, until both commands answer.
    pending = list(reversed(calls))
    answered = set()
    versions = iter(range(1, 100))
    while len(answered) < 2:
        for call in pending:
            if call["method"] == "messages.send_card":
                await process.answer(call, {"message_id": f"m-{call['params']['call_id']}"})
            elif call["method"] == "group_state.get":
                await process.answer(call, {"version": 0, "state": {}})
            else:
                await process.answer(call, {"version": next(versions)})
        message = await process.receive()
        if "method" in message:
            pending = [message]
        else:
            assert message["result"] == {}
            answered.add(message["id"])
            pending = []
    assert answered == {first, second}


async def test_errors_answered_by_the_app(poll_process):
    process = poll_process
    await initialize(process)
    bad = await process.request(
        "command",
        {"command": "poll", "args": ["Only a question?"], "text": "", "context": context()},
    )
    answer = await process.receive()
    assert (
        answer["id"] == bad and "question and at least 2 options" in (answer["result"]["ephemeral"])
    )
    await process.request("teleport", {})
    assert (await process.receive())["error"] == {
        "code": -32601,
        "message": "unknown method 'teleport'",
        "data": {"code": "unknown_method"},
    }
    no_handler = await process.request(
        "action", {"message_id": "m-1", "action_id": "dance", "context": context()}
    )
    answer = await process.receive()
    assert answer["id"] == no_handler
    assert answer["error"]["code"] == -32000 and answer["error"]["data"]["code"] == "not_found"
    missing_context = await process.request("command", {"command": "poll", "args": []})
    answer = await process.receive()
    assert answer["id"] == missing_context
    assert answer["error"]["data"]["code"] == "invalid_params"
    # A line that is not JSON is ignored (and logged), the process keeps serving.
    process.process.stdin.write(b"this is not json\n[1, 2]\n")
    ping = await process.request("ping")
    assert (await process.receive())["id"] == ping


async def test_stdin_closing_ends_the_process(poll_process):
    process = poll_process
    await initialize(process)
    process.process.stdin.close()
    assert await asyncio.wait_for(process.process.wait(), 5) == 0


BOOM_APP = """
from sdk import App

app = App("boom")
print("printed by the app, must not reach the protocol stream")


@app.command("boom")
async def boom(ctx):
    raise RuntimeError("secret detail")


@app.command("slow")
async def slow(ctx):
    import asyncio
    await asyncio.sleep(0.2)
    return {"text": "done"}
"""


async def test_a_crashing_handler_answers_internal_error_without_its_trace(tmp_path):
    folder = tmp_path / "boom"
    folder.mkdir()
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "id": "boom",
                "name": "Boom",
                "version": "0.0.1",
                "commands": [
                    {"name": "boom", "description": "fail"},
                    {"name": "slow", "description": "wait"},
                ],
            }
        )
    )
    (folder / "app.py").write_text(BOOM_APP)
    process = await AppProcess.start(folder)
    try:
        await initialize(process, "boom")
        request_id = await process.request(
            "command", {"command": "boom", "args": [], "text": "", "context": context()}
        )
        answer = await process.receive()
        assert answer["id"] == request_id
        assert answer["error"] == {
            "code": -32000,
            "message": "the app failed: RuntimeError",
            "data": {"code": "internal_error"},
        }
        # An in-flight request finishes before shutdown's exit.
        slow = await process.request(
            "command", {"command": "slow", "args": [], "text": "", "context": context("c-2")}
        )
        shutdown = await process.request("shutdown")
        answers = {(await process.receive())["id"], (await process.receive())["id"]}
        assert answers == {slow, shutdown}
        assert await asyncio.wait_for(process.process.wait(), 5) == 0
        stderr = (await asyncio.wait_for(process.process.stderr.read(), 10)).decode()
        assert "secret detail" in stderr and "Traceback" in stderr
        assert "printed by the app" in stderr
    finally:
        await process.stop()


async def test_a_bad_app_folder_does_not_start(tmp_path):
    folder = tmp_path / "Bad"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"id": "Bad", "name": "B", "version": "1"}))
    process = await AppProcess.start(folder)
    try:
        assert await asyncio.wait_for(process.process.wait(), 10) == 1
        assert b"id:" in await asyncio.wait_for(process.process.stderr.read(), 10)
    finally:
        await process.stop()
