"""Background tasks: the Celery application factory, and the queue the gateway schedules through.

Durable jobs (expiries, refunds, recovery) are rows in MongoDB first; a task only says "run the
due work now", so losing or repeating one costs a scan, never a job. Same shape as the other
backends here (``make_pubsub``, ``make_rate_limiter``): one small interface, a default that needs
nothing (``InProcessQueue``: the gateway runs the work itself), and ``CeleryQueue`` for Celery
workers behind Redis, chosen by ``make_task_queue(config)`` from ``TASKS_BACKEND``.

Task names are the whole contract between the gateway (which sends) and the worker (which
registers the code, ``gateway/worker.py``), so they are declared here, below both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from storage.config import Config
from storage.errors import ConfigError

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

WALLET_DUE_JOBS = "aetherial.wallet.run_due_jobs"
PUSH_SEND_DUE = "aetherial.push.send_due"
MAIL_SEND_DUE = "aetherial.mail.send_due"
EXPORTS_RUN_DUE = "aetherial.exports.run_due"

QUEUE_NAME = "aetherial"
# A periodic tick not started within this long is dropped by the worker (Celery ``expires``):
# after a worker outage the queue holds one stale tick per interval, and running them all back
# to back would only repeat the same scan. The floor keeps a few seconds of clock skew between
# gateway and worker (``expires`` is an absolute time) from dropping every tick.
TICK_EXPIRES_MIN = 60.0
TICK_EXPIRES_INTERVALS = 10

Handler = Callable[..., Awaitable[Any]]


def make_celery(config: Config) -> Celery:
    """A Celery app on the Redis broker, with the settings every Aetherial task relies on."""
    if not config.redis_url:
        raise ConfigError("REDIS_URL: required for Celery (it is the broker)")
    from celery import Celery

    # Not the "current app": the gateway builds one only to send, and nothing here uses
    # ``shared_task`` or ``current_app`` (no process-wide state).
    app = Celery("aetherial", broker=config.redis_url, set_as_current=False)
    app.conf.update(
        # A task is acknowledged when it has finished, not when it was received, and given back
        # to the queue when its worker process dies: a crash mid-task means it runs again, which
        # every task here tolerates (the work is idempotent; MongoDB rows decide who does it).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # Reserve one task at a time, so a busy or dying worker does not sit on others' work.
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # Nobody waits for a result: outcomes are in MongoDB and reach people as events.
        task_ignore_result=True,
        result_backend=None,
        task_default_queue=QUEUE_NAME,
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        # With acks_late, a task running when the broker connection drops is redelivered
        # anyway; stop it rather than let two copies run side by side.
        worker_cancel_long_running_tasks_on_connection_loss=True,
    )
    return app


class TaskQueue(Protocol):
    """Where the scheduler sends named tasks."""

    def register(self, name: str, handler: Handler) -> None:
        """Say how ``name`` runs in this process. The in-process queue calls ``handler``; a
        Celery queue ignores it, because its workers register their own code for the name."""

    async def enqueue(
        self, name: str, kwargs: dict[str, Any] | None = None, *, once_per: float | None = None
    ) -> bool:
        """Have task ``name`` run with JSON-serialisable ``kwargs``. With ``once_per``, a
        periodic tick: at most one is sent per ``once_per`` seconds (over every node sharing the
        backend), and a stale one is dropped. Returns False when such a tick was not sent."""
        ...

    async def close(self) -> None: ...


class InProcessQueue:
    """The default: the task runs here and now, and ``enqueue`` returns when it has finished
    (its exception, if any, is the caller's)."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, name: str, handler: Handler) -> None:
        self._handlers[name] = handler

    async def enqueue(
        self, name: str, kwargs: dict[str, Any] | None = None, *, once_per: float | None = None
    ) -> bool:
        # once_per needs no bookkeeping: the caller's own loop is what spaces the ticks.
        handler = self._handlers.get(name)
        if handler is None:
            raise LookupError(f"no task named {name!r} is registered in this process")
        await handler(**(kwargs or {}))
        return True

    async def close(self) -> None:
        pass


class CeleryQueue:
    """Tasks go to Celery workers by name (``send_task``): the sender needs none of their code."""

    once_prefix = "aetherial:tasks:once:"

    def __init__(self, app: Celery, redis_url: str) -> None:
        import redis.asyncio as redis

        self.app = app
        self._redis = redis.Redis.from_url(redis_url)

    def register(self, name: str, handler: Handler) -> None:
        pass  # runs on the workers, which register their own code under the same name

    async def enqueue(
        self, name: str, kwargs: dict[str, Any] | None = None, *, once_per: float | None = None
    ) -> bool:
        expires = None
        if once_per is not None:
            # One tick per period for the whole cluster, not one per gateway node.
            claimed = await self._redis.set(
                self.once_prefix + name, "1", nx=True, px=max(1, int(once_per * 1000))
            )
            if not claimed:
                return False
            expires = max(TICK_EXPIRES_MIN, once_per * TICK_EXPIRES_INTERVALS)
        # kombu's publish is blocking network I/O: keep it off the event loop.
        await asyncio.to_thread(self.app.send_task, name, kwargs=kwargs or {}, expires=expires)
        return True

    async def close(self) -> None:
        await self._redis.aclose()
        await asyncio.to_thread(self.app.close)


def make_task_queue(config: Config) -> TaskQueue:
    if config.tasks_backend == "celery":
        if not config.redis_url:  # Config.check refuses this already; say so again here
            raise ConfigError("TASKS_BACKEND=celery: REDIS_URL is required (the Celery broker)")
        return CeleryQueue(make_celery(config), config.redis_url)
    return InProcessQueue()


class Kick:
    """Have due work done now, in the background: ``kick()`` starts ``request_send`` (enqueue
    the task) unless a run is going, in which case it asks for one more run after it, so a burst
    of kicks costs two runs and the caller (a request) never waits. A failure is logged; the
    next periodic tick retries."""

    def __init__(self, request_send: Callable[[], Awaitable[Any]], what: str) -> None:
        self.request_send = request_send
        self.what = what
        self._task: asyncio.Task | None = None
        self._again = False

    def kick(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._again = False
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.request_send()
            except Exception:
                log.exception("%s failed; the next tick retries", self.what)
            if not self._again:
                return
            self._again = False

    async def idle(self) -> None:
        """Wait until the kicked run (if any) has finished."""
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@contextlib.asynccontextmanager
async def repeating(
    job: Callable[[], Awaitable[Any]],
    interval: float,
    what: str,
    first_after: float = 0.0,
    *,
    quiet: bool = False,
) -> AsyncIterator[None]:
    """Run ``job`` every ``interval`` seconds while the block runs; a failure is logged (with
    its traceback, or as one warning line when ``quiet``) and the next round tries again."""

    async def loop() -> None:
        await asyncio.sleep(first_after)
        while True:
            try:
                await job()
            except Exception as exc:
                if quiet:
                    log.warning("%s failed: %s; trying again in %.0f s", what, exc, interval)
                else:
                    log.exception("%s failed; trying again in %.0f s", what, interval)
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
