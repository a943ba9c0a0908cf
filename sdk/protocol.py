"""The protocol of sdk/PROTOCOL.md in one place: its constants, the error shape, and ``Peer``,
the one JSON-RPC 2.0 endpoint used by every transport — the runtime inside an app (stdin/stdout),
the host's sandbox transport (the app's pipes) and the host's remote transport (HTTPS). The
simulator uses ``answer`` (the same error mapping), in-process.

A ``Peer`` owns request ids, the futures of requests awaiting an answer, and the serving of
requests from the other side (bounded, each in a task of its own); a transport only moves whole
messages: it calls ``peer.receive(message)`` for each one that arrives and gives the peer a
``send`` coroutine for the way out.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import shlex
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sdk.errors import AppError, HostError

if TYPE_CHECKING:
    from sdk.app import App, HostLink

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 1024 * 1024
INTERACTIVE_DEADLINE = 3.0  # seconds the host waits for a command or action
# ``view``: a web view's page calls its app (``Aetherial.call(name, params)`` in sdk/js/bridge.js,
# ``@app.view(name)`` in the app). The page's params and the app's answer are JSON objects of
# at most these sizes (compact JSON, UTF-8).
VIEW_PARAMS_MAX_BYTES = 64 * 1024
VIEW_RESULT_MAX_BYTES = 256 * 1024
VIEW_NAME_MAX = 64
# What a ``view`` error answer means to the page. The app's own refusals (``ViewError``, or a
# ``HostError`` its handler let through) reach the page with their code and message; these
# codes instead say the view does not exist or the app failed.
UNKNOWN_VIEW = "unknown_view"
VIEW_FAILURES = frozenset({"internal_error", "invalid_params", "unknown_method", "timeout"})

RPC_UNKNOWN_METHOD = -32601
RPC_INVALID_PARAMS = -32602
RPC_APPLICATION_ERROR = -32000

log = logging.getLogger("sdk")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Serve = Callable[[str, dict[str, Any]], Awaitable[Any]]
Notified = Callable[[str, Any], None]


def error_body(code: str, message: str) -> dict[str, Any]:
    """A JSON-RPC ``error`` object for the Aetherial error ``code``."""
    number = {
        "unknown_method": RPC_UNKNOWN_METHOD,
        "invalid_params": RPC_INVALID_PARAMS,
    }.get(code, RPC_APPLICATION_ERROR)
    return {"code": number, "message": message, "data": {"code": code}}


def error_for(exc: BaseException, *, what: str = "the call") -> dict[str, Any]:
    """The ``error`` object answering an exception: one with a string ``.code`` (``AppError``,
    ``HostError``, the host's own errors) keeps its code and message; anything else becomes
    ``internal_error`` with a one-line message, its traceback logged only."""
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        message = getattr(exc, "message", None) or str(exc)
        return error_body(code, str(message)[:1000])
    log.error("%s failed", what, exc_info=exc)
    return error_body("internal_error", f"{what} failed: {type(exc).__name__}")


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line (JSON and a newline); ``ValueError`` past ``MAX_LINE_BYTES``."""
    line = (json.dumps(message, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    if len(line) > MAX_LINE_BYTES:
        raise ValueError(f"a protocol line may not exceed {MAX_LINE_BYTES} bytes")
    return line


def request_message(request_id: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


class RpcError(Exception):
    """The other side answered a request with a JSON-RPC error. ``code`` is its Aetherial code
    (``error.data.code``, or ``unknown_method``/``internal_error`` from the number)."""

    def __init__(self, code: str, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    @classmethod
    def from_error(cls, error: Any) -> RpcError:
        if not isinstance(error, dict):
            return cls("internal_error", f"malformed error: {error!r:.200}")
        data = error.get("data")
        code = data.get("code") if isinstance(data, dict) else None
        if not isinstance(code, str):
            code = "unknown_method" if error.get("code") == RPC_UNKNOWN_METHOD else "internal_error"
        return cls(code, str(error.get("message") or "")[:1000], data)


def result_of(message: Any) -> Any:
    """The result of a response message, or ``RpcError`` for an error response."""
    if not isinstance(message, dict):
        raise RpcError("protocol_error", "a response must be a JSON object")
    if "error" in message:
        raise RpcError.from_error(message["error"])
    return message.get("result")


class Peer:
    """One end of a JSON-RPC connection (see the module docstring).

    ``serve(method, params)`` answers the other side's requests: its return value is the
    result, an exception with a string ``.code`` the error (``error_for``). At most
    ``max_serving`` requests are served at once; more are answered ``rate_limited``.
    ``on_notification(method, params)`` sees notifications (requests without an id).
    """

    def __init__(
        self,
        send: Send,
        serve: Serve | None = None,
        *,
        id_prefix: str = "",
        max_serving: int | None = None,
        on_notification: Notified | None = None,
        name: str = "peer",
    ) -> None:
        self._send = send
        self._serve = serve
        self._prefix = id_prefix
        self._ids = itertools.count(1)
        self._max_serving = max_serving
        self._on_notification = on_notification
        self.name = name
        self._pending: dict[Any, asyncio.Future[Any]] = {}
        self._serving: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._pending)

    @property
    def serving(self) -> set[asyncio.Task[None]]:
        """The tasks serving the other side's requests now."""
        return self._serving

    def _next_id(self) -> Any:
        number = next(self._ids)
        return f"{self._prefix}{number}" if self._prefix else number

    async def request(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None
    ) -> Any:
        """Send a request and return its result: ``RpcError`` for an error answer,
        ``TimeoutError`` past ``timeout`` (then a late answer is ignored), or whatever
        ``send`` or ``fail_pending`` raise."""
        request_id = self._next_id()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._send(request_message(request_id, method, params or {}))
            message = await asyncio.wait_for(asyncio.shield(future), timeout)
        finally:
            self._pending.pop(request_id, None)
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # retrieved: the caller may be raising something else
        return result_of(message)

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        await self._send({"jsonrpc": "2.0", "method": method, "params": params or {}})

    def fail_pending(self, exc: BaseException) -> None:
        """Fail every request awaiting an answer (the other side is gone)."""
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)

    def receive(self, message: Any) -> None:
        """Take one message from the other side: an answer, a request or a notification."""
        if not isinstance(message, dict):
            log.warning("%s: ignored a message that is not an object", self.name)
            return
        method = message.get("method")
        if isinstance(method, str):
            if "id" not in message:
                if self._on_notification is not None:
                    self._on_notification(method, message.get("params"))
                return
            # JSON-RPC 2.0 lets a request leave out params (ping, shutdown): that is {}.
            params = message.get("params", {})
            task = asyncio.ensure_future(self._answer(message["id"], method, params))
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
            return
        request_id = message.get("id")
        future = self._pending.get(request_id) if isinstance(request_id, str | int) else None
        if future is None or future.done():
            log.debug("%s: an answer to an unknown request %r", self.name, request_id)
            return
        future.set_result(message)

    async def _answer(self, request_id: Any, method: str, params: Any) -> None:
        response = await self.response_to(request_id, method, params)
        try:
            await self._send(response)
        except (TypeError, ValueError) as exc:  # an answer that cannot travel
            error = error_body("internal_error", f"the answer could not be sent: {exc}")
            await self._send({"jsonrpc": "2.0", "id": request_id, "error": error})
        except Exception as exc:  # the other side is gone; nobody is waiting for this answer
            log.debug("%s: could not answer %s: %s", self.name, method, exc)

    async def response_to(self, request_id: Any, method: str, params: Any) -> dict[str, Any]:
        """The response to one request, served now (a transport whose requests each carry
        their own response, such as HTTP, calls this directly)."""
        response: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        if self._serve is None:
            response["error"] = error_body("unknown_method", f"unknown method {method}")
        elif self._max_serving is not None and len(self._serving) > self._max_serving:
            response["error"] = error_body("rate_limited", "too many requests in flight")
        elif not isinstance(params, dict):
            response["error"] = error_body("invalid_params", "params must be an object")
        else:
            try:
                response["result"] = await self._serve(method, params)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                response["error"] = error_for(exc, what=f"{self.name}: {method}")
        return response

    async def close(self) -> None:
        """Stop serving: cancel the requests being served."""
        for task in list(self._serving):
            task.cancel()
        await asyncio.gather(*self._serving, return_exceptions=True)


def json_size(value: Any) -> int:
    """The bytes of ``value`` as compact UTF-8 JSON (how the view limits are counted)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def command_params(text: str) -> dict[str, Any] | None:
    """The params of the ``command`` request a chat message stands for — ``{"command", "args",
    "text"}``: the first word without its slash, lower-cased, any ``@suffix`` dropped; the rest
    as typed, and split like a shell line into ``args`` (quoted words kept together; plain
    whitespace splitting when the quotes do not balance) — or None when ``text`` is not a
    command (it does not start with ``/``). The host and the simulator parse alike."""
    if not text.startswith("/"):
        return None
    word, _, rest = text[1:].partition(" ")
    try:
        args = shlex.split(rest)
    except ValueError:
        args = rest.split()
    return {"command": word.split("@", 1)[0].lower(), "args": args, "text": rest}


async def answer(app: App, method: str, params: Any, host: HostLink) -> dict[str, Any]:
    """The app's answer to one host → app request: ``{"result": …}`` or ``{"error": …}``, with
    the error mapping every transport uses (``error_for``)."""
    try:
        return {"result": await app.handle(method, params, host)}
    except (AppError, HostError) as exc:
        if isinstance(exc, HostError):
            log.warning("%s failed: the host answered %s", method, exc)
        return {"error": error_body(exc.code, exc.message)}
    except Exception as exc:
        log.exception("%s failed", method)
        return {"error": error_body("internal_error", f"the app failed: {type(exc).__name__}")}
