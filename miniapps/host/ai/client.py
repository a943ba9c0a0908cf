"""The model client: the ``openai`` package's ``AsyncOpenAI`` talking to any OpenAI-compatible
server (OpenAI, Ollama, vLLM, llama.cpp's server), always streaming.

**Retries are ours** (the client is built with ``max_retries=0``): a 429 or a 5xx answer, a
connection refused or a timeout before the first chunk is tried again, at most ``MAX_TRIES``
times in all, after the wait the server asked for (``retry-after-ms``, else ``retry-after`` in
seconds or as an HTTP date) or else an exponential back-off. A server asking to wait longer than
``RETRY_WAIT_MAX`` is not waited for: the answer fails at once (``model_rate_limited``). Once a
chunk has arrived nothing is retried — its text may already be in a chat message, and asking
again would write it twice — so a stream that breaks midway fails (``model_error``).

**Assembly** (``Answer``): content deltas are joined; tool calls arrive as deltas too, in
fragments keyed by ``index`` — the ``id`` and the function ``name`` usually in the first, the
``arguments`` JSON text in pieces after it — and are put together per index into complete calls
``{id, name, arguments}``. The final chunk (``stream_options.include_usage``) carries the
``usage``; servers that send none leave it to the caller's estimate.

Failures end as ``ModelFailure(code, message)``: ``model_rate_limited`` (429 after the tries),
``model_error`` (5xx after the tries, or a broken stream), ``model_unreachable`` (no connection
after the tries), ``model_timeout`` (``AI_TIMEOUT`` passed at a step), ``model_refused`` (any
other 4xx: a bad key, an unknown model, a prompt too long). The messages carry the server's own
words, cut short, and never the API key.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI

from miniapps.host.ai.settings import AiSettings

log = logging.getLogger(__name__)

MAX_TRIES = 3  # requests to the server for one answer, the first included
RETRY_WAIT_MAX = 20.0  # seconds: a longer retry-after is not waited for
BACKOFF_FIRST = 0.5  # seconds before the second try when the server said nothing (then x2)
SERVER_WORDS_MAX = 300  # characters of the server's error message kept in ours

Sleep = Callable[[float], Awaitable[None]]
OnDelta = Callable[[str], Awaitable[None]]


class ModelFailure(Exception):
    """The model server did not give a complete answer: a stable ``code`` and a sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Stopped(Exception):
    """Raised by an ``on_delta`` to end the answer where it is (its stream was stopped)."""


@dataclass
class _ToolCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class Answer:
    """What a streamed answer has given so far: ``content``, the tool calls being assembled,
    ``finish_reason``, ``usage`` (the server's, when it sent one) and when the first token
    came (``first_token_at``, ``time.monotonic()``)."""

    parts: list[str] = field(default_factory=list)
    calls: dict[int, _ToolCall] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    first_token_at: float | None = None
    chunks: int = 0

    @property
    def content(self) -> str:
        return "".join(self.parts)

    @property
    def started(self) -> bool:
        """Whether anything of the answer arrived (then it is not retried)."""
        return self.chunks > 0

    def tool_calls(self) -> list[dict[str, str]]:
        """The complete tool calls, in the order of their index: ``{id, name, arguments}``
        (``arguments`` the JSON text as the model wrote it; ``"{}"`` when it wrote none)."""
        calls = []
        for index in sorted(self.calls):
            call = self.calls[index]
            if not call.name:
                continue  # fragments without a function: nothing to call
            calls.append(
                {
                    "id": call.id or f"call_{index}",
                    "name": call.name,
                    "arguments": "".join(call.arguments) or "{}",
                }
            )
        return calls

    def feed(self, chunk: Any) -> str:
        """Take one streamed chunk; the content it adds ("" when none)."""
        self.chunks += 1
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = {
                "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
                "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
            }
        added = ""
        for choice in getattr(chunk, "choices", None) or []:
            if getattr(choice, "index", 0) not in (0, None):
                continue  # one answer asked for (n=1); anything else is not ours
            delta = getattr(choice, "delta", None)
            if delta is not None:
                if delta.content:
                    added += delta.content
                for position, fragment in enumerate(delta.tool_calls or []):
                    self._feed_tool_call(position, fragment)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        if added:
            self.parts.append(added)
        if (added or self.calls) and self.first_token_at is None:
            self.first_token_at = time.monotonic()
        return added

    def _feed_tool_call(self, position: int, fragment: Any) -> None:
        index = fragment.index if getattr(fragment, "index", None) is not None else position
        call = self.calls.setdefault(index, _ToolCall())
        if fragment.id:
            call.id = fragment.id
        function = getattr(fragment, "function", None)
        if function is None:
            return
        name = function.name or ""
        # The name comes whole in one fragment (OpenAI, vLLM), or again in each (some local
        # servers): kept once. A server cutting it in pieces gets them joined.
        if name and name != call.name:
            call.name = name if not call.name else call.name + name
        if function.arguments:
            call.arguments.append(function.arguments)


