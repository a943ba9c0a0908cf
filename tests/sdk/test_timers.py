"""Timers in the simulator: ``ctx.schedule``/``ctx.cancel_schedule``, ``@app.timer``, and the
clock (``sim.now``, ``sim.advance``) — with the timekeeper test app."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from sdk import App
from sdk._capability_services import TIMER_MAX_AHEAD_MS, TIMER_PAYLOAD_MAX_BYTES, TIMERS_PENDING_MAX
from sdk.errors import AppCallError
from sdk.simulator import Simulator

TIMEKEEPER = Path(__file__).resolve().parents[1] / "miniapps" / "apps" / "timekeeper"
DAY_MS = 86_400_000


@pytest.fixture
def world():
    sim = Simulator(TIMEKEEPER)
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann, "bea"])
    return sim, ann, chat


def texts(sim, chat) -> list[str]:
    """What the timers posted (not the commands' replies)."""
    return [
        m["text"]
        for m in sim.messages(chat)
        if m["type"] == "text" and not m["text"].startswith("timekeeper:")
    ]


async def test_a_reminder_fires_once_at_its_time_never_before(world):
    sim, ann, chat = world
    start = sim.now
    reply = await sim.command(ann, chat, "/remind r1 60 water the plants")
    assert reply["text"] == f"timekeeper: set r1 due {start + 60_000}"
    assert [t["key"] for t in sim.pending_timers()] == ["r1"]

    assert await sim.advance(seconds=59) == []
    assert texts(sim, chat) == [] and sim.now == start + 59_000
    fired = await sim.advance(seconds=1)
    assert [(f["name"], f["key"], f["due_at"], f["at"]) for f in fired] == [
        ("remind", "r1", start + 60_000, start + 60_000)
    ]
    assert texts(sim, chat)[0].startswith("reminder: water the plants")
    assert await sim.advance(days=30) == []  # once
    assert sim.pending_timers() == [] and len(sim.timers_fired) == 1


async def test_scheduling_a_key_again_moves_it(world):
    sim, ann, chat = world
    start = sim.now
    await sim.command(ann, chat, "/remind r1 60 first")
    await sim.command(ann, chat, "/remind r1 120 second")
    assert len(sim.pending_timers()) == 1
    assert await sim.advance(seconds=90) == []
    fired = await sim.advance(seconds=30)
    assert [f["due_at"] for f in fired] == [start + 120_000]
    assert [t.split(" (")[0] for t in texts(sim, chat)] == ["reminder: second"]


async def test_cancel_removes_a_pending_timer(world):
    sim, ann, chat = world
    await sim.command(ann, chat, "/remind r1 60 never")
    assert (await sim.command(ann, chat, "/unremind r1"))["text"] == "timekeeper: cancelled True"
    assert (await sim.command(ann, chat, "/unremind r1"))["text"] == "timekeeper: cancelled False"
    assert await sim.advance(days=1) == [] and texts(sim, chat) == []


async def test_a_week_of_a_timer_that_re_arms_itself(world):
    sim, ann, chat = world
    start = sim.now
    await sim.command(ann, chat, "/chain 7")
    fired = await sim.advance(days=3)
    assert [f["at"] for f in fired] == [start + d * DAY_MS for d in (1, 2, 3)]
    fired = await sim.advance(days=10)
    assert len(fired) == 4  # days 4-7, then the chain ends
    assert texts(sim, chat) == [f"chain: {n} left" for n in range(6, -1, -1)]
    assert sim.pending_timers() == []


async def test_timers_fire_in_time_order_whatever_the_order_they_were_set(world):
    sim, ann, chat = world
    for key, seconds in (("c", 30), ("a", 10), ("b", 20), ("a2", 10)):
        await sim.command(ann, chat, f"/remind {key} {seconds} {key}")
    fired = await sim.advance(minutes=1)
    assert [f["key"] for f in fired] == ["a", "a2", "b", "c"]


async def test_a_failed_firing_raises_and_is_tried_again(world):
    sim, ann, chat = world
    await sim.command(ann, chat, "/flaky 5")
    with pytest.raises(AppCallError):
        await sim.advance(seconds=10)
    assert sim.timers_fired[-1]["ok"] is False and sim.timers_fired[-1]["attempt"] == 1
    assert [t["attempts"] for t in sim.pending_timers()] == [1]  # tried again later
    fired = await sim.advance(minutes=1)
    assert [(f["attempt"], f["ok"]) for f in fired] == [(2, True)]
    assert texts(sim, chat) == ["flaky: fired on attempt 2"]


async def test_the_clock_only_moves_forward(world):
    sim, _, _ = world
    with pytest.raises(ValueError):
        await sim.advance(seconds=-1)


async def call(sim, ann, chat, method, **params):
    return await sim.call_capability(ann, chat, method, params)


async def test_schedule_answers_key_and_due_at_and_validates(world):
    sim, ann, chat = world
    now = sim.now
    assert await call(sim, ann, chat, "timers.schedule", name="record", delay_ms=5, key="k1") == (
        "ok",
        {"key": "k1", "due_at": now + 5},
    )
    outcome, result = await call(sim, ann, chat, "timers.schedule", name="record", at=now + 10)
    assert outcome == "ok" and result["due_at"] == now + 10 and result["key"].startswith("t-")
    # at == now is fine: due at once
    assert (await call(sim, ann, chat, "timers.schedule", name="record", at=now))[0] == "ok"
    assert await call(sim, ann, chat, "timers.cancel", key="k1") == ("ok", {"cancelled": True})
    assert await call(sim, ann, chat, "timers.cancel", key="k1") == ("ok", {"cancelled": False})


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"name": "nope", "delay_ms": 5}, "unknown_timer"),
        ({"name": "record", "at": 1}, "invalid_time"),
        ({"name": "record", "delay_ms": TIMER_MAX_AHEAD_MS + 1}, "invalid_time"),
        ({"name": "record", "at": "$far"}, "invalid_time"),
        ({"name": "record"}, "invalid_params"),
        ({"name": "record", "at": "$now", "delay_ms": 5}, "invalid_params"),
        ({"name": "record", "delay_ms": -1}, "invalid_params"),
        ({"name": "record", "delay_ms": 1.5}, "invalid_params"),
        ({"name": "record", "delay_ms": 5, "key": "no spaces"}, "invalid_params"),
        ({"name": "record", "delay_ms": 5, "payload": [1]}, "invalid_params"),
        (
            {"name": "record", "delay_ms": 5, "payload": {"x": "y" * TIMER_PAYLOAD_MAX_BYTES}},
            "invalid_params",
        ),
    ],
)
async def test_schedule_refusals_change_nothing(world, params, code):
    sim, ann, chat = world
    values = {"$far": sim.now + TIMER_MAX_AHEAD_MS + 1, "$now": sim.now}
    params = {k: values.get(v, v) if isinstance(v, str) else v for k, v in params.items()}
    assert await sim.call_capability(ann, chat, "timers.schedule", params) == ("error", code)
    assert sim.pending_timers() == []


