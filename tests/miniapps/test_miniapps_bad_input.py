"""Bad input to the mini-program entry points: clear errors, nothing written, nothing run."""

from __future__ import annotations

import pytest

from tests.messaging.chat_helpers import close_all, group, people


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (None, "wrong_type"),
        ({}, "missing_field"),
        ({"conversation_id": "x", "message_id": "y"}, "missing_field"),
        ({"conversation_id": 1, "message_id": "y", "action_id": "a"}, "wrong_type"),
        (
            {"conversation_id": "x", "message_id": "y", "action_id": "a", "extra": 1},
            "unknown_field",
        ),
        ({"conversation_id": "x", "message_id": "y", "action_id": "a" * 65}, "invalid_field"),
        ({"conversation_id": "nope", "message_id": "y", "action_id": "a"}, "not_a_member"),
    ],
)
async def test_miniapp_action_rejects(api, payload, code):
    (alice,) = await people(api.base_url, 1)
    try:
        ack = await alice.socket.call("miniapp.action", payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, ack
    finally:
        await close_all([alice])


async def test_action_on_a_non_card_or_unknown_button(api):
    alice, bob = await people(api.base_url, 2)
    try:
        cid = await group(alice, [bob])
        text = await alice.send(cid, "not a card")
        ack = await bob.socket.call(
            "miniapp.action",
            {"conversation_id": cid, "message_id": text["id"], "action_id": "vote"},
        )
        assert ack["error"]["code"] == "message_not_found"
    finally:
        await close_all([alice, bob])


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, "missing_field"),
        ({"app_id": "poll", "scope": "users.profile", "granted": "yes"}, "wrong_type"),
        ({"app_id": "no-such-app", "scope": "users.profile", "granted": True}, "app_not_found"),
        ({"app_id": "poll", "scope": "wallet.balance", "granted": True}, "invalid_field"),
    ],
)
async def test_miniapp_consent_rejects(api, gateway, payload, code):
    from gateway.keys import DATABASE

    (alice,) = await people(api.base_url, 1)
    try:
        ack = await alice.socket.call("miniapp.consent", payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, ack
        assert await gateway.app[DATABASE].db.consents.count_documents({}) == 0
    finally:
        await close_all([alice])


async def test_installing_apps_checks_rights_and_names(api, gateway):
    from gateway.keys import DATABASE

    alice, bob, stranger = await people(api.base_url, 3)
    try:
        cid = await group(alice, [bob])
        cases = [
            (bob, {"app_id": "poll"}, 403, "not_allowed"),
            (stranger, {"app_id": "poll"}, 403, "not_a_member"),
            (alice, {"app_id": "no-such-app"}, 404, "app_not_found"),
            (alice, {"app_id": 3}, 400, "wrong_type"),
            (alice, {}, 400, "missing_field"),
        ]
        for who, body, status, code in cases:
            got, reply = await who.api.post(f"/api/v1/conversations/{cid}/apps", json=body)
            assert (got, reply["error"]["code"]) == (status, code), body
        assert await gateway.app[DATABASE].db.app_installs.count_documents({}) == 0
        status, body = await alice.api.delete(f"/api/v1/conversations/{cid}/apps/poll")
        assert status == 404 and body["error"]["code"] == "app_not_installed"
    finally:
        await close_all([alice, bob, stranger])
