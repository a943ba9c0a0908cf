"""The capabilities of the assistant's platform (part of the contract, ``sdk.capabilities``):
streaming messages (``messages.stream_*``), the model (``ai.chat``, ``ai.cancel``) and privacy
mode with cross-app tools (``messages.history``, ``apps.tools``, ``apps.call_tool``) — their
rows, limits, errors and the checks the host and the simulator share."""

from __future__ import annotations

import json
import re
from typing import Any

from sdk._capability_table import MESSAGE_ID_MAX, Capability, _capability, _params, _text

STREAM_TEXT_MAX = 32 * 1024  # characters of a streamed message's whole text
STREAM_IDLE_MS = 10 * 60 * 1000  # a stream left unwritten this long is stopped by the host
STREAM_ERRORS = ("not_found", "not_streaming", "text_too_long")
STREAM_TEXT_TOO_LONG = f"a streamed message holds at most {STREAM_TEXT_MAX} characters"
STREAM_NOT_FOUND = "this app started no such streaming message in this conversation"
STREAM_NOT_STREAMING = "this message is no longer streaming (stopped)"
_STREAM_ID = _text(MESSAGE_ID_MAX, "a message id messages.stream_start answered")
_STREAMS: tuple[Capability, ...] = (
    _capability(
        "messages.stream_start",
        "Post a text from the app's bot that is still being written (`streaming: true`; "
        "`text` may be empty) → `{message_id}`; members get `message.new`. Grow it with "
        "`messages.stream_append`, end it with `messages.stream_stop` (the host stops one "
        "left unwritten for 10 minutes).",
        _params(
            {},
            {
                "text": {
                    "type": "string",
                    "default": "",
                    "description": f"the text so far, at most {STREAM_TEXT_MAX} characters",
                }
            },
        ),
        errors=("text_too_long",),
        conversation=True,
    ),
    _capability(
        "messages.stream_append",
        "Add `text` to a streaming message this app started in this conversation → `{}`. "
        "Members get the whole text so far as `message.stream` events, at most one every "
        "300 ms, never the same text twice.",
        _params(
            {
                "message_id": _STREAM_ID,
                "text": {
                    "type": "string",
                    "minLength": 1,
                    "description": "the text to add, 1 or more characters (the whole text "
                    f"stays within {STREAM_TEXT_MAX} characters)",
                },
            }
        ),
        errors=STREAM_ERRORS,
        conversation=True,
    ),
    _capability(
        "messages.stream_stop",
        "End a streaming message this app started in this conversation with its final "
        "`text` (default: what was streamed) → `{text}`; members get `message.updated` with "
        "`streaming: false`, always. An `ai.chat` streaming into it is cancelled.",
        _params(
            {"message_id": _STREAM_ID},
            {
                "text": {
                    "type": "string",
                    "description": f"the final text, at most {STREAM_TEXT_MAX} characters",
                }
            },
        ),
        errors=STREAM_ERRORS,
        conversation=True,
    ),
)

