"""The app factory: ``create_app(config)`` is used by ``run.py`` and by the tests alike."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from gateway import keys
from gateway.compose import build_messaging, build_wallet, close_messaging
from gateway.errors import ServerLogger, error_middleware
from gateway.event_sink import SocketEvents
from gateway.observability import (
    install_request_context,
    metrics_ctx,
    queue_depth_ctx,
    register_metrics,
)
from gateway.realtime import ChatNamespace, build_socketio, start_client_manager
from gateway.routes import APIS
from gateway.web import register_web
from messaging.actions import push, search
from messaging.actions.auth import Auth, authenticate, do_sweep_expired
from messaging.actions.data_export import do_run_due as run_due_exports
from messaging.actions.mail import do_send_due as send_due_mail
from messaging.actions.mail import do_sweep as sweep_mail
from messaging.calls.service import CallService
from messaging.store import INDEXES as MESSAGING_INDEXES
from messaging.webpush import WebPush, WebPushSender, load_vapid_key
from miniapps.host import account_data as host_account_data
from miniapps.host.capabilities import calls as app_calls
from miniapps.host.capabilities import notifications as app_notifications
from miniapps.host.host import MiniappHost
from miniapps.host.payments import deliver_payment_event
from miniapps.host.registry import discover
from miniapps.host.sandbox import SandboxConfig
from miniapps.host.store import INDEXES as MINIAPP_INDEXES
from miniapps.host.timers import TimerFiring
from storage import tasks
from storage.config import Config
from storage.errors import AppError, ConfigError
from storage.mail import MailQueue, make_mailer
from storage.mongo import ensure_indexes, open_database
from storage.presence import make_presence
from storage.pubsub import make_pubsub
from storage.ratelimit import make_rate_limiter
from storage.secrets import shared_key
from storage.tasks import PUSH_SEND_DUE, WALLET_DUE_JOBS, TaskQueue, make_task_queue, repeating
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


def check_sandbox(config: Config, degraded: bool) -> None:
    """Production never runs mini-programs unsandboxed by accident: without a usable bubblewrap
    it refuses to start unless MINIAPPS_ALLOW_UNSANDBOXED says that is intended. Development
    only warns, so a laptop without bubblewrap still runs everything."""
    if not degraded:
        return
    if config.production and not config.miniapps_allow_unsandboxed:
        raise ConfigError(
            "the mini-program sandbox is degraded (no usable bubblewrap 'bwrap' was found on "
            "PATH), and AETHERIAL_ENV=production does not run mini-programs without it. "
            "Install bubblewrap (in a container, grant what docker-compose.yml grants the "
            "gateway), or set MINIAPPS_ALLOW_UNSANDBOXED=1 to run them unsandboxed anyway."
        )
    log.warning(
        "sandbox degraded: bubblewrap (bwrap) not found; mini-programs run without "
        "namespaces%s. Install the 'bubblewrap' package.",
        " (MINIAPPS_ALLOW_UNSANDBOXED=1)" if config.production else "",
    )


async def sandbox_ctx(app: web.Application) -> AsyncIterator[None]:
    """First, before anything is opened: how mini-programs will be isolated, and whether this
    node may run them that way (``check_sandbox``)."""
    sandbox = SandboxConfig()
    check_sandbox(app[keys.CONFIG], sandbox.degraded)
    app[keys.SANDBOX] = sandbox
    yield


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    listeners = [app[keys.METRICS].store_timer]  # store round trips, for /metrics
    async with open_database(app[keys.CONFIG], listeners) as database:
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
    messaging = build_messaging(
        config,
        app[keys.DATABASE].db,
        limiter=app[keys.LIMITER],
        pubsub=app[keys.PUBSUB],
        presence=app[keys.PRESENCE],
        events=events,
        metrics=app[keys.METRICS],
    )
    await messaging.start()
    app[keys.MESSAGING] = messaging

    async def sweep() -> None:
        """Expired sessions and refresh tokens are refused already; this deletes them."""
        removed = await do_sweep_expired(messaging)
        if removed:
            log.info("swept %d expired sessions and refresh tokens", removed)

    try:
        async with repeating(sweep, SWEEP_INTERVAL, "sweeping expired sessions", SWEEP_FIRST_AFTER):
            yield
    finally:
        await close_messaging(messaging)
        await events.close()


async def push_ctx(app: web.Application) -> AsyncIterator[None]:
    """Web Push: notifications become push outbox rows (a notification hook), sent by the task
    ``PUSH_SEND_DUE`` here (in-process tasks) or on a Celery worker; every interval a tick has
    what is due sent (retries, rows a crashed node left). Production without VAPID_PRIVATE_KEY:
    off, with a warning (a key generated per node would not match the other nodes')."""
    config, messaging = app[keys.CONFIG], app[keys.MESSAGING]
    key = load_vapid_key(config)
    if key is None:
        log.warning(
            "Web Push is off: set VAPID_PRIVATE_KEY (a P-256 key, the same on every node and "
            "worker) to send notifications to browsers with the tab closed"
        )
        yield
        return
    if config.production and config.vapid_subject.endswith("@localhost"):
        log.warning("VAPID_SUBJECT is %s: push services may refuse it", config.vapid_subject)
    sender = WebPushSender(key, config.vapid_subject)
    queue = make_task_queue(config)
    queue.register(PUSH_SEND_DUE, functools.partial(push.do_send_due, messaging, sender))
    web_push = WebPush(sender, functools.partial(queue.enqueue, PUSH_SEND_DUE))
    hook = functools.partial(push.do_enqueue_push, messaging)
    messaging.web_push = web_push
    messaging.notification_hooks.append(hook)

    async def tick() -> None:
        await queue.enqueue(PUSH_SEND_DUE, once_per=config.jobs_interval)

    try:
        async with repeating(tick, config.jobs_interval, "sending Web Pushes"):
            yield
    finally:
        # The hook stays: notifications derived while messaging drains still get their outbox
        # rows (no kick: the next tick, here or on another node, sends them).
        messaging.web_push = None
        await web_push.close()
        await queue.close()


async def mail_ctx(app: web.Application) -> AsyncIterator[None]:
    """Mail: actions write outbox rows and kick the task ``MAIL_SEND_DUE``, run here (in-process
    tasks) or on a Celery worker, never on the request path; every interval a tick sends what is
    due (retries, rows another process left), and hourly old rows and link tokens are swept.
    Where mail goes is logged once: an SMTP server (``SMTP_URL``) or ``DATA_DIR/outbox/``."""
    config, messaging = app[keys.CONFIG], app[keys.MESSAGING]
    mailer = make_mailer(config)
    if config.tasks_backend == "celery":
        log.info("mail is sent by the Celery workers (this node's setting: %s)", mailer.description)
    else:
        log.info("mail goes to %s", mailer.description)
    if config.production and not config.smtp_url:
        log.warning("SMTP_URL is unset: mail is only written to files, nobody receives it")
    queue = make_task_queue(config)
    queue.register(tasks.MAIL_SEND_DUE, functools.partial(send_due_mail, messaging, mailer))
    mail = MailQueue(mailer, functools.partial(queue.enqueue, tasks.MAIL_SEND_DUE))
    messaging.mail = mail

    async def tick() -> None:
        await queue.enqueue(tasks.MAIL_SEND_DUE, once_per=config.jobs_interval)

    async def sweep() -> None:
        await sweep_mail(messaging)

    try:
        async with (
            repeating(tick, config.jobs_interval, "sending mail"),
            repeating(sweep, SWEEP_INTERVAL, "sweeping old mail", SWEEP_FIRST_AFTER),
        ):
            yield
    finally:
        # Mail queued while messaging drains keeps its row: the next tick (here or on another
        # node) sends it.
        messaging.mail = None
        await mail.close()
        await queue.close()


async def wallet_ctx(app: web.Application) -> AsyncIterator[None]:
    """The wallet, after the mini-program host: this node hosts the apps, so it tells an app
    about its payment at once (``notify_app``), and delivers what other processes (a Celery
    worker, a node that crashed) left in the outbox. The host's payment capabilities get the
    wallet in turn: each needs the other, and the host is the one told second."""
    config, host = app[keys.CONFIG], app[keys.MINIAPPS]
    wallet = build_wallet(
        config, app[keys.MESSAGING], notify_app=functools.partial(deliver_payment_event, host)
    )
    app[keys.WALLET] = wallet
    host.wallet = wallet
    queue = make_task_queue(config)
    queue.register(WALLET_DUE_JOBS, functools.partial(run_due_jobs, wallet))
    tick = _due_jobs_tick(wallet, queue)
    outbox = functools.partial(payments.do_deliver_outbox, wallet)
    try:
        async with (
            repeating(tick, config.jobs_interval, "wallet jobs"),
            repeating(outbox, config.jobs_interval, "delivering payment events"),
        ):
            yield
    finally:
        host.wallet = None
        await queue.close()
        await wallet.ledger.close()  # the batch being written answers its callers first


async def exports_ctx(app: web.Application) -> AsyncIterator[None]:
    """Data exports (issue 21): every interval the task ``EXPORTS_RUN_DUE`` builds requested
    ZIPs, announces ready ones, expires unused ones and deletes what they leave — here
    (in-process tasks) or on a Celery worker; the rows' conditional claims decide who does each.
    After the wallet and the host: their export sections are registered by then."""
    config, messaging = app[keys.CONFIG], app[keys.MESSAGING]
    queue = make_task_queue(config)
    queue.register(tasks.EXPORTS_RUN_DUE, functools.partial(run_due_exports, messaging))

    async def tick() -> None:
        await queue.enqueue(tasks.EXPORTS_RUN_DUE, once_per=config.jobs_interval)

    try:
        async with repeating(tick, config.jobs_interval, "data export jobs"):
            yield
    finally:
        await queue.close()


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
    host = MiniappHost(
        messaging,
        apps,
        data_dir=config.data_dir / "miniapps",
        sandbox=app[keys.SANDBOX],
        id_key=await shared_key(app[keys.DATABASE].db, "app_user_ids"),
        public_url=config.public_base_url,
    )
    # Registered remote apps join the catalogue, and apps an admin switched off stay off,
    # before we serve.
    await host.load()
    # Leaving with your data: consents in exports, a deleted account's per-app ids forgotten.
    await host_account_data.attach(host)
    # notifications.request_subscription: the app hears the user's answer as an event.
    host.consent.listeners.append(
        functools.partial(app_notifications.deliver_subscription_event, host)
    )
    app[keys.MINIAPPS] = host
    try:
        yield
    finally:
        await host.close()


async def timers_ctx(app: web.Application) -> AsyncIterator[None]:
    """App timers: every node fires its share of the due ones every interval (conditional
    claims in MongoDB decide which node fires each; see miniapps/host/timers.py). In the gateway,
    not on a Celery worker: firing invokes the app, which runs here."""
    firing = TimerFiring(app[keys.MINIAPPS])
    try:
        async with repeating(firing.run_due, app[keys.CONFIG].jobs_interval, "firing app timers"):
            yield
    finally:
        await firing.close()


async def calls_ctx(app: web.Application) -> AsyncIterator[None]:
    """Calls: the media relay and the ring/grace scan; on shutdown this node's calls are ended
    and recorded, and every peer connection is closed."""
    calls = CallService(app[keys.MESSAGING])
    app[keys.CALLS] = calls
    host = app.get(keys.MINIAPPS)
    if host is not None:  # calls.start: the host starts calls and hears how they go
        host.call_service = calls
        calls.app_events = functools.partial(app_calls.deliver_call_event, host)
    await calls.start()
    try:
        yield
    finally:
        await calls.close()


async def search_ctx(app: web.Application) -> AsyncIterator[None]:
    """Search's text index, then messages stored before search existed are indexed in the
    background (once; cheap when there are none): searches meanwhile miss only those."""
    await search.ensure_index(app[keys.MESSAGING])

    async def backfill() -> None:
        try:
            await search.do_backfill(app[keys.MESSAGING])
        except Exception:
            log.exception("indexing older messages for search failed; next start tries again")

    task = asyncio.create_task(backfill())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def disconnect_sockets(app: web.Application) -> None:
    """Close every client socket (each reconnects, to another node if this one is going away).
    Run on shutdown, before aiohttp waits for open requests to finish — an open websocket would
    hold a stopping node for the whole shutdown timeout — and again at cleanup, before the
    database goes away under their handlers."""
    sio = app[keys.SIO]
    for sid, _ in list(sio.manager.get_participants("/", None)):
        await sio.disconnect(sid)


async def socketio_ctx(app: web.Application) -> AsyncIterator[None]:
    await start_client_manager(app[keys.SIO])
    yield
    await disconnect_sockets(app)


def create_app(config: Config) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=config.max_body_bytes,
        # Requests aiohttp cannot parse (a request line over 8 KiB...) are one INFO line, not an
        # ERROR traceback any anonymous client could fill the log with.
        handler_args={"logger": ServerLogger()},
    )
    app[keys.CONFIG] = config
    app[keys.APIS] = APIS
    install_request_context(app)  # X-Request-ID, and the request's id on its log records
    sio = build_socketio(config)
    app[keys.SIO] = sio
    chat = ChatNamespace(app)
    sio.register_namespace(chat)
    sio.attach(app)
    app.cleanup_ctx.extend(
        [
            sandbox_ctx,
            metrics_ctx,
            database_ctx,
            infrastructure_ctx,
            domains_ctx,
            search_ctx,
            queue_depth_ctx,
            push_ctx,
            mail_ctx,
            miniapps_ctx,
            timers_ctx,
            wallet_ctx,
            exports_ctx,
            calls_ctx,
            chat.running,
            socketio_ctx,
        ]
    )
    app.on_shutdown.append(disconnect_sockets)
    for api in APIS:
        api.register(app, authenticate_request)
    register_web(app)
    register_metrics(app)  # GET /metrics (unless METRICS_PORT serves it apart)
    return app
