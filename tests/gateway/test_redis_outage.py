"""Redis is a helper, not a single point of failure: two nodes keep chatting while a real
redis-server is killed, and recover by themselves when it comes back on the same port."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from tests.conftest import RedisServer, base_url, node_configs, start_nodes
from tests.helpers import ApiClient, SocketClient, eventually
from tests.messaging.chat_helpers import Person, close_all, group, person

_ids = itertools.count(1)


async def _two_nodes(aiohttp_server, mongo_url, mongo_db_name, tmp_path, redis_url, **extra):
    configs = node_configs(mongo_url, mongo_db_name, tmp_path, redis_url, **extra)
    return [base_url(server) for server in await start_nodes(aiohttp_server, configs)]


async def _redis_check(api: ApiClient) -> str:
    status, body = await api.get("/readyz")
    assert status == 200, body  # Redis down is reported, never fatal
    assert body["checks"]["mongodb"] == "ok"
    return body["checks"]["redis"]


def _live_ids(p: Person, conversation_id: str) -> set[str]:
    return {
        d["message"]["id"]
        for d in p.received()
        if d["message"]["conversation_id"] == conversation_id and d["message"]["type"] == "text"
    }


def _contiguous_seq(p: Person, conversation_id: str) -> int:
    seqs = {
        d["message"]["seq"]
        for d in p.received()
        if d["message"]["conversation_id"] == conversation_id
    }
    last = 0
    while last + 1 in seqs:
        last += 1
    return last


async def _sync_all(p: Person, conversation_id: str, cursor: int) -> list[dict]:
    ack = await p.socket.call("sync", {"cursors": {conversation_id: cursor}})
    assert ack["ok"], ack
    entry = ack["conversations"][conversation_id]
    assert not entry["too_long"]
    return entry["messages"]


async def test_two_nodes_keep_chatting_through_a_redis_outage(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    redis = RedisServer(tmp_path)
    base_a, base_b = await _two_nodes(
        aiohttp_server,
        mongo_url,
        mongo_db_name,
        tmp_path,
        redis.url,
        send_rate_max=100_000,
        sync_max_messages=10_000,
    )
    on_a = [await person(base_a) for _ in range(2)]
    on_b = [await person(base_b) for _ in range(2)]
    everyone = on_a + on_b
    node_of = {p.user_id: ("a" if p in on_a else "b") for p in everyone}
    probe_a, probe_b = ApiClient(base_a), ApiClient(base_b)
    late_device: SocketClient | None = None
    try:
        conversation_id = await group(on_a[0], everyone[1:])
        assert await _redis_check(probe_a) == "ok" and await _redis_check(probe_b) == "ok"

        # Everyone talks continuously; each send records its ack and when it started/ended.
        acked: dict[str, dict[str, Any]] = {}  # message id -> {sender, started, ended}
        failures: list[Any] = []
        stop = asyncio.Event()
        clock = itertools.count()  # logical time: orders sends against kill/restart

        async def talk(p: Person) -> None:
            while not stop.is_set():
                started = next(clock)
                text = f"{p.username} {next(_ids)}"
                ack = await p.socket.call(
                    "message.send",
                    {"conversation_id": conversation_id, "client_msg_id": text, "text": text},
                )
                if not ack.get("ok"):
                    failures.append(ack)
                    return
                acked[ack["message"]["id"]] = {
                    "sender": p.user_id,
                    "started": started,
                    "ended": next(clock),
                    "seq": ack["message"]["seq"],
                }
                await asyncio.sleep(0.01)

        talkers = [asyncio.create_task(talk(p)) for p in everyone]

        async def progress(count: int) -> None:
            target = len(acked) + count
            await eventually(lambda: len(acked) >= target or failures, 30, f"{count} acks")
            assert not failures, failures

        await progress(12)
        await settle_cross_node(everyone, conversation_id, acked)

        # --- Redis dies mid-conversation -------------------------------------------------------
        redis.kill()
        killed_at = next(clock)
        # What each device would send as its sync cursor: the end of its gap-free prefix.
        cursors = {p.user_id: _contiguous_seq(p, conversation_id) for p in everyone}
        await progress(40)  # sends on both nodes keep being acked
        for probe in (probe_a, probe_b):
            assert (await _redis_check(probe)).startswith("unreachable")
        # A device connecting now is let in (presence and rate limits fall back per node).
        late_device = await on_a[1].connect_device()
        assert late_device.sio.connected
        # Keep talking across a few of the fallbacks' retries and the subscribers' back-off.
        await asyncio.sleep(2.5)
        await progress(20)
        restarting_at = next(clock)

        # --- Redis comes back on the same port; nothing is restarted ---------------------------
        redis.start()
        for probe in (probe_a, probe_b):
            await eventually(lambda probe=probe: _is_ok(probe), 20, "readyz says redis is back")
        back_at = next(clock)
        await progress(12)
        stop.set()
        await asyncio.gather(*talkers)
        assert not failures, failures

        # While Redis was down, each node delivered to its own members' sockets.
        during = [
            (mid, m)
            for mid, m in acked.items()
            if m["started"] > killed_at and m["ended"] < restarting_at
        ]
        assert len(during) >= 40
        for mid, m in during:
            same_node = [p for p in everyone if node_of[p.user_id] == node_of[m["sender"]]]
            for p in same_node:
                await eventually(
                    lambda p=p, mid=mid: mid in _live_ids(p, conversation_id), 10, "local delivery"
                )

        # Once Redis is back (and /readyz says so), cross-node delivery resumed by itself.
        after = [mid for mid, m in acked.items() if m["started"] > back_at]
        assert after
        for p in everyone:
            await eventually(
                lambda p=p: set(after) <= _live_ids(p, conversation_id), 15, "cross-node delivery"
            )

        # No acked message is lost: sync on either node returns every one, gap-free, and what
        # each person missed live is in their sync from the last seq they had before the outage.
        for p in everyone:
            messages = await _sync_all(p, conversation_id, 0)
            seqs = [m["seq"] for m in messages]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            assert set(acked) <= {m["id"] for m in messages}
        for p in everyone:
            missed = await _sync_all(p, conversation_id, cursors[p.user_id])
            got = _live_ids(p, conversation_id) | {m["id"] for m in missed}
            assert set(acked) <= got
    finally:
        if late_device is not None:
            await late_device.close()
        await close_all(everyone)
        await probe_a.close()
        await probe_b.close()
        redis.kill()


async def _is_ok(probe: ApiClient) -> bool:
    return await _redis_check(probe) == "ok"


async def settle_cross_node(everyone: list[Person], conversation_id: str, acked: dict) -> None:
    """Every message acked so far reached every member, on both nodes."""
    ids = set(acked)
    for p in everyone:
        await eventually(
            lambda p=p: ids <= _live_ids(p, conversation_id), 10, "delivery before the outage"
        )


async def test_removed_member_cannot_read_on_a_node_that_missed_the_invalidation(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    """Node B cached the member list; the removal happens on node A while Redis is down, so its
    invalidation never reaches B. Once Redis is back B re-validates (not only after the cache's
    age bound): the removed member can no longer read, send or receive there."""
    redis = RedisServer(tmp_path)
    base_a, base_b = await _two_nodes(aiohttp_server, mongo_url, mongo_db_name, tmp_path, redis.url)
    owner = await person(base_a)
    removed, stays = await person(base_b), await person(base_b)
    probe_b = ApiClient(base_b)
    try:
        conversation_id = await group(owner, [removed, stays])
        history = f"/api/v1/conversations/{conversation_id}/messages"
        assert (await removed.api.get(history))[0] == 200  # node B caches the member list
        await stays.send(conversation_id, "before")

        redis.kill()
        status, _ = await owner.api.delete(
            f"/api/v1/conversations/{conversation_id}/members/{removed.user_id}"
        )
        assert status == 204  # the removal itself does not need Redis
        redis.start()
        await eventually(lambda: _is_ok(probe_b), 20, "node B's subscribers are back")

        # Well inside the cache's 30 s age bound: B re-validated on reconnect.
        async def refused() -> bool:
            status, body = await removed.api.get(history)
            return status == 403 and body["error"]["code"] == "not_a_member"

        await eventually(refused, 5, "the removed member is refused on node B")
        ack = await removed.socket.call(
            "message.send",
            {"conversation_id": conversation_id, "client_msg_id": "x", "text": "still here?"},
        )
        assert ack["error"]["code"] == "not_a_member"
        await stays.send(conversation_id, "after")
        await eventually(lambda: "after" in stays.texts(conversation_id), 5, "own delivery")
        await eventually(lambda: "after" in owner.texts(conversation_id), 10, "cross-node")
        assert "after" not in removed.texts(conversation_id)
    finally:
        await close_all([owner, removed, stays])
        await probe_b.close()
        redis.kill()
