"""Tools in the simulator, as on the host: the ``concierge`` test app calls the ``toolbox`` app
loaded beside it (``sim.install_app``): ``apps.tools`` lists the tools of the apps in the chat,
``apps.call_tool`` runs one read-only and posts its card as the *toolbox's* card, whose button a
person then presses; a tool that tries to act gets ``permission_denied``; bad calls are refused
with stable codes; ``sim.invoke_tool`` tests a tool app on its own."""

from __future__ import annotations

import asyncio
import json
import shlex

import pytest

from sdk import App
from sdk.errors import HostError, InvalidParams, ManifestError
from sdk.manifest import validate_manifest
from sdk.simulator import Simulator
from tests.miniapps.conftest import APPS_DIR


@pytest.fixture
def world():
    sim = Simulator(APPS_DIR / "concierge")
    ann, bea = sim.user("ann"), sim.user("bea")
    chat = sim.conversation(members=[ann, bea])
    toolbox = sim.install_app(APPS_DIR / "toolbox", conversations=[chat])
    return sim, toolbox, ann, bea, chat


async def use(sim, user, chat, app_id: str, name: str, arguments) -> dict:
    await sim.command(user, chat, f"/use {app_id} {name} {shlex.quote(json.dumps(arguments))}")
    return json.loads(sim.ephemeral(user)[-1]["text"])


async def test_apps_tools_lists_the_tools_of_the_apps_in_the_chat_only(world):
    sim, _toolbox, ann, _bea, chat = world
    await sim.command(ann, chat, "/tools")
    tools = json.loads(sim.ephemeral(ann)[-1]["text"])
    assert [(t["app_id"], t["name"]) for t in tools] == [
        ("toolbox", "lookup"),
        ("toolbox", "sneaky"),
    ]
    assert tools[0]["parameters"]["required"] == ["query"]
    elsewhere = sim.conversation(members=[ann])  # the toolbox is not in this one
    await sim.command(ann, elsewhere, "/tools")
    assert json.loads(sim.ephemeral(ann)[-1]["text"]) == []
    assert (await use(sim, ann, elsewhere, "toolbox", "lookup", {"query": "mug"}))[
        "error"
    ] == "app_not_installed"


async def test_a_tool_answers_and_its_card_is_the_tool_apps_to_press(world):
    sim, toolbox, ann, bea, chat = world
    await toolbox.command(toolbox.user("ann"), toolbox.mirror(chat), "/stock mug")
    answer = await use(sim, ann, chat, "toolbox", "lookup", {"query": "mug"})
    # The toolbox saw ann under its own per-app id, not the concierge's.
    assert answer["result"] == {"query": "mug", "items": ["mug"], "user": toolbox.user("ann").id}
    assert toolbox.user("ann").id != ann.id
    card = toolbox.card(answer["message_id"])
    assert card["title"] == "Found 1" and card["buttons"][0]["action_id"] == "buy"
    assert sim.messages(chat) == []  # not the concierge's card: it cannot update it
    # Nothing was bought: only a person's tap does that, and it reaches the toolbox.
    assert [m["text"] for m in toolbox.messages(chat) if m["type"] == "text"] == [
        "toolbox stocked mug"
    ]
    await toolbox.press(toolbox.user("bea"), answer["message_id"], "buy")
    assert toolbox.messages(chat)[-1]["text"] == f"toolbox: {toolbox.user('bea').id} bought mug"
    assert bea.id not in json.dumps(toolbox.messages(chat))


async def test_a_tool_cannot_act(world):
    sim, toolbox, ann, _bea, chat = world
    answer = await use(sim, ann, chat, "toolbox", "sneaky", {})
    assert answer == {
        "result": {
            "payments.request": "permission_denied",
            "messages.send_text": "permission_denied",
            "storage.put": "permission_denied",
        },
        "message_id": None,
    }
    assert toolbox.payments == {} and toolbox.messages(chat) == []
    assert toolbox.storage("items") == {}


