"""The simulator's ``ai``: ``ai.chat`` and ``ai.cancel`` answered like the host (the same checks
in the same order, codes and messages: ``check_ai_chat``, ``ai_not_configured``,
``vision_unsupported``, ``not_found``, ``stream_not_found``, ``ai_quota_exceeded``,
``too_many_requests``), the model's answers scripted, and the outcome delivered as the signed
event ``ai.completed`` when the test says::

    sim.ai_script("Lisbon is sunny today.")                       # the next answer: a text
    await sim.command(alice, chat, "/ask weather in Lisbon?")      # the app calls ctx.ai_chat
    (done,) = await sim.ai_complete()      # the answer runs; the app's handler gets the event
    assert done["message"]["content"] == "Lisbon is sunny today."
    assert sim.ai_requests[-1]["messages"][-1]["content"] == "weather in Lisbon?"

Like the platform, the simulator has **no model until one is set**: ``ai.chat`` answers
``ai_not_configured`` until ``sim.ai_script(...)`` or ``sim.ai_configure(...)`` (``vision``: the
model takes images; the three budgets in tokens, the platform's defaults).

**Scripted answers**, used in order by the requests (``ai_script(*answers)`` adds to the end): a
string is a text answer; a dict may have ``content`` (a string, or a list of strings: the chunks
streamed into ``stream_to`` one by one), ``tool_calls`` (``[{"name", "arguments" (a dict or
JSON text), "id"?}]``: the answer asks for tool calls, ``finish_reason`` ``tool_calls``),
``finish_reason``, ``usage`` (``{"prompt_tokens", "completion_tokens"}``; absent: the host's
estimate, characters / 4), ``error`` (a code such as ``model_rate_limited``: the answer fails
with it, ``message`` optional) or ``cancel_after`` (n chunks are written, then the request is
cancelled as by ``ai.cancel`` mid-answer). A request with no answer left gets the text "ok".

**Running**: a request waits (it is "running": it counts towards ``too_many_requests`` and can
be cancelled) until ``await sim.ai_complete()`` runs the waiting ones in order — each chunk
appended to its ``stream_to`` message (``sim.stream(id)``; not stopped after the answer, as on
the host), its usage counted against the budgets, then ``ai.completed`` delivered to the app's
handler — including those the handlers ask for meanwhile (a tool round), and returns the
payloads delivered. ``ai.cancel`` of a waiting request, or a stop of its ``stream_to`` message,
makes it end ``cancelled`` (an ``ai.cancel`` also stops its stream, keeping what was written).

What the app sent: ``sim.ai_requests``, one dict per accepted request — ``request_id``,
``user_id``, ``conversation_id``, ``messages``/``tools`` (checked, canonical), ``max_tokens``,
``temperature``, ``stream_to``, ``body`` (what the model server would get: OpenAI's request,
images as data URLs — ``sim-media:<id>`` for a photo a person shared with ``sim.say``, whose
bytes the simulator does not have), ``status`` (``running`` until it ends). ``sim.ai_usage``:
the token counters by ``"<app|conversation|user>|<key>|<period>"``, as the host keeps them.
Timings are 0 here. Mixed into ``sdk.simulator.Simulator``.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

from sdk import signing
from sdk._capability_services import (
    AI_DEFAULT_MAX_TOKENS,
    AI_EVENT,
    AI_IMAGE_TOKENS,
    AI_NOT_CONFIGURED,
    AI_RUNNING_MAX,
    AI_VISION_UNSUPPORTED,
    ai_estimate,
    ai_prompt_chars,
    ai_tokens,
    check_ai_chat,
)
from sdk._sim_world import SimCall, SimConversation, SimUser
from sdk.errors import NotFound, host_error

STREAM_NOT_FOUND = (
    "stream_to must be a message this app started with messages.stream_start in this "
    "conversation, still streaming"
)
DEFAULT_ANSWER = "ok"
MAX_ANSWERS = 100  # what one ai_complete runs at most (a handler asking again forever)


def _period_ends(now_ms: int) -> tuple[str, str, int, int]:
    moment = datetime.datetime.fromtimestamp(now_ms / 1000, datetime.UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return (
        day.strftime("%Y-%m-%d"),
        hour.strftime("%Y-%m-%dT%H"),
        int((day + datetime.timedelta(days=1)).timestamp() * 1000),
        int((hour + datetime.timedelta(hours=1)).timestamp() * 1000),
    )


def _iso(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AiMixin:
    """``ai.chat`` / ``ai.cancel`` effects, ``ai_script``, ``ai_complete`` and what was sent."""

    # provided by the Simulator
    app_id: str
    secret: str
    now: int
    manifest: dict[str, Any]
    _users: dict[str, SimUser]
    _conversations: dict[str, SimConversation]

    def _init_ai(self) -> None:
        self._ai_settings: dict[str, Any] | None = None  # None: not configured
        self._ai_script: deque[dict[str, Any]] = deque()
        self._ai_waiting: deque[dict[str, Any]] = deque()
        self._ai_requests: list[dict[str, Any]] = []
        self._ai_usage: dict[str, int] = {}

    # --- what a test sets -----------------------------------------------------------------

    def ai_configure(
        self,
        *,
        vision: bool = False,
        app_tokens_per_day: int = 200_000,
        conversation_tokens_per_day: int = 50_000,
        user_tokens_per_hour: int = 20_000,
        model: str = "sim-model",
    ) -> None:
        """Give the simulated platform a model (as ``AI_BASE_URL``/``AI_MODEL`` do): ``vision``
        as ``AI_VISION``, the budgets as ``AI_*_TOKENS_PER_*`` (0: no limit)."""
        self._ai_settings = {
            "vision": vision,
            "app": app_tokens_per_day,
            "conversation": conversation_tokens_per_day,
            "user": user_tokens_per_hour,
            "model": model,
        }

    def ai_unconfigure(self) -> None:
        """No model again: ``ai.chat`` answers ``ai_not_configured``."""
        self._ai_settings = None

    def ai_script(self, *answers: str | dict[str, Any]) -> None:
        """Add the model's next answers (module docstring); configures a model with the
        defaults when none was."""
        if self._ai_settings is None:
            self.ai_configure()
        for answer in answers:
            step = {"content": answer} if isinstance(answer, str) else dict(answer)
            unknown = set(step) - {
                "content",
                "tool_calls",
                "finish_reason",
                "usage",
                "error",
                "message",
                "cancel_after",
            }
            if unknown:
                raise ValueError(f"ai_script: unknown keys {sorted(unknown)}")
            self._ai_script.append(step)

    @property
    def ai_requests(self) -> list[dict[str, Any]]:
        """Every accepted ``ai.chat``, oldest first (module docstring)."""
        return copy.deepcopy(self._ai_requests)

    @property
    def ai_usage(self) -> dict[str, int]:
        """Tokens counted per ``"app|<app_id>|<day>"``, ``"conversation|<id>|<day>"`` and
        ``"user|<per-app id>|<day>T<hour>"``."""
        return dict(self._ai_usage)

    # --- the effects ------------------------------------------------------------------------

    def _ai_chat(self, call: SimCall, params: dict) -> dict:
        request = check_ai_chat(params)
        settings = self._ai_settings
        if settings is None:
            raise host_error("ai_not_configured", AI_NOT_CONFIGURED)
        assert call.user is not None and call.conversation is not None  # the contract's
        urls: dict[str, str] = {}
        if request["image_ids"]:
            if not settings["vision"]:
                raise host_error("vision_unsupported", AI_VISION_UNSUPPORTED)
            urls = self._ai_images(call.conversation, request["image_ids"])
        stream_to = request["stream_to"]
        if stream_to is not None and not self._ai_stream_open(call.conversation, stream_to):
            raise host_error("stream_not_found", STREAM_NOT_FOUND)
        estimate = ai_estimate(request)
        self._ai_check_budgets(call, estimate)
        running = [r for r in self._ai_waiting if r["conversation_id"] == call.conversation.id]
        if len(running) >= AI_RUNNING_MAX:
            raise host_error(
                "too_many_requests",
                f"this app has {AI_RUNNING_MAX} answers running in this conversation already: "
                "wait for one to complete (ai.completed) or cancel one (ai.cancel)",
            )
        request_id = secrets.token_hex(12)
        record = {
            "request_id": request_id,
            "user_id": call.user.id,
            "conversation_id": call.conversation.id,
            "messages": request["messages"],
            "tools": request["tools"],
            "max_tokens": request["max_tokens"] or AI_DEFAULT_MAX_TOKENS,
            "temperature": request["temperature"],
            "stream_to": stream_to,
            "body": self._ai_body(settings["model"], request, urls),
            "status": "running",
        }
        self._ai_requests.append(record)
        self._ai_waiting.append(
            {
                "record": record,
                "request": request,
                "user": call.user,
                "conversation_id": call.conversation.id,
                "reason": None,
            }
        )
        if stream_to is not None:
            on_stop = getattr(self, "_streams_on_stop", None)
            if on_stop is not None:
                on_stop(stream_to, self._ai_on_stream_stop(request_id))
        return {"request_id": request_id}

    def _ai_cancel(self, call: SimCall, params: dict) -> dict:
        for waiting in self._ai_waiting:
            if waiting["record"]["request_id"] == params["request_id"]:
                waiting["reason"] = waiting["reason"] or "cancelled"
                return {"cancelled": True}
        return {"cancelled": False}

    # --- running the answers ----------------------------------------------------------------

    async def ai_complete(self) -> list[dict[str, Any]]:
        """Run the waiting requests in order, and those their handlers ask for meanwhile: each
        answer is streamed into its ``stream_to``, counted, and delivered as ``ai.completed``
        to the app (its handler has run when this returns; ``AppCallError`` if it failed).
        Returns the payloads delivered. ``RuntimeError`` past ``MAX_ANSWERS`` in one call (a
        handler that asks again every time)."""
        delivered: list[dict[str, Any]] = []
        while self._ai_waiting:
            if len(delivered) >= MAX_ANSWERS:
                raise RuntimeError(f"ai_complete ran {MAX_ANSWERS} answers: a loop?")
            waiting = self._ai_waiting[0]
            payload = self._ai_run(waiting)
            self._ai_waiting.popleft()
            delivered.append(copy.deepcopy(payload))
            if AI_EVENT in self.manifest["events"]["accepts"]:
                conversation = self._conversations.get(waiting["conversation_id"])
                await self._invoke(  # type: ignore[attr-defined]
                    "event",
                    waiting["user"],
                    conversation,
                    {"name": AI_EVENT, "payload": payload},
                )
        return delivered

    def _ai_run(self, waiting: dict[str, Any]) -> dict[str, Any]:
        record, request = waiting["record"], waiting["request"]
        step = self._ai_script.popleft() if self._ai_script else {"content": DEFAULT_ANSWER}
        content = step.get("content", "")
        chunks = [content] if isinstance(content, str) else list(content)
        chunks = [chunk for chunk in chunks if chunk]
        stream_to = record["stream_to"]
        written, status, error = [], "completed", None
        for index, chunk in enumerate(chunks):
            if waiting["reason"] is not None:
                break
            if step.get("cancel_after") is not None and index >= step["cancel_after"]:
                waiting["reason"] = "cancelled"
                break
            written.append(chunk)
            if stream_to is not None:
                self._ai_append(waiting, stream_to, chunk)
        if waiting["reason"] is not None:
            status = "cancelled"
            if waiting["reason"] == "cancelled" and stream_to is not None:
                stop = getattr(self, "_streams_stop", None)
                if stop is not None:
                    stop(stream_to)
        elif step.get("error"):
            status = "failed"
            error = {
                "code": step["error"],
                "message": step.get("message") or f"the simulated model failed ({step['error']})",
            }
        text = "".join(written)
        tool_calls = []
        if status == "completed":
            for index, tool_call in enumerate(step.get("tool_calls") or []):
                arguments = tool_call.get("arguments", {})
                if not isinstance(arguments, str):
                    arguments = json.dumps(arguments)
                tool_calls.append(
                    {
                        "id": tool_call.get("id") or f"call_{index}_{secrets.token_hex(4)}",
                        "name": tool_call["name"],
                        "arguments": arguments,
                    }
                )
        usage = step.get("usage") or self._ai_estimate_usage(request, text, tool_calls)
        usage = {
            "prompt_tokens": int(usage["prompt_tokens"]),
            "completion_tokens": int(usage["completion_tokens"]),
        }
        self._ai_count(record, usage)
        finish_reason = None
        if status == "completed":
            finish_reason = step.get("finish_reason") or ("tool_calls" if tool_calls else "stop")
        payload: dict[str, Any] = {
            "request_id": record["request_id"],
            "status": status,
            "message": {"role": "assistant", "content": text, "tool_calls": tool_calls},
            "finish_reason": finish_reason,
            "usage": usage,
            "stream_to": stream_to,
            "timing": {"first_token_ms": 0 if written else None, "total_ms": 0},
        }
        if error is not None:
            payload["error"] = error
        payload["signature"] = signing.sign_event(self.secret, payload)
        record["status"] = status
        return payload

    def _ai_append(self, waiting: dict[str, Any], stream_to: str, chunk: str) -> None:
        """A chunk into the ``stream_to`` message, as the host's runner: a stopped stream
        cancels the request; another refusal (too long) only ends the appending."""
        append = getattr(self, "_streams_append", None)
        if append is None or waiting.get("stream_broken"):
            return
        try:
            append(stream_to, chunk)
        except Exception as exc:
            if getattr(exc, "code", None) in ("not_streaming", "not_found"):
                waiting["reason"] = waiting["reason"] or "stream_stopped"
            else:
                waiting["stream_broken"] = True

    def _ai_on_stream_stop(self, request_id: str) -> Callable[[str], None]:
        def stopped(_message_id: str) -> None:
            for waiting in self._ai_waiting:
                if waiting["record"]["request_id"] == request_id:
                    waiting["reason"] = waiting["reason"] or "stream_stopped"

        return stopped

    # --- checks and counters, as the host's ------------------------------------------------

    def _ai_stream_open(self, conversation: SimConversation, message_id: str) -> bool:
        is_open = getattr(self, "_streams_is_open", None)
        return bool(is_open is not None and is_open(conversation, message_id))

    def _ai_images(self, conversation: SimConversation, image_ids: list[str]) -> dict[str, str]:
        """Each image the app may send the model, as the URL it would be sent as."""
        uploads = getattr(self, "_uploads", {})
        said = getattr(self, "_said", {})
        urls = {}
        for media_id in dict.fromkeys(image_ids):
            upload = uploads.get(media_id)
            if upload is not None and upload.get("kind") == "image":
                encoded = base64.b64encode(upload["data"]).decode("ascii")
                urls[media_id] = f"data:{upload['content_type']};base64,{encoded}"
                continue
            shared = any(
                item.conversation_id == conversation.id
                and any(m["media_id"] == media_id and m["kind"] == "image" for m in item.media)
                for item in said.values()
            )
            if not shared:
                raise NotFound(
                    f"no image {media_id} in this conversation or uploaded by this app "
                    "(media.upload)"
                )
            urls[media_id] = f"sim-media:{media_id}"
        return urls

    @staticmethod
    def _ai_body(model: str, request: dict[str, Any], urls: dict[str, str]) -> dict[str, Any]:
        """OpenAI's request, as the host's ``miniapps.host.ai.prompt.build_body`` makes it."""
        messages = []
        for message in request["messages"]:
            content = message["content"]
            if isinstance(content, list):
                content = [
                    {"type": "text", "text": part["text"]}
                    if part["type"] == "text"
                    else {"type": "image_url", "image_url": {"url": urls[part["media_id"]]}}
                    for part in content
                ]
            out: dict[str, Any] = {"role": message["role"], "content": content}
            if message.get("tool_calls"):
                out["tool_calls"] = [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"]},
                    }
                    for c in message["tool_calls"]
                ]
            if message["role"] == "tool":
                out["tool_call_id"] = message["tool_call_id"]
            messages.append(out)
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_tokens": request["max_tokens"],
        }
        if request.get("temperature") is not None:
            body["temperature"] = request["temperature"]
        if request.get("tools"):
            body["tools"] = [{"type": "function", "function": t} for t in request["tools"]]
        return body

    def _ai_budgets(self, user_id: str, conversation_id: str) -> list[tuple[str, str, int, int]]:
        """``(counter key, what it is, limit, when it resets)`` of each budget, now."""
        settings = self._ai_settings or {}
        day, hour, day_ends, hour_ends = _period_ends(self.now)
        return [
            (
                f"app|{self.app_id}|{day}",
                "this app's daily AI budget (AI_APP_TOKENS_PER_DAY)",
                settings.get("app", 0),
                day_ends,
            ),
            (
                f"conversation|{conversation_id}|{day}",
                "this conversation's daily AI budget (AI_CONVERSATION_TOKENS_PER_DAY)",
                settings.get("conversation", 0),
                day_ends,
            ),
            (
                f"user|{user_id}|{hour}",
                "your hourly AI budget (AI_USER_TOKENS_PER_HOUR)",
                settings.get("user", 0),
                hour_ends,
            ),
        ]

    def _ai_check_budgets(self, call: SimCall, estimate: int) -> None:
        assert call.user is not None and call.conversation is not None
        for key, what, limit, resets in self._ai_budgets(call.user.id, call.conversation.id):
            if limit <= 0:
                continue
            used = self._ai_usage.get(key, 0)
            if used + estimate <= limit:
                continue
            minutes = max(1, round((resets - self.now) / 60_000))
            raise host_error(
                "ai_quota_exceeded",
                f"{what} is used up: {max(0, limit - used)} of {limit} tokens left, and this "
                f"request may take up to {estimate} (its prompt and max_tokens); it resets at "
                f"{_iso(resets)} (in {minutes} min)",
            )

    @staticmethod
    def _ai_estimate_usage(
        request: dict[str, Any], text: str, tool_calls: list[dict[str, str]]
    ) -> dict[str, int]:
        written = len(text) + sum(len(c["name"]) + len(c["arguments"]) for c in tool_calls)
        return {
            "prompt_tokens": ai_tokens(ai_prompt_chars(request["messages"], request["tools"]))
            + AI_IMAGE_TOKENS * len(request["image_ids"]),
            "completion_tokens": ai_tokens(written),
        }

    def _ai_count(self, record: dict[str, Any], usage: dict[str, int]) -> None:
        total = usage["prompt_tokens"] + usage["completion_tokens"]
        for key, *_ in self._ai_budgets(record["user_id"], record["conversation_id"]):
            self._ai_usage[key] = self._ai_usage.get(key, 0) + total

    EFFECTS: dict[str, Any] = {}


AiMixin.EFFECTS = {"ai.chat": AiMixin._ai_chat, "ai.cancel": AiMixin._ai_cancel}
