"""GET /metrics against a real gateway: real Socket.IO clients, real mini-program processes, the
embedded MongoDB; what the scrape says is what the clients saw. Also its protection
(METRICS_TOKEN, METRICS_PORT) and the production rule."""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from gateway import keys
from gateway.observability import measure_queues
from miniapps.host.registry import discover
from storage.config import Config
from storage.errors import ConfigError
from storage.metrics import Metrics
from storage.mongo import Database, now_ms
from tests.conftest import _free_port, make_config, node_configs, start_nodes
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, group, people, person, settle

ROOT = Path(__file__).resolve().parent.parent.parent
APPS_DIR = ROOT / "tests" / "miniapps" / "apps"
TOKEN = "m" * 40
_ids = itertools.count(1)


def parse(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def scrape(base: str, token: str | None = None) -> dict[tuple[str, tuple], float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.get(base + "/metrics", headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        assert response.content_type == "text/plain"
        return parse(await response.text())


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def base_of(server) -> str:
    return str(server.make_url("")).rstrip("/")


# -- chat -----------------------------------------------------------------------------------------


async def test_counts_match_what_the_clients_saw(gateway):
    base = base_of(gateway)
    k, n = 4, 12
    everyone = await people(base, k)
    try:
        cid = await group(everyone[0], everyone[1:], "Counted")
        # Deliveries of one conversation follow its commit order: once everyone has this one,
        # nothing of the group's creation is still on its way.
        await everyone[0].send(cid, "warm-up")
        await settle(everyone, cid, 1)
        before = await scrape(base)
        seen_before = [len(p.received()) for p in everyone]

        await asyncio.gather(
            *(everyone[i % k].send(cid, f"counted {i}", f"m{i}") for i in range(n))
        )
        await settle(everyone, cid, n + 1)
        after = await scrape(base)
        seen = sum(len(p.received()) - b for p, b in zip(everyone, seen_before, strict=True))

        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert delta("aetherial_messages_sent_total") == n
        assert seen == n * k  # every member's one socket got every message, no more
        assert delta("aetherial_messages_delivered_total") == seen
        assert delta("aetherial_message_send_ack_seconds_count") == n
        assert delta("aetherial_message_send_ack_seconds_sum") > 0
        # group commit: the writer's batches took exactly these n sends, in one or more batches
        assert delta("aetherial_writer_batch_size_sum") == n
        assert 1 <= delta("aetherial_writer_batch_size_count") <= n
        assert value(after, "aetherial_sockets_connected") == k
        # the store was timed, by command name
        assert value(after, "aetherial_store_command_seconds_count", command="insert") >= 1
        assert value(after, "aetherial_store_command_seconds_count", command="find") >= 1

        # a retry of a stored message is not sent again
        await everyone[0].send(cid, "counted 0", "m0")
        again = await scrape(base)
        assert value(again, "aetherial_messages_sent_total") == value(
            after, "aetherial_messages_sent_total"
        )

        await everyone[-1].close()
        gone = await eventually(
            lambda: _sockets(base, k - 1), what="the socket gauge counting the closed one out"
        )
        assert value(gone, "aetherial_sockets_connected") == k - 1
    finally:
        await close_all(everyone)


async def _sockets(base: str, expected: int):
    samples = await scrape(base)
    return samples if value(samples, "aetherial_sockets_connected") == expected else None


async def test_each_node_counts_what_its_own_sockets_received(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path
):
    """Two gateways over Redis: a message sent on one reaches the other's socket through
    Socket.IO's Redis channel, and is counted there, once."""
    configs = node_configs(mongo_url, mongo_db_name, tmp_path, redis_url)
    servers = await start_nodes(aiohttp_server, configs)
    first, second = (base_of(s) for s in servers)
    ann, bob = await person(first), await person(second)
    try:
        cid = await group(ann, [bob], "Two nodes")
        await ann.send(cid, "warm-up")
        await settle([ann, bob], cid, 1)
        before = [await scrape(first), await scrape(second)]
        n = 5
        for i in range(n):
            await ann.send(cid, f"across {i}")
        await settle([ann, bob], cid, n + 1)
        after = [await scrape(first), await scrape(second)]
        delivered = [
            value(a, "aetherial_messages_delivered_total")
            - value(b, "aetherial_messages_delivered_total")
            for a, b in zip(after, before, strict=True)
        ]
        assert delivered == [n, n]  # ann's socket on the first node, bob's on the second
        sent = [
            value(a, "aetherial_messages_sent_total") - value(b, "aetherial_messages_sent_total")
            for a, b in zip(after, before, strict=True)
        ]
        assert sent == [n, 0]  # committed by the node ann sent through
    finally:
        await close_all([ann, bob])


async def test_ledger_transactions_are_counted_by_kind(gateway, api):
    await api.signup()
    base = base_of(gateway)
    before = await scrape(base)
    for amount in (500, 700):
        status, body = await api.post(
            "/api/v1/wallet/dev-topup", json={"amount": amount, "currency": "USD"}
        )
        assert status == 200, body
    after = await scrape(base)
    kinds = {labels for (name, labels) in after if name == "aetherial_ledger_transactions_total"}
    assert kinds, "no ledger transaction was counted"
    total = sum(
        value(after, "aetherial_ledger_transactions_total", **dict(labels))
        - value(before, "aetherial_ledger_transactions_total", **dict(labels))
        for labels in kinds
    )
    assert total == 2
    assert value(after, "aetherial_ledger_transactions_total", kind="dev_topup") >= 2


# -- mini-programs --------------------------------------------------------------------------------


def _world_readable(folder: Path) -> None:
    """The sandbox runs apps as an unprivileged uid: it must be able to read them."""
    for root, _dirs, files in os.walk(folder):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(Path(root) / name, 0o644)


async def _command(someone, cid: str, text: str) -> None:
    ack = await someone.socket.call(
        "message.send", {"conversation_id": cid, "client_msg_id": f"c{next(_ids)}", "text": text}
    )
    assert ack["ok"] and "routed_to" in ack, ack


async def test_mini_program_calls_errors_timeouts_and_restarts(gateway):
    host = gateway.app[keys.MINIAPPS]
    _world_readable(APPS_DIR)
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    host.apps.update({name: apps[name] for name in ("crasher", "sleeper")})
    base = base_of(gateway)
    ann, bea = await people(base, 2)
    try:
        cid = await group(ann, [bea], "Apps")
        for app_id in ("crasher", "sleeper"):
            status, body = await ann.api.post(
                f"/api/v1/conversations/{cid}/apps", json={"app_id": app_id}
            )
            assert status == 201, body

        def count(samples, name: str, app_id: str) -> float:
            return value(samples, f"aetherial_miniapp_{name}_total", app_id=app_id)

        await _command(ann, cid, "/hello")
        await eventually(lambda: [t for t in bea.texts(cid) if t.startswith("crasher: hello")])
        samples = await scrape(base)
        assert count(samples, "calls", "crasher") == 1
        assert count(samples, "errors", "crasher") == 0

        await _command(ann, cid, "/crash")  # the process dies mid-call: an error, then a restart

        async def crashed_and_restarted():
            got = await scrape(base)
            restarted = count(got, "restarts", "crasher") >= 1
            return got if count(got, "errors", "crasher") == 1 and restarted else None

        samples = await eventually(crashed_and_restarted, timeout=20)
        assert count(samples, "calls", "crasher") == 2
        assert count(samples, "timeouts", "crasher") == 0

        await _command(ann, cid, "/nap")  # sleeps past the call deadline (3 s)

        async def timed_out():
            got = await scrape(base)
            return got if count(got, "timeouts", "sleeper") == 1 else None

        samples = await eventually(timed_out, timeout=20)
        assert count(samples, "calls", "sleeper") == 1
        assert count(samples, "errors", "sleeper") == 0  # a timeout is not counted twice
    finally:
        for app_id in ("crasher", "sleeper"):
            host.apps.pop(app_id, None)
        await close_all([ann, bea])


# -- background work ------------------------------------------------------------------------------


async def test_queue_depth_counts_due_rows_and_the_celery_queue(mongo_db, redis_url):
    """``measure_queues`` alone, over a database no job loop works on (a running gateway would
    send the due rows while we look at them)."""
    import redis.asyncio as aioredis

    now = now_ms()
    await mongo_db["push_outbox"].insert_many(
        [
            {"_id": "n1|s1", "due_at": now - 1000, "subscription_id": "s1"},
            {"_id": "n2|s1", "due_at": now - 10, "subscription_id": "s1"},
            {"_id": "n3|s1", "due_at": now + 60_000, "subscription_id": "s1"},  # not due yet
        ]
    )
    await mongo_db["wallet_transfers"].insert_many(
        [
            {"_id": "t1", "status": "pending", "expires_at": now - 1},
            {"_id": "t2", "status": "accepted", "expires_at": now - 1},  # done: not waiting
        ]
    )
    await mongo_db["ledger_txns"].insert_one(
        {"_id": "x1", "status": "applied", "lease_until": now - 1}  # its worker died
    )
    app = web.Application()
    app[keys.DATABASE] = Database(client=mongo_db.client, db=mongo_db, url="")
    app[keys.METRICS] = metrics = Metrics()
    # A private Redis database: a test worker may consume the session's queue on database 0.
    url = redis_url.rsplit("/", 1)[0] + "/13"
    redis = aioredis.Redis.from_url(url)
    try:
        await redis.delete("aetherial")
        await redis.rpush("aetherial", "a", "b", "c")
        depths = await measure_queues(app, redis)
    finally:
        await redis.delete("aetherial")
        await redis.aclose()
    assert depths == {"push": 2, "mail": 0, "exports": 0, "wallet": 2, "celery": 3}
    samples = parse(metrics.exposition().decode())
    assert value(samples, "aetherial_task_queue_depth", queue="push") == 2
    assert value(samples, "aetherial_task_queue_depth", queue="wallet") == 2
    assert value(samples, "aetherial_task_queue_depth", queue="celery") == 3


async def test_a_running_gateway_publishes_its_queue_depths(gateway):
    async def published():
        samples = await scrape(base_of(gateway))
        queues = {
            dict(labels)["queue"]
            for (name, labels) in samples
            if name == "aetherial_task_queue_depth"
        }
        return queues if {"push", "mail", "exports", "wallet"} <= queues else None

    assert "celery" not in await eventually(published, timeout=15)


def test_two_apps_never_share_a_registry():
    one, two = Metrics(), Metrics()
    one.messages_sent(3)
    assert value(parse(one.exposition().decode()), "aetherial_messages_sent_total") == 3
    assert value(parse(two.exposition().decode()), "aetherial_messages_sent_total") == 0


# -- protection -----------------------------------------------------------------------------------


async def test_metrics_token_is_required_when_set(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    from gateway.app import create_app

    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", metrics_token=TOKEN)
    base = base_of(await aiohttp_server(create_app(config)))
    async with aiohttp.ClientSession() as http:
        for headers, code in (
            ({}, "missing_token"),
            ({"Authorization": "Bearer " + "x" * 40}, "invalid_token"),
            ({"Authorization": "Bearer " + TOKEN[:-1]}, "invalid_token"),
            ({"Authorization": "Basic " + TOKEN}, "invalid_token"),
            ({"Authorization": TOKEN}, "invalid_token"),
        ):
            async with http.get(base + "/metrics", headers=headers) as response:
                assert response.status == 401, headers
                body = await response.json()
                assert body["error"]["code"] == code, (headers, body)
                assert TOKEN not in await response.text()
    samples = await scrape(base, TOKEN)
    assert ("aetherial_sockets_connected", ()) in samples


async def test_metrics_port_moves_metrics_off_the_main_port(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    from gateway.app import create_app

    side = _free_port()
    config = make_config(
        mongo_url, mongo_db_name, tmp_path / "var", metrics_port=side, metrics_token=TOKEN
    )
    base = base_of(await aiohttp_server(create_app(config)))
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/metrics", headers={"Authorization": "Bearer " + TOKEN}) as r:
            assert r.status == 404
            assert (await r.json())["error"]["code"] == "not_found"
        async with http.get(f"http://127.0.0.1:{side}/metrics") as r:
            assert r.status == 401  # the token still applies on the side port
        async with http.get(f"http://127.0.0.1:{side}/healthz") as r:
            assert r.status == 404  # nothing else is served there
    samples = await scrape(f"http://127.0.0.1:{side}", TOKEN)
    assert ("aetherial_messages_sent_total", ()) in samples


async def test_metrics_port_alone_serves_without_a_token(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    from gateway.app import create_app

    side = _free_port()
    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", metrics_port=side)
    await aiohttp_server(create_app(config))
    samples = await scrape(f"http://127.0.0.1:{side}")
    assert ("aetherial_calls_active", ()) in samples


PRODUCTION = {
    "AETHERIAL_ENV": "production",
    "MONGODB_URL": "mongodb://mongo:27017",
    "REDIS_URL": "redis://redis:6379/0",
    "JWT_SECRET": "p" * 40,
}


def test_production_requires_a_metrics_token_or_port():
    with pytest.raises(ConfigError, match="METRICS_TOKEN or METRICS_PORT"):
        Config.from_env(PRODUCTION)
    assert Config.from_env({**PRODUCTION, "METRICS_TOKEN": TOKEN}).metrics_token == TOKEN
    assert Config.from_env({**PRODUCTION, "METRICS_PORT": "9100"}).metrics_port == 9100
    # development stays open on the main port: nothing to set
    assert Config.from_env({"AETHERIAL_ENV": "development"}).metrics_port is None


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
        ({"METRICS_PORT": "0"}, "METRICS_PORT"),
        ({"METRICS_PORT": "http"}, "METRICS_PORT"),
        ({"METRICS_PORT": "8080", "AETHERIAL_PORT": "8080"}, "METRICS_PORT"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(settings, named):
    with pytest.raises(ConfigError, match=named):
        Config.from_env(settings)


def test_the_grafana_dashboard_uses_only_metrics_we_export():
    import json
    import re

    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert exprs
    samples = Metrics()
    samples.app_call("x")  # labelled families appear once they have a child
    exported = {
        sample.name
        for family in text_string_to_metric_families(samples.exposition().decode())
        for sample in family.samples
    } | {family.name for family in text_string_to_metric_families(samples.exposition().decode())}
    used = {name for expr in exprs for name in re.findall(r"aetherial_\w+", expr)}
    families = {re.sub(r"_(bucket|sum|count|total)$", "", name) for name in exported}
    unknown = {n for n in used if re.sub(r"_(bucket|sum|count|total)$", "", n) not in families}
    assert not unknown, unknown
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    assert any("histogram_quantile(0.99" in e for e in exprs)
