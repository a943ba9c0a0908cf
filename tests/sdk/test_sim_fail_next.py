"""``sim.fail_next``: a test makes the next calls of a capability fail with a host error, to
exercise an app's retry path; the calls after those succeed as usual."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdk.simulator import Simulator

KEEPER = Path(__file__).resolve().parents[1] / "miniapps" / "apps" / "keeper"


async def test_the_next_calls_fail_with_the_code_then_calls_succeed():
    sim = Simulator(KEEPER)
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    params = {"collection": "notes", "key": "k", "value": {"n": 1}}
    sim.fail_next("storage.put", "conflict", times=2)
    assert await sim.call_capability(ann, chat, "storage.put", params) == ("error", "conflict")
    assert await sim.call_capability(ann, chat, "storage.put", params) == ("error", "conflict")
    assert sim.storage("notes") == {}  # nothing written by a failed call
    status, _ = await sim.call_capability(ann, chat, "storage.put", params)
    assert status == "ok"
    assert sim.storage("notes") == {"k": {"n": 1}}
    assert [c.get("error") for c in sim.calls] == ["conflict", "conflict", None]


async def test_the_checks_come_first():
    sim = Simulator(KEEPER)
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    sim.fail_next("storage.put", "unavailable")
    bad = {"collection": "no spaces allowed", "key": "k", "value": {}}
    assert await sim.call_capability(ann, chat, "storage.put", bad) == ("error", "invalid_params")
    good = {"collection": "notes", "key": "k", "value": {}}
    assert await sim.call_capability(ann, chat, "storage.put", good) == ("error", "unavailable")


@pytest.mark.parametrize("times", [0, -1])
async def test_no_failure_is_queued_for_zero_times(times):
    sim = Simulator(KEEPER)
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    sim.fail_next("storage.put", "unavailable", times=times)
    params = {"collection": "notes", "key": "k", "value": {}}
    assert (await sim.call_capability(ann, chat, "storage.put", params))[0] == "ok"
