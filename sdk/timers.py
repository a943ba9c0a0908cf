"""App timers: the checks ``timers.schedule`` makes beyond its params schema, shared by the host
(``miniapps/host/capabilities/timers.py``) and the simulator (``sdk._sim_timers``) so both
answer alike, and what a timer invocation carries.

A timer is one pending firing per (app, key): scheduling a key again moves it (new time, new
payload, new name), cancelling it removes it. The host fires it once at or after its ``due_at``
— late after an outage, never early — by invoking the app's ``@app.timer(name)`` handler with
``ctx.timer_name``, ``ctx.timer_key``, ``ctx.due_at``, ``ctx.payload`` and ``ctx.attempt``, in
the conversation and on behalf of the user of the invocation that scheduled it.

Delivery is at least once with fencing: a firing that was acknowledged (the handler returned)
is never repeated; a firing that failed (the handler raised, the app crashed or timed out, the
node died mid-fire) is tried again later (``ctx.attempt`` counts), up to ``TIMER_MAX_ATTEMPTS``
times. So a handler whose effects must happen once should make them idempotent by
``ctx.timer_key`` and ``ctx.due_at`` (e.g. a storage key), as with events.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from sdk._capability_services import TIMER_MAX_AHEAD_MS, TIMER_PAYLOAD_MAX_BYTES, TIMERS_PENDING_MAX
from sdk.errors import HostError, InvalidParams

__all__ = [
    "TIMERS_PENDING_MAX",
    "TIMER_MAX_ATTEMPTS",
    "check_schedule",
    "new_key",
    "timer_error",
    "timer_params",
    "too_many_timers",
]

TIMER_MAX_ATTEMPTS = 5  # firings of one timer that fail before it is dropped (and logged)
TIMER_RETRY_MS = (1_000, 5_000, 30_000, 120_000)  # back-off between failed firings


def timer_error(code: str, message: str) -> HostError:
    """A refusal of ``timers.*`` with one of ``TIMER_ERRORS``' codes."""
    return HostError(message, code=code)


def too_many_timers() -> HostError:
    return timer_error(
        "too_many_timers", f"an app may have at most {TIMERS_PENDING_MAX} pending timers"
    )


def new_key() -> str:
    return "t-" + secrets.token_urlsafe(12)


def check_schedule(manifest: dict[str, Any], params: dict[str, Any], now: int) -> dict[str, Any]:
    """``timers.schedule``'s checks after its params schema, at time ``now`` (epoch ms), in
    order: the payload's size (``InvalidParams``), the name declared in the manifest's
    ``timers`` (``unknown_timer``), the time not past and at most 366 days ahead
    (``invalid_time``). Returns ``{name, key, due_at, payload}`` (a new key when none was
    given). The per-app cap (``too_many_timers``) needs the stored timers: the caller checks
    it."""
    payload = params.get("payload") or {}
    try:
        size = len(json.dumps(payload, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError):
        raise InvalidParams("payload must be JSON") from None
    if size > TIMER_PAYLOAD_MAX_BYTES:
        raise InvalidParams(f"payload is limited to {TIMER_PAYLOAD_MAX_BYTES} bytes")
    name = params["name"]
    if name not in (manifest.get("timers") or []):
        raise timer_error("unknown_timer", f"timer {name!r} is not declared in the manifest")
    if params.get("at") is not None:
        due_at = params["at"]
        if due_at < now:
            raise timer_error("invalid_time", "at is in the past")
    else:
        due_at = now + params["delay_ms"]
    if due_at - now > TIMER_MAX_AHEAD_MS:
        raise timer_error("invalid_time", "a timer may be set at most 366 days ahead")
    return {
        "name": name,
        "key": params.get("key") or new_key(),
        "due_at": due_at,
        "payload": payload,
    }


def timer_params(
    name: str, key: str, due_at: int, payload: dict[str, Any], attempt: int
) -> dict[str, Any]:
    """The params of a ``timer`` invocation (host → app), besides ``context``."""
    return {"name": name, "key": key, "due_at": due_at, "payload": payload, "attempt": attempt}
