"""Open sockets: their session is re-checked when their access token expires, and a person keeps
at most SOCKETS_PER_USER sockets open (the oldest is told and closed)."""

from __future__ import annotations

import asyncio

import pytest

from gateway import keys
from gateway.realtime import ChatNamespace
from storage.mongo import now_ms
from tests.conftest import RedisServer, make_config, node_configs
from tests.helpers import ApiClient, SocketClient, eventually

CAP = 2


async def _start(aiohttp_server, config) -> tuple[ApiClient, ChatNamespace]:
    from gateway.app import create_app

    server = await aiohttp_server(create_app(config))
    namespace = server.app[keys.SIO].namespace_handlers["/"]
    return ApiClient(str(server.make_url("")).rstrip("/")), namespace


@pytest.fixture
async def short_tokens(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    """A gateway whose access tokens live 2 seconds: (api client, its Socket.IO namespace)."""
    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", access_token_ttl=2)
    api, namespace = await _start(aiohttp_server, config)
    yield api, namespace
    await api.close()


@pytest.fixture
async def capped(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", sockets_per_user=CAP)
    api, namespace = await _start(aiohttp_server, config)
    yield api, namespace
    await api.close()


@pytest.fixture
async def capped_nodes(aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path):
    """Two nodes sharing MongoDB, Redis and the JWT key, with the cap at CAP sockets."""
    configs = node_configs(mongo_url, mongo_db_name, tmp_path, redis_url, sockets_per_user=CAP)
    nodes = [await _start(aiohttp_server, config) for config in configs]
    yield nodes
    for api, _ in nodes:
        await api.close()


async def _connect(base_url: str, token: str) -> SocketClient:
    client = SocketClient()
    await client.connect(base_url, token)
    return client


async def _closed(client: SocketClient) -> None:
    await eventually(lambda: not client.sio.connected, what="socket closed")


def _events(client: SocketClient, name: str) -> list:
    return [data for event, data in client.events if event == name]


# --- the session re-check at token expiry --------------------------------------------------


async def test_session_revoked_behind_pubsubs_back_closes_socket_at_token_expiry(
    short_tokens, mongo_db
):
    api, namespace = short_tokens
    phone_api = ApiClient(api.base_url)
    laptop = await api.signup("recheck")
    phone = await phone_api.login("recheck")
    phone_socket = await _connect(api.base_url, phone["access_token"])
    laptop_socket = await _connect(api.base_url, laptop["access_token"])
    try:
        # Revoked in the database only: no session.revoked event, no pub/sub message (as if it
        # had been lost). The re-check at token expiry must find it.
        await mongo_db.sessions.update_one(
            {"_id": phone["session_id"]},
            {"$set": {"revoked": True, "revoked_at": now_ms(), "revoke_reason": "logout"}},
        )
        (ended,) = await phone_socket.wait_for("session.expired", timeout=15)
        assert ended == {
            "session_id": phone["session_id"],
            "code": "session_revoked",
            "message": ended["message"],
            "details": {"reason": "logout"},
        }
        assert ended["message"]
        await _closed(phone_socket)
        # the other device's session is alive: it stays, and keeps working
        laptop_sid = laptop_socket.sio.get_sid("/")
        await eventually(
            lambda: namespace.sockets[laptop_sid].rechecks >= 1, 15, "laptop re-checked"
        )
        assert laptop_socket.sio.connected
        assert (await laptop_socket.call("sync", {"cursors": {}}))["ok"] is True
        assert not _events(laptop_socket, "session.expired")
    finally:
        await phone_socket.close()
        await laptop_socket.close()
        await phone_api.close()


async def test_socket_of_a_live_session_survives_several_expiries(short_tokens):
    api, namespace = short_tokens
    tokens = await api.signup("survivor")
    client = await _connect(api.base_url, tokens["access_token"])
    try:
        sid = client.sio.get_sid("/")
        await eventually(lambda: namespace.sockets[sid].rechecks >= 3, 20, "three re-checks")
        assert client.sio.connected
        assert not _events(client, "session.expired")
        assert (await client.call("sync", {"cursors": {}}))["ok"] is True
    finally:
        await client.close()
    await eventually(lambda: sid not in namespace.sockets, what="socket forgotten")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("session_lifetime_over", "session_expired"),
        ("account_deleted", "session_revoked"),
        ("account_suspended", "account_suspended"),
    ],
)
async def test_session_recheck_closes_socket_for_every_dead_session(
    short_tokens, mongo_db, change, code
):
    api, _ = short_tokens
    tokens = await api.signup()
    client = await _connect(api.base_url, tokens["access_token"])
    try:
        if change == "session_lifetime_over":
            await mongo_db.sessions.update_one(
                {"_id": tokens["session_id"]}, {"$set": {"expires_at": now_ms() - 1}}
            )
        elif change == "account_deleted":
            await mongo_db.users.delete_one({"_id": tokens["user"]["id"]})
        else:  # suspended without its sessions revoked: the re-check still refuses it
            await mongo_db.users.update_one(
                {"_id": tokens["user"]["id"]}, {"$set": {"suspended": True}}
            )
        (ended,) = await client.wait_for("session.expired", timeout=15)
        assert ended["code"] == code and ended["session_id"] == tokens["session_id"]
        await _closed(client)
    finally:
        await client.close()


