"""Helpers for the streak, league and badge tests: the courses app in the SDK simulator, its clock
set to a fixed instant and shared with the app (``streaks.now_ms`` reads ``sim.now``, so
``sim.advance`` walks both through a DST change or a week), and two test-only views registered
on the simulator's own ``App`` object — ``test.award`` (QUIZ's real ``xp.award``, which then
calls ``streaks.on_activity`` and ``leagues.on_xp``) and ``test.completed``
(``badges.on_completed``) — so these tests need none of the lessons' and quizzes' set-up.

``fire_concurrently`` plays two gateway nodes firing the same timer at once (the host's
delivery is at least once): the simulator fires a timer once, so it invokes the timer's handler
itself, twice, through the simulator's invocation (every check of the host on the capability
calls).
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sdk.simulator import Simulator
from sdk.timers import timer_params

COURSES_DIR = Path(__file__).resolve().parents[3] / "miniapps" / "courses"
COURSE_ID = "c-py101"


def module(name: str):
    """One of the app's modules, as the simulator loaded it (the app's folder is on sys.path)."""
    return importlib.import_module(name)


def new_sim(monkeypatch, start: datetime.datetime) -> Simulator:
    """The courses app in the simulator, its clock at ``start`` (an aware datetime) and the
    app's ``now_ms`` reading that clock; with the test views."""
    sim = Simulator(COURSES_DIR)
    sim.now = int(start.timestamp() * 1000)
    monkeypatch.setattr(module("streaks"), "now_ms", lambda: sim.now)
    xp, badges = module("xp"), module("badges")

    async def award(ctx) -> dict:
        awarded = await xp.award(ctx, ctx.user_id, int(ctx.params["amount"]), ctx.params["reason"])
        return {"awarded": awarded}

    async def completed(ctx) -> dict:
        return {"badge": await badges.on_completed(ctx, ctx.user_id, ctx.params["course_id"])}

    sim.app.view("test.award")(award)
    sim.app.view("test.completed")(completed)
    return sim


def local(zone: str, *args: int) -> datetime.datetime:
    """``local("America/New_York", 2027, 3, 14, 0, 10)``: that wall time in that zone."""
    return datetime.datetime(*args, tzinfo=ZoneInfo(zone))


async def walk_to(sim: Simulator, when: datetime.datetime) -> None:
    """Move the simulator's clock forward to ``when`` (firing the timers due on the way)."""
    target = int(when.timestamp() * 1000)
    assert target >= sim.now, "the clock only moves forward"
    await sim.advance(seconds=(target - sim.now) / 1000)


async def award(sim, user, chat, amount: int, reason: str) -> bool:
    """``user`` earns ``amount`` XP for ``reason`` in ``chat`` (``xp.award``)."""
    return (await sim.view(user, chat, "test.award", {"amount": amount, "reason": reason}))[
        "awarded"
    ]


async def put(sim: Simulator, collection: str, key: str, value: Any) -> None:
    """Write a document into the app's storage (with every check of the host)."""
    status, result = await sim.call_capability(
        None, None, "storage.put", {"collection": collection, "key": key, "value": value}
    )
    assert status == "ok", result


def streak(sim: Simulator, user) -> dict | None:
    return sim.storage("streaks").get(user.id)


def xp_total(sim: Simulator, user) -> int:
    return int((sim.storage("xp").get(user.id) or {}).get("total") or 0)


def last_ephemeral(sim: Simulator, user) -> str:
    """The text of ``user``'s last private answer (a card's title and text)."""
    last = sim.ephemeral(user)[-1]
    if "card" in last:
        return f"{last['card']['title']}\n{last['card'].get('text', '')}"
    return last["text"]


async def fire_concurrently(sim: Simulator, timer: dict, user, chat, copies: int = 2) -> list:
    """Fire the pending ``timer`` (from ``sim.pending_timers()``) ``copies`` times at once, in
    ``chat`` as ``user`` (who scheduled it), as that many gateway nodes would."""
    sim.now = max(sim.now, timer["due_at"])
    params = [
        timer_params(timer["name"], timer["key"], timer["due_at"], dict(timer["payload"]), 1)
        for n in range(copies)
    ]
    return await asyncio.gather(*(sim._invoke("timer", user, chat, p) for p in params))
