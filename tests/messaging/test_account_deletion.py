"""Leave with your data, the deletion: ``DELETE /api/v1/me`` through a real gateway, several
people, a group, messages, a photo, money. Refused (and nothing changed) without the password or
the confirmation, or while money is left or on its way; otherwise the account is gone: others
see "Deleted account" where its messages stay, it left its groups, its sockets are disconnected,
its login fails, its username and email are free again, its media are gone, its friends,
requests, blocks, notifications and push subscriptions are deleted, and apps never see its
per-app id again. Concurrent deletions: one result. A deletion interrupted halfway is finished
by sending it again."""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.keys import MESSAGING, MINIAPPS
from miniapps.host.identity import DELETED_APP_USER
from storage.mongo import now_ms
from tests.helpers import PASSWORD, ApiClient, eventually
from tests.media.media_helpers import fetch, jpeg, upload
from tests.messaging.chat_helpers import close_all, direct, group, people
from tests.miniapps.test_capabilities import events_of
from tests.miniapps.test_webview_calls import add_apps
from tests.wallet.wallet_helpers import check_ledger, red_packet, topup, transfer

ME = "/api/v1/me"
GONE = {"password": PASSWORD, "confirm": "DELETE"}


@pytest.fixture
async def base(gateway) -> str:
    return str(gateway.make_url("")).rstrip("/")


def ctx(gateway):
    return gateway.app[MESSAGING]


async def ask(a, b) -> None:
    status, body = await a.api.post(
        "/api/v1/contacts/requests", json={"user_id": b.user_id, "message": "hi"}
    )
    assert status == 201, body


async def befriend(a, b) -> None:
    await ask(a, b)
    status, body = await b.api.post(f"/api/v1/contacts/requests/{a.user_id}/accept")
    assert status == 200, body


async def snapshot(gateway, user_id: str) -> dict:
    """Everything a refused deletion must leave as it was."""
    db = ctx(gateway).db
    return {
        "user": await db.users.find_one({"_id": user_id}),
        "sessions": await db.sessions.find({"user_id": user_id}).to_list(None),
        "members": await db.members.find({"user_id": user_id}).sort("_id").to_list(None),
        "contacts": await db.contacts.find({"users": user_id}).to_list(None),
        "media": await db.media.find({"owner_id": user_id}).to_list(None),
        "notifications": await db.notifications.count_documents({"user_id": user_id}),
    }


async def delete_me(api: ApiClient, **body) -> tuple[int, dict]:
    return await api.delete(ME, json={**GONE, **body})


@pytest.mark.parametrize(
    ("payload", "status", "code", "field"),
    [
        ({}, 400, "missing_field", "password"),
        ({"password": PASSWORD}, 400, "missing_field", "confirm"),
        ({"password": PASSWORD, "confirm": "delete"}, 400, "confirmation_required", "confirm"),
        ({"password": PASSWORD, "confirm": " DELETE"}, 400, "confirmation_required", "confirm"),
        ({"password": PASSWORD, "confirm": 1}, 400, "wrong_type", "confirm"),
        ({"password": "Wrong-horse-9", "confirm": "DELETE"}, 403, "wrong_password", "password"),
        ({"password": "", "confirm": "DELETE"}, 403, "wrong_password", "password"),
        ({**GONE, "extra": True}, 400, "unknown_field", "extra"),
    ],
)
async def test_bad_deletions_change_nothing(gateway, base, payload, status, code, field):
    alice, bob = await people(base, 2)
    try:
        await befriend(alice, bob)
        await group(alice, [bob])
        before = await snapshot(gateway, alice.user_id)
        got, body = await alice.api.delete(ME, json=payload)
        assert got == status, body
        assert body["error"]["code"] == code and body["error"]["message"]
        assert body["error"]["details"]["field"] == field
        assert await snapshot(gateway, alice.user_id) == before
        status, body = await alice.api.get(ME)
        assert status == 200 and body["user"]["username"] == alice.username
    finally:
        await close_all([alice, bob])