async def test_too_many_timers_per_app(world):
    sim, ann, chat = world
    for index in range(TIMERS_PENDING_MAX):
        outcome, _ = await call(sim, ann, chat, "timers.schedule", name="record", delay_ms=1000,
                                key=f"k{index}")  # fmt: skip
        assert outcome == "ok"
    assert await call(sim, ann, chat, "timers.schedule", name="record", delay_ms=5) == (
        "error",
        "too_many_timers",
    )
    # moving a pending one is not a new one
    assert (await call(sim, ann, chat, "timers.schedule", name="record", delay_ms=9, key="k0"))[
        0
    ] == "ok"
    assert len(sim.pending_timers()) == TIMERS_PENDING_MAX


async def test_without_the_permission_timers_are_refused():
    app = App("plain")
    manifest = {"id": "plain", "name": "Plain", "version": "1.0.0", "timers": ["t"]}

    @app.timer("t")
    async def fire(ctx):
        pass

    sim = Simulator(app, manifest=manifest)
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    for method, params in (
        ("timers.schedule", {"name": "t", "delay_ms": 1}),
        ("timers.cancel", {"key": "k"}),
    ):
        assert await sim.call_capability(ann, chat, method, params) == (
            "error",
            "permission_denied",
        )


async def test_context_schedule_takes_datetimes_and_timedeltas_and_sees_the_firing():
    app = App("clock")
    manifest = {
        "id": "clock",
        "name": "Clock",
        "version": "1.0.0",
        "permissions": ["timers.schedule", "messages.send_text"],
        "commands": [{"name": "go", "description": "go"}],
        "timers": ["tick"],
    }
    seen = []

    @app.command("go")
    async def go(ctx):
        at = datetime.datetime.fromtimestamp((sim.now + 7_000) / 1000, tz=datetime.UTC)
        first = await ctx.schedule("tick", at=at, key="at", payload={"n": 1})
        second = await ctx.schedule("tick", delay=datetime.timedelta(hours=2), key="delay")
        third = await ctx.schedule("tick", delay=1.5, key="float")
        return {"text": f"{first['due_at']} {second['due_at']} {third['due_at']}"}

    @app.timer("tick")
    async def tick(ctx):
        seen.append((ctx.kind, ctx.timer_name, ctx.timer_key, ctx.due_at, ctx.payload, ctx.attempt))
        await ctx.send_text(f"tick {ctx.timer_key}")

    sim = Simulator(app, manifest=manifest)
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    now = sim.now
    reply = await sim.command(ann, chat, "/go")
    assert reply["text"] == f"{now + 7_000} {now + 7_200_000} {now + 1_500}"
    await sim.advance(hours=3)
    assert seen == [
        ("timer", "tick", "float", now + 1_500, {}, 1),
        ("timer", "tick", "at", now + 7_000, {"n": 1}, 1),
        ("timer", "tick", "delay", now + 7_200_000, {}, 1),
    ]
    assert [m["text"] for m in sim.messages(chat)][-3:] == ["tick float", "tick at", "tick delay"]


def test_the_manifest_and_the_handlers_must_agree_on_timers():
    app = App("x")

    @app.timer("undeclared")
    async def fire(ctx):
        pass

    problems = app.check_against_manifest({"timers": ["declared"]})
    assert problems == [
        "timer 'declared' is declared in the manifest but has no handler",
        "timer 'undeclared' has a handler but is not in the manifest's timers",
    ]
