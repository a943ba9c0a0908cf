"""Service chats: an app's ``notifications.send`` lands in the user's service chat with the app
(one per user and app) and in their notification center; the user reads it on any device (also
one that was offline, through sync), presses its buttons, mutes it, unsubscribes — and cannot
type into it."""

from __future__ import annotations

import asyncio

from gateway.keys import MESSAGING
from messaging.actions import service_chats
from tests.helpers import SocketClient, eventually
from tests.messaging.chat_helpers import close_all, person
from tests.miniapps.test_capabilities import command, events_of, setup, texts_from

CONSENT = {"app_id": "servicer", "scope": "notifications", "granted": True}


def service_notes(someone) -> list[dict]:
    return [
        d["notification"]
        for d in events_of(someone, "notification.new")
        if d["notification"]["kind"] == "service"
    ]


async def test_service_message_lands_in_the_service_chat_and_reaches_an_offline_phone(gateway):
    _, (ann, bea), cid = await setup(gateway, 2, ["servicer"])
    phone = await ann.connect_device()
    try:
        # No consent: the app is told scope_denied and nothing is created.
        await command(bea, cid, "/svc text")
        await eventually(lambda: texts_from(ann, cid, "servicer: text scope_denied"))
        assert not events_of(bea, "notification.new")

        assert (await ann.socket.call("miniapp.consent", CONSENT))["ok"]
        await command(ann, cid, "/svc first")
        (first,) = await eventually(lambda: service_notes(ann))
        await eventually(lambda: [d for n, d in phone.events if n == "notification.new"])
        await phone.close()  # the phone goes offline

        await command(ann, cid, "/svc card")
        await eventually(lambda: len(service_notes(ann)) == 2)
        card_note = service_notes(ann)[1]
        assert card_note["card"]["title"] == "Your order shipped"
        assert card_note["app_id"] == "servicer" and card_note["title"] == "Servicer"
        assert card_note["silent"] is False and card_note["read"] is False
        service_cid = card_note["conversation_id"]
        assert first["conversation_id"] == service_cid  # one chat per (user, app)
        (new_chat,) = [
            d["conversation"]
            for d in events_of(ann, "conversation.new")
            if d["conversation"]["type"] == "service"
        ]
        assert new_chat["id"] == service_cid and new_chat["app_id"] == "servicer"
        assert new_chat["title"] == "Servicer" and new_chat["my_role"] == "member"

        # The phone comes back a day later: sync brings the newer notification and the chat.
        phone = SocketClient()
        await phone.connect(ann.api.base_url, ann.token)
        ack = await phone.call("sync", {"cursors": {}, "notifications_after": first["id"]})
        assert ack["ok"], ack
        assert [n["id"] for n in ack["notifications"]] == [card_note["id"]]
        assert ack["notifications_unread"] == 2 and ack["notifications_too_long"] is False
        entry = ack["conversations"][service_cid]
        assert entry["conversation"]["type"] == "service"
        assert [m["type"] for m in entry["messages"]] == ["text", "card"]
        assert entry["messages"][1]["sender_id"] == "app:servicer"

        # The list shows the service chat once, whatever the number of messages.
        status, body = await ann.api.get("/api/v1/conversations")
        assert status == 200, body
        assert [c["id"] for c in body["conversations"] if c["type"] == "service"] == [service_cid]
        # Bea has no service chat (she never opted in).
        status, body = await bea.api.get("/api/v1/conversations")
        assert not [c for c in body["conversations"] if c["type"] == "service"]
    finally:
        await phone.close()
        await close_all([ann, bea])


