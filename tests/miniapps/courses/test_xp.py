"""xp.py in real invocations of the app (simulator): an award once per reason however many race,
spends that never take a total below 0, and bad amounts refused."""

from __future__ import annotations

import asyncio

import pytest

from sdk.errors import AppCallError
from tests.miniapps.courses.quiz_fixtures import open_classroom, run_as


@pytest.fixture
async def room(monkeypatch):
    return await open_classroom(monkeypatch)


def award(learner_id, amount, reason):
    async def work(ctx):
        import xp

        return await xp.award(ctx, learner_id, amount, reason)

    return work


def spend(learner_id, amount, reason):
    async def work(ctx):
        import xp

        try:
            return await xp.spend(ctx, learner_id, amount, reason)
        except xp.NotEnoughXp as exc:
            return {"code": exc.code, "message": exc.message}

    return work


def total(room):
    return (room.stored("xp", room.learner.id) or {}).get("total", 0)


async def test_an_award_is_given_once_per_reason_whatever_the_concurrency(room):
    learner = room.learner.id
    given = await asyncio.gather(
        *(
            run_as(room, room.learner, award(learner, 10, f"lesson:c:l1:{learner}"))
            for _ in range(20)
        )
    )
    assert given.count(True) == 1 and given.count(False) == 19
    assert total(room) == 10
    assert await run_as(room, room.learner, award(learner, 10, f"lesson:c:l2:{learner}")) is True
    assert total(room) == 20
    assert room.stored("xp_awards", f"lesson:c:l1:{learner}")["amount"] == 10


async def test_spends_never_take_the_total_below_zero(room):
    learner = room.learner.id
    await run_as(room, room.learner, award(learner, 100, "gift"))
    outcomes = await asyncio.gather(
        *(run_as(room, room.learner, spend(learner, 30, f"freeze:{n}")) for n in range(5))
    )
    assert outcomes.count(True) == 3
    short = [o for o in outcomes if isinstance(o, dict)]
    assert len(short) == 2 and {o["code"] for o in short} == {"not_enough_xp"}
    assert total(room) == 10
    # The reasons that were refused stay unpaid (they may be paid later); the paid ones once.
    assert sorted(room.sim.storage("xp_awards")) == sorted(
        ["gift"] + [f"freeze:{n}" for n, o in enumerate(outcomes) if o is True]
    )
    paid = next(f"freeze:{n}" for n, o in enumerate(outcomes) if o is True)
    assert await run_as(room, room.learner, spend(learner, 30, paid)) is False
    assert total(room) == 10


async def test_a_spend_without_xp_is_refused_and_takes_nothing(room):
    outcome = await run_as(room, room.learner, spend(room.learner.id, 50, "freeze:1"))
    assert outcome == {"code": "not_enough_xp", "message": "That costs 50 XP; you have 0 XP."}
    assert total(room) == 0 and room.sim.storage("xp_awards") == {}


@pytest.mark.parametrize("amount", [0, -5, 10_001, 2.5, True])
async def test_a_bad_amount_is_a_programming_error_and_writes_nothing(room, amount):
    with pytest.raises(AppCallError):
        await run_as(room, room.learner, award(room.learner.id, amount, "r"))
    assert room.sim.storage("xp_awards") == {} and room.sim.storage("xp") == {}
