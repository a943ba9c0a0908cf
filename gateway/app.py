"""The app factory: ``create_app(config)`` is used by ``run.py`` and by the tests alike."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway import keys
from gateway.errors import error_middleware
from gateway.realtime import ChatNamespace, SocketEvents, build_socketio, start_client_manager
from gateway.routes import APIS
from gateway.web import register_web
from messaging.actions.auth import Auth, authenticate, do_sweep_expired
from messaging.calls.service import CallService
from messaging.context import Messaging
from messaging.store import INDEXES as MESSAGING_INDEXES
from miniapps.host.host import MiniappHost
from miniapps.host.payments import deliver_payment_event
from miniapps.host.registry import discover
from miniapps.host.sandbox import SandboxConfig
from miniapps.host.store import INDEXES as MINIAPP_INDEXES
from storage.config import Config
from storage.errors import AppError
from storage.mongo import ensure_indexes, open_database
from storage.presence import make_presence
from storage.pubsub import make_pubsub
from storage.ratelimit import make_rate_limiter
from storage.secrets import jwt_secret, shared_key
from storage.tasks import WALLET_DUE_JOBS, TaskQueue, make_task_queue
from wallet.actions import payments
from wallet.context import Wallet
from wallet.jobs import run_due_jobs
from wallet.store import INDEXES as WALLET_INDEXES

log = logging.getLogger(__name__)

SWEEP_FIRST_AFTER = 60.0  # seconds after start-up
SWEEP_INTERVAL = 3600.0


async def authenticate_request(request: web.Request) -> Auth:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise AppError("missing_token", "send 'Authorization: Bearer <access token>'", status=401)
    if scheme.lower() != "bearer" or not token.strip():
        raise AppError(
            "invalid_token", "the Authorization header must be 'Bearer <token>'", status=401
        )
    return await authenticate(request.app[keys.MESSAGING], token.strip())


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    async with open_database(app[keys.CONFIG]) as database:
        indexes = {**MESSAGING_INDEXES, **MINIAPP_INDEXES, **WALLET_INDEXES}
        await ensure_indexes(database.db, indexes)
        app[keys.DATABASE] = database
        yield


async def infrastructure_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    pubsub = make_pubsub(config.redis_url)
    limiter = make_rate_limiter(config.redis_url)
    presence = make_presence(config.redis_url)
    await pubsub.start()
    await presence.start()
    app[keys.PUBSUB] = pubsub
    app[keys.LIMITER] = limiter
    app[keys.PRESENCE] = presence
    try:
        yield
    finally:
        await presence.close()
        await limiter.close()
        await pubsub.close()


async def domains_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    events = SocketEvents(app[keys.SIO], app[keys.PUBSUB])
    await events.start()
    messaging = Messaging.build(
        config,
        app[keys.DATABASE].db,
        jwt_secret=jwt_secret(config),
        limiter=app[keys.LIMITER],
        pubsub=app[keys.PUBSUB],
        presence=app[keys.PRESENCE],
        events=events,
    )
    await messaging.start()
    app[keys.MESSAGING] = messaging

    async def sweep() -> None:
        """Expired sessions and refresh tokens are refused already; this deletes them."""
        removed = await do_sweep_expired(messaging)
        if removed:
            log.info("swept %d expired sessions and refresh tokens", removed)

    try:
        async with _repeating(
            sweep, SWEEP_INTERVAL, "sweeping expired sessions", SWEEP_FIRST_AFTER
        ):
            yield
    finally:
        await messaging.close()
        await events.close()


@contextlib.asynccontextmanager
async def _repeating(
    job: Callable[[], Awaitable[Any]], interval: float, what: str, first_after: float = 0.0
) -> AsyncIterator[None]:
    """Run ``job`` every ``interval`` seconds while the block runs; a failure is logged and
    the next round tries again."""

    async def loop() -> None:
        await asyncio.sleep(first_after)
        while True:
            try:
                await job()
            except Exception:
                log.exception("%s failed; trying again in %.0f s", what, interval)
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wallet_ctx(app: web.Application) -> AsyncIterator[None]:
    wallet = Wallet.build(app[keys.CONFIG], app[keys.MESSAGING])
    app[keys.WALLET] = wallet
    app[keys.MESSAGING].wallet = wallet
    queue = make_task_queue(app[keys.CONFIG])
    queue.register(WALLET_DUE_JOBS, functools.partial(run_due_jobs, wallet))
    tick = _due_jobs_tick(wallet, queue)
    try:
        async with _repeating(tick, wallet.config.jobs_interval, "wallet jobs"):
            yield
    finally:
        await queue.close()
        app[keys.MESSAGING].wallet = None


PRUNE_EVERY = 300.0  # seconds between removals of old ledger markers


def _due_jobs_tick(wallet: Wallet, queue: TaskQueue) -> Callable[[], Awaitable[None]]:
    """Due wallet work (expiries, refunds, recovery) is rows in MongoDB; every interval this node
    has it done: here (in-process tasks, the default) or by a Celery worker (one tick per interval
    for the whole cluster). Either way the rows' conditional updates decide who does each."""
    next_prune = 0.0

    async def tick() -> None:
        nonlocal next_prune
        now = asyncio.get_running_loop().time()
        prune = now >= next_prune
        once_per = wallet.config.jobs_interval
        sent = await queue.enqueue(WALLET_DUE_JOBS, {"prune": prune}, once_per=once_per)
        if prune and sent:  # another node's tick this time: prune with our next one
            next_prune = now + PRUNE_EVERY

    return tick


