"""The one place the travel app reads the time: ``now_ms()`` (epoch milliseconds, UTC).

Every module calls ``clock.now_ms()`` (never ``time.time()`` itself), so a simulator test moves
the whole app's time by replacing this one function. Timers carry their own due time.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)
