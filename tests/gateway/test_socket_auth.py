"""Socket.IO connections authenticate with the access token at connect."""

from __future__ import annotations

import time

import jwt
import pytest
import socketio

from tests.helpers import ApiClient, SocketClient


async def _refused(base_url: str, token) -> dict:
    client = SocketClient()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(base_url, token)
    await client.close()
    # JS clients read err.message and err.data; data is the {code, message} error object.
    assert client.connect_error["message"] == client.connect_error["data"]["message"]
    return client.connect_error["data"]


async def test_connect_with_valid_token(api: ApiClient):
    tokens = await api.signup("sock")
    client = SocketClient()
    await client.connect(api.base_url, tokens["access_token"])
    try:
        assert client.sio.connected
    finally:
        await client.close()


async def test_connect_refused_with_a_reason(api: ApiClient, config):
    tokens = await api.signup("sock2")
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    secret = (config.data_dir / "jwt.key").read_text().strip()
    expired = jwt.encode({**claims, "exp": int(time.time()) - 1}, secret, algorithm="HS256")
    tampered = tokens["access_token"][:-4] + (
        "AAAA" if not tokens["access_token"].endswith("AAAA") else "BBBB"
    )
    assert (await _refused(api.base_url, None))["code"] == "missing_token"
    assert (await _refused(api.base_url, expired))["code"] == "token_expired"
    error = await _refused(api.base_url, tampered)
    assert error["code"] == "invalid_token" and error["message"]
    assert (await _refused(api.base_url, "garbage"))["code"] == "invalid_token"


async def test_revoked_session_disconnects_its_sockets(api: ApiClient):
    laptop = await api.signup("multi")
    phone_api = ApiClient(api.base_url)
    phone_socket, laptop_socket = SocketClient(), SocketClient()
    try:
        phone = await phone_api.login("multi")
        await phone_socket.connect(api.base_url, phone["access_token"])
        await laptop_socket.connect(api.base_url, laptop["access_token"])
        status, _ = await api.delete(f"/api/v1/me/sessions/{phone['session_id']}")
        assert status == 204
        revoked = await phone_socket.wait_for("session.revoked")
        assert revoked[0] == {"session_id": phone["session_id"], "reason": "revoked_by_user"}
        for _ in range(50):
            if not phone_socket.sio.connected:
                break
            await phone_socket.sio.sleep(0.05)
        assert not phone_socket.sio.connected
        assert laptop_socket.sio.connected
        assert not [e for e, _ in laptop_socket.events if e == "session.revoked"]
        # and it cannot come back with the same token
        assert (await _refused(api.base_url, phone["access_token"]))["code"] == "session_revoked"
    finally:
        await phone_socket.close()
        await laptop_socket.close()
        await phone_api.close()
