"""App timers through the platform: real gateways sharing MongoDB, the timekeeper test app
running as a real sandboxed process, real Socket.IO clients. Timers fire at or after their
time, in the chat; survive the node that scheduled them; are tried again when a firing fails;
and with two nodes, each fires exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from gateway.keys import MINIAPPS
from miniapps.host.registry import discover
from miniapps.host.store.app_timers import AppTimers
from storage.mongo import now_ms
from tests.conftest import base_url, make_config, node_configs, start_nodes
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, group, people
from tests.miniapps.conftest import APPS_DIR

APP = "timekeeper"
JOBS_INTERVAL = 0.05


def add_timekeeper(*servers) -> None:
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    for server in servers:
        server.app[MINIAPPS].apps[APP] = apps[APP]


async def chat_with_timekeeper(base: str):
    ann, bea = await people(base, 2)
    cid = await group(ann, [bea], "Timers")
    status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
    assert status == 201, body
    return ann, bea, cid


async def command(person, cid: str, text: str) -> None:
    ack = await person.socket.call(
        "message.send", {"conversation_id": cid, "client_msg_id": text, "text": text}
    )
    assert ack == {"ok": True, "routed_to": {"app_id": APP}}, ack


def app_texts(person, cid: str, prefix: str) -> list[str]:
    return [t for t in person.texts(cid) if t.startswith(prefix)]


async def test_a_reminder_reaches_the_chat_at_its_time(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    from gateway.app import create_app

    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", jobs_interval=JOBS_INTERVAL)
    server = await aiohttp_server(create_app(config))
    add_timekeeper(server)
    ann, bea, cid = await chat_with_timekeeper(base_url(server))
    try:
        await command(ann, cid, "/remind r1 1 stand up")
        (set_reply,) = await eventually(lambda: app_texts(bea, cid, "timekeeper: set"))
        due_at = int(set_reply.rsplit(" ", 1)[1])
        (reminder,) = await eventually(lambda: app_texts(bea, cid, "reminder:"), what="reminder")
        assert reminder == "reminder: stand up (early: False)"
        message = next(d["message"] for d in bea.received() if d["message"].get("text") == reminder)
        assert message["sender_id"] == f"app:{APP}"
        # cancelled before its time: never fires
        await command(ann, cid, "/remind r2 30 never")
        await eventually(lambda: len(app_texts(bea, cid, "timekeeper: set")) == 2)
        await command(ann, cid, "/unremind r2")
        await eventually(lambda: app_texts(bea, cid, "timekeeper: cancelled True"))
        timers = AppTimers(server.app[MINIAPPS].messaging.db)
        assert await timers.count_live(APP) == 0
        assert now_ms() >= due_at
    finally:
        await close_all([ann, bea])


async def test_a_failed_firing_is_tried_again(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    from gateway.app import create_app

    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", jobs_interval=JOBS_INTERVAL)
    server = await aiohttp_server(create_app(config))
    add_timekeeper(server)
    ann, bea, cid = await chat_with_timekeeper(base_url(server))
    try:
        await command(ann, cid, "/flaky 0.2")
        texts = await eventually(lambda: app_texts(bea, cid, "flaky:"), what="second firing")
        assert texts == ["flaky: fired on attempt 2"]
        timers = AppTimers(server.app[MINIAPPS].messaging.db)
        # The firing's text reaches the chat while its handler runs; the timer is done (deleted)
        # once the handler has answered — a moment later.
        await eventually(lambda: _none_live(timers), what="the timer done after its second firing")
        assert app_texts(bea, cid, "flaky:") == ["flaky: fired on attempt 2"]  # and no third
    finally:
        await close_all([ann, bea])


async def test_a_timer_outlives_the_node_that_scheduled_it(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path
):
    """Scheduled on node A, which stops before the timer is due; node B, started afterwards
    on the same database, fires it (late, never early)."""
    config_a, config_b = node_configs(
        mongo_url, mongo_db_name, tmp_path, redis_url, jobs_interval=JOBS_INTERVAL
    )
    (node_a,) = await start_nodes(aiohttp_server, [config_a])
    add_timekeeper(node_a)
    ann, bea, cid = await chat_with_timekeeper(base_url(node_a))
    try:
        await command(ann, cid, "/remind later 2 after the restart")
        await eventually(lambda: app_texts(bea, cid, "timekeeper: set"))
    finally:
        await close_all([ann, bea])
    await node_a.close()
    (node_b,) = await start_nodes(aiohttp_server, [config_b])
    add_timekeeper(node_b)
    timers = AppTimers(node_b.app[MINIAPPS].messaging.db)
    await eventually(lambda: _none_live(timers), timeout=15, what="the timer fired")
    found = (
        await node_b.app[MINIAPPS]
        .messaging.db["messages"]
        .find_one({"conversation_id": cid, "text": {"$regex": "^reminder: after the restart"}})
    )
    assert found is not None and found["text"].endswith("(early: False)")


async def _none_live(timers: AppTimers) -> bool:
    return await timers.count_live(APP) == 0


TIMERS = 1000


@pytest.mark.xdist_group("heavy")  # CPU-heavy: never beside another heavy test
async def test_two_nodes_fire_each_of_1000_timers_exactly_once(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path
):
    configs = node_configs(
        mongo_url, mongo_db_name, tmp_path, redis_url, jobs_interval=JOBS_INTERVAL
    )
    nodes = await start_nodes(aiohttp_server, configs)
    add_timekeeper(*nodes)
    ann, bea, cid = await chat_with_timekeeper(base_url(nodes[0]))
    host = nodes[0].app[MINIAPPS]
    await host.identity.app_user(APP, ann.user_id)
    try:
        # 1,000 timers due within a few seconds, written as the capability writes them
        # (``AppTimers.put_timer``, the store call of ``timers.schedule``, whose checks and
        # cap the other tests here exercise through live invocations): this test is about the
        # firing — two nodes, each timer exactly once — and scheduling 1,000 through
        # invocations first would only make it slower.
        scheduled: dict[str, int] = {}
        store = AppTimers(host.messaging.db)
        start = now_ms()

        async def schedule(index: int) -> None:
            key, due_at = f"k{index}", start + 3000 + (index * 3) % 3000
            await store.put_timer(
                APP,
                key,
                name="record",
                due_at=due_at,
                payload={},
                user_id=ann.user_id,
                conversation_id=cid,
                now=start,
            )
            scheduled[key] = due_at

        for first in range(0, TIMERS, 100):
            await asyncio.gather(*(schedule(i) for i in range(first, min(first + 100, TIMERS))))
        assert len(scheduled) == TIMERS
        timers = AppTimers(host.messaging.db)
        began = time.monotonic()
        await eventually(lambda: _none_live(timers), timeout=100, what="every timer fired")
        took = time.monotonic() - began

        found = host.messaging.db["messages"].find(
            {"conversation_id": cid, "text": {"$regex": "^fired "}}
        )
        firings = []
        async for doc in found:
            _, key, due_at, at, attempt = doc["text"].split()
            firings.append(
                {"key": key, "due_at": int(due_at), "at": int(at), "attempt": int(attempt)}
            )
        per_key = Counter(f["key"] for f in firings)
        lost = [k for k in scheduled if per_key[k] == 0]
        # Two runs of one firing (same key, same attempt): two nodes both fired it — what the
        # claims' fencing rules out. A later attempt of a key runs only after an earlier firing
        # did not finish (the app raised, timed out or was killed mid-handler: at-least-once,
        # sdk/timers.py); on a quiet machine there are none, under heavy load a few.
        doubled = [
            k for k, n in Counter((f["key"], f["attempt"]) for f in firings).items() if n > 1
        ]
        refired = [k for k, n in per_key.items() if n > 1]
        early = [f for f in firings if f["at"] < f["due_at"]]
        lateness = sorted(f["at"] - f["due_at"] for f in firings)
        print(
            f"\n2 nodes, {TIMERS} timers: fired {len(per_key)} of {TIMERS} ({len(firings)} runs), "
            f"lost {len(lost)}, doubled {len(doubled)}, early {len(early)}, re-fired after an "
            f"unfinished firing {len(refired)}, max lateness {lateness[-1]} ms, median lateness "
            f"{lateness[len(lateness) // 2]} ms (all done {took:.1f} s after scheduling)"
        )
        assert (len(per_key), lost, doubled, early) == (TIMERS, [], [], [])
        assert all(firing["due_at"] == scheduled[firing["key"]] for firing in firings)
        # both nodes fired a share: each ran the app
        for node in nodes:
            assert APP in node.app[MINIAPPS].status()
    finally:
        await close_all([ann, bea])
