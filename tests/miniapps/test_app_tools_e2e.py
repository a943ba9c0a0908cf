"""Other apps as tools, through a real gateway, Socket.IO clients and two test apps in real
sandboxed processes: the ``concierge`` calls the ``toolbox``'s read-only tools. ``apps.tools``
lists only the tools of apps installed in the chat; ``apps.call_tool`` returns the tool's result
and posts the card it answered as the *toolbox's* card, whose button then reaches the toolbox
when a person presses it; a tool trying ``payments.request`` or ``messages.send_text`` gets
``permission_denied`` and nothing happens; bad calls are refused with stable codes; a manifest
declaring a tool that is not read-only is refused."""

from __future__ import annotations

import json
import shlex
import shutil

import pytest

from gateway.keys import MINIAPPS
from miniapps.host.registry import discover
from storage.mongo import now_ms
from tests.helpers import eventually
from tests.messaging.chat_helpers import app_cards, close_all, group, people
from tests.miniapps.conftest import APPS_DIR
from tests.miniapps.test_capabilities import events_of
from tests.miniapps.test_webview_calls import add_apps

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def chat(gateway):
    """(host, ann, bea, cid, elsewhere): ann owns a group with bea that has the concierge and
    the toolbox, and a group "elsewhere" with the concierge only."""
    add_apps(gateway)
    ann, bea = await people(str(gateway.make_url("")).rstrip("/"), 2)
    try:
        cid = await group(ann, [bea], "Tools")
        elsewhere = await group(ann, [bea], "No tools")
        for where, app_id in ((cid, "concierge"), (cid, "toolbox"), (elsewhere, "concierge")):
            status, body = await ann.api.post(
                f"/api/v1/conversations/{where}/apps", json={"app_id": app_id}
            )
            assert status == 201, body
        yield gateway.app[MINIAPPS], ann, bea, cid, elsewhere
    finally:
        await close_all([ann, bea])


def ephemerals(person, cid: str) -> list[dict]:
    return [e for e in events_of(person, "miniapp.ephemeral") if e["conversation_id"] == cid]


async def command(person, cid: str, text: str, app_id: str) -> None:
    ack = await person.socket.call(
        "message.send", {"conversation_id": cid, "client_msg_id": f"c-{now_ms()}", "text": text}
    )
    assert ack == {"ok": True, "routed_to": {"app_id": app_id}}, ack


async def concierge(person, cid: str, text: str):
    """``person`` runs a concierge command; the JSON it answers them alone."""
    before = len(ephemerals(person, cid))
    await command(person, cid, text, "concierge")
    shown = await eventually(lambda: ephemerals(person, cid)[before:], what="the answer")
    return json.loads(shown[0]["text"])


def use(app_id: str, name: str, arguments) -> str:
    return f"/use {app_id} {name} {shlex.quote(json.dumps(arguments))}"


async def test_apps_tools_lists_only_the_tools_of_apps_installed_in_the_chat(chat):
    _host, ann, _bea, cid, elsewhere = chat
    tools = await concierge(ann, cid, "/tools")
    assert [(t["app_id"], t["name"]) for t in tools] == [
        ("toolbox", "lookup"),
        ("toolbox", "sneaky"),
    ]
    assert tools[0]["description"].startswith("Find items in stock")
    assert tools[0]["parameters"]["required"] == ["query"]
    assert await concierge(ann, elsewhere, "/tools") == []
    refused = await concierge(ann, elsewhere, use("toolbox", "lookup", {"query": "mug"}))
    assert refused["error"] == "app_not_installed"


async def test_a_tool_answers_and_its_card_is_the_tool_apps_which_a_person_presses(chat):
    host, ann, bea, cid, _elsewhere = chat
    await command(ann, cid, "/stock mug", "toolbox")
    await eventually(lambda: "toolbox stocked mug" in bea.texts(cid), what="the stock")

    answer = await concierge(ann, cid, use("toolbox", "lookup", {"query": "mug"}))
    assert answer["result"] == {
        "query": "mug",
        "items": ["mug"],
        "user": host.identity.app_user_id("toolbox", ann.user_id),  # the toolbox's id for ann
    }
    cards = await eventually(lambda: app_cards(bea, cid, "toolbox"), what="the tool's card")
    assert [c["id"] for c in cards] == [answer["message_id"]]
    assert cards[0]["sender_id"] == "app:toolbox"
    assert cards[0]["card"]["title"] == "Found 1"
    assert app_cards(bea, cid, "concierge") == []
    # Nothing was bought: only bea's tap does that, and it reaches the toolbox.
    assert not [t for t in bea.texts(cid) if "bought" in t]
    ack = await bea.socket.call(
        "miniapp.action",
        {
            "conversation_id": cid,
            "message_id": answer["message_id"],
            "action_id": "buy",
            "value": "mug",
        },
    )
    assert ack == {"ok": True, "routed_to": {"app_id": "toolbox"}}, ack
    bought = f"toolbox: {host.identity.app_user_id('toolbox', bea.user_id)} bought mug"
    await eventually(lambda: bought in ann.texts(cid), what="the purchase")


async def test_a_tool_that_tries_to_act_gets_permission_denied(chat):
    host, ann, bea, cid, _elsewhere = chat
    answer = await concierge(ann, cid, use("toolbox", "sneaky", {}))
    assert answer == {
        "result": {
            "payments.request": "permission_denied",
            "messages.send_text": "permission_denied",
            "storage.put": "permission_denied",
        },
        "message_id": None,
    }
    audit = await host.audit.get_entries("toolbox", before=None, limit=50)
    refused = {e["method"]: e.get("error") for e in audit}
    assert refused == {
        "payments.request": "permission_denied",
        "messages.send_text": "permission_denied",
        "storage.put": "permission_denied",
    }
    assert events_of(ann, "payment.confirm_required") == []
    assert app_cards(bea, cid, "toolbox") == [] and bea.texts(cid) == []


async def test_bad_tool_calls_are_refused_with_stable_codes(chat):
    _host, ann, _bea, cid, _elsewhere = chat
    unknown = await concierge(ann, cid, use("toolbox", "drill", {}))
    assert unknown["error"] == "unknown_tool"
    missing = await concierge(ann, cid, use("addressee", "lookup", {}))
    assert missing["error"] == "app_not_installed"
    wrong = await concierge(ann, cid, use("toolbox", "lookup", {"query": 7}))
    assert wrong["error"] == "invalid_params" and "arguments.query" in wrong["message"]
    extra = await concierge(ann, cid, use("toolbox", "lookup", {"query": "mug", "pay": 100}))
    assert extra["error"] == "invalid_params"
    itself = await concierge(ann, cid, use("concierge", "use", {}))
    assert itself["error"] == "invalid_params"


def test_a_manifest_declaring_a_tool_that_is_not_read_only_is_refused(tmp_path):
    folder = tmp_path / "toolbox"
    shutil.copytree(APPS_DIR / "toolbox", folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["tools"].append(
        {
            "name": "buy",
            "description": "Buy an item",
            "parameters": {"type": "object"},
            "read_only": False,
        }
    )
    (folder / "manifest.json").write_text(json.dumps(manifest))
    apps, refused = discover(tmp_path)
    assert apps == {}
    assert "tools[2].read_only: only read-only tools may be declared" in refused["toolbox"]
