"""Privacy mode through a real gateway, Socket.IO clients and the ``addressee`` test app in a
real sandboxed process: a group message not addressed to the app never reaches it (asserted on
what the app kept: storage ``heard``); a mention (``@addressee`` in the text, or
``app:addressee`` among the mentions), a reply to its message and a message in a person's
service chat do, with the message replied to. ``messages.history`` is refused without the
chat's grant, allowed once a group admin granted it, refused again after the revoke; a member
who is not an admin cannot grant; ``since_read`` gives what that person missed."""

from __future__ import annotations

import json

import pytest

from gateway.keys import MINIAPPS
from miniapps.host.store.app_storage import value_of
from sdk.signing import verify_event
from storage.mongo import now_ms
from tests.helpers import eventually
from tests.media.media_helpers import png, upload
from tests.messaging.chat_helpers import close_all, group, people
from tests.miniapps.test_capabilities import events_of
from tests.miniapps.test_webview_calls import add_apps

pytestmark = pytest.mark.timeout(120)

APP = "addressee"
GRANT = "messages.read_history"


@pytest.fixture
async def chat(gateway):
    """(host, ann, bea, cid): ann owns a group with bea that has the addressee app."""
    add_apps(gateway)
    ann, bea = await people(str(gateway.make_url("")).rstrip("/"), 2)
    try:
        cid = await group(ann, [bea], "Privy")
        status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
        assert status == 201, body
        yield gateway.app[MINIAPPS], ann, bea, cid
    finally:
        await close_all([ann, bea])


async def heard(host) -> dict[str, dict]:
    """What the app kept of what reached it, by message id (its own storage)."""
    found = host.storage.collection.find({"app_id": APP, "collection": "heard"})
    return {doc["key"]: value_of(doc) async for doc in found}


async def say(person, cid: str, text: str, **extra) -> dict:
    return await person.send(cid, text, client_msg_id=f"m-{now_ms()}-{text[:20]}", **extra)


async def answered(person, cid: str, text: str) -> None:
    await eventually(lambda: text in person.texts(cid), what=f"the app's {text!r}")


def grant_path(cid: str, app_id: str = APP, grant: str = GRANT) -> str:
    return f"/api/v1/conversations/{cid}/apps/{app_id}/grants/{grant}"


def ephemerals(person, cid: str) -> list[dict]:
    return [e for e in events_of(person, "miniapp.ephemeral") if e["conversation_id"] == cid]


async def recall(person, cid: str, *args: str) -> dict:
    """``/recall …`` (the app answers the invoker alone with what ``messages.history`` gave)."""
    before = len(ephemerals(person, cid))
    ack = await person.socket.call(
        "message.send",
        {
            "conversation_id": cid,
            "client_msg_id": f"r-{now_ms()}",
            "text": " ".join(["/recall", *args]),
        },
    )
    assert ack == {"ok": True, "routed_to": {"app_id": APP}}, ack
    shown = await eventually(lambda: ephemerals(person, cid)[before:], what="the recall")
    return json.loads(shown[0]["text"])


async def test_only_messages_addressed_to_the_app_reach_it(chat):
    host, ann, bea, cid = chat
    # Said in the group, to nobody in particular: never reaches the app.
    await say(bea, cid, "lunch at one?")
    await say(bea, cid, "mail me at bea@addressee.io")
    plain = await say(ann, cid, "a person's message")
    await say(bea, cid, "replying to a person", reply_to=plain["id"])

    by_text = await say(ann, cid, "@Addressee what's up?")
    await answered(bea, cid, "addressee heard mention: @Addressee what's up?")
    by_picker = await say(bea, cid, "and you?", mentions=["app:addressee"])
    assert by_picker["mentions"] == []  # an app is addressed, not a member mentioned
    await answered(bea, cid, "addressee heard mention: and you?")
    answer = next(
        m
        for m in (e["message"] for e in ann.received())
        if m["text"] == "addressee heard mention: and you?"
    )
    reply = await say(bea, cid, "thanks!", reply_to=answer["id"])
    await answered(
        ann, cid, "addressee heard reply: thanks! (re: addressee heard mention: and you?)"
    )

    kept = await heard(host)
    assert set(kept) == {by_text["id"], by_picker["id"], reply["id"]}
    ann_for_app = host.identity.app_user_id(APP, ann.user_id)
    bea_for_app = host.identity.app_user_id(APP, bea.user_id)
    first = kept[by_text["id"]]
    assert first["reason"] == "mention" and first["user_id"] == ann_for_app
    assert first["conversation_id"] == cid
    assert first["message"] == {
        "id": by_text["id"],
        "text": "@Addressee what's up?",
        "sender": ann_for_app,
        "reply_to": None,
        "media": [],
    }
    # Signed with the app's own secret, like every host event.
    secret = await host.remote.launch_secret(APP)
    assert verify_event(
        secret, {k: v for k, v in first.items() if k in ("message", "reason", "signature")}
    )
    assert kept[reply["id"]]["reason"] == "reply"
    assert kept[reply["id"]]["message"]["sender"] == bea_for_app
    assert kept[reply["id"]]["message"]["reply_to"] == {
        "id": answer["id"],
        "text": "addressee heard mention: and you?",
        "sender": "app:addressee",
    }


