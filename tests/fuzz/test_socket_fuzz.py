"""Property-based fuzzing of every client -> server Socket.IO event from its JSON Schema.

For each declared event (gateway/socket_events.py and gateway/call_events.py) a real Socket.IO
client emits payloads generated from the event's schema (Schemathesis' generators), the same with
real ids (a group, a message), schema-breaking ones (wrong types, missing and unknown
fields, out-of-range values) and garbage (non-objects, nulls, deep nesting, huge strings). Every ack
must be ``{"ok": true, ...}`` or ``{"ok": false, "error": {"code": str, "message": str}}``, never
``internal_error``, the socket stays connected, and nothing is logged at ERROR.

The gateway and the client run on this test's event loop; Hypothesis drives them from a worker
thread (``asyncio.to_thread``), each emit handed to the loop with ``run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core import NotSet

from gateway.socket_events import socket_api
from tests.fuzz.common import (
    FUZZ_EXAMPLES,
    FUZZ_TIMEOUT,
    ErrorLogWatcher,
    Tally,
    build_world,
    fuzz_config,
    fuzz_settings,
)
from tests.helpers import SocketClient

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(FUZZ_TIMEOUT)]

ACK_TIMEOUT = 30.0

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def nested(depth: int) -> list:
    return [nested(depth - 1)] if depth else []


HUGE = st.sampled_from(["x" * 200_000, "\U0001f600" * 50_000, "\x00" * 10_000])
# Not an object at all, or nonsense at the top level.
GARBAGE = (
    JSON_VALUES.filter(lambda v: not isinstance(v, dict))
    | HUGE
    | st.just(nested(60))
    | st.integers(min_value=2**63, max_value=2**80)
)


@pytest.fixture
def config(mongo_url, mongo_db_name, tmp_path):
    return fuzz_config(mongo_url, mongo_db_name, tmp_path)


def event_operations() -> dict[str, Any]:
    """Each event as a Schemathesis operation whose request body is the event's payload: its
    generators (valid payloads, and schema-breaking ones) then serve the socket too."""
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Aetherial Socket.IO events", "version": "1"},
        "paths": {
            f"/{name}": {
                "post": {
                    "operationId": name,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": spec.schema}},
                    },
                    "responses": {"200": {"description": "the ack"}},
                }
            }
            for name, spec in socket_api.events.items()
        },
    }
    schema = schemathesis.openapi.from_dict(document)
    return {op.path[1:]: op for op in (result.ok() for result in schema.get_all_operations())}


def payloads(operation, mode: GenerationMode):
    return operation.as_strategy(generation_mode=mode).map(
        lambda case: None if isinstance(case.body, NotSet) else case.body
    )


def with_real_ids(operation, ids: dict[str, str]):
    """A valid payload whose id fields name real things this person can see."""
    real = {"conversation_id": ids["group_id"], "message_id": ids["message_id"]}

    def aim(payload: Any) -> Any:
        if not isinstance(payload, dict):
            return payload
        return {**payload, **{k: v for k, v in real.items() if k in payload}}

    return payloads(operation, GenerationMode.POSITIVE).map(aim)


def check_ack(event: str, ack: Any) -> str | None:
    """The error code of the ack (None when ok); raises on a broken promise."""
    assert isinstance(ack, dict), f"{event}: the ack is not an object: {ack!r}"
    if ack.get("ok") is True:
        return None
    error = ack.get("error")
    assert ack.get("ok") is False and isinstance(error, dict), f"{event}: bad ack {ack!r}"
    assert isinstance(error.get("code"), str), f"{event}: bad ack {ack!r}"
    assert isinstance(error.get("message"), str), f"{event}: bad ack {ack!r}"
    assert error["code"] != "internal_error", f"{event}: {ack!r}"
    return error["code"]


async def test_every_socket_event_survives_fuzzing(gateway):
    world = await build_world(gateway)
    base_url = str(gateway.make_url("")).rstrip("/")
    socket = SocketClient()
    await socket.connect(base_url, world.tokens["me"])
    loop = asyncio.get_running_loop()
    events = dict(socket_api.events)
    operations = event_operations()
    assert {"message.send", "sync", "call.start", "call.ice"} <= set(events)

    def emit(event: str, payload: Any) -> Any:
        assert socket.sio.connected, f"the socket was disconnected before {event}"
        call = socket.sio.call(event, payload, timeout=ACK_TIMEOUT)
        return asyncio.run_coroutine_threadsafe(call, loop).result(ACK_TIMEOUT + 5)

    def fuzz_event(name: str, strategy, tally: Tally, problems: list[str], examples: int) -> None:
        @fuzz_settings(examples)
        @given(payload=strategy)
        def run(payload: Any) -> None:
            ack = emit(name, payload)
            tally.note(name, "ok" if ack.get("ok") is True else "error", check_ack(name, ack))

        try:
            run()
        except AssertionError as exc:
            problems.append(str(exc)[:2000])

    def fuzz_all(tally: Tally, problems: list[str]) -> None:
        for name in events:
            operation = operations[name]
            for strategy in (
                payloads(operation, GenerationMode.POSITIVE),
                with_real_ids(operation, world.ids),
                payloads(operation, GenerationMode.NEGATIVE),
                GARBAGE,
            ):
                fuzz_event(name, strategy, tally, problems, FUZZ_EXAMPLES)
        # Events nobody declared are answered too.
        names = st.text(min_size=1, max_size=40).filter(lambda n: n not in events)
        fuzz_event_names(names, tally, problems)

    def fuzz_event_names(names, tally: Tally, problems: list[str]) -> None:
        @fuzz_settings(FUZZ_EXAMPLES)
        @given(name=names, payload=JSON_VALUES)
        def run(name: str, payload: Any) -> None:
            ack = emit(name, payload)
            code = check_ack(name, ack)
            assert code == "unknown_event", ack
            tally.note("(undeclared)", "error", code)

        try:
            run()
        except AssertionError as exc:
            problems.append(str(exc)[:2000])

    tally, problems = Tally("Socket.IO events"), []
    try:
        with ErrorLogWatcher() as errors:
            await asyncio.to_thread(fuzz_all, tally, problems)
        assert socket.sio.connected
    finally:
        await socket.close()
        await world.close()
    print("\n" + tally.report())
    assert len(tally.targets) == len(events) + 1
    assert not problems, "\n\n".join(problems[:30])
    assert not errors.records, "\n\n".join(errors.describe()[:10])
