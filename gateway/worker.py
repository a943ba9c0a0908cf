"""The Celery worker: ``celery -A gateway.worker worker``.

The composition root of worker processes, as ``create_app`` is the gateway's: it reads the same
settings (``Config.from_env()``), builds the same domain contexts over its own MongoDB
connection, and registers the tasks the gateway sends by name (``storage.tasks``). Events the
work emits (a card turning to "Returned", a new balance) reach people through python-socketio's
external emitter: published on Redis to the rooms the gateways serve.

Each worker process keeps one asyncio loop, on a thread of its own, with its database connection
and domain contexts, from its first task (or from start-up, in a prefork child) until it exits:
no reconnecting per task, and background work (member-list invalidations from the gateways, the
message writer's follow-ups) keeps running between tasks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from celery import signals

from gateway.compose import build_messaging, build_wallet, close_messaging
from gateway.event_sink import SocketEvents
from gateway.socket_manager import ResilientRedisManager
from messaging.actions import push
from messaging.actions.data_export import do_run_due as run_due_exports
from messaging.actions.mail import do_send_due as send_due_mail
from messaging.webpush import WebPush, WebPushSender, load_vapid_key
from miniapps.host.account_data import register_export as register_consents_export
from storage import tasks
from storage.config import Config
from storage.errors import ConfigError
from storage.logs import configure_logging
from storage.mail import MailQueue, make_mailer
from storage.metrics import Metrics
from storage.mongo import open_database
from storage.presence import make_presence
from storage.pubsub import make_pubsub
from storage.ratelimit import make_rate_limiter
from storage.tasks import PUSH_SEND_DUE, WALLET_DUE_JOBS, make_celery
from wallet.context import Wallet
from wallet.jobs import run_due_jobs

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

T = TypeVar("T")

OPEN_TIMEOUT = 60.0  # seconds a task waits for the process's connections to open
TASK_TIMEOUT = 600.0  # a task still running after this is cancelled (the next tick retries)
CLOSE_TIMEOUT = 15.0


def check_worker_config(config: Config) -> None:
    """Refuse settings a worker cannot run with, saying which and why."""
    if config.mongodb_url is None:
        raise ConfigError(
            "MONGODB_URL: required for the Celery worker. The embedded MongoDB server belongs "
            "to the gateway that starts it; point the worker at the MongoDB the gateways use."
        )
    if not config.redis_url:
        raise ConfigError(
            "REDIS_URL: required for the Celery worker (its broker, and the way its events "
            "reach the gateways' sockets)"
        )


class WorkerRuntime:
    """One per worker process: its asyncio loop (on a thread), MongoDB connection and contexts.

    Started by ``start()`` — at ``worker_process_init`` (sent in each prefork child, and by the
    solo pool), else by the first task — and kept until ``stop()``. A process forked from one
    that had started (billiard forks the parent) notices the new pid and starts its own:
    threads and sockets do not survive a fork.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready: concurrent.futures.Future[Wallet] | None = None
        self._resources: contextlib.AsyncExitStack | None = None

    def start(self) -> concurrent.futures.Future[Wallet]:
        """Open the process's connections in the background (once); the future gives the
        wallet when they are open. Does not block, so it is safe in Celery's start-up hooks."""
        with self._lock:
            if self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="aetherial-worker-loop", daemon=True
                )
                thread.start()
                self._pid, self._loop, self._thread, self._ready = os.getpid(), loop, thread, None
            ready = self._ready
            if ready is None or (ready.done() and (ready.cancelled() or ready.exception())):
                # First start, or the last attempt failed (MongoDB down?): try again now.
                self._ready = asyncio.run_coroutine_threadsafe(self._open(), self._loop)
            return self._ready

    def run(self, job: Callable[[Wallet], Awaitable[T]]) -> T:
        """Run ``job(wallet)`` on the process's loop and wait for its result."""
        wallet = self.start().result(timeout=OPEN_TIMEOUT)
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(_call(job, wallet), self._loop)
        try:
            return future.result(timeout=TASK_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def stop(self) -> None:
        with self._lock:
            if self._pid != os.getpid() or self._loop is None:
                return  # never started in this process
            loop, thread = self._loop, self._thread
            self._pid = self._loop = self._thread = self._ready = None
        try:
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=CLOSE_TIMEOUT)
        except Exception:
            log.warning("closing the worker's connections failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=CLOSE_TIMEOUT)
        if not loop.is_running():
            loop.close()

    async def _open(self) -> Wallet:
        config = self.config
        async with contextlib.AsyncExitStack() as stack:
            # Indexes are the gateway's job at its start-up: due work exists only once a
            # gateway has written it.
            database = await stack.enter_async_context(open_database(config))
            pubsub = make_pubsub(config.redis_url)
            stack.push_async_callback(pubsub.close)
            await pubsub.start()
            limiter = make_rate_limiter(config.redis_url)
            stack.push_async_callback(limiter.close)
            # Not started: a worker holds no sockets, so it is no presence "node"; it only asks
            # who is online.
            presence = make_presence(config.redis_url)
            stack.push_async_callback(presence.close)
            # Not started either: it does not subscribe to "sockets", it only publishes.
            events = SocketEvents(ResilientRedisManager(config.redis_url, write_only=True), pubsub)
            stack.push_async_callback(events.close)
            messaging = build_messaging(
                config,
                database.db,
                limiter=limiter,
                pubsub=pubsub,
                presence=presence,
                events=events,
                # Counted, not served: a worker has no /metrics (the gateways' cover the chat).
                metrics=Metrics(),
            )
            stack.push_async_callback(close_messaging, messaging)
            await messaging.start()  # member-list invalidations from the gateways
            # Web Push: the worker sends the pushes (PUSH_SEND_DUE), and notifications its own
            # work creates (a payment's result) are queued for push like the gateway's.
            key = load_vapid_key(config)
            if key is None:
                log.warning("Web Push is off on this worker: VAPID_PRIVATE_KEY is unset")
            else:
                sender = WebPushSender(key, config.vapid_subject)
                messaging.web_push = WebPush(
                    sender, functools.partial(push.do_send_due, messaging, sender)
                )
                stack.push_async_callback(messaging.web_push.close)
                messaging.notification_hooks.append(
                    functools.partial(push.do_enqueue_push, messaging)
                )
            # Mail: the worker sends it (MAIL_SEND_DUE), and mail its own work queues (an
            # export is ready) is kicked here like the gateway's.
            mailer = make_mailer(config)
            log.info("worker process %d: mail goes to %s", os.getpid(), mailer.description)
            messaging.mail = MailQueue(mailer, functools.partial(send_due_mail, messaging, mailer))
            stack.push_async_callback(messaging.mail.close)
            # No ``notify_app``: a worker hosts no mini-programs, so a payment's outcome waits in
            # the order's outbox for a gateway to deliver.
            wallet = build_wallet(config, messaging)
            # Exports built here carry the mini-program consents too (read from MongoDB).
            register_consents_export(messaging)
            self._resources = stack.pop_all()
        log.info("worker process %d connected to MongoDB and Redis", os.getpid())
        return wallet

    async def _close(self) -> None:
        resources, self._resources = self._resources, None
        if resources is not None:
            await resources.aclose()


async def _call(job: Callable[[Wallet], Awaitable[T]], wallet: Wallet) -> T:
    return await job(wallet)


async def _send_due_pushes(wallet: Wallet) -> dict[str, int]:
    web_push = wallet.messaging.web_push
    if web_push is None:
        return {}  # off here (warned at start-up); the rows wait for a worker that has a key
    return await push.do_send_due(wallet.messaging, web_push.sender)


async def _send_due_mail(wallet: Wallet) -> dict[str, int]:
    mail = wallet.messaging.mail
    return await send_due_mail(wallet.messaging, mail.mailer) if mail is not None else {}


def create_worker(config: Config) -> Celery:
    """The Celery app of a worker process, its tasks registered over ``config``."""
    check_worker_config(config)
    app = make_celery(config)
    runtime = WorkerRuntime(config)

    @app.task(name=WALLET_DUE_JOBS)
    def run_wallet_due_jobs(prune: bool = False) -> dict[str, int]:
        return runtime.run(lambda wallet: run_due_jobs(wallet, prune=prune))

    @app.task(name=PUSH_SEND_DUE)
    def send_due_pushes() -> dict[str, int]:
        return runtime.run(_send_due_pushes)

    @app.task(name=tasks.MAIL_SEND_DUE)
    def send_due_mail_task() -> dict[str, int]:
        return runtime.run(_send_due_mail)

    @app.task(name=tasks.EXPORTS_RUN_DUE)
    def run_due_exports_task() -> dict[str, int]:
        return runtime.run(lambda wallet: run_due_exports(wallet.messaging))

    # Celery's signals are process-wide; these connect once, when the app is built.
    def open_in_child(**_: Any) -> None:
        runtime.start()  # in the background: Celery times out children slow to come up

    def close(**_: Any) -> None:
        runtime.stop()

    def setup_logging(**_: Any) -> None:
        # A receiver here makes Celery leave logging to us: LOG_LEVEL, LOG_FORMAT, redaction.
        configure_logging(config)

    signals.setup_logging.connect(setup_logging, weak=False)
    signals.worker_process_init.connect(open_in_child, weak=False)
    signals.worker_process_shutdown.connect(close, weak=False)  # a prefork child exits
    signals.worker_shutdown.connect(close, weak=False)  # the main process (solo/threads pools)
    return app


def __getattr__(name: str) -> Any:
    # The one global: `celery -A gateway.worker` looks up this module's `app`, so it must be
    # reachable as a module attribute. It is built on that first look-up, not at import, so that
    # importing this module (tests, tools) reads no environment and opens nothing.
    if name == "app":
        app = create_worker(Config.from_env())
        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