async def test_a_mention_replying_to_a_photo_brings_the_photo_along(chat):
    host, ann, bea, cid = chat
    status, body = await upload(ann.api, png(), filename="p.png", content_type="image/png")
    assert status == 201, body
    media_id = body["media"]["id"]
    photo = await ann.socket.call(
        "message.send",
        {
            "conversation_id": cid,
            "client_msg_id": "photo",
            "type": "image",
            "media_ids": [media_id],
        },
    )
    assert photo["ok"], photo
    asked = await say(bea, cid, "@addressee what is this?", reply_to=photo["message"]["id"])
    await answered(bea, cid, "addressee heard mention: @addressee what is this? (re: )")
    kept = await heard(host)
    assert set(kept) == {asked["id"]}  # the photo itself was addressed to nobody
    assert kept[asked["id"]]["message"]["reply_to"] == {
        "id": photo["message"]["id"],
        "text": "",
        "sender": host.identity.app_user_id(APP, ann.user_id),
        "media": [{"media_id": media_id, "kind": "image"}],
    }


async def test_everything_a_person_writes_in_the_service_chat_reaches_the_app(chat):
    host, ann, _bea, _cid = chat
    status, body = await ann.api.post(f"/api/v1/miniapps/{APP}/chat")
    assert status == 200, body
    service = body["conversation"]
    assert service["type"] == "service" and service["app_id"] == APP and body["created"]
    status, again = await ann.api.post(f"/api/v1/miniapps/{APP}/chat")
    assert status == 200 and again["conversation"]["id"] == service["id"] and not again["created"]

    said = await say(ann, service["id"], "just between us")
    await answered(ann, service["id"], "addressee heard direct: just between us")
    assert (await heard(host))[said["id"]]["reason"] == "direct"

    # An app that takes no messages has no chat to write to.
    status, body = await ann.api.post("/api/v1/miniapps/toolbox/chat")
    assert status == 409 and body["error"]["code"] == "no_direct_messages"
    status, body = await ann.api.post("/api/v1/miniapps/nobody/chat")
    assert status == 404 and body["error"]["code"] == "app_not_found"


