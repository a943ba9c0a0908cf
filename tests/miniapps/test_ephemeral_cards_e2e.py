"""Ephemeral cards whose buttons work, through a real gateway, Socket.IO clients and the
``whisper`` test app in a real sandboxed process: ``/whisper`` shows the invoker alone a card
with buttons (``miniapp.ephemeral`` with an ``ephemeral_id``; kept in ``ephemeral_cards``);
the invoker's press (``miniapp.action`` with ``message_id`` = that id) reaches the app with the
button's own value; anyone else's press, an expired card, a made-up value, a web-view button
are refused; ``update_card`` of the id shows the new card to its reader again. Texts and cards
without buttons get no id and are not kept."""

from __future__ import annotations

import asyncio

import pytest

from gateway.keys import MINIAPPS
from miniapps.host.store.ephemeral_cards import COLLECTION
from storage.mongo import now_ms
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, group, people
from tests.miniapps.test_capabilities import events_of
from tests.miniapps.test_webview_calls import add_apps

pytestmark = pytest.mark.timeout(120)

APP = "whisper"


@pytest.fixture
async def chat(gateway):
    """(host, ann, bea, cid): ann and bea in a group that has the whisper app."""
    add_apps(gateway)
    ann, bea = await people(str(gateway.make_url("")).rstrip("/"), 2)
    try:
        cid = await group(ann, [bea], "Whispers")
        status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
        assert status == 201, body
        yield gateway.app[MINIAPPS], ann, bea, cid
    finally:
        await close_all([ann, bea])


def ephemerals(person, cid: str) -> list[dict]:
    return [e for e in events_of(person, "miniapp.ephemeral") if e["conversation_id"] == cid]


async def whisper(person, cid: str, text: str = "/whisper") -> dict:
    """``person`` runs ``text``; the private answer they get."""
    before = len(ephemerals(person, cid))
    ack = await person.socket.call(
        "message.send", {"conversation_id": cid, "client_msg_id": f"w-{now_ms()}", "text": text}
    )
    assert ack == {"ok": True, "routed_to": {"app_id": APP}}, ack
    return (await eventually(lambda: ephemerals(person, cid)[before:], what="an ephemeral"))[0]


def press(person, cid: str, message_id: str, action_id: str, value: str | None = None):
    params = {"conversation_id": cid, "message_id": message_id, "action_id": action_id}
    if value is not None:
        params["value"] = value
    return person.socket.call("miniapp.action", params)


def error_of(ack) -> str:
    assert not ack["ok"], ack
    return ack["error"]["code"]


async def test_the_invoker_presses_a_button_of_their_ephemeral_card(chat):
    host, ann, bea, cid = chat
    shown = await whisper(ann, cid)
    ephemeral_id = shown["ephemeral_id"]
    assert shown["app_id"] == APP and shown["card"]["title"] == "Just for you"
    assert [b.get("action_id") for b in shown["card"]["buttons"]] == ["pay", "pay", "settle", None]
    kept = await host.ephemeral_cards.collection.find_one({"_id": ephemeral_id})
    assert kept["user_id"] == ann.user_id and kept["conversation_id"] == cid
    assert kept["app_id"] == APP and kept["card"] == shown["card"]
    assert kept["expires_at"].timestamp() * 1000 - kept["created_at"] == 3600 * 1000

    ack = await press(ann, cid, ephemeral_id, "pay", "500")
    assert ack == {"ok": True, "routed_to": {"app_id": APP}}, ack
    text = f"whisper: paid 500 on {ephemeral_id}"
    await eventually(lambda: text in bea.texts(cid) and text in ann.texts(cid), what="the answer")
    # Only she ever saw the card: not a message, not an event to anyone else.
    assert ephemerals(bea, cid) == []
    status, body = await bea.api.get(f"/api/v1/conversations/{cid}/messages")
    assert status == 200, body
    assert ephemeral_id not in {m["id"] for m in body["messages"]}


