"""The simulator's streaming messages: ``messages.stream_start`` / ``stream_append`` /
``stream_stop`` answered like the host (the same checks, codes and messages: ``not_found``,
``not_streaming``, ``text_too_long``), and what a test looks at::

    await sim.command(alice, chat, "/ask what now?")
    (message,) = sim.messages(chat)          # its text so far, like any text of the app
    assert sim.stream(message["id"]) == {
        "text": "Soon.", "streaming": False, "appends": ["So", "on."], "stopped_by": "app",
    }

There is no throttling here (the host's 300 ms between ``message.stream`` events is a matter of
delivery, not of what the app sees): ``appends`` lists every piece as the app added it. A
stream left unwritten for 10 minutes of ``sim.now`` (``sim.advance(minutes=10)``) is stopped
as the host's idle sweep does (``stopped_by: "idle"``). Mixed into ``sdk.simulator.Simulator``.

The ``ai`` simulation writes a scripted answer into a stream with ``_streams_append`` and
learns of its stop with ``_streams_on_stop``, as the host's runner uses ``host.streams``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sdk._capability_services import (
    STREAM_IDLE_MS,
    STREAM_NOT_FOUND,
    STREAM_NOT_STREAMING,
    STREAM_TEXT_MAX,
    STREAM_TEXT_TOO_LONG,
)
from sdk._sim_world import SimCall, SimConversation, SimMessage
from sdk.errors import HostError, NotFound


@dataclass
class SimStream:
    """One streaming message of the app."""

    message_id: str
    conversation_id: str
    text: str
    touched_at: int
    streaming: bool = True
    appends: list[str] = field(default_factory=list)
    stopped_by: str | None = None  # "app", "idle" or "host" once stopped

    def view(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "streaming": self.streaming,
            "appends": list(self.appends),
            "stopped_by": self.stopped_by,
        }


def _not_streaming() -> HostError:
    return HostError(STREAM_NOT_STREAMING, code="not_streaming")


def _text_too_long() -> HostError:
    return HostError(STREAM_TEXT_TOO_LONG, code="text_too_long")


class StreamsMixin:
    """``messages.stream_*`` effects and ``sim.stream``."""

    # provided by the Simulator
    now: int
    _ids: Any
    _messages: dict[str, SimMessage]
    _post: Callable[..., str]

    def _init_streams(self) -> None:
        self._streams: dict[str, SimStream] = {}
        self._stream_stop_hooks: dict[str, list[Callable[[str], None]]] = {}

    # --- what a test looks at ---------------------------------------------------------------

    def stream(self, message_id: str) -> dict[str, Any]:
        """A streaming message of the app: ``{"text", "streaming", "appends", "stopped_by"}``
        — its text (final once stopped), whether it still streams, every piece appended in
        order, and who stopped it (``"app"``, ``"idle"`` after 10 minutes unwritten,
        ``"host"`` for the ``ai`` simulation's cancel). ``KeyError`` for another id."""
        stream = self._streams[message_id]
        self._stream_idle(stream)
        return copy.deepcopy(stream.view())

    # --- the effects ------------------------------------------------------------------------

    def _stream_start(self, call: SimCall, params: dict) -> dict:
        text = params.get("text") or ""
        if len(text) > STREAM_TEXT_MAX:
            raise _text_too_long()
        message_id = self._post(call.conversation, "text", text)
        assert call.conversation is not None  # the capability needs_conversation
        self._streams[message_id] = SimStream(message_id, call.conversation.id, text, self.now)
        return {"message_id": message_id}

    def _stream_append(self, call: SimCall, params: dict) -> dict:
        stream = self._own_stream(call.conversation, params["message_id"])
        self._streams_append(stream.message_id, params["text"])
        return {}

    def _stream_stop(self, call: SimCall, params: dict) -> dict:
        text = params.get("text")
        if text is not None and len(text) > STREAM_TEXT_MAX:
            raise _text_too_long()
        stream = self._own_stream(call.conversation, params["message_id"])
        self._finish_stream(stream, text, "app")
        return {"text": stream.text}

    # --- for the ai simulation (the host's runner uses host.streams alike) ------------------

    def _streams_is_open(self, conversation: SimConversation | None, message_id: str) -> bool:
        """Whether ``message_id`` is the app's stream in ``conversation``, still streaming."""
        try:
            self._own_stream(conversation, message_id)
        except HostError:
            return False
        return True

    def _streams_append(self, message_id: str, delta: str) -> None:
        """Add ``delta`` to the stream (``HostError`` ``not_found``, ``not_streaming``,
        ``text_too_long`` as the host's ``Streams.append``)."""
        stream = self._streams.get(message_id)
        if stream is None:
            raise NotFound(STREAM_NOT_FOUND)
        self._stream_idle(stream)
        if not stream.streaming:
            raise _not_streaming()
        if len(stream.text) + len(delta) > STREAM_TEXT_MAX:
            raise _text_too_long()
        if not delta:
            return
        stream.text += delta
        stream.appends.append(delta)
        stream.touched_at = self.now
        self._messages[message_id].text = stream.text

    def _streams_is_stopped(self, message_id: str) -> bool:
        stream = self._streams.get(message_id)
        if stream is None:
            return True
        self._stream_idle(stream)
        return not stream.streaming

    def _streams_stop(self, message_id: str, text: str | None = None) -> bool:
        """Stop the stream (the ``ai`` simulation's cancel); False when it was not streaming."""
        stream = self._streams.get(message_id)
        if stream is None or self._streams_is_stopped(message_id):
            return False
        self._finish_stream(stream, text, "host")
        return True

    def _streams_on_stop(self, message_id: str, callback: Callable[[str], None]) -> None:
        """Have ``callback(message_id)`` called once when the stream stops."""
        self._stream_stop_hooks.setdefault(message_id, []).append(callback)

    # --- inside -----------------------------------------------------------------------------

    def _own_stream(self, conversation: SimConversation | None, message_id: str) -> SimStream:
        stream = self._streams.get(message_id)
        if stream is None or conversation is None or stream.conversation_id != conversation.id:
            raise NotFound(STREAM_NOT_FOUND)
        self._stream_idle(stream)
        if not stream.streaming:
            raise _not_streaming()
        return stream

    def _stream_idle(self, stream: SimStream) -> None:
        """The host's idle sweep, on the simulator's clock."""
        if stream.streaming and self.now - stream.touched_at >= STREAM_IDLE_MS:
            self._finish_stream(stream, None, "idle")

    def _finish_stream(self, stream: SimStream, text: str | None, by: str) -> None:
        if text is not None:
            stream.text = text
        stream.streaming = False
        stream.stopped_by = by
        self._messages[stream.message_id].text = stream.text
        for callback in self._stream_stop_hooks.pop(stream.message_id, []):
            callback(stream.message_id)

    EFFECTS: dict[str, Any] = {}


StreamsMixin.EFFECTS = {
    "messages.stream_start": StreamsMixin._stream_start,
    "messages.stream_append": StreamsMixin._stream_append,
    "messages.stream_stop": StreamsMixin._stream_stop,
}