async def test_money_left_refuses_the_deletion_and_says_what(gateway, base):
    alice, bob = await people(base, 2)
    try:
        chat = await direct(alice, bob)
        await topup(alice, 2000)
        before = await snapshot(gateway, alice.user_id)
        status, body = await delete_me(alice.api)
        assert status == 409 and body["error"]["code"] == "wallet_not_empty", body
        assert "20.00 USD" in body["error"]["message"]
        assert body["error"]["details"] == {
            "balances": [{"amount": 2000, "currency": "USD", "exponent": 2}],
            "pending": [],
        }
        assert await snapshot(gateway, alice.user_id) == before
        # Spent on a transfer Bob has not accepted yet: the balance is 0, but the money comes
        # back at expiry — still refused. A red packet not finished likewise.
        status, body = await transfer(alice, bob, chat, 1500)
        assert status == 201, body
        status, body = await red_packet(alice, chat, 500, 1)
        assert status == 201, body
        await eventually(lambda: len(bob.received()) >= 2, what="the cards")
        before = await snapshot(gateway, alice.user_id)
        status, body = await delete_me(alice.api)
        assert status == 409 and body["error"]["code"] == "wallet_not_empty"
        pending = body["error"]["details"]["pending"]
        assert body["error"]["details"]["balances"] == []
        assert sorted((p["kind"], p["amount"]) for p in pending) == [
            ("red_packet", 500),
            ("transfer", 1500),
        ]
        assert await snapshot(gateway, alice.user_id) == before
        await check_ledger(ctx(gateway).db)
    finally:
        await close_all([alice, bob])