async def test_press_mute_and_unsubscribe(gateway):
    _, (ann,), cid = await setup(gateway, 1, ["servicer"])
    try:
        assert (await ann.socket.call("miniapp.consent", CONSENT))["ok"]
        await command(ann, cid, "/svc card")
        (note,) = await eventually(lambda: service_notes(ann))
        service_cid = note["conversation_id"]
        card = next(
            d["message"]
            for d in ann.received()
            if d["message"]["conversation_id"] == service_cid and d["message"]["type"] == "card"
        )

        # Buttons work: the press reaches the app, which redraws the card in the service chat.
        press = {
            "conversation_id": service_cid,
            "message_id": card["id"],
            "action_id": "svc.ok",
            "value": "ok",
        }
        ack = await ann.socket.call("miniapp.action", press)
        assert ack["ok"], ack
        updated = await eventually(
            lambda: [
                d["message"]
                for d in events_of(ann, "message.updated")
                if d["message"]["id"] == card["id"]
            ]
        )
        assert updated[0]["card"]["title"] == "Thanks"

        # Muting the chat mutes the app: its notifications still come, silent (no push).
        status, body = await ann.api.patch(
            f"/api/v1/conversations/{service_cid}/settings", json={"muted": True}
        )
        assert status == 200, body
        await command(ann, cid, "/svc muted")
        await eventually(lambda: len(service_notes(ann)) == 2)
        assert service_notes(ann)[1]["silent"] is True

        # Unsubscribing: the app's next service message is refused, nothing is added.
        status, body = await ann.api.post("/api/v1/notifications/apps/servicer/unsubscribe")
        assert status == 204, body
        await command(ann, cid, "/svc after")
        await eventually(lambda: texts_from(ann, cid, "servicer: after scope_denied"))
        status, body = await ann.api.get("/api/v1/notifications")
        assert status == 200 and len(body["notifications"]) == 2, body
        status, body = await ann.api.post("/api/v1/notifications/apps/nosuchapp/unsubscribe")
        assert status == 404 and body["error"]["code"] == "app_not_found", body
    finally:
        await close_all([ann])


async def test_concurrent_first_service_messages_make_one_chat(gateway):
    ctx = gateway.app[MESSAGING]
    ann = await person(str(gateway.make_url("")).rstrip("/"))
    try:
        sent = await asyncio.gather(
            *[
                service_chats.do_send_service_message(
                    ctx, ann.user_id, "servicer", "Servicer", text=f"note {i}"
                )
                for i in range(20)
            ]
        )
        assert len({m["conversation_id"] for m in sent}) == 1
        assert sorted(m["seq"] for m in sent) == list(range(1, 21))
        status, body = await ann.api.get("/api/v1/conversations")
        (chat,) = [c for c in body["conversations"] if c["type"] == "service"]
        assert chat["unread_count"] == 20 and chat["member_count"] == 1
        status, body = await ann.api.get("/api/v1/notifications?limit=100")
        assert status == 200 and body["unread"] == 20 and len(body["notifications"]) == 20
    finally:
        await ann.close()


async def test_user_cannot_type_into_a_service_chat(gateway):
    ctx = gateway.app[MESSAGING]
    ann = await person(str(gateway.make_url("")).rstrip("/"))
    try:
        sent = await service_chats.do_send_service_message(
            ctx, ann.user_id, "servicer", "Servicer", text="welcome"
        )
        ack = await ann.socket.call(
            "message.send",
            {"conversation_id": sent["conversation_id"], "client_msg_id": "t", "text": "hi app"},
        )
        assert not ack["ok"] and ack["error"]["code"] == "not_allowed", ack
        status, body = await ann.api.get(f"/api/v1/conversations/{sent['conversation_id']}")
        assert status == 200 and body["conversation"]["last_seq"] == 1  # nothing was posted
    finally:
        await ann.close()


async def test_a_refused_card_opens_no_service_chat(host_capability):
    """An app whose card image is not its own upload gets invalid_params, and the user is left
    without an empty service chat."""
    outcome = await host_capability(
        "notifications.send",
        {
            "user_id": host_capability.user_id,
            "card": {"title": "Mug", "image": "0" * 24},
        },
    )
    assert outcome == ("error", "invalid_params")
    chat_id = service_chats.service_chat_id(host_capability.platform_user_id, "contract")
    ctx = host_capability.host.messaging
    assert await ctx.conversations.get_conversation(chat_id) is None