async def test_bad_tool_calls_are_refused(world):
    sim, _toolbox, ann, _bea, chat = world
    assert (await use(sim, ann, chat, "toolbox", "drill", {}))["error"] == "unknown_tool"
    assert (await use(sim, ann, chat, "nobody", "lookup", {}))["error"] == "app_not_installed"
    missing = await use(sim, ann, chat, "toolbox", "lookup", {})
    assert missing["error"] == "invalid_params"
    assert "'query' is a required property" in missing["message"]
    extra = await use(sim, ann, chat, "toolbox", "lookup", {"query": "mug", "pay": 100})
    assert extra["error"] == "invalid_params"
    assert (await use(sim, ann, chat, "concierge", "use", {}))["error"] == "invalid_params"


async def test_invoke_tool_tests_a_tool_app_on_its_own():
    sim = Simulator(APPS_DIR / "toolbox")
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    await sim.command(ann, chat, "/stock cup")
    answer = await sim.invoke_tool(ann, chat, "lookup", {"query": "cup"})
    assert answer["result"]["items"] == ["cup"]
    assert sim.card(answer["message_id"])["buttons"][0]["value"] == "cup"
    with pytest.raises(InvalidParams):
        await sim.invoke_tool(ann, chat, "lookup", {"query": 7})
    with pytest.raises(HostError) as refused:
        await sim.invoke_tool(ann, chat, "hammer")
    assert refused.value.code == "unknown_tool"


TOOL = {"name": "t", "description": "d", "parameters": {"type": "object"}, "read_only": True}


def tool_app(handler) -> Simulator:
    app = App("tooly")
    app.tool("t")(handler)
    manifest = {"id": "tooly", "name": "Tooly", "version": "1.0.0", "tools": [TOOL]}
    return Simulator(app, manifest=manifest, deadline=0.2)


@pytest.mark.parametrize(
    "answer",
    [
        {"items": []},  # not {result, card?}
        {"result": 1, "text": "posted?"},
        {"result": "x" * (64 * 1024 + 1)},
        {"result": 1, "card": {"title": "x", "buttons": [{"label": "no action"}]}},
    ],
)
async def test_a_tool_that_answers_badly_or_too_late_fails(answer):
    async def handler(ctx):
        return answer

    sim = tool_app(handler)
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    with pytest.raises(HostError) as failed:
        await sim.invoke_tool(ann, chat, "t")
    assert failed.value.code == "tool_failed"
    assert sim.messages(chat) == []


async def test_a_tool_that_hangs_fails():
    async def handler(ctx):
        await asyncio.sleep(5)

    sim = tool_app(handler)
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    with pytest.raises(HostError) as failed:
        await sim.invoke_tool(ann, chat, "t")
    assert failed.value.code == "tool_failed" and "timeout" in failed.value.message


@pytest.mark.parametrize(
    ("tool", "problem"),
    [
        ({**TOOL, "read_only": False}, "tools[0].read_only: only read-only tools"),
        ({k: v for k, v in TOOL.items() if k != "read_only"}, "tools[0].read_only: is required"),
        ({**TOOL, "parameters": {"type": "array"}}, "tools[0].parameters: a JSON Schema"),
        (
            {**TOOL, "parameters": {"type": "object", "properties": {"q": {"type": "text"}}}},
            "tools[0].parameters: not a valid JSON Schema",
        ),
        ({**TOOL, "name": "Bad Name"}, "tools[0].name"),
    ],
)
def test_a_manifest_declaring_a_tool_that_is_not_read_only_is_refused(tool, problem):
    with pytest.raises(ManifestError) as refused:
        validate_manifest({"id": "tooly", "name": "T", "version": "1.0.0", "tools": [tool]})
    assert problem in str(refused.value)


def test_only_the_host_sends_message_events():
    with pytest.raises(ManifestError, match=r"message\.\* events come only from the host"):
        validate_manifest(
            {
                "id": "message",
                "name": "M",
                "version": "1.0.0",
                "events": {"emits": ["message.received"]},
            }
        )


def test_the_handlers_and_the_declared_tools_must_agree():
    app = App("tooly")
    app.tool("undeclared")(lambda ctx: {"result": None})
    manifest = validate_manifest({"id": "tooly", "name": "T", "version": "1.0.0", "tools": [TOOL]})
    assert app.check_against_manifest(manifest) == [
        "tool 't' is declared in the manifest but has no handler",
        "tool 'undeclared' has a handler but is not in the manifest's tools",
    ]
