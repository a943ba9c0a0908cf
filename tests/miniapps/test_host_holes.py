"""Holes a review found in the host, each closed: an app acts only where it is installed and
enabled (events, presses, web views, capability calls), cannot refill a card that was recalled
or hidden, cannot be flooded by one member's presses, and a remote app's callback works on any
gateway node."""

from __future__ import annotations

import asyncio
import itertools

from gateway.keys import MINIAPPS
from tests.conftest import make_config
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, group, people
from tests.miniapps.test_capabilities import command, setup, texts_from
from tests.miniapps.test_poll_e2e import cards_of
from tests.miniapps.test_remote import RemoteServer, make_admin, register

_ids = itertools.count(1)


async def make_poll(owner, members, cid=None):
    """A group with the poll installed and one poll card in it; the card's message view."""
    if cid is None:
        cid = await group(owner, members, "Holes")
        status, body = await owner.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "poll"}
        )
        assert status == 201, body
    before = len(cards_of(owner, cid))
    ack = await owner.socket.call(
        "message.send",
        {
            "conversation_id": cid,
            "client_msg_id": f"poll-{next(_ids)}",
            "text": '/poll "Lunch?" pizza sushi',
        },
    )
    assert ack["ok"] and ack["routed_to"] == {"app_id": "poll"}, ack
    await eventually(lambda: len(cards_of(owner, cid)) > before)
    return cid, cards_of(owner, cid)[-1]


def press(person, cid, card, button=0):
    chosen = card["card"]["buttons"][button]
    return person.socket.call(
        "miniapp.action",
        {
            "conversation_id": cid,
            "message_id": card["id"],
            "action_id": chosen["action_id"],
            "value": chosen.get("value"),
        },
    )


async def test_events_reach_only_apps_installed_and_enabled_in_that_chat(gateway, api):
    host, (ann, bea), cid = await setup(gateway, 2, ["notifier"])
    try:
        # listener accepts notifier.pinged but this chat never installed it: nothing arrives
        await command(ann, cid, "/ping")
        await eventually(lambda: texts_from(bea, cid, "notifier:"))
        await asyncio.sleep(0.5)  # time enough for a wrongly delivered event to post
        assert not texts_from(bea, cid, "listener:")
        audit = await host.audit.get_entries("listener", before=None, limit=50)
        assert audit == []  # the listener was never even invoked

        status, body = await ann.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "listener"}
        )
        assert status == 201, body
        await command(ann, cid, "/ping")
        await eventually(lambda: texts_from(bea, cid, "listener:"))

        # an admin switches the listener off: the next event does not reach it
        await host.set_enabled("listener", False, "test-admin", "review")
        await command(ann, cid, "/ping")
        await eventually(lambda: len(texts_from(bea, cid, "notifier:")) == 3)
        await asyncio.sleep(0.5)
        assert len(texts_from(bea, cid, "listener:")) == 1
    finally:
        await host.set_enabled("listener", True, "test-admin", "review")
        await close_all([ann, bea])


async def test_presses_and_web_views_need_the_app_installed_and_enabled(gateway):
    host = gateway.app[MINIAPPS]
    ann, bea = await people(str(gateway.make_url("")).rstrip("/"), 2)
    try:
        cid, card = await make_poll(ann, [bea])
        assert (await press(bea, cid, card))["ok"]

        await host.set_enabled("poll", False, "test-admin", "review")
        ack = await press(bea, cid, card)
        assert not ack["ok"] and ack["error"]["code"] == "app_disabled", ack
        await host.set_enabled("poll", True, "test-admin", "review")

        status, body = await ann.api.delete(f"/api/v1/conversations/{cid}/apps/poll")
        assert status in (200, 204), body
        ack = await press(bea, cid, card)
        assert not ack["ok"] and ack["error"]["code"] == "app_not_installed", ack

        # a capability call of an app that was removed from the chat is refused too
        app_user = host.identity.app_user_id("poll", ann.user_id)
        call_id = await host.calls.open("poll", ann.user_id, app_user, cid, 0, remote=False)
        try:
            await host.serve(
                "poll", "messages.send_card", {"call_id": call_id, "card": {"title": "x"}}
            )
        except Exception as exc:
            assert exc.code == "app_not_installed"
        else:
            raise AssertionError("an uninstalled app posted a card")
        finally:
            await host.calls.close(call_id, remote=False)
    finally:
        await host.set_enabled("poll", True, "test-admin", "review")
        await close_all([ann, bea])