async def miniapps_ctx(app: web.Application) -> AsyncIterator[None]:
    config, messaging = app[keys.CONFIG], app[keys.MESSAGING]
    apps, _refused = discover()  # each refused manifest is logged by discover()
    sandbox = SandboxConfig()
    if sandbox.bwrap_path is None:
        log.warning(
            "sandbox degraded: bubblewrap (bwrap) not found; mini-programs run without "
            "namespaces. Install the 'bubblewrap' package."
        )
    host = MiniappHost(
        messaging,
        apps,
        data_dir=config.data_dir / "miniapps",
        sandbox=sandbox,
        id_key=await shared_key(app[keys.DATABASE].db, "app_user_ids"),
    )
    await host.remote.load()  # registered remote apps join the catalogue before we serve
    await host.load_disabled()  # apps an admin switched off stay off across restarts
    messaging.command_router = host.route_command
    messaging.miniapps = host
    wallet = app[keys.WALLET]
    host.wallet = wallet

    async def notify_app(order: dict, name: str, extra: dict) -> None:
        await deliver_payment_event(host, order, name, extra)

    wallet.notify_app = notify_app
    app[keys.MINIAPPS] = host
    # Payment outcomes owed to apps (decided by a Celery worker, or before a crash) are
    # delivered by the gateways, which host the apps.
    outbox = functools.partial(payments.do_deliver_outbox, wallet)
    try:
        async with _repeating(outbox, config.jobs_interval, "delivering payment events"):
            yield
    finally:
        messaging.command_router = None
        messaging.miniapps = None
        wallet.notify_app = None
        await host.close()


async def calls_ctx(app: web.Application) -> AsyncIterator[None]:
    """Calls: the media relay and the ring/grace scan; on shutdown this node's calls are ended
    and recorded, and every peer connection is closed."""
    messaging = app[keys.MESSAGING]
    calls = CallService(messaging)
    messaging.calls = calls
    app[keys.CALLS] = calls
    await calls.start()
    try:
        yield
    finally:
        await calls.close()
        messaging.calls = None


async def socketio_ctx(app: web.Application) -> AsyncIterator[None]:
    sio = app[keys.SIO]
    await start_client_manager(sio)
    yield
    # Close client sockets before the database goes away under their handlers.
    for sid, _ in list(sio.manager.get_participants("/", None)):
        await sio.disconnect(sid)


def create_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=config.max_body_bytes)
    app[keys.CONFIG] = config
    app[keys.APIS] = APIS
    sio = build_socketio(config)
    app[keys.SIO] = sio
    sio.register_namespace(ChatNamespace(app, keys.MESSAGING))
    sio.attach(app)
    app.cleanup_ctx.extend(
        [
            database_ctx,
            infrastructure_ctx,
            domains_ctx,
            wallet_ctx,
            miniapps_ctx,
            calls_ctx,
            socketio_ctx,
        ]
    )
    for api in APIS:
        api.register(app, authenticate_request)
    register_web(app)
    return app