def _retry_after(headers: Any) -> float | None:
    """The wait a 429/503 answer asked for, in seconds: ``retry-after-ms`` (OpenAI's), else
    ``retry-after`` (seconds, or an HTTP date)."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _backoff(attempt: int) -> float:
    """The wait before try ``attempt + 1`` when the server named none: 0.5 s, 1 s … ±25 %."""
    return BACKOFF_FIRST * 2 ** (attempt - 1) * random.uniform(0.75, 1.25)


def _server_words(exc: BaseException) -> str:
    """What the server said about a failure, cut short (never the request, never the key)."""
    body = getattr(exc, "body", None)
    message = None
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
    text = str(message or getattr(exc, "message", None) or exc or type(exc).__name__)
    return text if len(text) <= SERVER_WORDS_MAX else text[: SERVER_WORDS_MAX - 1] + "…"


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, openai.APITimeoutError | TimeoutError) or "Timeout" in type(exc).__name__


class _Retry(Exception):
    """One try failed in a way worth another (``wait``: what the server asked, or None)."""

    def __init__(self, failure: ModelFailure, wait: float | None = None) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.wait = wait


def _classify(exc: Exception) -> ModelFailure | _Retry:
    """A failure of one try: worth retrying (``_Retry``) or final (``ModelFailure``)."""
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        words = _server_words(exc)
        if status == 429:
            wait = _retry_after(exc.response.headers)
            failure = ModelFailure(
                "model_rate_limited", f"the model server is rate limiting us (429): {words}"
            )
            if wait is not None and wait > RETRY_WAIT_MAX:
                failure.message += f"; it asked to wait {wait:.0f} s"
                return failure
            return _Retry(failure, wait)
        if status >= 500:
            failure = ModelFailure("model_error", f"the model server failed ({status}): {words}")
            wait = _retry_after(exc.response.headers)
            return _Retry(failure, wait if wait is not None and wait <= RETRY_WAIT_MAX else None)
        return ModelFailure("model_refused", f"the model server refused ({status}): {words}")
    if _is_timeout(exc):
        return _Retry(ModelFailure("model_timeout", "the model server did not answer in time"))
    if isinstance(exc, openai.APIConnectionError):
        return _Retry(ModelFailure("model_unreachable", f"the model server is unreachable: {exc}"))
    if isinstance(exc, openai.APIError):
        return ModelFailure("model_error", f"the model server failed: {_server_words(exc)}")
    return _Retry(ModelFailure("model_error", f"the model server failed: {exc!r}"))


class ModelClient:
    """One ``AsyncOpenAI`` for the node (its connection pool is shared by every request)."""

    def __init__(self, settings: AiSettings, *, sleep: Sleep = asyncio.sleep) -> None:
        self.settings = settings
        self._sleep = sleep
        self._openai = AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.key,
            timeout=settings.timeout,
            max_retries=0,
        )

    async def close(self) -> None:
        await self._openai.close()

    async def stream(self, body: dict[str, Any], answer: Answer, on_delta: OnDelta) -> None:
        """Stream the completion of ``body`` (``model``, ``messages``, ``max_tokens`` …) into
        ``answer``, calling ``on_delta(text)`` with each piece of content as it arrives.
        Raises ``ModelFailure``; a cancellation closes the connection (the server sees the
        client go)."""
        for attempt in range(1, MAX_TRIES + 1):
            try:
                await self._try(body, answer, on_delta)
                return
            except ModelFailure:
                raise
            except _Retry as retry:
                if answer.started or attempt == MAX_TRIES:
                    raise retry.failure from None
                wait = retry.wait if retry.wait is not None else _backoff(attempt)
                log.info(
                    "model server: %s; trying again in %.1f s (try %d of %d)",
                    retry.failure.code,
                    wait,
                    attempt + 1,
                    MAX_TRIES,
                )
                await self._sleep(wait)

    async def _try(self, body: dict[str, Any], answer: Answer, on_delta: OnDelta) -> None:
        try:
            stream = await self._openai.chat.completions.create(
                **body, stream=True, stream_options={"include_usage": True}
            )
        except Exception as exc:
            outcome = _classify(exc)
            raise outcome from None
        try:
            async for chunk in stream:
                added = answer.feed(chunk)
                if added:
                    await on_delta(added)
        except Stopped:
            raise
        except Exception as exc:
            if answer.started:
                if _is_timeout(exc):
                    raise ModelFailure(
                        "model_timeout", "the model server stopped sending the answer"
                    ) from None
                if isinstance(exc, ModelFailure):
                    raise
                raise ModelFailure(
                    "model_error", f"the model server's answer broke off: {_server_words(exc)}"
                ) from None
            outcome = exc if isinstance(exc, ModelFailure) else _classify(exc)
            raise outcome from None
        finally:
            await stream.close()
