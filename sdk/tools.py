"""Tools: the read-only functions an app declares (manifest ``tools``, ``@app.tool``) for other
apps of a chat — the assistant — to call with ``apps.call_tool``. The checks both the host
(``miniapps.host.capabilities.apps``) and the simulator (``sdk._sim_route``) make, with the
same codes and messages: the tool exists, its arguments satisfy its ``parameters``, the call is
not too deep, the tool's answer is ``{result, card?}``, and a tool's invocation only reads
(``check_read_only``, in every capability call).
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator

from sdk._capability_services import (
    TOOL_ARGUMENTS_MAX_BYTES,
    TOOL_CAPABILITIES,
    TOOL_RESULT_MAX_BYTES,
)
from sdk._capability_table import MAX_EVENT_DEPTH
from sdk.errors import CardError, InvalidParams, PermissionDenied, RateLimited, host_error
from sdk.manifest import validate_card

__all__ = [
    "TOOL_CAPABILITIES",
    "check_read_only",
    "check_tool_answer",
    "check_tool_arguments",
    "check_tool_depth",
    "find_tool",
    "tool_view",
]


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())


def check_read_only(method: str, read_only: bool) -> None:
    """During a ``tool`` invocation (``read_only``), only ``TOOL_CAPABILITIES`` may be called:
    ``PermissionDenied`` for anything else, even a capability the manifest lists."""
    if read_only and method not in TOOL_CAPABILITIES:
        raise PermissionDenied(
            f"{method} is not allowed in a tool: a tool only reads (storage.get, storage.find, "
            "http.fetch, users.profile); anything that acts is a card a person taps"
        )


def check_tool_depth(depth: int) -> None:
    """``apps.call_tool`` from an invocation ``depth`` hops away from a user's action:
    ``RateLimited`` from ``MAX_EVENT_DEPTH`` on, as events may not cascade forever."""
    if depth >= MAX_EVENT_DEPTH:
        raise RateLimited("tools may not be called this deep from a user's action")


def find_tool(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    """The tool ``name`` the manifest declares, else ``unknown_tool``."""
    for tool in manifest.get("tools") or []:
        if tool.get("name") == name:
            return tool
    raise host_error("unknown_tool", f"{manifest.get('id')} has no tool {name!r}")


def tool_view(app_id: str, tool: dict[str, Any]) -> dict[str, Any]:
    """One row of ``apps.tools``: what a model needs to call the tool."""
    return {
        "app_id": app_id,
        "name": tool["name"],
        "description": tool["description"],
        "parameters": tool["parameters"],
    }


def check_tool_arguments(tool: dict[str, Any], arguments: dict[str, Any]) -> None:
    """``apps.call_tool``'s ``arguments``: at most ``TOOL_ARGUMENTS_MAX_BYTES`` and valid
    against the tool's ``parameters`` (JSON Schema 2020-12), else ``InvalidParams`` naming the
    first problem — a model's arguments are checked before the tool app sees them."""
    try:
        size = _json_size(arguments)
    except (TypeError, ValueError):
        raise InvalidParams("arguments must be JSON") from None
    if size > TOOL_ARGUMENTS_MAX_BYTES:
        raise InvalidParams(f"arguments are limited to {TOOL_ARGUMENTS_MAX_BYTES} bytes")
    errors = sorted(
        Draft202012Validator(tool["parameters"]).iter_errors(arguments),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
    if errors:
        where = "".join(f".{part}" for part in errors[0].absolute_path)
        raise InvalidParams(f"arguments{where}: {errors[0].message} (tool {tool['name']})")


def check_tool_answer(answer: Any, what: str) -> tuple[Any, dict[str, Any] | None]:
    """A tool's answer ``{result, card?}``: the result (JSON of at most
    ``TOOL_RESULT_MAX_BYTES``) and the card (checked with ``sdk.manifest.validate_card``) or
    None. Anything else is ``tool_failed`` naming ``what`` (``"shop.search_products"``)."""
    if not isinstance(answer, dict) or "result" not in answer or set(answer) - {"result", "card"}:
        raise host_error("tool_failed", f"{what} did not answer {{result, card?}}")
    try:
        size = _json_size(answer["result"])
    except (TypeError, ValueError):
        raise host_error("tool_failed", f"{what} answered a result that is not JSON") from None
    if size > TOOL_RESULT_MAX_BYTES:
        raise host_error(
            "tool_failed", f"{what} answered {size} bytes, over {TOOL_RESULT_MAX_BYTES}"
        )
    card = answer.get("card")
    if card is None:
        return answer["result"], None
    try:
        return answer["result"], validate_card(card)
    except CardError as exc:
        raise host_error("tool_failed", f"{what} answered a bad card: {exc}") from None
