"""Other apps' read-only tools as the model's functions: the host lists the tools of the apps
installed in this chat (``apps.tools``); each becomes a function named ``<app>__<tool>``; a tool
call the model makes is checked against that list before the host is asked to run it
(``apps.call_tool``) — an unknown name or arguments that are not a JSON object are answered to the
model as an error, never guessed at. Pure functions."""

from __future__ import annotations

import json
import re
from typing import Any

SEPARATOR = "__"
_SAFE = re.compile(r"[^A-Za-z0-9_-]")
MAX_TOOLS = 32


def function_name(app_id: str, tool: str) -> str:
    return _SAFE.sub("_", f"{app_id}{SEPARATOR}{tool}")[:64]


def as_functions(tools: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, tuple]]:
    """``apps.tools``' list → (the model's ``tools``, function name → (app_id, tool name))."""
    functions, names = [], {}
    for tool in tools[:MAX_TOOLS]:
        name = function_name(tool["app_id"], tool["name"])
        if name in names:
            continue
        names[name] = (tool["app_id"], tool["name"])
        functions.append(
            {
                "name": name,
                "description": f"[{tool['app_id']}] {tool.get('description') or tool['name']}"[
                    :1000
                ],
                "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
            }
        )
    return functions, names


def resolve_call(call: dict[str, Any], names: dict[str, tuple]) -> tuple[str, str, dict] | str:
    """A model's tool call → ``(app_id, tool, arguments)``, or an error text for the model."""
    target = names.get(str(call.get("name") or ""))
    if target is None:
        return f"There is no tool called {call.get('name')!r} here."
    try:
        arguments = json.loads(call.get("arguments") or "{}")
    except ValueError:
        return "The arguments were not valid JSON: call the tool again with a JSON object."
    if not isinstance(arguments, dict):
        return "The arguments must be a JSON object."
    return target[0], target[1], arguments
