"""Presence: online while any device is connected, last seen after the last one leaves, friends
only, across two gateway nodes sharing Redis."""

from __future__ import annotations

import asyncio

from tests.helpers import ApiClient, SocketClient
from tests.messaging.chat_helpers import close_all, people


async def befriend(a, b) -> None:
    status, _ = await a.api.post("/api/v1/contacts/requests", json={"user_id": b.user_id})
    assert status == 201
    status, _ = await b.api.post(f"/api/v1/contacts/requests/{a.user_id}/accept")
    assert status == 200


async def presence_of(viewer, user_id) -> list[dict]:
    status, body = await viewer.api.get(f"/api/v1/presence?user_ids={user_id}")
    assert status == 200, body
    return body["presence"]


async def wait_presence(viewer, user_id, online: bool) -> dict:
    for _ in range(100):
        found = await presence_of(viewer, user_id)
        if found and found[0]["online"] is online:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"presence of {user_id} never became online={online}")


async def test_presence_with_several_devices_is_for_friends_only(api):
    alice, bob, stranger = await people(api.base_url, 3)
    try:
        await befriend(alice, bob)
        assert (await presence_of(bob, alice.user_id))[0]["online"] is True
        assert await presence_of(stranger, alice.user_id) == []  # not a friend: nothing
        phone = await alice.connect_device()
        await alice.socket.close()  # one device left: still online
        await asyncio.sleep(0.2)
        assert (await presence_of(bob, alice.user_id))[0]["online"] is True
        await phone.close()  # the last device: offline, with a last-seen time
        gone = await wait_presence(bob, alice.user_id, False)
        assert gone["last_seen_at"]
        events = [d for name, d in bob.socket.events if name == "presence"]
        assert events[-1]["user_id"] == alice.user_id and events[-1]["online"] is False
        assert not [d for name, d in stranger.socket.events if name == "presence"]
        # blocking ends the friendship, and with it the presence
        status, _ = await bob.api.request("PUT", f"/api/v1/contacts/blocks/{alice.user_id}")
        assert status == 204
        assert await presence_of(alice, bob.user_id) == []
    finally:
        await close_all([alice, bob, stranger])


async def test_presence_across_two_nodes(two_nodes):
    nodes = two_nodes
    alice, bob = await people(nodes[0], 2)
    try:
        await befriend(alice, bob)
        # alice's second device on the other node; closing the first keeps her online
        other_api = ApiClient(nodes[1])
        tokens = await other_api.login(alice.username)
        far = SocketClient()
        await far.connect(nodes[1], tokens["access_token"])
        await alice.socket.close()
        await asyncio.sleep(0.3)
        assert (await presence_of(bob, alice.user_id))[0]["online"] is True
        await far.close()
        await other_api.close()
        await wait_presence(bob, alice.user_id, False)
    finally:
        await close_all([alice, bob])
