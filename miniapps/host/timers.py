"""Firing app timers: every gateway node runs ``TimerFiring.run_due`` every ``JOBS_INTERVAL``.

A round reads the due timers of the apps this node can run (``app_timers``), claims each with a
conditional update (one node wins each timer, however many scan at once) under a fresh fencing
token and a lease, and fires the claimed ones in the background, at most ``concurrency`` at a
time: the app's ``@app.timer(name)`` handler is invoked (method ``timer``) on behalf of the user
and in the conversation of the invocation that scheduled it. Then, conditional on the token:

- the handler returned: the timer is done (removed) — it is never fired again;
- it failed (raised, timed out, its process died, the app is switched off): pending again after
  a back-off, up to ``TIMER_MAX_ATTEMPTS`` firings, then dropped with a warning;
- the conversation no longer has the app: dropped (an app acts only where it is installed).
- the app never got it (its process is down or restarting, or at its cap of calls): pending
  again a second later, the attempt not counted.

A node that dies mid-firing leaves the timer ``firing``; when its lease runs out, any node claims
it again. That is at-least-once delivery with fencing — the only choice that loses nothing: the
alternative, marking a timer done before invoking, loses it whenever a node or app dies in
between. So a timer fires twice only when a firing did not finish (``ctx.attempt`` > 1 tells
the handler), never after its handler returned, and never before its time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
from typing import TYPE_CHECKING, Any

from miniapps.host.invoker import conversation_type, user_preferences
from miniapps.host.sandbox import SandboxError
from miniapps.host.sandbox.errors import Overloaded, Unavailable
from miniapps.host.store.app_timers import AppTimers
from sdk.errors import HostError
from sdk.timers import TIMER_MAX_ATTEMPTS, TIMER_RETRY_MS, timer_params
from storage.errors import AppError
from storage.mongo import now_ms

if TYPE_CHECKING:
    from miniapps.host.host import MiniappHost
    from miniapps.host.registry import AppEntry

log = logging.getLogger(__name__)

# A claim's lease: far longer than one invocation may take (the sandbox's call deadline, a
# remote app's timeout, the wait at the app's gate), so a live firing is never taken over.
LEASE_MS = 120_000
FIRING_CONCURRENCY = 8  # firings in flight on one node: a sandboxed app takes 8 calls at a time
UNDELIVERED_RETRY_MS = 1_000  # an app not running or too busy: try again this much later
CLOSE_GRACE = 2.0  # seconds in-flight firings may finish when the node stops


class TimerFiring:
    """This node's share of the app timers: ``run_due`` claims and starts what is due."""

    def __init__(
        self,
        host: MiniappHost,
        *,
        concurrency: int = FIRING_CONCURRENCY,
        lease_ms: int = LEASE_MS,
    ) -> None:
        self.host = host
        self.timers = AppTimers(host.messaging.db)
        self.concurrency = concurrency
        self.lease_ms = lease_ms
        self._tasks: set[asyncio.Task] = set()

    async def close(self) -> None:
        """Let in-flight firings finish briefly, then stop them (their leases run out and
        another node, or this one after a restart, fires them again)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=CLOSE_GRACE)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def run_due(self) -> int:
        """Claim due timers up to the free firing slots and start them; how many started."""
        started = 0
        app_ids = sorted(self.host.apps)
        while app_ids:
            free = self.concurrency - len(self._tasks)
            if free <= 0:
                break
            now = now_ms()
            due = await self.timers.get_due(app_ids, now, free)
            # Nodes scanning at once read the same earliest timers: trying them in another
            # order spreads the claims instead of racing for each in turn.
            random.shuffle(due)
            for doc in due:
                token = secrets.token_hex(12)
                if await self.timers.claim(doc, token, now + self.lease_ms):
                    self._spawn(self._fire(doc, token))
                    started += 1
            if len(due) < free:
                break
        return started

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fire(self, doc: dict[str, Any], token: str) -> None:
        attempt = int(doc.get("attempts", 0)) + 1
        version = int(doc["version"])
        where = f"timer {doc['name']!r} ({doc['key']}) of {doc['app_id']}"
        try:
            if attempt > TIMER_MAX_ATTEMPTS:
                log.warning("%s dropped after %d failed firings", where, attempt - 1)
                await self.timers.finish(doc["_id"], version, token)
                return
            outcome = await self._invoke(doc, attempt)
            if outcome in ("done", "dropped"):
                if outcome == "dropped":
                    log.info("%s dropped: its conversation no longer has the app", where)
                await self.timers.finish(doc["_id"], version, token)
            elif outcome == "undelivered":  # the app never got it: soon again, not counted
                await self.timers.retry_later(
                    doc["_id"], version, token, now_ms() + UNDELIVERED_RETRY_MS, attempted=False
                )
            elif attempt >= TIMER_MAX_ATTEMPTS:
                log.warning("%s dropped after %d failed firings", where, attempt)
                await self.timers.finish(doc["_id"], version, token)
            else:
                delay = TIMER_RETRY_MS[min(attempt, len(TIMER_RETRY_MS)) - 1]
                await self.timers.retry_later(doc["_id"], version, token, now_ms() + delay)
        except Exception:  # the lease runs out and the timer is tried again
            log.exception("firing %s failed", where)

    async def _invoke(self, doc: dict[str, Any], attempt: int) -> str:
        """Run the app's timer handler: ``done``, ``failed``, ``undelivered`` (never reached
        the app) or ``dropped``."""
        host = self.host
        entry: AppEntry | None = host.apps.get(doc["app_id"])
        if entry is None:
            return "failed"
        try:
            await host.apps_catalogue.check_active(entry.app_id, doc["conversation_id"])
        except AppError as exc:
            return "dropped" if exc.code == "app_not_installed" else "failed"
        remote = entry.kind == "remote"
        app_user_id = await host.identity.app_user(entry.app_id, doc["user_id"])
        call_id = await host.calls.open(
            entry.app_id, doc["user_id"], app_user_id, doc["conversation_id"], 0, remote=remote
        )
        try:
            params = timer_params(
                doc["name"], doc["key"], int(doc["due_at"]), json.loads(doc["payload"]), attempt
            )
            context = {
                "call_id": call_id,
                "conversation_id": doc["conversation_id"],
                "conversation_type": await conversation_type(
                    host.messaging, doc["conversation_id"]
                ),
                "user": {"id": app_user_id},
                # The locale and time zone of the person who scheduled it, as they are now.
                **await user_preferences(host.messaging, doc["user_id"]),
            }
            # The invoker's gate (the app's cap on concurrent calls); its ``invoke`` would
            # swallow the outcome, which here decides done or retry.
            await host.invoker._gated(entry, "timer", {**params, "context": context})
            return "done"
        except (Unavailable, Overloaded) as exc:  # not sent: the app is down or too busy
            log.info("timer %s of %s not delivered: %s", doc["name"], entry.app_id, exc)
            return "undelivered"
        except (SandboxError, HostError, AppError) as exc:
            code = getattr(exc, "app_code", None) or getattr(exc, "code", "app_error")
            log.warning("timer %s of %s failed (%s): %s", doc["name"], entry.app_id, code, exc)
            return "failed"
        except Exception:
            log.exception("timer %s of %s failed", doc["name"], entry.app_id)
            return "failed"
        finally:
            await host.calls.close(call_id, remote=remote)
