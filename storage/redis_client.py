"""Redis as a helper, never a single point of failure: short timeouts and a per-node fallback.

Every Redis-backed piece (pub/sub, rate limits, replay guards, presence, the Socket.IO manager)
opens its client with ``connect_redis`` — short connect/read timeouts and one immediate retry
(a pooled connection left over from before a Redis restart fails once, the retry reconnects),
instead of redis-py's default of ten retries with back-off, which would hold every send for
seconds while Redis is down.

``RedisHealth`` is the small circuit breaker they share the shape of: after a failure the caller
uses its per-node fallback and only tries Redis again ``RETRY_AFTER`` seconds later, so a node
whose Redis is unreachable (or black-holed) does not pay a timeout on every request; the outage
is logged once when it starts, every ``LOG_EVERY`` seconds while it lasts, and once when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT = 0.5  # seconds to open a connection to Redis
COMMAND_TIMEOUT = 1.0  # seconds to wait for one reply
RETRY_AFTER = 1.0  # seconds a failed backend is left alone before the next try
LOG_EVERY = 30.0  # seconds between "still unreachable" warnings
PING_EVERY = 5.0  # seconds of silence after which a subscriber pings (a dead peer is noticed)
BACKOFF_MIN = 0.2  # seconds before a subscriber's first reconnection attempt
BACKOFF_MAX = 5.0  # seconds between attempts, at most
# Connections one client may open; past them a command waits up to POOL_WAIT for a free one (a
# burst — 200 people connecting at once — queues instead of failing with "Too many connections").
POOL_CONNECTIONS = 100
POOL_WAIT = 2.0

# What "Redis is unreachable" looks like (a ResponseError is a bug, not an outage: it raises).
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    TimeoutError,
)


def redis_options(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``redis.asyncio.Redis.from_url``: short timeouts, one retry."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    options: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": COMMAND_TIMEOUT,
        "retry": Retry(NoBackoff(), 1),
    }
    options.update(overrides)
    return options


def connect_redis(url: str, **overrides: Any):
    """A ``redis.asyncio.Redis`` client for ``url`` with ``redis_options``, on a blocking pool
    of ``POOL_CONNECTIONS`` (``max_connections``/``pool_wait`` in ``overrides`` change it)."""
    import redis.asyncio as redis

    size = overrides.pop("max_connections", POOL_CONNECTIONS)
    wait = overrides.pop("pool_wait", POOL_WAIT)
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=size, timeout=wait, **redis_options(**overrides)
    )
    return redis.Redis.from_pool(pool)  # closing the client closes its pool


async def close_redis(client) -> None:
    """Close a client and its pool, best effort: a connection that does not close in time
    (a loaded or unreachable Redis) is dropped, never an error of the shutdown it is part of."""
    try:
        await client.aclose()
    except OUTAGE_ERRORS as exc:
        log.info("closing a Redis client: %s (its connections are dropped)", exc)


class RedisHealth:
    """Whether one Redis user may try Redis now, and its outage log lines."""

    def __init__(self, what: str, retry_after: float = RETRY_AFTER) -> None:
        self.what = what
        self.retry_after = retry_after
        self.down_since: float | None = None
        self._retry_at = 0.0
        self._logged_at = 0.0

    @property
    def up(self) -> bool:
        return self.down_since is None

    def may_try(self) -> bool:
        """True when Redis is up; while it is down, True for one caller (the probe) every
        ``retry_after`` seconds — the others use their fallback meanwhile, rather than each
        waiting for a connection timeout of its own."""
        if self.down_since is None:
            return True
        now = time.monotonic()
        if now < self._retry_at:
            return False
        self._retry_at = now + self.retry_after
        return True

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._retry_at = now + self.retry_after
        if self.down_since is None:
            self.down_since = self._logged_at = now
            log.warning(
                "%s: Redis unreachable (%s: %s); falling back to this node alone",
                self.what,
                type(exc).__name__,
                exc,
            )
        elif now - self._logged_at >= LOG_EVERY:
            self._logged_at = now
            log.warning(
                "%s: Redis still unreachable after %.0f s (%s)",
                self.what,
                now - self.down_since,
                type(exc).__name__,
            )

    def succeeded(self) -> bool:
        """Note a success; True when it ends an outage."""
        if self.down_since is None:
            return False
        log.warning(
            "%s: Redis reachable again after %.1f s", self.what, time.monotonic() - self.down_since
        )
        self.down_since = None
        return True

    async def run(
        self, on_redis: Callable[[], Awaitable[T]], fallback: Callable[[], Awaitable[T]]
    ) -> T:
        """``on_redis()`` when Redis may be tried and answers, else ``fallback()``."""
        if self.may_try():
            try:
                result = await on_redis()
            except OUTAGE_ERRORS as exc:
                self.failed(exc)
            else:
                self.succeeded()
                return result
        return await fallback()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def subscriber_events(
    url: str,
    channels: Callable[[], Iterable[str]],
    health: RedisHealth,
    on_pubsub: Callable[[Any], None] = lambda pubsub: None,
) -> AsyncIterator[tuple[str, str, Any]]:
    """A subscriber that reconnects by itself, with back-off, for as long as it is iterated.

    Yields ``("ready", "", reconnected)`` each time every channel of ``channels()`` is confirmed
    subscribed — ``reconnected`` is True after a lost connection: whatever was published
    meanwhile is gone, and the caller must assume it missed it — and ``("message", channel,
    data)`` for each message. ``on_pubsub`` gets the live ``PubSub`` once the caller has handled
    "ready" (to subscribe more channels on it) and None when it is lost.

    redis-py would reconnect and re-subscribe silently inside a read; here it must not (no
    retries on this client), so that a lost connection is always seen and reported.
    """
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    client = connect_redis(url, retry=Retry(NoBackoff(), 0))
    delay, lost = BACKOFF_MIN, False
    try:
        while True:
            pubsub = client.pubsub()
            try:
                wanted = {_text(c) for c in channels()}
                await pubsub.subscribe(*wanted)
                confirmed: set[str] = set()
                ready = False
                heard = time.monotonic()
                while True:
                    item = await pubsub.get_message(timeout=PING_EVERY)
                    now = time.monotonic()
                    if item is None:
                        if now - heard > 2 * PING_EVERY + COMMAND_TIMEOUT:
                            raise RedisTimeoutError("the subscriber's pings went unanswered")
                        await pubsub.ping()
                        continue
                    heard = now
                    kind = item["type"]
                    if kind == "message":
                        yield "message", _text(item["channel"]), item["data"]
                    elif kind == "subscribe" and not ready:
                        confirmed.add(_text(item["channel"]))
                        if confirmed >= wanted:
                            ready, delay = True, BACKOFF_MIN
                            health.succeeded()
                            # The caller re-validates what it may have missed first, and only
                            # then is the connection announced as live.
                            yield "ready", "", lost
                            on_pubsub(pubsub)
                            # Channels added while this connection was being set up.
                            added = {_text(c) for c in channels()} - wanted
                            if added:
                                await pubsub.subscribe(*added)
            except asyncio.CancelledError:
                raise
            except OUTAGE_ERRORS as exc:
                health.failed(exc)
            except Exception:
                log.exception("%s: the Redis subscriber failed; reconnecting", health.what)
            finally:
                on_pubsub(None)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            lost = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()
