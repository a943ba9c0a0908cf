"""Streaming messages: an app's text that grows in the chat while it is written — by the app
(``messages.stream_start`` / ``stream_append`` / ``stream_stop``) or by the ``ai`` runner
streaming a model's answer into it (``host.streams.append``) — then stops.

**Buffered, throttled writes.** Appends are buffered on the node doing the appending (a stream's
appends come from one runner or app invocation at a time). One flusher task per stream writes
the whole text so far into the message document and sends members ``message.stream``
(``messaging.actions.streams``) at most once per ``FLUSH_INTERVAL`` (300 ms), never the same
text twice: the first append after a quiet spell goes out at once — the time to the first
visible token is one write — and those arriving within 300 ms of a write ride together on the
next one. A slow write delays the next one, never bunches them.

**Several nodes.** Each write is conditional on the message's ``stream_seq`` (the writes so
far), so appends reaching one stream through two nodes never overwrite each other: a node whose
write was pre-empted takes the stored text and writes it again with what it still holds. A stop
made anywhere — ``stream_stop`` on another node, the idle sweep, a member's recall — reaches the
node that holds the buffer by pub/sub (``STREAMS_CHANNEL``), else at its next write (which finds
the message no longer streaming) or when the runner asks ``is_stopped`` (MongoDB's answer).

**The stop** writes the final text — given, else what was streamed, this node's pending appends
included — with ``streaming: false``; members get ``message.updated``, always; only then is the
text indexed for search. Open streams are rows of ``message_streams`` (``touched_at`` moved as
they are written): every node sweeps them each ``SWEEP_INTERVAL`` and stops those left
unwritten for ``IDLE_TIMEOUT`` (10 min). ``on_stop`` callbacks run on the node that registered
them, wherever the stop happened (an ``ai.chat`` streaming into the message is cancelled so).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from messaging.actions import streams as stream_actions
from messaging.context import Messaging
from miniapps.host.store.message_streams import MessageStreams
from sdk._capability_services import (
    STREAM_IDLE_MS,
    STREAM_NOT_FOUND,
    STREAM_NOT_STREAMING,
    STREAM_TEXT_MAX,
    STREAM_TEXT_TOO_LONG,
)
from storage.errors import AppError
from storage.mongo import new_id, now_ms

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.3  # seconds: at most one message.stream per stream per interval
IDLE_TIMEOUT = STREAM_IDLE_MS / 1000  # seconds unwritten before the host stops a stream
SWEEP_INTERVAL = 60.0  # seconds between sweeps of idle streams (each node)
SWEEP_BATCH = 100
TOUCH_EVERY = 30.0  # seconds: how often a written stream moves its row's touched_at
STREAMS_CHANNEL = "streams"  # pub/sub: {"stopped": message_id}
WRITE_ATTEMPTS = 5  # writes pre-empted by another node in a row before giving up this round
STOPPED_REMEMBERED = 10_000  # ids of streams stopped lately, to answer not_streaming at once

StopCallback = Callable[[str], Awaitable[None] | None]


def not_found() -> AppError:
    return AppError("not_found", STREAM_NOT_FOUND, status=404)


def not_streaming() -> AppError:
    return AppError("not_streaming", STREAM_NOT_STREAMING, status=409)


def text_too_long() -> AppError:
    return AppError(
        "text_too_long", STREAM_TEXT_TOO_LONG, details={"limit": STREAM_TEXT_MAX}, status=413
    )


def check_text(text: str | None) -> None:
    if text is not None and len(text) > STREAM_TEXT_MAX:
        raise text_too_long()


@dataclass(eq=False)
class _Stream:
    """What this node holds of one open stream."""

    message_id: str
    conversation_id: str
    app_id: str
    text: str  # the stored text, at ``seq`` (as this node last wrote or read it)
    seq: int
    pending: str = ""  # appended here, not yet written
    last_write: float = -math.inf  # loop time of the last message.stream sent from here
    last_touch: float = -math.inf
    stopped: bool = False
    flusher: asyncio.Task | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def length(self) -> int:
        return len(self.text) + len(self.pending)


class Streams:
    """The streams of this node. The interface the ``ai`` runner uses: ``append(message_id,
    delta)``, ``is_stopped(message_id)``, ``stop(message_id, text=None)``, ``on_stop``;
    the capabilities use ``start_stream`` and the ``*_as`` methods, which check that the stream
    is the calling app's own in its conversation (``ai.chat`` checks ``stream_to`` with
    ``is_open``)."""

    def __init__(
        self,
        messaging: Messaging,
        *,
        flush_interval: float = FLUSH_INTERVAL,
        idle_timeout: float = IDLE_TIMEOUT,
        sweep_interval: float = SWEEP_INTERVAL,
    ) -> None:
        self.messaging = messaging
        self.rows = MessageStreams(messaging.db)
        self.flush_interval = flush_interval
        self.idle_timeout = idle_timeout
        self.sweep_interval = sweep_interval
        self._local: dict[str, _Stream] = {}
        self._on_stop: dict[str, list[StopCallback]] = {}
        self._sweeper: asyncio.Task | None = None
        self._stopped: OrderedDict[str, None] = OrderedDict()  # stopped lately (anywhere)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Hear stops made on other nodes; sweep idle streams."""
        await self.messaging.pubsub.subscribe(STREAMS_CHANNEL, self._on_stopped_elsewhere)
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever())

    async def close(self) -> None:
        """Stop sweeping, and write what this node still holds (best effort: the streams stay
        open, the idle sweep of a node still running stops them)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for stream in list(self._local.values()):
            # Under the lock, so no flusher is cut in the middle of a write.
            async with stream.lock:
                if stream.flusher is not None:
                    stream.flusher.cancel()
                if not stream.pending or stream.stopped:
                    continue
                try:
                    await self._write(stream)
                except Exception:
                    log.exception("writing stream %s on shutdown failed", stream.message_id)
        self._local.clear()

    # --- an app's own streams (the capabilities) ------------------------------------------

    async def start_stream(self, app_id: str, conversation_id: str, text: str = "") -> str:
        """Post a streaming message from ``app_id``'s bot in ``conversation_id``; its id."""
        check_text(text)
        message_id = new_id()
        # The row first: a message that streams always has one (no row: not streaming). A row
        # whose message was never posted (the post failed) is removed by the idle sweep.
        await self.rows.add_stream(message_id, conversation_id, app_id, now_ms())
        await stream_actions.do_start(
            self.messaging, conversation_id, app_id, text, message_id=message_id
        )
        loop = asyncio.get_running_loop()
        self._local[message_id] = _Stream(
            message_id, conversation_id, app_id, text, 0, last_touch=loop.time()
        )
        return message_id

    async def check_own(self, app_id: str, conversation_id: str, message_id: str) -> None:
        """Refuse unless ``message_id`` is a stream ``app_id`` started in ``conversation_id``
        and still streaming: ``not_found``, ``not_streaming`` (``AppError``)."""
        await self._own(app_id, conversation_id, message_id)

    async def is_open(self, app_id: str, conversation_id: str, message_id: str) -> bool:
        """Whether ``message_id`` is a stream ``app_id`` started in ``conversation_id`` and
        still streaming (``ai.chat``'s ``stream_to``)."""
        try:
            await self._own(app_id, conversation_id, message_id)
        except AppError:
            return False
        return True

    async def append_as(
        self, app_id: str, conversation_id: str, message_id: str, delta: str
    ) -> None:
        """``messages.stream_append``: ``append`` to the app's own stream."""
        stream = await self._own(app_id, conversation_id, message_id)
        self._append(stream, delta)

    async def stop_as(
        self, app_id: str, conversation_id: str, message_id: str, text: str | None
    ) -> str:
        """``messages.stream_stop``: ``stop`` the app's own stream; its final text."""
        check_text(text)
        await self._own(app_id, conversation_id, message_id)
        view = await self._stop(message_id, text)
        if view is None:  # stopped meanwhile, by someone else
            raise not_streaming()
        return view["text"]

    # --- the runner's interface -------------------------------------------------------------

    async def append(self, message_id: str, delta: str) -> None:
        """Add ``delta`` to the stream ``message_id`` (buffered; written and sent to members
        within ``FLUSH_INTERVAL``). Raises ``AppError`` ``not_streaming`` (stopped: the runner
        should end), ``not_found`` (no such stream — or one stopped so long ago this node
        forgot it), ``text_too_long`` (the whole text would pass ``STREAM_TEXT_MAX``; nothing
        is added)."""
        if not delta:
            return
        stream = await self._held(message_id)
        self._append(stream, delta)

    async def is_stopped(self, message_id: str) -> bool:
        """True once the stream was stopped (anywhere), or when there is no such stream."""
        stream = self._local.get(message_id)
        if stream is not None and stream.stopped:
            return True
        if await self.rows.get_stream(message_id) is not None:
            return False
        await self._learn_stopped(message_id)
        return True

    async def stop(self, message_id: str, text: str | None = None) -> bool:
        """Stop the stream with its final ``text`` (None: what was streamed, this node's
        pending appends included); members get ``message.updated``. False when it was not
        streaming (already stopped, or no such stream). ``text_too_long`` past the limit."""
        check_text(text)
        return await self._stop(message_id, text) is not None

    def on_stop(self, message_id: str, callback: StopCallback) -> None:
        """Have ``callback(message_id)`` (a function or a coroutine function) called once when
        the stream stops — here or on another node (heard by pub/sub; ``is_stopped`` answers
        from MongoDB whatever pub/sub missed). Registered on a stream stopped already, it is
        called at the next ``is_stopped`` that sees it."""
        self._on_stop.setdefault(message_id, []).append(callback)

    # --- the idle sweep ---------------------------------------------------------------------

    async def stop_idle(self) -> int:
        """Stop the streams left unwritten for ``idle_timeout``; how many this node stopped."""
        before = now_ms() - round(self.idle_timeout * 1000)
        stopped = 0
        for row in await self.rows.get_idle(before, SWEEP_BATCH):
            if await self._stop(row["_id"], None, row=row) is not None:
                stopped += 1
        return stopped

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                stopped = await self.stop_idle()
                if stopped:
                    log.info("stopped %d streaming messages left idle", stopped)
            except Exception:
                log.exception("sweeping idle streams failed; trying again later")

    # --- inside -----------------------------------------------------------------------------

    async def _own(self, app_id: str, conversation_id: str, message_id: str) -> _Stream:
        stream = self._local.get(message_id)
        if stream is None:
            row = await self.rows.get_stream(message_id)
            if row is None:
                message = await stream_actions.get_stream_message(
                    self.messaging, conversation_id, message_id
                )
                if message is not None and message.get("app_id") == app_id:
                    raise not_streaming()
                raise not_found()
            if row["app_id"] != app_id or row["conversation_id"] != conversation_id:
                raise not_found()
            stream = await self._load(row)
            if stream is None:
                raise not_streaming()
        if stream.app_id != app_id or stream.conversation_id != conversation_id:
            raise not_found()
        if stream.stopped:
            raise not_streaming()
        return stream

    async def _held(self, message_id: str) -> _Stream:
        stream = self._local.get(message_id)
        if stream is None:
            row = await self.rows.get_stream(message_id)
            if row is None:
                raise not_streaming() if message_id in self._stopped else not_found()
            stream = await self._load(row)
            if stream is None:
                raise not_streaming()
        if stream.stopped:
            raise not_streaming()
        return stream

    async def _load(self, row: dict[str, Any]) -> _Stream | None:
        """This node takes up an open stream (appends reaching it here first): its stored
        text; None when the message no longer streams."""
        message_id = row["_id"]
        message = await stream_actions.get_stream_message(
            self.messaging, row["conversation_id"], message_id
        )
        if message is not None and message["streaming"] and message["recalled"]:
            # Recalled or hidden while it streamed, and nobody wrote since: it stops here.
            await self._finish(message_id, row["conversation_id"], None)
            return None
        if message is None or not message["streaming"]:
            await self.rows.remove_stream(message_id)  # a row its stop left behind (a crash)
            await self._learn_stopped(message_id)
            return None
        stream = self._local.get(message_id)  # taken up meanwhile by a concurrent call
        if stream is None:
            stream = _Stream(
                message_id,
                row["conversation_id"],
                row["app_id"],
                message["text"],
                message.get("stream_seq", 0),
            )
            self._local[message_id] = stream
        return stream

    def _append(self, stream: _Stream, delta: str) -> None:
        if stream.stopped:
            raise not_streaming()
        if stream.length + len(delta) > STREAM_TEXT_MAX:
            raise text_too_long()
        stream.pending += delta
        if stream.flusher is None or stream.flusher.done():
            stream.flusher = asyncio.create_task(self._flush(stream))

    async def _flush(self, stream: _Stream) -> None:
        """Write what is pending, at most once per ``flush_interval``, until nothing is."""
        loop = asyncio.get_running_loop()
        try:
            while stream.pending and not stream.stopped:
                wait = stream.last_write + self.flush_interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                async with stream.lock:
                    if stream.stopped or not stream.pending:
                        return
                    if not await self._write(stream):
                        return
        except asyncio.CancelledError:
            raise
        except Exception:
            # Kept pending: the next append (or the stop) writes it.
            log.exception("writing stream %s failed", stream.message_id)

    async def _write(self, stream: _Stream) -> bool:
        """One write of the whole text so far (under ``stream.lock``); False when the stream
        turned out stopped (or another node kept pre-empting it: the next append retries)."""
        loop = asyncio.get_running_loop()
        for _ in range(WRITE_ATTEMPTS):
            taken = len(stream.pending)
            text = stream.text + stream.pending[:taken]
            outcome = await stream_actions.do_write(
                self.messaging, stream.conversation_id, stream.message_id, stream.seq, text
            )
            if outcome.written:
                assert outcome.message is not None
                stream.text, stream.seq = text, outcome.message["stream_seq"]
                stream.pending = stream.pending[taken:]
                stream.last_write = loop.time()
                if stream.last_write - stream.last_touch >= TOUCH_EVERY:
                    stream.last_touch = stream.last_write
                    await self.rows.touch_stream(stream.message_id, now_ms())
                return True
            if not outcome.still_streaming:
                message = outcome.message
                if message is not None and message.get("streaming"):
                    # Recalled or hidden while it streamed: it stops here, blank.
                    self._local.pop(stream.message_id, None)
                    stream.stopped = True
                    await self._finish(stream.message_id, stream.conversation_id, None)
                else:
                    await self._learn_stopped(stream.message_id)
                return False
            # Another node wrote in between: go on from its text.
            assert outcome.message is not None
            stream.text = outcome.message["text"]
            stream.seq = outcome.message.get("stream_seq", 0)
        return False

    async def _stop(
        self, message_id: str, text: str | None, *, row: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The stop; the message's final view, or None when it was not streaming."""
        stream = self._local.get(message_id)
        if stream is not None:
            async with stream.lock:
                if stream.stopped:
                    return None
                stream.stopped = True
                if stream.flusher is not None and stream.flusher is not asyncio.current_task():
                    stream.flusher.cancel()
                if text is None and stream.pending:
                    text = stream.text + stream.pending
                self._local.pop(message_id, None)
            conversation_id = stream.conversation_id
        else:
            row = row or await self.rows.get_stream(message_id)
            if row is None:
                await self._learn_stopped(message_id)
                return None
            conversation_id = row["conversation_id"]
        return await self._finish(message_id, conversation_id, text)

    async def _finish(
        self, message_id: str, conversation_id: str, text: str | None
    ) -> dict[str, Any] | None:
        view = await stream_actions.do_stop(self.messaging, conversation_id, message_id, text)
        await self.rows.remove_stream(message_id)
        if view is not None:
            await self.messaging.pubsub.publish(STREAMS_CHANNEL, {"stopped": message_id})
        await self._learn_stopped(message_id)
        return view

    async def _on_stopped_elsewhere(self, message: dict[str, Any]) -> None:
        message_id = message.get("stopped")
        if isinstance(message_id, str):
            await self._learn_stopped(message_id)

    async def _learn_stopped(self, message_id: str) -> None:
        """The stream stopped (here or elsewhere): drop what this node holds, call back."""
        self._stopped[message_id] = None
        self._stopped.move_to_end(message_id)
        while len(self._stopped) > STOPPED_REMEMBERED:
            self._stopped.popitem(last=False)
        stream = self._local.pop(message_id, None)
        if stream is not None:
            stream.stopped = True
            if stream.flusher is not None and stream.flusher is not asyncio.current_task():
                stream.flusher.cancel()
        for callback in self._on_stop.pop(message_id, []):
            try:
                result = callback(message_id)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("a stop callback of stream %s failed", message_id)