async def test_delete_my_account(gateway, base):
    alice, bob, carol, dave = await people(base, 4)
    newcomer = ApiClient(base)
    try:
        messaging = ctx(gateway)
        await befriend(alice, bob)
        await ask(alice, carol)
        await ask(dave, alice)
        status, _ = await dave.api.request("PUT", f"/api/v1/contacts/blocks/{alice.user_id}")
        assert status == 204
        team = await group(alice, [bob, carol], "Climbers")
        chat = await direct(alice, bob)
        said = await alice.send(team, "see you at the wall")
        await alice.send(chat, "just us")
        await bob.send(team, f"@{alice.username} sure", mentions=[alice.user_id])
        status, body = await upload(alice.api, jpeg(), filename="wall.jpg")
        assert status == 201, body
        photo = body["media"]
        ack = await alice.socket.call(
            "message.send",
            {
                "conversation_id": team,
                "client_msg_id": "photo",
                "type": "image",
                "media_ids": [photo["id"]],
            },
        )
        assert ack["ok"], ack
        status, _, _ = await fetch(bob.api, photo["url"])
        assert status == 200
        blob = (await messaging.media.get_media(photo["id"]))["blob"]
        status, body = await alice.api.patch(ME, json={"avatar_media_id": photo["id"]})
        assert status == 200, body
        await messaging.push_subscriptions.put_subscription(
            alice.user_id, "https://push.example/sub/1", "p" * 87, "a" * 22, None, now_ms()
        )
        await eventually(
            lambda: messaging.notifications.count_unread(alice.user_id), what="a notification"
        )
        await topup(alice, 300)
        status, body = await transfer(alice, bob, chat, 300)
        assert status == 201, body
        status, _ = await bob.api.post(f"/api/v1/wallet/transfers/{body['transfer']['id']}/accept")
        assert status == 200

        assert await messaging.db.mail_outbox.count_documents({"user_id": alice.user_id}) >= 1
        status, body = await delete_me(alice.api)
        assert status == 204, body

        # Signed out everywhere, at once.
        revoked = await eventually(lambda: events_of(alice, "session.revoked"), what="revoked")
        assert revoked[0]["reason"] == "account_deleted"
        await eventually(lambda: not alice.socket.sio.connected, what="disconnected")
        status, body = await alice.api.get(ME)
        assert status == 401 and body["error"]["code"] == "session_revoked"
        assert await messaging.db.sessions.count_documents({"user_id": alice.user_id}) == 0
        assert await messaging.db.refresh_tokens.count_documents({"user_id": alice.user_id}) == 0
        # her sign-up's verification mail was kept for the outbox; nothing addressed to her is now
        assert await messaging.db.mail_outbox.count_documents({"user_id": alice.user_id}) == 0
        deleted_name = (await messaging.users.get_user(alice.user_id))["username"]
        for login in (alice.username, f"{alice.username}@example.com", deleted_name):
            status, body = await newcomer.post(
                "/api/v1/auth/login", json={"login": login, "password": PASSWORD}
            )
            assert status == 401 and body["error"]["code"] == "invalid_credentials"

        # Others see "Deleted account", with no picture; its messages stay.
        status, body = await bob.api.get(f"/api/v1/users/{alice.user_id}")
        assert status == 200, body
        assert body["user"]["display_name"] == "Deleted account"
        assert body["user"]["avatar_url"] is None and body["user"]["bio"] == ""
        assert body["user"]["username"].startswith("deleted-")
        assert len(body["user"]["username"]) == len("deleted-") + 8
        assert alice.username not in json.dumps(body)
        status, body = await bob.api.get(f"/api/v1/conversations/{team}/messages")
        assert status == 200
        history = body["messages"]
        assert next(m for m in history if m["id"] == said["id"])["sender_id"] == alice.user_id
        left = [m for m in history if (m.get("system") or {}).get("event") == "member_left"]
        assert left and left[-1]["text"] == "Deleted account left"
        # The photo is gone: its message shows only the id, the URL and the bytes are gone.
        shared = next(m for m in history if m["type"] == "image")
        assert shared["media"] == [{"id": photo["id"]}]
        status, body = await bob.api.get(f"/api/v1/media/{photo['id']}")
        assert status == 404 and body["error"]["code"] == "media_not_found"
        status, _, _ = await fetch(bob.api, photo["url"])
        assert status == 404
        assert await messaging.blobs.size(blob) is None
        # The group goes on without it; the direct chat stays, its peer "Deleted account".
        status, body = await bob.api.get(f"/api/v1/conversations/{team}")
        assert status == 200
        body = body["conversation"]
        assert body["member_count"] == 2 and body["my_role"] == "owner"
        assert {m["user"]["id"] for m in body["members"]} == {bob.user_id, carol.user_id}
        status, body = await bob.api.get(f"/api/v1/conversations/{chat}")
        assert status == 200 and body["conversation"]["peer"]["display_name"] == "Deleted account"
        # Friends, requests, blocks, notifications, push subscriptions: gone, both ways.
        status, body = await bob.api.get("/api/v1/contacts")
        assert status == 200 and body["friends"] == []
        status, body = await carol.api.get("/api/v1/contacts/requests")
        assert body["incoming"] == []
        status, body = await dave.api.get("/api/v1/contacts/blocks")
        assert body["blocks"] == []
        await eventually(lambda: events_of(bob, "contact.removed"), what="bob told")
        await eventually(lambda: events_of(carol, "contact.request_cancelled"), what="carol told")
        db = messaging.db
        for collection, query in (
            ("contacts", {"users": alice.user_id}),
            ("blocks", {"blocked_id": alice.user_id}),
            ("notifications", {"user_id": alice.user_id}),
            ("push_subscriptions", {"user_id": alice.user_id}),
            ("media", {"owner_id": alice.user_id}),
            ("members", {"user_id": alice.user_id, "conversation_id": team}),
        ):
            assert await db[collection].count_documents(query) == 0, collection
        # What is left of the account: no password, nothing personal.
        remains = await db.users.find_one({"_id": alice.user_id})
        assert remains["password_hash"] is None and remains["deleted_at"]
        assert remains["email"].endswith("@deleted.invalid")
        assert alice.username not in json.dumps(remains, default=str)
        # The books still add up (the ledger keeps its entries).
        await check_ledger(db)
        audit = await db.admin_audit.find({"action": "account.delete"}).to_list(None)
        assert [a["target"] for a in audit] == [{"user_id": alice.user_id}]

        # The old username and email are free for someone new.
        status, body = await newcomer.post(
            "/api/v1/auth/register",
            json={
                "username": alice.username,
                "email": f"{alice.username}@example.com",
                "password": PASSWORD,
            },
        )
        assert status == 201, body
        assert body["user"]["id"] != alice.user_id
    finally:
        await newcomer.close()
        await close_all([alice, bob, carol, dave])


