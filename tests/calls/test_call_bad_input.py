"""Every call event refuses bad payloads with a clear error and changes nothing."""

from __future__ import annotations

import pytest
from pymongo import AsyncMongoClient

from gateway.socket_events import socket_api
from tests.calls.call_helpers import start_call
from tests.messaging.chat_helpers import close_all, direct, people

CALL_EVENTS = sorted(name for name in socket_api.events if name.startswith("call."))
UNKNOWN = "0" * 24


def valid_payload(event: str, call_id: str, conversation_id: str) -> dict:
    return {
        "call.start": {"conversation_id": conversation_id, "media": "audio"},
        "call.offer": {"call_id": call_id, "sdp": "v=0\r\n"},
        "call.answer": {"call_id": call_id, "sdp": "v=0\r\n"},
        "call.ice": {"call_id": call_id, "candidate": {"candidate": ""}},
        "call.media_state": {"call_id": call_id, "audio": True, "video": False},
    }.get(event, {"call_id": call_id})


def bad_cases(event: str, valid: dict) -> list[tuple[object, str, str | None]]:
    first = next(iter(valid))
    cases: list[tuple[object, str, str | None]] = [
        (None, "wrong_type", ""),
        ([], "wrong_type", ""),
        ("call", "wrong_type", ""),
        ({}, "missing_field", first),
        ({**valid, "callId": "x"}, "unknown_field", "callId"),
        ({**valid, first: 7}, "wrong_type", first),
        ({**valid, first: ""}, "invalid_field", first),
        ({**valid, first: "x" * 65}, "invalid_field", first),
    ]
    if event == "call.start":
        cases.append(({**valid, "media": "screen"}, "invalid_field", "media"))
    else:
        cases.append(({**valid, "call_id": UNKNOWN}, "call_not_found", None))
    if event in {"call.offer", "call.answer"}:
        cases.append(({**valid, "sdp": ""}, "invalid_field", "sdp"))
        cases.append(({**valid, "sdp": "v" * (64 * 1024 + 1)}, "invalid_field", "sdp"))
    if event == "call.ice":
        cases.append(({**valid, "candidate": "x"}, "wrong_type", "candidate"))
        cases.append(({**valid, "candidate": {}}, "missing_field", "candidate.candidate"))
    if event == "call.media_state":
        cases.append(({**valid, "audio": "yes"}, "wrong_type", "audio"))
    return cases


async def snapshot(mongo_url: str, db_name: str) -> dict:
    client = AsyncMongoClient(mongo_url)
    try:
        db = client[db_name]
        # heartbeat_at is the hosting node's liveness, moved every second: not a change.
        return {
            name: sorted(
                str({k: v for k, v in doc.items() if k != "heartbeat_at"})
                for doc in await db[name].find().to_list(None)
            )
            for name in ("calls", "active_calls", "call_participants", "call_seats", "messages")
        }
    finally:
        await client.close()


@pytest.mark.parametrize("event", CALL_EVENTS)
async def test_bad_call_payloads_are_refused_and_change_nothing(
    gateway, mongo_url, mongo_db_name, event
):
    alice, bob = await people(str(gateway.make_url("")).rstrip("/"), 2)
    try:
        cid = await direct(alice, bob)
        call_id = await start_call(alice, cid)
        valid = valid_payload(event, call_id, cid)
        before = await snapshot(mongo_url, mongo_db_name)
        problems = []
        for payload, code, field in bad_cases(event, valid):
            ack = await alice.socket.call(event, payload)
            error = ack.get("error") if isinstance(ack, dict) else None
            if (
                not error
                or error["code"] != code
                or (field is not None and (error.get("details") or {}).get("field") != field)
                or not error.get("message")
            ):
                problems.append(f"{payload!r:.80}: expected {code}/{field}, got {ack}")
        assert not problems, "\n".join(problems)
        assert await snapshot(mongo_url, mongo_db_name) == before
    finally:
        await close_all([alice, bob])


def test_every_call_event_is_covered():
    assert set(CALL_EVENTS) == {
        "call.start",
        "call.accept",
        "call.decline",
        "call.leave",
        "call.end",
        "call.offer",
        "call.answer",
        "call.ice",
        "call.media_state",
    }
