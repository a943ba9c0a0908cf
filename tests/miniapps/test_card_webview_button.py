"""Card buttons that open the posting app's web view (``opens: "webview"``), through a real
gateway and Socket.IO clients: the host checks them on every card an app posts, never routes a
press of one to the app (``not_a_press``), and the chat opens the web view with the same launch
as the app menu (``POST …/apps/{app}/launch``)."""

from __future__ import annotations

import pytest

from gateway.keys import MINIAPPS
from messaging.actions import cards
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, group, people
from tests.miniapps.test_webview_calls import add_apps

pytestmark = pytest.mark.timeout(120)

APP = "viewer"  # a hosted test app with a web view (tests/miniapps/apps/viewer)
OPEN = {"label": "Open the list", "opens": "webview", "style": "primary"}
DETAILS = {"label": "Details", "opens": "webview", "path": "#item=i-1"}
VOTE = {"action_id": "vote", "label": "Vote", "value": "yes"}


@pytest.fixture
async def chat(gateway):
    """(host, ann, bea, cid): ann and bea in a group that has the viewer app."""
    add_apps(gateway)
    ann, bea = await people(str(gateway.make_url("")).rstrip("/"), 2)
    try:
        cid = await group(ann, [bea], "Cards")
        status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
        assert status == 201, body
        yield gateway.app[MINIAPPS], ann, bea, cid
    finally:
        await close_all([ann, bea])


async def send_card(host, person, cid: str, card: dict) -> tuple[str, object]:
    """The app posts ``card`` through the host's capability check (in a call of its own, as
    when ``person`` invoked it): ("ok", result) or ("error", code)."""
    app_user = await host.identity.app_user(APP, person.user_id)
    call_id = await host.calls.open(APP, person.user_id, app_user, cid, 0, remote=False)
    try:
        return "ok", await host.serve(APP, "messages.send_card", {"call_id": call_id, "card": card})
    except Exception as exc:
        code = getattr(exc, "code", None)
        if not isinstance(code, str):
            raise
        return "error", code
    finally:
        await host.calls.close(call_id, remote=False)


def card_seen(person, message_id: str) -> dict | None:
    for data in person.received("message.new"):
        if data["message"]["id"] == message_id:
            return data["message"]
    return None


def press(person, cid: str, message_id: str, action_id: str, value: str | None = None):
    params = {"conversation_id": cid, "message_id": message_id, "action_id": action_id}
    if value is not None:
        params["value"] = value
    return person.socket.call("miniapp.action", params)


async def test_the_host_checks_web_view_buttons_on_every_card(chat):
    host, ann, bea, cid = chat
    outcome, result = await send_card(
        host, ann, cid, {"title": "Groceries", "buttons": [VOTE, OPEN, DETAILS]}
    )
    assert outcome == "ok", result
    message = await eventually(lambda: card_seen(bea, result["message_id"]))
    assert message["app_id"] == APP
    assert message["card"]["buttons"] == [VOTE, OPEN, DETAILS]

    for bad in (
        {**OPEN, "action_id": "open"},  # a press and a link at once
        {**OPEN, "opens": "browser"},  # unknown kind
        {**DETAILS, "path": "item=i-1"},  # not a fragment
        {**DETAILS, "path": "#item=<script>"},  # outside the safe charset
        {**DETAILS, "path": "#" + "a" * 200},  # over 200 characters
        {**VOTE, "path": "#item=i-1"},  # a path on a press
    ):
        outcome, code = await send_card(host, ann, cid, {"title": "Bad", "buttons": [bad]})
        assert (outcome, code) == ("error", "invalid_params"), bad


async def test_a_web_view_button_is_never_pressed(chat):
    host, ann, bea, cid = chat
    outcome, result = await send_card(host, ann, cid, {"title": "Groceries", "buttons": [OPEN]})
    assert outcome == "ok", result
    message_id = result["message_id"]
    await eventually(lambda: card_seen(bea, message_id))
    # It has no action_id: nothing a client names reaches it, not even its label.
    for action_id in ("Open the list", "webview", "open"):
        ack = await press(bea, cid, message_id, action_id)
        assert not ack["ok"] and ack["error"]["code"] == "invalid_field", ack

    # A card stored without the card check (straight into the chat, no capability call) with a
    # button that both opens and names an action: the press is refused, not routed.
    stored = await cards.do_post_card(
        host.messaging, cid, APP, {"title": "Old", "buttons": [{**OPEN, "action_id": "open"}]}
    )
    ack = await press(bea, cid, stored["id"], "open")
    assert not ack["ok"] and ack["error"]["code"] == "not_a_press", ack

    # What the chat does instead: the launch the app menu uses, for the card's app and chat.
    status, body = await bea.api.post(f"/api/v1/conversations/{cid}/apps/{APP}/launch")
    assert status == 200, body
    assert body["url"].startswith(f"/miniapps/{APP}/web/index.html?token=")
