"""What an operator sees of a running gateway: ``GET /metrics`` and the log context of requests.

- ``metrics_ctx`` (a ``cleanup_ctx``, before the database opens) creates the process's
  ``Metrics`` on ``keys.METRICS``; the composition root hands it to the domains. It also counts
  the ``message.new`` deliveries of this node's Socket.IO manager (``count_deliveries``) and,
  with ``METRICS_PORT``, serves ``/metrics`` on that second listener only.
- ``register_metrics`` adds ``GET /metrics`` to the main app unless ``METRICS_PORT`` moves it;
  with ``METRICS_TOKEN`` a scrape needs ``Authorization: Bearer <token>``. It is a plain route,
  not part of the JSON API (nor of /openapi.json): Prometheus' text format.
- ``queue_depth_ctx`` refreshes the task-queue depth gauges from MongoDB (and Redis with Celery)
  every ``JOBS_INTERVAL``.
- ``install_request_context``: every HTTP request gets an id (the client's ``X-Request-ID`` when
  it is a sane one, else a new one), echoed in the response's ``X-Request-ID`` and carried by
  every log record written while it is handled (``storage.logs``).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import socketio
from aiohttp import web
from socketio.async_pubsub_manager import AsyncPubSubManager

from gateway import keys
from gateway.errors import error_middleware
from gateway.web import ROUTE_PREFIX
from messaging.store import push_outbox
from storage.config import Config
from storage.errors import AppError
from storage.logs import request_context
from storage.metrics import CONTENT_TYPE, Metrics
from storage.mongo import count_up_to, now_ms
from storage.redis_client import close_redis, connect_redis
from storage.tasks import QUEUE_NAME, repeating
from wallet.store import ledger_txns, payment_orders, red_packet_claims, red_packets, transfers

log = logging.getLogger(__name__)
access_log = logging.getLogger("aetherial.access")

METRICS_PATH = "/metrics"
# Named like the web client's pages: not API, so not in /openapi.json (gateway.web.is_web_route).
METRICS_ROUTE = ROUTE_PREFIX + "metrics"
DELIVERED_EVENT = "message.new"
QUEUE_DEPTH_CAP = 100_000  # rows counted per collection and round, at most
QUEUE_DEPTH_MIN_INTERVAL = 1.0  # seconds: tests run JOBS_INTERVAL far below what a scrape needs

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID = web.RequestKey("request_id", str)
# What we accept from a client (or a proxy) as its request id: short, and nothing that could
# forge a log line or a header.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


# Due rows per job collection: what the next scan would find (the same conditions as the stores'
# ``get_due``/``get_stuck``). Mail and exports rows have the push outbox's shape (``due_at`` is
# schedule and lease); a collection not created yet counts 0.
def _due_at(now: int) -> dict[str, Any]:
    return {"due_at": {"$lte": now}}


DUE_ROWS: dict[str, list[tuple[str, Callable[[int], dict[str, Any]]]]] = {
    "push": [(push_outbox.COLLECTION, _due_at)],
    "mail": [("mail_outbox", _due_at)],
    "exports": [("exports", _due_at)],
    "wallet": [
        (transfers.COLLECTION, lambda now: {"status": "pending", "expires_at": {"$lte": now}}),
        (red_packets.COLLECTION, lambda now: {"status": "open", "expires_at": {"$lte": now}}),
        (
            payment_orders.COLLECTION,
            lambda now: {"status": "requested", "expires_at": {"$lte": now}},
        ),
        (
            payment_orders.COLLECTION,
            lambda now: {"status": "authorized", "hold_expires_at": {"$lte": now}},
        ),
        (
            ledger_txns.COLLECTION,
            lambda now: {"status": {"$in": ["pending", "applied"]}, "lease_until": {"$lt": now}},
        ),
        (
            red_packet_claims.COLLECTION,
            lambda now: {"status": "claiming", "lease_until": {"$lt": now}},
        ),
    ],
}


# -- GET /metrics ------------------------------------------------------------------------------


def _check_token(request: web.Request, token: str | None) -> None:
    if token is None:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if not header:
        raise AppError("missing_token", "send 'Authorization: Bearer <METRICS_TOKEN>'", status=401)
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise AppError("invalid_token", "this is not the metrics token", status=401)


def _exposition(metrics: Metrics) -> web.Response:
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


def register_metrics(app: web.Application) -> None:
    """``GET /metrics`` on the main port, unless ``METRICS_PORT`` serves it elsewhere (then
    the main port answers 404 like for any unknown path)."""
    config = app[keys.CONFIG]
    if config.metrics_port is not None:
        return

    async def scrape(request: web.Request) -> web.Response:
        _check_token(request, config.metrics_token)
        return _exposition(request.app[keys.METRICS])

    app.router.add_get(METRICS_PATH, scrape, name=METRICS_ROUTE)


@contextlib.asynccontextmanager
async def _side_listener(config: Config, metrics: Metrics) -> AsyncIterator[None]:
    """``/metrics`` alone, on ``METRICS_PORT`` of the same host (a port a firewall or the
    container network keeps for Prometheus)."""

    async def scrape(request: web.Request) -> web.Response:
        _check_token(request, config.metrics_token)
        return _exposition(metrics)

    side = web.Application(middlewares=[error_middleware])
    side.router.add_get(METRICS_PATH, scrape)
    runner = web.AppRunner(side, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.metrics_port).start()
        log.info("metrics on http://%s:%d%s", config.host, config.metrics_port, METRICS_PATH)
        yield
    finally:
        await runner.cleanup()


async def metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """The process's metrics, before anything that reports to them is opened."""
    config = app[keys.CONFIG]
    metrics = Metrics()
    app[keys.METRICS] = metrics
    count_deliveries(app[keys.SIO].manager, metrics)
    if config.metrics_port is None:
        yield
        return
    async with _side_listener(config, metrics):
        yield


