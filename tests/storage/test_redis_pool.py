"""A burst of Redis commands larger than a client's pool waits for a free connection instead of
failing with redis-py's "Too many connections" (which the callers would take for an outage)."""

from __future__ import annotations

import asyncio

from storage.redis_client import connect_redis


async def test_a_burst_bigger_than_the_pool_queues(redis_url):
    client = connect_redis(redis_url, max_connections=4)
    try:
        await client.delete("burst")
        values = await asyncio.gather(*(client.incr("burst") for _ in range(300)))
        assert sorted(values) == list(range(1, 301))
        assert int(await client.get("burst")) == 300
    finally:
        await client.delete("burst")
        await client.aclose()


async def test_past_the_wait_it_is_an_outage_not_a_hang(redis_url):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from storage.redis_client import OUTAGE_ERRORS

    client = connect_redis(redis_url, max_connections=1, pool_wait=0.2)
    try:
        # The pool's one connection is taken: the next command cannot get one in time.
        held = await client.connection_pool.get_connection()
        try:
            await client.ping()
        except RedisConnectionError as exc:
            assert isinstance(exc, OUTAGE_ERRORS)
        else:
            raise AssertionError("a command got a connection the pool did not have")
        finally:
            await client.connection_pool.release(held)
        assert await client.ping()  # and it is back once the connection is free
    finally:
        await client.aclose()


async def test_closing_a_client_whose_redis_died_is_not_an_error(tmp_path):
    """Shutdown closes every Redis client; one whose server vanished (or is too loaded to
    answer in time) is dropped quietly, never an error of the shutdown."""
    from storage.redis_client import close_redis
    from tests.conftest import RedisServer

    server = RedisServer(tmp_path)  # started
    try:
        client = connect_redis(server.url)
        await asyncio.gather(*(client.incr("n") for _ in range(20)))  # pooled connections
        server.kill()
        await close_redis(client)  # no exception
    finally:
        server.stop()