async def test_nobody_else_presses_it_and_no_value_is_made_up(chat):
    host, ann, bea, cid = chat
    ephemeral_id = (await whisper(ann, cid))["ephemeral_id"]
    # Another member of the same chat: there is no such card for her.
    assert error_of(await press(bea, cid, ephemeral_id, "pay", "1250")) == "message_not_found"
    # Ann herself, but naming another chat she is in.
    other = await group(ann, [bea], "Elsewhere")
    status, body = await ann.api.post(f"/api/v1/conversations/{other}/apps", json={"app_id": APP})
    assert status == 201, body
    assert error_of(await press(ann, other, ephemeral_id, "pay", "1250")) == "message_not_found"
    # The app's own buttons only, with their own values.
    assert error_of(await press(ann, cid, ephemeral_id, "pay", "999999")) == "invalid_field"
    assert error_of(await press(ann, cid, ephemeral_id, "refund")) == "invalid_field"
    assert error_of(await press(ann, cid, ephemeral_id, "Details")) == "invalid_field"
    assert error_of(await press(ann, cid, "0" * 24, "pay")) == "message_not_found"

    # A web-view button is the client's to open, never a press — even one kept with an
    # action_id beside it (stored straight, without the card check).
    odd = await host.ephemeral_cards.add_card(
        ann.user_id,
        cid,
        APP,
        {"title": "Odd", "buttons": [{"label": "Open", "opens": "webview", "action_id": "open"}]},
        now_ms(),
    )
    assert error_of(await press(ann, cid, odd, "open")) == "not_a_press"
    # An expired one is gone (refused on read, whether or not the TTL index removed it yet).
    expired = await host.ephemeral_cards.add_card(
        ann.user_id,
        cid,
        APP,
        {"title": "Old", "buttons": [{"action_id": "pay", "label": "Pay"}]},
        now_ms(),
        ttl_ms=-1000,
    )
    assert error_of(await press(ann, cid, expired, "pay")) == "message_not_found"
    # None of the refused presses reached the app: only the good one that follows does.
    assert (await press(ann, cid, ephemeral_id, "pay", "1250"))["ok"]
    text = f"whisper: paid 1250 on {ephemeral_id}"
    await eventually(lambda: text in ann.texts(cid), what="the good press's answer")
    assert [t for t in ann.texts(cid) if t.startswith("whisper:")] == [text]


async def test_presses_of_ephemeral_cards_are_rate_limited(chat):
    _host, ann, _bea, cid = chat
    ephemeral_id = (await whisper(ann, cid))["ephemeral_id"]
    acks = await asyncio.gather(*[press(ann, cid, ephemeral_id, "pay", "500") for _ in range(21)])
    assert sum(1 for a in acks if a["ok"]) == 20
    assert [a["error"]["code"] for a in acks if not a["ok"]] == ["rate_limited"]


async def test_update_card_of_an_ephemeral_id_shows_the_new_card_to_its_reader(chat):
    _host, ann, bea, cid = chat
    ephemeral_id = (await whisper(ann, cid))["ephemeral_id"]
    ack = await press(ann, cid, ephemeral_id, "settle")
    assert ack["ok"], ack
    updated = await eventually(lambda: ephemerals(ann, cid)[1:], what="the new card")
    assert updated[0]["ephemeral_id"] == ephemeral_id
    assert updated[0]["card"]["title"] == "All settled"
    assert ephemerals(bea, cid) == []
    # The new card's buttons are the ones that press now.
    assert error_of(await press(ann, cid, ephemeral_id, "settle")) == "invalid_field"
    assert (await press(ann, cid, ephemeral_id, "pay", "100"))["ok"]
    text = f"whisper: paid 100 on {ephemeral_id}"
    await eventually(lambda: text in ann.texts(cid), what="the tip")


async def test_texts_and_cards_without_buttons_are_not_kept(chat):
    host, ann, _bea, cid = chat
    plain = await whisper(ann, cid, "/whisper plain")
    assert plain["card"] == {"title": "Just for you", "text": "No buttons here"}
    assert "ephemeral_id" not in plain
    text = await whisper(ann, cid, "/whisper text")
    assert text["text"] == "whisper: only you can read this" and "ephemeral_id" not in text
    assert await host.messaging.db[COLLECTION].count_documents({}) == 0


async def test_update_card_of_an_expired_or_misplaced_ephemeral_id_is_not_found(chat):
    host, ann, bea, cid = chat
    card = {"title": "v2", "buttons": [{"action_id": "pay", "label": "Pay"}]}

    async def update(ephemeral_id: str, conversation_id: str) -> str:
        app_user = await host.identity.app_user(APP, ann.user_id)
        call_id = await host.calls.open(
            APP, ann.user_id, app_user, conversation_id, 0, remote=False
        )
        try:
            await host.serve(
                APP,
                "messages.update_card",
                {"call_id": call_id, "message_id": ephemeral_id, "card": card},
            )
            return "ok"
        except Exception as exc:
            return exc.code
        finally:
            await host.calls.close(call_id, remote=False)

    expired = await host.ephemeral_cards.add_card(
        ann.user_id, cid, APP, {"title": "Old", "buttons": [card["buttons"][0]]}, now_ms(), -1000
    )
    assert await update(expired, cid) == "not_found"
    other = await group(ann, [bea], "Elsewhere")
    status, body = await ann.api.post(f"/api/v1/conversations/{other}/apps", json={"app_id": APP})
    assert status == 201, body
    ephemeral_id = (await whisper(ann, cid))["ephemeral_id"]
    assert await update(ephemeral_id, other) == "not_found"  # shown in another chat
    assert await update(ephemeral_id, cid) == "ok"
    updated = await eventually(lambda: ephemerals(ann, cid)[1:], what="the new card")
    assert updated[0] == {
        "conversation_id": cid,
        "app_id": APP,
        "card": card,
        "ephemeral_id": ephemeral_id,
    }
    assert ephemerals(bea, cid) == []