async def test_concurrent_deletions_give_one_result(gateway, base):
    alice, bob = await people(base, 2)
    try:
        await group(alice, [bob])
        results = await asyncio.gather(*[delete_me(alice.api) for _ in range(5)])
        statuses = [s for s, _ in results]
        assert statuses.count(204) == 1, results
        for status, body in results:
            if status != 204:
                assert (status, body["error"]["code"]) in (
                    (409, "deletion_in_progress"),
                    (401, "session_revoked"),
                ), body
        db = ctx(gateway).db
        assert await db.admin_audit.count_documents({"action": "account.delete"}) == 1
        left = await db.messages.count_documents({"system.event": "member_left"})
        assert left == 1
    finally:
        await close_all([alice, bob])


async def test_a_deletion_interrupted_halfway_is_finished_by_sending_it_again(gateway, base):
    alice, bob = await people(base, 2)
    messaging = ctx(gateway)
    crashes = []

    async def crash_once(user: dict) -> None:
        if not crashes:
            crashes.append(user["_id"])
            raise RuntimeError("the node died here")

    messaging.deletion_hooks.append(crash_once)
    try:
        await befriend(alice, bob)
        team = await group(alice, [bob])
        status, body = await delete_me(alice.api)
        assert status == 500, body
        # Half done: marked, but still there and still signed in.
        user = await messaging.users.get_user(alice.user_id)
        assert user["deleting_at"] and "deleted_at" not in user
        status, body = await alice.api.get(ME)
        assert status == 200
        # Sent again at once: the first one might still be running.
        status, body = await delete_me(alice.api)
        assert status == 409 and body["error"]["code"] == "deletion_in_progress"
        # Later (its lease has passed): finished.
        await messaging.db.users.update_one(
            {"_id": alice.user_id}, {"$set": {"deleting_at": now_ms() - 10 * 60_000}}
        )
        status, body = await delete_me(alice.api)
        assert status == 204, body
        user = await messaging.users.get_user(alice.user_id)
        assert user["deleted_at"] and user["display_name"] == "Deleted account"
        status, body = await bob.api.get(f"/api/v1/conversations/{team}")
        assert body["conversation"]["member_count"] == 1
        assert await messaging.db.contacts.count_documents({"users": alice.user_id}) == 0
    finally:
        messaging.deletion_hooks.remove(crash_once)
        await close_all([alice, bob])


@pytest.mark.timeout(180)
async def test_apps_never_see_a_deleted_accounts_id_again(gateway, base):
    """The addressee app reads the group's history (granted): before, the author's per-app id;
    after the deletion, ``u-deleted`` and "Deleted account" — and the host forgot the id."""
    from tests.miniapps.test_privacy_routing_e2e import APP, GRANT, grant_path, recall

    add_apps(gateway)
    host = gateway.app[MINIAPPS]
    ann, bea = await people(base, 2)
    try:
        cid = await group(ann, [bea], "Privy")
        status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
        assert status == 201, body
        status, body = await ann.api.request("PUT", grant_path(cid))
        assert status == 200, body
        said = await ann.send(cid, "@Addressee remember me", client_msg_id="hello")
        await eventually(
            lambda: any(t.startswith("addressee heard") for t in bea.texts(cid)), what="heard"
        )
        await host.consents.set_answer(ann.user_id, APP, "users.profile", True, now_ms())
        known = host.identity.app_user_id(APP, ann.user_id)
        assert await host.identity.app_users.get_user_id(APP, known) == ann.user_id
        before = await recall(bea, cid)
        mine = next(m for m in before["messages"] if m["id"] == said["id"])
        assert mine["sender"] == known and mine["sender_name"] == ann.username

        status, body = await delete_me(ann.api)
        assert status == 204, body

        after = await recall(bea, cid)
        mine = next(m for m in after["messages"] if m["id"] == said["id"])
        assert mine["sender"] == DELETED_APP_USER and mine["sender_name"] == "Deleted account"
        assert known not in json.dumps(after)
        assert await host.identity.app_users.get_user_id(APP, known) is None
        assert await host.identity.app_user(APP, ann.user_id) == DELETED_APP_USER
        db = ctx(gateway).db
        assert await db.app_users.count_documents({"user_id": ann.user_id}) == 0
        assert await db.consents.count_documents({"user_id": ann.user_id}) == 0
        assert GRANT  # the grant outlives its granter: the group's admins decide now
    finally:
        await close_all([ann, bea])