async def test_history_needs_an_admins_grant_and_ends_with_its_revoke(chat):
    host, ann, bea, cid = chat
    await say(ann, cid, "we pick the blue mugs")
    await say(bea, cid, "agreed")

    refused = await recall(bea, cid)
    assert refused["error"] == "history_not_granted"
    assert f"/apps/{{app_id}}/grants/{GRANT}" in refused["message"]

    # A member who is not an admin cannot grant it; bad grants change nothing.
    status, body = await bea.api.request("PUT", grant_path(cid))
    assert status == 403 and body["error"]["code"] == "not_allowed", body
    status, body = await ann.api.request("PUT", grant_path(cid, grant="messages.write"))
    assert status == 400 and body["error"]["code"] == "invalid_field", body
    status, body = await ann.api.request("PUT", grant_path(cid, app_id="toolbox"))
    assert status == 404 and body["error"]["code"] == "app_not_installed", body
    status, body = await ann.api.post(
        f"/api/v1/conversations/{cid}/apps", json={"app_id": "concierge"}
    )
    assert status == 201, body
    status, body = await ann.api.request("PUT", grant_path(cid, app_id="concierge"))
    assert status == 409 and body["error"]["code"] == "not_requested", body
    status, body = await bea.api.get(f"/api/v1/conversations/{cid}/apps/{APP}/grants")
    assert status == 200 and body == {"grants": []}

    status, body = await ann.api.request("PUT", grant_path(cid))
    assert status == 200, body
    assert body["grant"]["granted_by"] == ann.user_id and body["grant"]["grant"] == GRANT
    # Every member is told who let the app read the chat: a system message and an event.
    notice = "let Addressee read this chat's history"
    await eventually(
        lambda: any(notice in e["message"]["text"] for e in bea.received()), what="the notice"
    )
    granted = await eventually(lambda: events_of(bea, "conversation.app_grant"), what="the event")
    assert granted[0] == {
        "conversation_id": cid,
        "app_id": APP,
        "app_name": "Addressee",
        "grant": GRANT,
        "granted": True,
        "by": ann.user_id,
    }
    status, again = await ann.api.request("PUT", grant_path(cid))  # idempotent, told once
    assert status == 200 and again["grant"] == body["grant"]
    status, body = await bea.api.get(f"/api/v1/conversations/{cid}/apps/{APP}/grants")
    assert status == 200 and [g["grant"] for g in body["grants"]] == [GRANT]

    found = await recall(bea, cid)
    texts = [m["text"] for m in found["messages"]]
    # All of it, system messages included: "… created the group", the chat, the notice.
    assert "created the group" in texts[0]
    assert texts[1:3] == ["we pick the blue mugs", "agreed"]
    assert notice in texts[-1]
    first = found["messages"][1]
    assert first["sender"] == host.identity.app_user_id(APP, ann.user_id)
    assert first["sender_name"] == ann.username and isinstance(first["at"], int)
    assert found["from_seq"] < found["to_seq"] and found["has_more"] is False
    one = await recall(bea, cid, "1")
    assert len(one["messages"]) == 1 and one["has_more"] is True

    status, _ = await ann.api.delete(grant_path(cid))
    assert status == 204
    await eventually(lambda: len(events_of(bea, "conversation.app_grant")) == 2, what="revoke")
    assert events_of(bea, "conversation.app_grant")[-1]["granted"] is False
    assert (await recall(bea, cid))["error"] == "history_not_granted"
    status, body = await ann.api.delete(grant_path(cid))
    assert status == 404 and body["error"]["code"] == "grant_not_found"
    assert len(events_of(bea, "conversation.app_grant")) == 2


async def test_removing_the_app_ends_its_grant(chat):
    _host, ann, bea, cid = chat
    status, _ = await ann.api.request("PUT", grant_path(cid))
    assert status == 200
    status, _ = await ann.api.delete(f"/api/v1/conversations/{cid}/apps/{APP}")
    assert status == 204
    status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
    assert status == 201, body
    assert (await recall(bea, cid))["error"] == "history_not_granted"
    status, body = await bea.api.get(f"/api/v1/conversations/{cid}/apps/{APP}/grants")
    assert status == 200 and body == {"grants": []}


async def test_since_read_gives_what_that_person_missed(chat):
    _host, ann, bea, cid = chat
    status, _ = await ann.api.request("PUT", grant_path(cid))
    assert status == 200
    seen = await say(ann, cid, "old news")
    ack = await bea.socket.call("conversation.read", {"conversation_id": cid, "seq": seen["seq"]})
    assert ack["ok"], ack
    await say(ann, cid, "we moved the meeting to 3")
    await say(ann, cid, "bring the slides")
    missed = await recall(bea, cid, "50", "missed")
    assert [m["text"] for m in missed["messages"]] == [
        "we moved the meeting to 3",
        "bring the slides",
    ]
    assert missed["from_seq"] == seen["seq"] + 1
    # At most `limit`: the newest of what she missed.
    newest = await recall(bea, cid, "1", "missed")
    assert [m["text"] for m in newest["messages"]] == ["bring the slides"]
    assert newest["has_more"] is True
