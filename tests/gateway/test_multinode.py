"""Two gateway nodes sharing MongoDB and Redis behave as one service."""

from __future__ import annotations

from tests.conftest import RedisServer, make_config
from tests.helpers import ApiClient, SocketClient


async def _node(aiohttp_server, config):
    from gateway.app import create_app

    server = await aiohttp_server(create_app(config))
    return ApiClient(str(server.make_url("")).rstrip("/"))


async def test_session_revoked_on_one_node_disconnects_socket_on_the_other(two_nodes):
    api_a, api_b = ApiClient(two_nodes[0]), ApiClient(two_nodes[1])
    phone_socket = SocketClient()
    try:
        laptop = await api_a.signup("twonodes")
        phone = await api_b.login("twonodes")
        # a token minted by node A works on node B and the other way round
        assert (await api_b.get("/api/v1/me", token=laptop["access_token"]))[0] == 200
        status, body = await api_a.get("/readyz")
        assert status == 200 and body["checks"]["redis"] == "ok"

        await phone_socket.connect(api_b.base_url, phone["access_token"])
        status, _ = await api_a.delete(f"/api/v1/me/sessions/{phone['session_id']}")
        assert status == 204
        await phone_socket.wait_for("session.revoked")
        for _ in range(100):
            if not phone_socket.sio.connected:
                break
            await phone_socket.sio.sleep(0.05)
        assert not phone_socket.sio.connected
    finally:
        await phone_socket.close()
        await api_a.close()
        await api_b.close()


async def test_readyz_reports_redis_down(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    redis = RedisServer(tmp_path)
    api = await _node(
        aiohttp_server, make_config(mongo_url, mongo_db_name, tmp_path / "var", redis_url=redis.url)
    )
    try:
        assert (await api.get("/readyz"))[0] == 200
        redis.stop()
        status, body = await api.get("/readyz")
        assert status == 503 and body["error"]["code"] == "not_ready"
        assert body["error"]["details"]["checks"]["redis"].startswith("unreachable")
        assert body["error"]["details"]["checks"]["mongodb"] == "ok"
    finally:
        redis.stop()
        await api.close()