# The ai capability (issue 20): the platform's model, for every app, metered. A model answer
# takes longer than an invocation may (sdk.protocol.INTERACTIVE_DEADLINE), so it is
# asynchronous like a payment: ``ai.chat`` answers a request id at once, the host runs the
# completion in the background (its text growing in a chat message when asked) and the outcome
# reaches the app as the signed host event ``ai.completed``. What a params schema of the
# contract's subset cannot say (the shape of each message, part and tool) is ``check_ai_chat``,
# run by the host and the simulator alike, before anything else of the call.
AI_EVENT = "ai.completed"  # the outcome of every ai.chat (manifest events.accepts)
AI_EVENT_PREFIX = "ai."  # events only the host sends
AI_CHAT_PERMISSION = "ai.chat"
AI_ROLES = ("system", "user", "assistant", "tool")
AI_STATUSES = ("completed", "cancelled", "failed")
AI_MESSAGES_MAX = 100  # messages of one ai.chat
AI_CONTENT_MAX_BYTES = 32 * 1024  # the text of one message (UTF-8), its parts together
AI_PARTS_MAX = 32  # parts of one message's content
AI_IMAGES_MAX = 8  # image parts of one ai.chat, all messages together
AI_TOOLS_MAX = 32
AI_TOOL_CALLS_MAX = 32  # tool calls of one assistant message
AI_TOOL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's function names
AI_TOOL_CALL_ID_MAX = 128
AI_TOOL_DESCRIPTION_MAX = 1024
AI_TOOL_PARAMETERS_MAX_BYTES = 16 * 1024
AI_MAX_TOKENS = 4096
AI_DEFAULT_MAX_TOKENS = 1024
AI_RUNNING_MAX = 4  # requests of one app running at once in one conversation
AI_IMAGE_TOKENS = 800  # what one image counts for in the estimate of a request's tokens
AI_CHARS_PER_TOKEN = 4  # the estimate: characters / 4
MEDIA_ID_PATTERN = re.compile(r"^[0-9a-f]{24}$")
AI_NOT_CONFIGURED = (
    "the AI model is not configured on this server: set AI_BASE_URL and AI_MODEL, e.g. "
    "Ollama: AI_BASE_URL=http://127.0.0.1:11434/v1 AI_MODEL=llama3.1"
)
AI_VISION_UNSUPPORTED = "this server's model takes no images (AI_VISION is off): send text only"
AI_ERRORS = (
    "ai_not_configured",
    "ai_quota_exceeded",
    "vision_unsupported",
    "stream_not_found",
    "too_many_requests",
    "not_found",
)
_AI: tuple[Capability, ...] = (
    _capability(
        "ai.chat",
        "Ask the platform's model (any OpenAI-compatible server) for the next message of "
        "`messages`, in the background → `{request_id}` at once. The outcome comes as the "
        "signed event `ai.completed` (declare it in `events.accepts`): `{request_id, status "
        "(completed, cancelled or failed), message: {role, content, tool_calls: [{id, name, "
        "arguments}]}, finish_reason, usage: {prompt_tokens, completion_tokens}, error?: "
        "{code, message}, stream_to, timing: {first_token_ms, total_ms}}`. With `stream_to` "
        "the answer's text grows live in that message (a stream this app started with "
        "`messages.stream_start` in this conversation, still streaming). Image parts need a "
        "model that takes images (`AI_VISION`). Metered: tokens per app per day, per "
        "conversation per day, per user per hour; at most "
        f"{AI_RUNNING_MAX} running per app in a conversation.",
        _params(
            {
                "messages": {
                    "type": "array",
                    "description": f"a list of 1-{AI_MESSAGES_MAX} chat messages {{role "
                    "(system, user, assistant or tool), content: a text of at most "
                    f"{AI_CONTENT_MAX_BYTES // 1024} KiB or a list of parts {{type: text, "
                    "text} or {type: image, media_id} (user messages; an image of this "
                    "conversation or uploaded by this app), tool_calls? [{id, name, "
                    "arguments (JSON text)}] (assistant), tool_call_id (tool)}",
                }
            },
            {
                "tools": {
                    "type": "array",
                    "description": f"a list of at most {AI_TOOLS_MAX} functions the model "
                    "may call {name (1-64 of [A-Za-z0-9_-]), description?, parameters? (a "
                    "JSON Schema object)}",
                },
                "max_tokens": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": AI_MAX_TOKENS,
                    "default": AI_DEFAULT_MAX_TOKENS,
                    "description": f"the most tokens the answer may have, 1-{AI_MAX_TOKENS}",
                },
                "temperature": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 2,
                    "description": "the sampling temperature, from 0 to 2",
                },
                "stream_to": _text(
                    MESSAGE_ID_MAX,
                    "a message id this app started with messages.stream_start here",
                ),
            },
        ),
        errors=AI_ERRORS,
        conversation=True,
        user=True,
    ),
    _capability(
        "ai.cancel",
        "Stop one of this app's running `ai.chat` requests, from any node → `{cancelled}` "
        "(false: not running, or not this app's); its `ai.completed` then says `cancelled` "
        "with what was written so far, and its `stream_to` message is stopped, keeping that "
        "text. A `messages.stream_stop` of its `stream_to` cancels it too.",
        _params({"request_id": _text(MESSAGE_ID_MAX, "a request id ai.chat answered")}),
    ),
)