async def test_many_sockets_are_rechecked_and_only_dead_sessions_closed(short_tokens, mongo_db):
    api, namespace = short_tokens
    people = [await api.signup() for _ in range(6)]
    clients = await asyncio.gather(*(_connect(api.base_url, p["access_token"]) for p in people))
    try:
        dead, alive = clients[:3], clients[3:]
        await mongo_db.sessions.update_many(
            {"_id": {"$in": [p["session_id"] for p in people[:3]]}},
            {"$set": {"revoked": True, "revoke_reason": "logout"}},
        )
        for client in dead:
            await client.wait_for("session.expired", timeout=15)
            await _closed(client)
        sids = [client.sio.get_sid("/") for client in alive]
        await eventually(
            lambda: all(namespace.sockets[sid].rechecks >= 2 for sid in sids), 20, "re-checks"
        )
        assert all(client.sio.connected for client in alive)
    finally:
        for client in clients:
            await client.close()


# --- the per-user socket cap ----------------------------------------------------------------


async def test_the_oldest_socket_is_told_and_closed_past_the_cap(capped):
    api, namespace = capped
    tokens = await api.signup("capped")
    other_api = ApiClient(api.base_url)
    other = await other_api.signup("bystander")
    await other_api.close()
    clients = [await _connect(api.base_url, tokens["access_token"]) for _ in range(CAP)]
    bystander = await _connect(api.base_url, other["access_token"])
    try:
        newest = await _connect(api.base_url, tokens["access_token"])
        clients.append(newest)
        (replaced,) = await clients[0].wait_for("socket.replaced")
        assert replaced["code"] == "too_many_sockets" and replaced["message"]
        assert replaced["details"] == {"limit": CAP}
        await _closed(clients[0])
        assert all(client.sio.connected for client in clients[1:])
        assert bystander.sio.connected
        assert not any(_events(client, "socket.replaced") for client in [*clients[1:], bystander])
        assert (await newest.call("sync", {"cursors": {}}))["ok"] is True
        mine = [s for s in namespace.sockets.values() if s.user_id == tokens["user"]["id"]]
        assert len(mine) == CAP
    finally:
        for client in [*clients, bystander]:
            await client.close()


async def test_concurrent_connects_leave_at_most_the_cap(capped):
    api, namespace = capped
    tokens = await api.signup("stampede")
    clients = await asyncio.gather(
        *(_connect(api.base_url, tokens["access_token"]) for _ in range(3 * CAP))
    )
    try:

        def settled() -> bool:
            connected = [c for c in clients if c.sio.connected]
            replaced = [c for c in clients if _events(c, "socket.replaced")]
            return len(connected) == CAP and len(replaced) == 2 * CAP

        await eventually(settled, what="the cap reached")
        # every closed socket was told why; every open one is usable
        for client in clients:
            assert client.sio.connected != bool(_events(client, "socket.replaced"))
        for client in clients:
            if client.sio.connected:
                assert (await client.call("sync", {"cursors": {}}))["ok"] is True
        assert len(namespace.sockets) == CAP
    finally:
        for client in clients:
            await client.close()
    await eventually(lambda: not namespace.sockets, what="every socket forgotten")


async def test_the_cap_holds_across_nodes(capped_nodes):
    (api_a, namespace_a), (api_b, namespace_b) = capped_nodes
    tokens = await api_a.signup("twonodecap")
    first = await _connect(api_a.base_url, tokens["access_token"])
    second = await _connect(api_a.base_url, tokens["access_token"])
    third = await _connect(api_b.base_url, tokens["access_token"])  # on the other node
    clients = [first, second, third]
    try:
        (replaced,) = await first.wait_for("socket.replaced")
        assert replaced["code"] == "too_many_sockets"
        await _closed(first)
        assert second.sio.connected and third.sio.connected

        # many at once on both nodes: still at most the cap over the cluster
        stampede = await asyncio.gather(
            *(
                _connect((api_a, api_b)[i % 2].base_url, tokens["access_token"])
                for i in range(3 * CAP)
            )
        )
        clients += stampede
        await eventually(
            lambda: (
                sum(c.sio.connected for c in clients) == CAP
                and len(namespace_a.sockets) + len(namespace_b.sockets) == CAP
            ),
            what="the cap reached over both nodes",
        )
        for client in clients:
            assert client.sio.connected != bool(_events(client, "socket.replaced"))
    finally:
        for client in clients:
            await client.close()


async def test_the_cap_holds_per_node_while_redis_is_down(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    redis = RedisServer(tmp_path)
    config = make_config(
        mongo_url, mongo_db_name, tmp_path / "var", redis_url=redis.url, sockets_per_user=CAP
    )
    api, namespace = await _start(aiohttp_server, config)
    clients: list[SocketClient] = []
    try:
        tokens = await api.signup("outage")
        clients.append(await _connect(api.base_url, tokens["access_token"]))
        redis.stop()
        for _ in range(CAP):
            clients.append(await _connect(api.base_url, tokens["access_token"]))
        (replaced,) = await clients[0].wait_for("socket.replaced")
        assert replaced["code"] == "too_many_sockets"
        await _closed(clients[0])
        assert all(client.sio.connected for client in clients[1:])
        assert len(namespace.sockets) == CAP
    finally:
        for client in clients:
            await client.close()
        redis.stop()
        await api.close()
