"""The app's log channel, throttled so that no app can flood the host.

stderr is read at most ``stderr_rate`` bytes a second (``stderr_burst`` at once): past that the
host stops reading, the pipe fills and the app's own writes block — the back-pressure lands on
the app, not on the host's memory, disk or event loop. Of what is read, at most
``log_lines_per_second`` lines reach the host log; the others are counted and a summary is
logged once a second. ``log`` notifications get the same line budget (a bucket of their own).
Protocol lines are paced by a ``TokenBucket`` too (``protocol_rate``): each one is parsed on
the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from miniapps.host.sandbox.config import SandboxConfig

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
MAX_LOGGED_LINE = 500  # characters of one stderr line in the host log


class TokenBucket:
    """``rate`` units a second, at most ``burst`` saved up; ``clock`` for tests."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def try_take(self, amount: float = 1) -> bool:
        """Take ``amount`` if it is there now; False (and nothing taken) otherwise."""
        self._refill()
        if self._tokens >= amount:
            self._tokens -= amount
            return True
        return False

    def debit(self, amount: float) -> float:
        """Take ``amount`` even into debt; the seconds to wait until the debt is paid."""
        self._refill()
        self._tokens -= amount
        return max(0.0, -self._tokens / self.rate)


class LineGate:
    """Lets at most so many lines a second through; counts the rest for a summary."""

    def __init__(self, per_second: float, burst: int, what: str, app_id: str) -> None:
        self._bucket = TokenBucket(per_second, burst)
        self._what = what
        self._app_id = app_id
        self.dropped = 0
        self._unreported = 0
        self._reported_at = time.monotonic()

    def allow(self) -> bool:
        """Whether this line may be logged; a refused one is counted."""
        if self._bucket.try_take():
            return True
        self.dropped += 1
        self._unreported += 1
        return False

    def report(self, force: bool = False) -> None:
        """Log how many lines were dropped since the last report (at most once a second)."""
        now = time.monotonic()
        if self._unreported and (force or now - self._reported_at >= 1.0):
            log.warning(
                "app %s: %d %s dropped (rate limit; %d in all)",
                self._app_id,
                self._unreported,
                self._what,
                self.dropped,
            )
            self._unreported = 0
            self._reported_at = now


class Pacer:
    """Paces a reader with a ``TokenBucket``; ``release()`` ends the pacing (the process has
    exited: what is left in the pipe is drained at once, so exit handling never waits)."""

    def __init__(self, rate: float, burst: float) -> None:
        self._bucket = TokenBucket(rate, burst)
        self._released = asyncio.Event()

    def release(self) -> None:
        self._released.set()

    async def pace(self, amount: int) -> None:
        delay = self._bucket.debit(amount)
        if delay > 0 and not self._released.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), delay)


async def pump_stderr(
    stream: asyncio.StreamReader,
    *,
    app_id: str,
    config: SandboxConfig,
    pacer: Pacer,
    tail: bytearray,
) -> None:
    """Read the app's stderr to its end: keep the last ``stderr_keep`` bytes in ``tail`` (for
    exit reasons) and log lines within the budget. Never parsed."""
    gate = LineGate(config.log_lines_per_second, config.log_lines_burst, "stderr lines", app_id)
    pending = b""
    while chunk := await stream.read(CHUNK):
        await pacer.pace(len(chunk))
        tail += chunk
        del tail[: -config.stderr_keep]
        pending += chunk
        *lines, pending = pending.split(b"\n")
        pending = pending[-4096:]  # a line without an end is kept only in part
        for line in lines:
            if gate.allow():
                text = line.decode(errors="replace")
                log.info("app %s stderr: %.*s", app_id, MAX_LOGGED_LINE, text)
        gate.report()
    gate.report(force=True)


class NotificationLog:
    """The ``log`` notifications of one app, within the line budget."""

    def __init__(self, app_id: str, config: SandboxConfig) -> None:
        self._app_id = app_id
        self._gate = LineGate(
            config.log_lines_per_second, config.log_lines_burst, "log notifications", app_id
        )

    def __call__(self, method: str, params: Any) -> None:
        if method != "log":
            return
        if self._gate.allow():
            message = params.get("message", "") if isinstance(params, dict) else ""
            log.info("app %s: %.2000s", self._app_id, message)
        self._gate.report()

    def close(self) -> None:
        self._gate.report(force=True)