async def test_web_view_launch_refused_for_a_disabled_app(gateway, aiohttp_server):
    host = gateway.app[MINIAPPS]
    remote = RemoteServer(str(gateway.make_url("")).rstrip("/"))
    from aiohttp import web

    site = web.Application()
    site.router.add_post("/rpc", remote.handle)
    server = await aiohttp_server(site)
    ann, bea = await people(str(gateway.make_url("")).rstrip("/"), 2)
    try:
        await make_admin(gateway, ann)
        status, body = await register(ann, str(server.make_url("/rpc")))
        assert status == 201, body
        cid = await group(ann, [bea], "Views")
        status, body = await ann.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "remote-app"}
        )
        assert status == 201, body
        url = f"/api/v1/conversations/{cid}/apps/remote-app/launch"
        status, body = await bea.api.post(url)
        assert status == 200, body
        await host.set_enabled("remote-app", False, "test-admin", "review")
        status, body = await bea.api.post(url)
        assert status == 403 and body["error"]["code"] == "app_disabled", body
    finally:
        await close_all([ann, bea])


async def test_an_app_cannot_refill_a_recalled_or_hidden_card(gateway):
    host = gateway.app[MINIAPPS]
    ann, bea = await people(str(gateway.make_url("")).rstrip("/"), 2)
    try:
        cid, card = await make_poll(ann, [bea])
        app_user = host.identity.app_user_id("poll", ann.user_id)

        async def refill(message_id: str) -> str:
            call_id = await host.calls.open("poll", ann.user_id, app_user, cid, 0, remote=False)
            try:
                await host.serve(
                    "poll",
                    "messages.update_card",
                    {"call_id": call_id, "message_id": message_id, "card": {"title": "back!"}},
                )
                return "ok"
            except Exception as exc:
                return exc.code
            finally:
                await host.calls.close(call_id, remote=False)

        # the group owner recalls the card: it is blank for everyone, and stays so
        ack = await ann.socket.call(
            "message.recall", {"conversation_id": cid, "message_id": card["id"]}
        )
        assert ack["ok"] and ack["message"]["recalled"] and ack["message"]["card"] is None, ack
        assert await refill(card["id"]) == "message_recalled"
        ack = await press(bea, cid, card)
        assert not ack["ok"] and ack["error"]["code"] == "message_recalled", ack

        # an administrator hides a second card: same
        _, second = await make_poll(ann, [bea], cid)
        await make_admin(gateway, ann)
        status, body = await ann.api.post(
            f"/api/v1/admin/messages/{cid}/{second['id']}/hide", json={"reason": "spam"}
        )
        assert status == 200, body
        assert await refill(second["id"]) == "message_recalled"
        ack = await press(bea, cid, second)
        assert not ack["ok"] and ack["error"]["code"] == "message_hidden", ack
        stored = await host.messaging.messages.collection.find_one({"_id": second["id"]})
        assert "back!" not in repr(stored)
    finally:
        await close_all([ann, bea])


async def test_one_member_cannot_flood_an_app_with_presses(gateway):
    ann, bea = await people(str(gateway.make_url("")).rstrip("/"), 2)
    try:
        cid, card = await make_poll(ann, [bea])
        acks = await asyncio.gather(*(press(bea, cid, card, i % 2) for i in range(40)))
        codes = [a["error"]["code"] for a in acks if not a["ok"]]
        assert 0 < len(codes) <= 20 and set(codes) == {"rate_limited"}, acks
        # another member's presses are not affected
        assert (await press(ann, cid, card))["ok"]
    finally:
        await close_all([ann, bea])


async def test_remote_callback_lands_on_another_node(aiohttp_server, tmp_path):
    """Node A hands a command to the remote app; the app's callback reaches node B (another
    gateway on the same database), which finds the invocation and posts the card."""
    from aiohttp import web

    from gateway.app import create_app

    config = make_config(None, "aetherial", tmp_path / "var")
    node_a = await aiohttp_server(create_app(config))
    node_b = await aiohttp_server(create_app(config))
    remote = RemoteServer(str(node_b.make_url("")).rstrip("/"))
    site = web.Application()
    site.router.add_post("/rpc", remote.handle)
    server = await aiohttp_server(site)
    ann, bea = await people(str(node_a.make_url("")).rstrip("/"), 2)
    try:
        await make_admin(node_a, ann)
        status, body = await register(ann, str(server.make_url("/rpc")))
        assert status == 201, body
        remote.secret = body["secret"]
        cid = await group(ann, [bea], "Two nodes")
        status, body = await ann.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "remote-app"}
        )
        assert status == 201, body
        ack = await ann.socket.call(
            "message.send",
            {"conversation_id": cid, "client_msg_id": "n1", "text": "/remote_cmd across"},
        )
        assert ack["ok"] and ack["routed_to"] == {"app_id": "remote-app"}, ack
        await eventually(lambda: remote.callbacks)
        assert remote.callbacks[0][0] == 200, remote.callbacks
        assert "message_id" in remote.callbacks[0][1]["result"], remote.callbacks
        # (no Redis here, so node A's sockets do not hear node B's post: the history has it)
        status, body = await bea.api.get(f"/api/v1/conversations/{cid}/messages")
        assert status == 200, body
        titles = [m["card"]["title"] for m in body["messages"] if m["type"] == "card"]
        assert titles == ["remote: across"], body
    finally:
        await close_all([ann, bea])
