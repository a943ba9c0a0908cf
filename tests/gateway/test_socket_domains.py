"""Transport reads the domains it needs from the app: Socket.IO events declare them, and slash
commands are offered to the mini-program host by the gateway (REST and socket alike)."""

from __future__ import annotations

import pytest
from aiohttp import web

from gateway import keys
from gateway.socket_api import domain
from gateway.socket_events import socket_api
from storage.errors import AppError
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, group, people


def test_every_event_declares_the_domains_it_needs():
    uses = {name: spec.uses for name, spec in socket_api.events.items()}
    assert uses["message.send"] == (keys.MESSAGING, keys.MINIAPPS)
    assert uses["payment.confirm"] == uses["payment.cancel"] == (keys.WALLET,)
    assert uses["miniapp.action"] == uses["miniapp.consent"] == (keys.MINIAPPS,)
    calls = [name for name in uses if name.startswith("call.")]
    assert calls and all(uses[name] == (keys.CALLS,) for name in calls)
    assert all(spec.uses for spec in socket_api.events.values())


@pytest.mark.parametrize(
    ("key", "code", "status"),
    [
        (keys.WALLET, "wallet_unavailable", 400),
        (keys.MINIAPPS, "miniapps_unavailable", 400),
        (keys.CALLS, "calls_unavailable", 503),
    ],
)
def test_a_missing_domain_is_a_clear_error(key, code, status):
    with pytest.raises(AppError) as missing:
        domain(web.Application(), key)
    assert (missing.value.code, missing.value.status) == (code, status)


async def test_a_slash_command_over_rest_goes_to_the_app_only_for_members(gateway):
    base = str(gateway.make_url("/")).rstrip("/")
    ann, bob, eve = await people(base, 3)
    try:
        cid = await group(ann, [bob], "Polls")
        status, body = await ann.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "poll"}
        )
        assert status == 201, body
        url = f"/api/v1/conversations/{cid}/messages"
        # Someone outside the chat is refused as for any message: the app never hears it.
        status, body = await eve.api.post(url, json={"client_msg_id": "e1", "text": "/poll x a b"})
        assert (status, body["error"]["code"]) == (403, "not_a_member")
        status, body = await bob.api.post(
            url, json={"client_msg_id": "b1", "text": '/poll "Lunch?" a b'}
        )
        assert (status, body) == (200, {"routed_to": {"app_id": "poll"}})
        await eventually(
            lambda: [d for d in bob.received() if d["message"]["type"] == "card"],
            timeout=20,
            what="the poll card",
        )
        # Not a command of any app here: an ordinary message.
        status, body = await bob.api.post(url, json={"client_msg_id": "b2", "text": "/shrug"})
        assert status == 200 and body["message"]["text"] == "/shrug", body
    finally:
        await close_all([ann, bob, eve])
