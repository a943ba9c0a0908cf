"""``apps.tools`` and ``apps.call_tool``: an app (the assistant) uses the other apps of a chat
as tools, and nothing it does that way can act.

A tool is declared in its app's manifest (``tools``: name, description, JSON Schema
``parameters``, ``read_only: true`` — nothing else may be declared) and handled by
``@app.tool``. ``apps.call_tool`` checks the arguments against the declared schema, invokes the
tool as the same user in the same conversation under a *read-only* call id (its own deadline,
one hop deeper; ``capabilities.handle`` refuses it everything but reading), and — when the tool
answered a card — posts that card in the chat as the *tool app's* card: its buttons reach that
app, and only a person's tap on them buys, books or pays. A model's output (or a message
injected into its prompt) can therefore at most make a card appear.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from messaging.actions import cards
from miniapps.host.sandbox import SandboxError
from sdk.errors import HostError, InvalidParams, host_error
from sdk.tools import (
    check_tool_answer,
    check_tool_arguments,
    check_tool_depth,
    find_tool,
    tool_view,
)
from storage.errors import AppError

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost


async def tools(host: MiniappHost, call: Call, params: dict) -> dict:
    found = []
    for entry in await host.installs.get_active(call.conversation_id):
        if entry.app_id == call.app_id or entry.unavailable is not None:
            continue
        found += [tool_view(entry.app_id, tool) for tool in entry.manifest.get("tools") or []]
    return {"tools": found}


async def call_tool(host: MiniappHost, call: Call, params: dict) -> dict:
    if not call.user_id:  # the tool runs as the invoking person: there must be one
        raise InvalidParams("this invocation has no user")
    check_tool_depth(call.depth)
    app_id, name = params["app_id"], params["name"]
    if app_id == call.app_id:
        raise InvalidParams("an app calls its own code directly, not as a tool")
    try:
        entry = await host.apps_catalogue.check_active(app_id, call.conversation_id)
    except AppError:  # unknown, switched off, or not in this chat: none of its business
        raise host_error("app_not_installed", f"{app_id} is not an app of this chat") from None
    if entry.unavailable is not None:
        raise host_error("app_not_installed", f"{app_id} cannot run on this server")
    tool = find_tool(entry.manifest, name)
    check_tool_arguments(tool, params["arguments"])
    what = f"{app_id}.{name}"
    try:
        answer = await host.invoker.call_tool(
            entry,
            call.user_id,
            call.conversation_id,
            name,
            params["arguments"],
            depth=call.depth + 1,
        )
    except (SandboxError, HostError, AppError) as exc:
        code = getattr(exc, "app_code", None) or getattr(exc, "code", "app_error")
        raise host_error("tool_failed", f"{what} failed ({code})") from None
    result, card = check_tool_answer(answer, what)
    message_id = None
    if card is not None:
        try:
            posted = await cards.do_post_card(host.messaging, call.conversation_id, app_id, card)
        except AppError as exc:  # e.g. an image that is not the tool app's own upload
            raise host_error("tool_failed", f"{what} answered a card: {exc.message}") from None
        message_id = posted["id"]
    return {"result": result, "message_id": message_id}


EFFECTS = {"apps.tools": tools, "apps.call_tool": call_tool}
