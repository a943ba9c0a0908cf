from tests.helpers import ApiClient, SocketClient


async def test_direct_chat_roundtrip(api: ApiClient):
    bob = ApiClient(api.base_url)
    sa, sb = SocketClient(), SocketClient()
    try:
        alice_t = await api.signup("alice")
        bob_t = await bob.signup("bob")
        await sa.connect(api.base_url, alice_t["access_token"])
        await sb.connect(api.base_url, bob_t["access_token"])
        status, body = await api.post(
            "/api/v1/conversations", json={"type": "direct", "user_id": bob_t["user"]["id"]}
        )
        assert status == 201, body
        cid = body["conversation"]["id"]
        ack = await sa.call(
            "message.send", {"conversation_id": cid, "client_msg_id": "m1", "text": "hello bob"}
        )
        assert ack["ok"], ack
        assert ack["message"]["seq"] == 1
        got = await sb.wait_for("message.new")
        assert got[0]["message"]["text"] == "hello bob"
        status, body = await bob.get("/api/v1/conversations")
        assert body["conversations"][0]["unread_count"] == 1, body
        sync = await sb.call("sync", {"cursors": {cid: 0}})
        assert sync["ok"] and [m["seq"] for m in sync["conversations"][cid]["messages"]] == [1]
    finally:
        await sa.close()
        await sb.close()
        await bob.close()