# -- deliveries --------------------------------------------------------------------------------


def _sockets_in(manager: socketio.AsyncManager, namespace: str | None, room: Any, skip: Any) -> int:
    """How many sockets of this node an emit to ``room`` reaches, without building the list
    the emit itself builds. ``message.new`` goes to ``user:<id>`` rooms, which never share a
    socket, so the rooms' sizes add up."""
    rooms = manager.rooms.get(namespace or "/")
    if not rooms or room is None:
        return 0
    names = [room] if isinstance(room, str) else room
    total = sum(len(rooms[name]) for name in names if name in rooms)
    skipped = skip if isinstance(skip, list) else [skip] if skip else []
    return max(0, total - sum(1 for sid in skipped if any(sid in rooms.get(n, ()) for n in names)))


def count_deliveries(manager: socketio.AsyncManager, metrics: Metrics) -> None:
    """Count each ``message.new`` handed to this node's sockets.

    python-socketio has no hook for it, so the manager's local emit is wrapped on this one
    instance: ``emit`` of the in-memory manager, or ``_handle_emit`` of a Redis manager — which
    every emit of this node and every one received from other nodes and the worker goes
    through — so over a cluster each copy is counted once, by the node holding the socket."""
    if isinstance(manager, AsyncPubSubManager):
        handle = manager._handle_emit

        async def handle_emit(message: dict[str, Any]) -> None:
            if message.get("event") == DELIVERED_EVENT:
                room, skip = message.get("room"), message.get("skip_sid")
                metrics.messages_delivered(
                    _sockets_in(manager, message.get("namespace"), room, skip)
                )
            await handle(message)

        manager._handle_emit = handle_emit  # type: ignore[method-assign]
        return
    emit = manager.emit

    async def counted_emit(event: str, data: Any, namespace: str, room: Any = None, **kw: Any):
        if event == DELIVERED_EVENT:
            target = kw.get("to") or room
            metrics.messages_delivered(_sockets_in(manager, namespace, target, kw.get("skip_sid")))
        return await emit(event, data, namespace, room=room, **kw)

    manager.emit = counted_emit  # type: ignore[method-assign]


# -- task queue depth --------------------------------------------------------------------------


async def measure_queues(app: web.Application, redis: Any = None) -> dict[str, int]:
    """Count the waiting work now and put it in the gauges; returns the counts."""
    db, metrics = app[keys.DATABASE].db, app[keys.METRICS]
    now = now_ms()
    depths: dict[str, int] = {}
    for queue, sources in DUE_ROWS.items():
        depths[queue] = 0
        for collection, query in sources:
            depths[queue] += await count_up_to(db[collection], query(now), QUEUE_DEPTH_CAP)
    if redis is not None:
        depths["celery"] = await redis.llen(QUEUE_NAME)
    for queue, waiting in depths.items():
        metrics.queue_depth(queue, waiting)
    return depths


async def queue_depth_ctx(app: web.Application) -> AsyncIterator[None]:
    """Every JOBS_INTERVAL (at least a second), how much background work is waiting."""
    config = app[keys.CONFIG]
    redis = connect_redis(config.redis_url) if config.tasks_backend == "celery" else None
    interval = max(config.jobs_interval, QUEUE_DEPTH_MIN_INTERVAL)

    async def measure() -> None:
        await measure_queues(app, redis)

    # MongoDB or Redis away: one warning line a round, and the gauges keep their last value.
    try:
        async with repeating(measure, interval, "measuring the task queues", quiet=True):
            yield
    finally:
        if redis is not None:
            await close_redis(redis)


# -- request ids -------------------------------------------------------------------------------


@web.middleware
async def request_context_middleware(request: web.Request, handler) -> web.StreamResponse:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = given if _SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    with request_context(request_id):
        started, status = time.perf_counter(), 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # a redirect, or what the error middleware let through
            status = exc.status
            raise
        finally:
            # run.py turns aiohttp's access log off; at DEBUG this line stands in for it, with
            # the request's id and caller (query strings are masked like any message).
            if access_log.isEnabledFor(logging.DEBUG):
                took = (time.perf_counter() - started) * 1000
                access_log.debug(
                    "%s %s -> %d (%.1f ms)", request.method, request.path_qs, status, took
                )


async def _echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id


def install_request_context(app: web.Application) -> None:
    """Outermost middleware (error responses carry the id too), and the response header."""
    app.middlewares.insert(0, request_context_middleware)
    app.on_response_prepare.append(_echo_request_id)
