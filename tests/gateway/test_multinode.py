"""Two gateway nodes sharing MongoDB and Redis behave as one service."""

from __future__ import annotations

from tests.conftest import RedisServer, make_config
from tests.helpers import ApiClient, SocketClient, eventually


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


async def test_readyz_reports_redis_down_and_back(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    """Redis down is reported but not fatal (the node keeps serving: a load balancer must not
    take every node out); it says ``ok`` again once Redis and the subscribers are back."""
    redis = RedisServer(tmp_path)
    api = await _node(
        aiohttp_server, make_config(mongo_url, mongo_db_name, tmp_path / "var", redis_url=redis.url)
    )
    try:
        status, body = await api.get("/readyz")
        assert status == 200 and body["checks"]["redis"] == "ok"
        redis.kill()
        status, body = await api.get("/readyz")
        assert status == 200 and body["status"] == "ready"
        assert body["checks"]["redis"].startswith("unreachable")
        assert body["checks"]["mongodb"] == "ok"
        redis.start()

        async def redis_ok() -> bool:
            status, body = await api.get("/readyz")
            return status == 200 and body["checks"]["redis"] == "ok"

        await eventually(redis_ok, 20, "readyz says redis is back")
    finally:
        redis.kill()
        await api.close()