def _ai_refuse(where: str, what: str) -> Exception:
    from sdk.errors import InvalidParams  # sdk.errors imports nothing of this module

    return InvalidParams(f"{where}: {what}")


def _ai_text(value: Any, where: str) -> int:
    """The UTF-8 bytes of a text of a message (refused when it is not a string)."""
    if not isinstance(value, str):
        raise _ai_refuse(where, "must be a string")
    return len(value.encode("utf-8", "surrogatepass"))


def _ai_parts(parts: Any, role: str, where: str) -> tuple[list[dict[str, Any]], int, int]:
    """A message's content given as parts: the parts checked, their text bytes and images."""
    if not isinstance(parts, list) or not 1 <= len(parts) <= AI_PARTS_MAX:
        raise _ai_refuse(where, f"must be a text or a list of 1-{AI_PARTS_MAX} parts")
    clean: list[dict[str, Any]] = []
    size = images = 0
    for index, part in enumerate(parts):
        at = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and set(part) == {"type", "text"}:
            size += _ai_text(part["text"], f"{at}.text")
            clean.append({"type": "text", "text": part["text"]})
        elif kind == "image" and set(part) == {"type", "media_id"}:
            if role != "user":
                raise _ai_refuse(at, "images go in user messages only")
            media_id = part["media_id"]
            if not isinstance(media_id, str) or not MEDIA_ID_PATTERN.fullmatch(media_id):
                raise _ai_refuse(f"{at}.media_id", "must be a media id (24 hex digits)")
            images += 1
            clean.append({"type": "image", "media_id": media_id})
        else:
            raise _ai_refuse(
                at, 'must be {"type": "text", "text"} or {"type": "image", "media_id"}'
            )
    return clean, size, images


