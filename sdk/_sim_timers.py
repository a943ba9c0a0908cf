"""The simulator's timers and clock: ``timers.schedule``/``timers.cancel`` with the host's checks
(``sdk.timers``), and ``sim.now`` (epoch ms) that only ``sim.advance(...)`` moves, firing the
timers that fall due on the way, in order — also those that timers schedule — so a test can
walk through a week::

    await sim.command(alice, chat, "/remind 1d water the plants")
    fired = await sim.advance(days=1)
    assert fired[0]["name"] == "remind"

As on the host, a firing whose handler fails is tried again later (``ctx.attempt`` counts, at
most ``TIMER_MAX_ATTEMPTS`` firings); here ``advance`` also raises the failure
(``AppCallError``) at once, with the clock at that timer's time, so a test cannot miss it.
Mixed into ``sdk.simulator.Simulator`` (through ``sdk._sim_effects.EffectsMixin``).
"""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from sdk._sim_world import SimCall, SimConversation, SimUser
from sdk.errors import AppCallError
from sdk.timers import (
    TIMER_MAX_ATTEMPTS,
    TIMER_RETRY_MS,
    TIMERS_PENDING_MAX,
    check_schedule,
    timer_params,
    too_many_timers,
)

MAX_FIRINGS_PER_ADVANCE = 100_000  # a timer that keeps re-arming itself at once stops here


@dataclass
class SimTimer:
    """A pending timer: fired at ``run_at`` (``due_at``, later after a failed firing)."""

    name: str
    key: str
    due_at: int
    payload: dict[str, Any]
    user: SimUser | None
    conversation: SimConversation | None
    order: int  # scheduling order: timers due at the same time fire in it
    run_at: int = 0
    attempts: int = 0
    scheduled: list[int] = field(default_factory=list)


class TimersMixin:
    """``timers.*`` effects, the clock, and the firing of due timers."""

    # provided by the Simulator
    manifest: dict[str, Any]

    def _init_timers(self) -> None:
        self.now: int = int(time.time() * 1000)  # the simulator's clock, epoch milliseconds
        self.timers_fired: list[dict[str, Any]] = []  # every firing: name, key, due_at, at …
        self._timers: dict[str, SimTimer] = {}
        self._timer_order = itertools.count()

    def _timers_schedule(self, call: SimCall, params: dict) -> dict:
        timer = check_schedule(self.manifest, params, self.now)
        key = timer["key"]
        if key not in self._timers and len(self._timers) >= TIMERS_PENDING_MAX:
            raise too_many_timers()
        self._timers[key] = SimTimer(
            name=timer["name"],
            key=key,
            due_at=timer["due_at"],
            payload=copy.deepcopy(timer["payload"]),
            user=call.user,
            conversation=call.conversation,
            order=next(self._timer_order),
            run_at=timer["due_at"],
        )
        return {"key": key, "due_at": timer["due_at"]}

    def _timers_cancel(self, call: SimCall, params: dict) -> dict:
        return {"cancelled": self._timers.pop(params["key"], None) is not None}

    def pending_timers(self) -> list[dict[str, Any]]:
        """The pending timers, next first: ``{name, key, due_at, payload, attempts}``."""
        timers = sorted(self._timers.values(), key=lambda t: (t.run_at, t.order))
        return [
            {
                "name": t.name,
                "key": t.key,
                "due_at": t.due_at,
                "payload": copy.deepcopy(t.payload),
                "attempts": t.attempts,
            }
            for t in timers
        ]

    async def advance(
        self, *, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0
    ) -> list[dict[str, Any]]:
        """Move ``sim.now`` forward, firing every timer that falls due on the way, in the order
        of their times (then of scheduling), each with the clock at its time; timers scheduled
        by those handlers fire too when they fall within the span. Returns the firings, as
        recorded in ``sim.timers_fired``. Raises ``AppCallError`` when a handler fails (the
        timer is then tried again later, as the host does) and ``ValueError`` for a negative
        span."""
        span = round((((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000)
        if span < 0:
            raise ValueError("the clock only moves forward")
        target = self.now + span
        fired: list[dict[str, Any]] = []
        for _ in range(MAX_FIRINGS_PER_ADVANCE):
            due = [t for t in self._timers.values() if t.run_at <= target]
            if not due:
                self.now = target
                return fired
            timer = min(due, key=lambda t: (t.run_at, t.order))
            self.now = max(self.now, timer.run_at)
            fired.append(await self._fire_timer(timer))
        raise RuntimeError(f"more than {MAX_FIRINGS_PER_ADVANCE} timers fired in one advance")

    async def _fire_timer(self, timer: SimTimer) -> dict[str, Any]:
        # Taken out before the handler runs: one that schedules its own key again sets a new
        # timer, which the outcome of this firing no longer touches (the host's fencing).
        del self._timers[timer.key]
        timer.attempts += 1
        record = {
            "name": timer.name,
            "key": timer.key,
            "due_at": timer.due_at,
            "at": self.now,
            "attempt": timer.attempts,
            "ok": False,
        }
        self.timers_fired.append(record)
        params = timer_params(
            timer.name, timer.key, timer.due_at, copy.deepcopy(timer.payload), timer.attempts
        )
        try:
            await self._invoke("timer", timer.user, timer.conversation, params)  # type: ignore[attr-defined]
        except AppCallError as exc:
            record["error"] = exc.code
            if timer.attempts < TIMER_MAX_ATTEMPTS and timer.key not in self._timers:
                delay = TIMER_RETRY_MS[min(timer.attempts, len(TIMER_RETRY_MS)) - 1]
                timer.run_at = self.now + delay
                self._timers[timer.key] = timer
            raise
        record["ok"] = True
        return record

    EFFECTS = {
        "timers.schedule": _timers_schedule,
        "timers.cancel": _timers_cancel,
    }
