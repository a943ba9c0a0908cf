"""A node that stops closes its clients' sockets first: they reconnect elsewhere, and an open
websocket does not hold the node for aiohttp's whole shutdown timeout (60 s)."""

from __future__ import annotations

import asyncio

from tests.helpers import eventually
from tests.messaging.chat_helpers import people


async def test_stopping_a_node_disconnects_its_sockets_at_once(aiohttp_server, config):
    from gateway.app import create_app

    server = await aiohttp_server(create_app(config), shutdown_timeout=60)
    everyone = await people(str(server.make_url("")).rstrip("/"), 3)
    try:
        # Well under the 60 s aiohttp would otherwise wait for the open websockets.
        await asyncio.wait_for(server.close(), 20)
        await eventually(
            lambda: all(not p.socket.sio.connected for p in everyone), what="every socket closed"
        )
    finally:
        for person in everyone:
            await person.api.close()
            await person.socket.close()