def _ai_tool_calls(value: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not 1 <= len(value) <= AI_TOOL_CALLS_MAX:
        raise _ai_refuse(where, f"must be a list of 1-{AI_TOOL_CALLS_MAX} tool calls")
    clean = []
    for index, tool_call in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(tool_call, dict) or set(tool_call) != {"id", "name", "arguments"}:
            raise _ai_refuse(at, "must be {id, name, arguments}, as ai.completed gives them")
        call_id, name, arguments = tool_call["id"], tool_call["name"], tool_call["arguments"]
        if not isinstance(call_id, str) or not 1 <= len(call_id) <= AI_TOOL_CALL_ID_MAX:
            raise _ai_refuse(f"{at}.id", f"must be a string of 1-{AI_TOOL_CALL_ID_MAX} characters")
        if not isinstance(name, str) or not AI_TOOL_NAME_PATTERN.fullmatch(name):
            raise _ai_refuse(f"{at}.name", "must be 1-64 characters of [A-Za-z0-9_-]")
        if isinstance(arguments, dict):
            arguments = json.dumps(arguments, separators=(",", ":"))
        if _ai_text(arguments, f"{at}.arguments") > AI_CONTENT_MAX_BYTES:
            raise _ai_refuse(f"{at}.arguments", f"at most {AI_CONTENT_MAX_BYTES} bytes")
        clean.append({"id": call_id, "name": name, "arguments": arguments})
    return clean


def _ai_message(message: Any, where: str, call_ids: set[str]) -> tuple[dict[str, Any], int]:
    """One message checked and made canonical, and the images it holds; ``call_ids``: the
    assistant tool calls so far (a tool message answers one of them)."""
    if not isinstance(message, dict):
        raise _ai_refuse(where, "must be an object {role, content, …}")
    role = message.get("role")
    if role not in AI_ROLES:
        raise _ai_refuse(f"{where}.role", f"must be one of {', '.join(AI_ROLES)}")
    allowed = {"role", "content"} | {"assistant": {"tool_calls"}, "tool": {"tool_call_id"}}.get(
        role, set()
    )
    extra = sorted(set(message) - allowed)
    if extra:
        raise _ai_refuse(f"{where}.{extra[0]}", f"unknown field for a {role} message")
    clean: dict[str, Any] = {"role": role}
    content, images, size = message.get("content"), 0, 0
    tool_calls = message.get("tool_calls")
    if role == "assistant" and tool_calls is not None:
        clean["tool_calls"] = _ai_tool_calls(tool_calls, f"{where}.tool_calls")
        call_ids.update(tool_call["id"] for tool_call in clean["tool_calls"])
    if content is None and "tool_calls" in clean:
        clean["content"] = None
    elif isinstance(content, str):
        size = _ai_text(content, f"{where}.content")
        clean["content"] = content
    elif isinstance(content, list) and role != "tool":
        clean["content"], size, images = _ai_parts(content, role, f"{where}.content")
    else:
        what = "a text" if role == "tool" else "a text or a list of parts"
        raise _ai_refuse(f"{where}.content", f"must be {what}")
    if clean["content"] is not None and size > AI_CONTENT_MAX_BYTES:
        raise _ai_refuse(f"{where}.content", f"at most {AI_CONTENT_MAX_BYTES} bytes of text")
    if role == "tool":
        tool_call_id = message.get("tool_call_id")
        if not isinstance(tool_call_id, str) or tool_call_id not in call_ids:
            raise _ai_refuse(
                f"{where}.tool_call_id", "must be the id of a tool call of an earlier message"
            )
        clean["tool_call_id"] = tool_call_id
    return clean, images


def _ai_tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    if not isinstance(tools, list) or len(tools) > AI_TOOLS_MAX:
        raise _ai_refuse("tools", f"must be a list of at most {AI_TOOLS_MAX} functions")
    clean, names = [], set()
    for index, tool in enumerate(tools):
        at = f"tools[{index}]"
        if not isinstance(tool, dict) or "name" not in tool:
            raise _ai_refuse(at, "must be {name, description?, parameters?}")
        extra = sorted(set(tool) - {"name", "description", "parameters"})
        if extra:
            raise _ai_refuse(f"{at}.{extra[0]}", "unknown field (name, description, parameters)")
        name = tool["name"]
        if not isinstance(name, str) or not AI_TOOL_NAME_PATTERN.fullmatch(name):
            raise _ai_refuse(f"{at}.name", "must be 1-64 characters of [A-Za-z0-9_-]")
        if name in names:
            raise _ai_refuse(f"{at}.name", f"{name!r} is given twice")
        names.add(name)
        description = tool.get("description")
        if description is not None and (
            not isinstance(description, str) or len(description) > AI_TOOL_DESCRIPTION_MAX
        ):
            raise _ai_refuse(
                f"{at}.description",
                f"must be a text of at most {AI_TOOL_DESCRIPTION_MAX} characters",
            )
        parameters = tool.get("parameters")
        if parameters is None:
            parameters = {"type": "object", "properties": {}}
        if not isinstance(parameters, dict) or parameters.get("type") != "object":
            raise _ai_refuse(f"{at}.parameters", 'must be a JSON Schema {"type": "object", …}')
        try:
            size = len(json.dumps(parameters, allow_nan=False).encode())
        except (TypeError, ValueError):
            raise _ai_refuse(f"{at}.parameters", "must be JSON") from None
        if size > AI_TOOL_PARAMETERS_MAX_BYTES:
            raise _ai_refuse(f"{at}.parameters", f"at most {AI_TOOL_PARAMETERS_MAX_BYTES} bytes")
        entry: dict[str, Any] = {"name": name, "parameters": parameters}
        if description:
            entry["description"] = description
        clean.append(entry)
    return clean or None


def check_ai_chat(params: dict[str, Any]) -> dict[str, Any]:
    """``ai.chat``'s params (already through ``check_params``) checked to the last part, with the
    same message on both sides: ``InvalidParams`` naming the field (``messages[2].content[1]:
    images go in user messages only``). Returns them canonical: ``messages`` (each ``{role,
    content}`` + ``tool_calls`` with ``arguments`` as JSON text, or ``tool_call_id``),
    ``tools`` (None or ``[{name, description?, parameters}]``), ``max_tokens``,
    ``temperature``, ``stream_to``, and ``image_ids`` (the media ids of the image parts, in
    order)."""
    messages = params.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= AI_MESSAGES_MAX:
        raise _ai_refuse("messages", f"must be a list of 1-{AI_MESSAGES_MAX} messages")
    clean, call_ids, images = [], set(), 0
    for index, message in enumerate(messages):
        checked, count = _ai_message(message, f"messages[{index}]", call_ids)
        clean.append(checked)
        images += count
    if images > AI_IMAGES_MAX:
        raise _ai_refuse("messages", f"at most {AI_IMAGES_MAX} images in one request")
    image_ids = [
        part["media_id"]
        for message in clean
        if isinstance(message["content"], list)
        for part in message["content"]
        if part["type"] == "image"
    ]
    return {
        "messages": clean,
        "tools": _ai_tools(params.get("tools")),
        "max_tokens": params.get("max_tokens") or AI_DEFAULT_MAX_TOKENS,
        "temperature": params.get("temperature"),
        "stream_to": params.get("stream_to"),
        "image_ids": image_ids,
    }


def ai_prompt_chars(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
    """The characters a request sends the model: every text, tool call and tool spec."""
    chars = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(part["text"]) for part in content if part["type"] == "text")
        for tool_call in message.get("tool_calls") or []:
            chars += len(tool_call["name"]) + len(tool_call["arguments"])
    if tools:
        chars += len(json.dumps(tools, separators=(",", ":")))
    return chars


def ai_tokens(chars: int) -> int:
    """The tokens ``chars`` characters count for when the model reports none: chars / 4."""
    return -(-chars // AI_CHARS_PER_TOKEN)


def ai_estimate(request: dict[str, Any]) -> int:
    """The tokens a checked request (``check_ai_chat``) may cost at most, what the budgets are
    checked against before it starts: its prompt characters / 4, ``AI_IMAGE_TOKENS`` per
    image, plus ``max_tokens``."""
    prompt = ai_tokens(ai_prompt_chars(request["messages"], request["tools"]))
    return prompt + AI_IMAGE_TOKENS * len(request["image_ids"]) + request["max_tokens"]


# Privacy-mode routing, chat history and tools (issue 20, section C). An app hears only the
# messages addressed to it (``sdk.addressing``: ``message.received``); it reads a chat's history
# only once a group admin granted it ``messages.read_history`` there; and it may call the
# read-only tools the other apps of the chat declare (manifest ``tools``, ``@app.tool``).
HISTORY_LIMIT_MAX = 200  # messages one messages.history call answers at most
HISTORY_LIMIT_DEFAULT = 50
HISTORY_GRANT = "messages.read_history"  # the per-conversation grant messages.history needs
HISTORY_NOT_GRANTED = (
    "this chat has not let the app read its history: a group admin (in a direct chat, either "
    "person) grants it with PUT /api/v1/conversations/{conversation_id}/apps/{app_id}/grants/"
    "messages.read_history"
)
TOOL_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")  # a tool's name in the manifest
TOOLS_MAX = 16  # tools one manifest may declare
TOOL_DESCRIPTION_MAX = 1000
TOOL_PARAMETERS_MAX_BYTES = 8 * 1024  # a tool's parameters schema, compact JSON
TOOL_ARGUMENTS_MAX_BYTES = 16 * 1024  # the arguments of one apps.call_tool
TOOL_RESULT_MAX_BYTES = 64 * 1024  # what a tool answers as its result, compact JSON
# A ``tool`` invocation reads, never acts: these are the only capabilities it may call (the
# runtime's own ``app.setup`` included); anything else is ``permission_denied``, even when
# the manifest lists it. The one card a tool may answer is posted by the host, not the tool.
TOOL_CAPABILITIES = frozenset(
    {"storage.get", "storage.find", "http.fetch", "users.profile", "app.setup"}
)
APP_ID_PARAM = {
    "type": "string",
    "pattern": r"^[a-z][a-z0-9_-]{1,31}$",
    "description": "an app id (1-32 characters of [a-z0-9_-])",
}
_ROUTE: tuple[Capability, ...] = (
    _capability(
        "messages.history",
        "The conversation's messages, oldest first — only once a group admin (in a direct "
        "chat, either person; in a service chat, its person) granted this app "
        f"`{HISTORY_GRANT}` in this chat, else `history_not_granted` → `{{messages: [{{id, "
        "text, sender, sender_name, at}], from_seq, to_seq, has_more}`: the newest `limit` "
        "before `before` (a seq), or with `since_read` those after the invoking user's last "
        "read message (what they missed; the newest `limit` of them), or with `after` (a seq, "
        "e.g. the command's `catch_up_from`) those after it. `sender` is a per-app "
        "user id (`app:<id>` for an app's bot), `at` epoch ms; only what the invoking user "
        "can see (nothing before they joined, nothing recalled or deleted for them); "
        "`has_more`: older messages in range were left out.",
        _params(
            {},
            {
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": HISTORY_LIMIT_MAX,
                    "default": HISTORY_LIMIT_DEFAULT,
                    "description": f"an integer from 1 to {HISTORY_LIMIT_MAX}",
                },
                "before": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "a seq: only messages before it",
                },
                "since_read": {
                    "type": "boolean",
                    "default": False,
                    "description": "true: only what the invoking user has not read yet",
                },
                "after": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "a seq: only messages after it (a command's catch_up_from)",
                },
            },
        ),
        errors=("history_not_granted",),
        conversation=True,
        user=True,
    ),
    _capability(
        "apps.tools",
        "The read-only tools of the other apps this conversation has (manifest `tools`) → "
        "`{tools: [{app_id, name, description, parameters}]}`.",
        _params({}),
        conversation=True,
    ),
    _capability(
        "apps.call_tool",
        "Invoke another app's read-only tool as the same user in the same conversation (the "
        "tool's own 3 s deadline; it may only read: storage.get/find, http.fetch, "
        "users.profile) → `{result, message_id}`: when the tool answered a card, the host "
        "posted it in the conversation as the *tool app's* card (its buttons go to that app, "
        "and only a person's tap does anything); `message_id` is null otherwise.",
        _params(
            {
                "app_id": APP_ID_PARAM,
                "name": {
                    "type": "string",
                    "pattern": TOOL_NAME_PATTERN.pattern,
                    "description": "a tool name (1-48 characters of [a-z0-9_])",
                },
            },
            {
                "arguments": {
                    "type": "object",
                    "default": {},
                    "description": "a JSON object valid against the tool's parameters, of at "
                    f"most {TOOL_ARGUMENTS_MAX_BYTES} bytes",
                },
            },
        ),
        errors=("unknown_tool", "app_not_installed", "tool_failed"),
        conversation=True,
        user=True,
    ),
)
