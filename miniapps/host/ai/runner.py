"""The runner: one background task per ``ai.chat`` request, on the node that accepted it.

The task streams the completion (``client.ModelClient.stream``); each piece of content goes to
the request's ``stream_to`` message through ``host.streams.append`` (buffered and throttled
there), and tool calls are assembled as their fragments arrive. Beside it a watcher ends the
request when it is cancelled, wherever that was decided:

- ``ai.cancel`` on this node sets the job's event (at once); on another node it sets ``cancel:
  true`` on the request's document, which the watcher reads every ``POLL_INTERVAL`` (300 ms);
- a stop of the ``stream_to`` message (``messages.stream_stop``, a member's recall, the idle
  sweep) calls back ``Streams.on_stop`` on this node, is seen by ``Streams.is_stopped`` at the
  next poll, or makes the next append fail (``not_streaming``);
- the node shutting down (``close``): the request fails with ``host_stopped``.

Cancelling the streaming task closes the connection to the model server (the server sees its
client go and stops generating). No request runs longer than ``REQUEST_MAX_SECONDS``. The end —
completed, cancelled or failed — is handed to ``Ai.finish``: usage recorded, the request's
document closed, ``ai.completed`` delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from miniapps.host.ai import prompt
from miniapps.host.ai.client import Answer, ModelFailure, Stopped
from storage.errors import AppError

if TYPE_CHECKING:
    from miniapps.host.ai.service import Ai

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.3  # seconds between looks at the request's document and its stream
REQUEST_MAX_SECONDS = 600.0  # the longest one request may run, retries included
SHUTDOWN_GRACE = 5.0  # seconds ``close`` waits for the requests to end and be delivered


@dataclass(eq=False)
class Job:
    """One running request: who asked, where, what (``request``: ``check_ai_chat``'s),
    the images it sends (media documents, by id), its estimate, and how it ends."""

    request_id: str
    app_id: str
    user_id: str  # the platform's id of the person it runs for
    conversation_id: str
    stream_to: str | None
    request: dict[str, Any]
    images: dict[str, dict[str, Any]]
    estimate: int
    started: float = field(default_factory=time.monotonic)
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str | None = None  # why it was cancelled: cancelled, stream_stopped, host_stopped
    stream_broken: bool = False  # an append failed for another reason: the rest is not appended
    stopping: bool = False  # the node is shutting down: deliver before it goes


class Runner:
    def __init__(self, ai: Ai) -> None:
        self.ai = ai
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task] = set()

    def start(self, job: Job) -> None:
        self._jobs[job.request_id] = job
        task = asyncio.create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_local(self, request_id: str, reason: str = "cancelled") -> bool:
        """End a request running on this node now (False: it runs elsewhere, or not)."""
        job = self._jobs.get(request_id)
        if job is None:
            return False
        job.reason = job.reason or reason
        job.cancel.set()
        return True

    @property
    def running(self) -> int:
        return len(self._jobs)

    async def close(self) -> None:
        """The node stops: every request ends as failed (``host_stopped``) and its app is
        told, within ``SHUTDOWN_GRACE``; what is left then is cut off."""
        for job in self._jobs.values():
            job.stopping = True
            job.reason = job.reason or "host_stopped"
            job.cancel.set()
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=SHUTDOWN_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _run(self, job: Job) -> None:
        answer = Answer()
        try:
            status, failure = await self._complete(job, answer)
            await self.ai.finish(job, status, answer, failure)
        except Exception:
            log.exception("ai request %s of %s failed in the host", job.request_id, job.app_id)
        finally:
            self._jobs.pop(job.request_id, None)

    async def _complete(self, job: Job, answer: Answer) -> tuple[str, ModelFailure | None]:
        streams = getattr(self.ai.host, "streams", None)
        if job.stream_to and streams is not None and hasattr(streams, "on_stop"):
            streams.on_stop(job.stream_to, lambda _message_id: self._stopped(job))
        work = asyncio.create_task(self._stream(job, answer))
        watch = asyncio.create_task(self._watch(job))
        try:
            done, _ = await asyncio.wait(
                {work, watch}, timeout=REQUEST_MAX_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
        except asyncio.CancelledError:
            work.cancel()
            watch.cancel()
            raise
        if work in done:
            watch.cancel()
            error = work.exception()
            if error is None:
                return "completed", None
            if isinstance(error, Stopped):
                return "cancelled", None
            if isinstance(error, ModelFailure):
                return "failed", error
            log.error("ai request %s failed in the host", job.request_id, exc_info=error)
            return "failed", ModelFailure("internal_error", "the host failed running the answer")
        # Cancelled (or too long): cutting the streaming task closes the model's connection.
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        if watch not in done:
            watch.cancel()
            return "failed", ModelFailure(
                "model_timeout", f"no complete answer within {REQUEST_MAX_SECONDS:.0f} s"
            )
        if job.reason == "host_stopped":
            return "failed", ModelFailure(
                "host_stopped", "the server stopped while the answer was being written"
            )
        return "cancelled", None

    def _stopped(self, job: Job) -> None:
        """The ``stream_to`` message stopped (``Streams.on_stop``)."""
        job.reason = job.reason or "stream_stopped"
        job.cancel.set()

    async def _watch(self, job: Job) -> None:
        """Returns once the request is cancelled (``job.reason`` says how)."""
        streams = getattr(self.ai.host, "streams", None)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.cancel.wait(), POLL_INTERVAL)
                return
            try:
                if await self.ai.requests.is_cancelled(job.request_id):
                    job.reason = job.reason or "cancelled"
                    return
                stream_to = job.stream_to
                if stream_to and streams is not None and await streams.is_stopped(stream_to):
                    job.reason = job.reason or "stream_stopped"
                    return
            except Exception:  # a missed look is made again at the next poll
                log.warning("ai request %s: checking for a cancel failed", job.request_id)

    async def _stream(self, job: Job, answer: Answer) -> None:
        messaging = self.ai.host.messaging
        urls = await prompt.data_urls(messaging, job.images) if job.images else {}
        body = prompt.build_body(self.ai.settings.model or "", job.request, urls)
        streams = getattr(self.ai.host, "streams", None)

        async def on_delta(delta: str) -> None:
            if not job.stream_to or job.stream_broken or streams is None:
                return
            try:
                await streams.append(job.stream_to, delta)
            except AppError as exc:
                if exc.code in ("not_streaming", "not_found"):
                    job.reason = job.reason or "stream_stopped"
                    raise Stopped from None
                # text_too_long …: the message keeps what it has, the app gets the whole answer
                job.stream_broken = True
                log.warning("ai request %s: stream_to refused more (%s)", job.request_id, exc)
            except Exception:
                job.stream_broken = True
                log.exception("ai request %s: appending to its stream failed", job.request_id)

        await self.ai.client.stream(body, answer, on_delta)
