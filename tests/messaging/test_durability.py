"""Nothing acked is lost: a gateway restart keeps history and clients resync; removal and
delivery hold across two nodes."""

from __future__ import annotations

import asyncio

from tests.conftest import make_config
from tests.helpers import SocketClient
from tests.messaging.chat_helpers import close_all, group, people, settle


async def test_restart_keeps_history_and_clients_resync(aiohttp_server, tmp_path):
    """The embedded server itself restarts with the gateway (same data dir)."""
    from gateway.app import create_app

    config = make_config(None, "aetherial", tmp_path / "var")
    app = create_app(config)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    alice, bob = await people(base, 2)
    cid = await group(alice, [bob])
    acked = [await alice.send(cid, f"before restart {i}") for i in range(5)]
    await settle([bob], cid, 5)
    bob_cursor = acked[-1]["seq"]
    await alice.socket.close()
    await bob.socket.close()
    port = server.port
    await server.close()  # stops the gateway and its embedded MongoDB

    server = await aiohttp_server(create_app(config), port=port)
    try:
        alice.socket, bob.socket = SocketClient(), SocketClient()
        await alice.socket.connect(base, alice.token)
        await bob.socket.connect(base, bob.token)
        more = await alice.send(cid, "after restart")
        assert more["seq"] == acked[-1]["seq"] + 1  # the sequence goes on without a gap
        sync = await bob.socket.call("sync", {"cursors": {cid: bob_cursor}})
        assert [m["text"] for m in sync["conversations"][cid]["messages"]] == ["after restart"]
        status, history = await bob.api.get(f"/api/v1/conversations/{cid}/messages")
        assert status == 200
        texts = [m["text"] for m in history["messages"] if m["type"] == "text"]
        assert texts == [*(f"before restart {i}" for i in range(5)), "after restart"]
        assert [m["id"] for m in history["messages"][1:6]] == [m["id"] for m in acked]
    finally:
        await close_all([alice, bob])


async def test_two_nodes_deliver_and_stop_delivering_on_removal(two_nodes):
    bases = two_nodes
    owner, stays = await people(bases[0], 2)
    leaver, far = await people(bases[1], 2)
    everyone = [owner, stays, leaver, far]
    try:
        cid = await group(owner, [stays, leaver, far])
        # senders on both nodes at once: everyone gets every message exactly once, and the seqs
        # are one gap-free sequence (delivery order across nodes may differ; seq is the order)
        await asyncio.gather(
            *[p.send(cid, f"{p.username}-{i}") for p in everyone for i in range(5)]
        )
        await settle(everyone, cid, 20)
        received = [
            [
                (d["message"]["seq"], d["message"]["id"])
                for d in p.received()
                if d["message"]["type"] == "text"
            ]
            for p in everyone
        ]
        assert all(len(r) == len(set(r)) == 20 for r in received)
        assert all(sorted(r) == sorted(received[0]) for r in received)
        assert [s for s, _ in sorted(received[0])] == list(range(2, 22))

        status, _ = await owner.api.delete(f"/api/v1/conversations/{cid}/members/{leaver.user_id}")
        assert status == 204
        await leaver.socket.wait_for("conversation.removed")
        # the very next messages, sent from the node the removed member is connected to
        for i in range(3):
            await far.send(cid, f"after removal {i}")
        await settle([owner, stays, far], cid, 23)
        await asyncio.sleep(0.3)
        assert not [t for t in leaver.texts(cid) if t.startswith("after removal")]
    finally:
        await close_all(everyone)
