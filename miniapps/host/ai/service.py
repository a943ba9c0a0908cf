"""``Ai``: the ``ai`` capability's host side, as the capabilities (``capabilities.ai``) and the
host call it — ``do_chat`` (``ai.chat``), ``do_cancel`` (``ai.cancel``), ``finish`` (the runner's
end of a request: usage, record, ``ai.completed``) and ``close``.

``ai.chat`` is answered in this order, the simulator alike (``sdk._sim_ai``): the params
(``check_params``, then ``check_ai_chat``: ``invalid_params``); ``ai_not_configured``; images:
``vision_unsupported`` when the model takes none, ``not_found`` for a media the app may not send;
``stream_not_found``; the budgets (``ai_quota_exceeded``); ``too_many_requests``. Only then is
the request recorded and started, and its id answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from miniapps.host.ai import prompt
from miniapps.host.ai.budgets import Budgets
from miniapps.host.ai.client import Answer, ModelClient, ModelFailure
from miniapps.host.ai.runner import REQUEST_MAX_SECONDS, Job, Runner
from miniapps.host.ai.settings import AiSettings
from miniapps.host.store.ai_requests import AiRequests
from miniapps.host.store.ai_usage import AiUsage
from sdk._capability_services import (
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
from sdk.errors import host_error
from sdk.signing import sign_event
from storage.config import Config
from storage.mongo import new_id, now_ms

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost

log = logging.getLogger(__name__)

# A request document older than this no longer counts as running (its node died with it).
RUNNING_WINDOW_MS = int((REQUEST_MAX_SECONDS + 60) * 1000)
DELIVER_ON_SHUTDOWN = 3.0  # seconds an ai.completed may take to deliver while the node stops
STREAM_NOT_FOUND = (
    "stream_to must be a message this app started with messages.stream_start in this "
    "conversation, still streaming"
)


class Ai:
    def __init__(self, host: MiniappHost, config: Config) -> None:
        self.host = host
        self.settings = AiSettings.from_config(config)
        db = host.messaging.db
        self.requests = AiRequests(db)
        self.usage = AiUsage(db)
        self.budgets = Budgets(self.usage, self.settings)
        self.runner = Runner(self)
        self._client: ModelClient | None = None

    @property
    def client(self) -> ModelClient:
        """The node's model client, made at the first request that reaches the model."""
        if self._client is None:
            self._client = ModelClient(self.settings)
        return self._client

    async def configure(self, settings: AiSettings) -> None:
        """Use ``settings`` (another model server, model or budgets) from the next request on;
        answers already running finish with the old client."""
        self.settings = settings
        self.budgets.settings = settings
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def close(self) -> None:
        await self.runner.close()
        if self._client is not None:
            await self._client.close()
            self._client = None

    # --- ai.chat --------------------------------------------------------------------------

    async def do_chat(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        """Check ``ai.chat`` (module docstring's order), start it in the background and answer
        ``{request_id}``."""
        request = check_ai_chat(params)
        if not self.settings.configured:
            raise host_error("ai_not_configured", AI_NOT_CONFIGURED)
        images: dict[str, dict[str, Any]] = {}
        if request["image_ids"]:
            if not self.settings.vision:
                raise host_error("vision_unsupported", AI_VISION_UNSUPPORTED)
            images = await prompt.check_images(self.host.messaging, call, request["image_ids"])
        stream_to = request["stream_to"]
        if stream_to is not None:
            await self._check_stream(call, stream_to)
        now = now_ms()
        estimate = ai_estimate(request)
        await self.budgets.check(call.app_id, call.conversation_id, call.user_id, estimate, now)
        request_id = new_id()
        await self.requests.add_request(
            request_id,
            {
                "app_id": call.app_id,
                "user_id": call.user_id,
                "conversation_id": call.conversation_id,
                "stream_to": stream_to,
                "model": self.settings.model,
                "estimate": estimate,
            },
            now,
        )
        # Counted after our own is written: of two racing requests, neither passes unseen.
        running = await self.requests.count_running(
            call.app_id, call.conversation_id, now - RUNNING_WINDOW_MS
        )
        if running > AI_RUNNING_MAX:
            await self.requests.remove_request(request_id)
            raise host_error(
                "too_many_requests",
                f"this app has {AI_RUNNING_MAX} answers running in this conversation already: "
                "wait for one to complete (ai.completed) or cancel one (ai.cancel)",
            )
        self.runner.start(
            Job(
                request_id=request_id,
                app_id=call.app_id,
                user_id=call.user_id,
                conversation_id=call.conversation_id,
                stream_to=stream_to,
                request=request,
                images=images,
                estimate=estimate,
            )
        )
        return {"request_id": request_id}

    async def _check_stream(self, call: Call, message_id: str) -> None:
        streams = getattr(self.host, "streams", None)
        if streams is None or not await streams.is_open(
            call.app_id, call.conversation_id, message_id
        ):
            raise host_error("stream_not_found", STREAM_NOT_FOUND)

    # --- ai.cancel ------------------------------------------------------------------------

    async def do_cancel(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        """Mark the app's running request cancelled (seen by its runner on any node within
        ``POLL_INTERVAL``; at once on this one)."""
        request_id = params["request_id"]
        cancelled = await self.requests.set_cancel(request_id, call.app_id)
        if cancelled:
            self.runner.cancel_local(request_id)
        return {"cancelled": cancelled}

    # --- the end of a request ---------------------------------------------------------------

    def _usage(self, job: Job, answer: Answer) -> dict[str, int]:
        """What the request used: the server's count, else the estimate of what was sent
        (characters / 4, and the images) and of what came back."""
        if answer.usage is not None:
            return dict(answer.usage)
        request = job.request
        written = len(answer.content) + sum(
            len(call["name"]) + len(call["arguments"]) for call in answer.tool_calls()
        )
        return {
            "prompt_tokens": ai_tokens(ai_prompt_chars(request["messages"], request["tools"]))
            + AI_IMAGE_TOKENS * len(request["image_ids"]),
            "completion_tokens": ai_tokens(written),
        }

    async def finish(
        self, job: Job, status: str, answer: Answer, failure: ModelFailure | None
    ) -> None:
        """Record the request's usage and end, stop its stream when it was cancelled by
        ``ai.cancel`` (keeping what was written), and deliver ``ai.completed``."""
        ended, now = time.monotonic(), now_ms()
        usage = self._usage(job, answer)
        try:
            await self.budgets.record(
                job.app_id,
                job.conversation_id,
                job.user_id,
                usage["prompt_tokens"],
                usage["completion_tokens"],
                now,
            )
        except Exception:
            log.exception("recording the usage of ai request %s failed", job.request_id)
        if status == "cancelled" and job.reason == "cancelled" and job.stream_to:
            streams = getattr(self.host, "streams", None)
            if streams is not None:
                try:
                    await streams.stop(job.stream_to)
                except Exception:
                    log.exception("stopping the stream of ai request %s failed", job.request_id)
        first = answer.first_token_at
        payload: dict[str, Any] = {
            "request_id": job.request_id,
            "status": status,
            "message": {
                "role": "assistant",
                "content": answer.content,
                # Only a complete answer's calls: a cut one's may be half written.
                "tool_calls": answer.tool_calls() if status == "completed" else [],
            },
            "finish_reason": answer.finish_reason if status == "completed" else None,
            "usage": usage,
            "stream_to": job.stream_to,
            "timing": {
                "first_token_ms": round((first - job.started) * 1000) if first else None,
                "total_ms": round((ended - job.started) * 1000),
            },
        }
        if failure is not None:
            payload["error"] = {"code": failure.code, "message": failure.message}
        try:
            await self.requests.finish(
                job.request_id,
                {
                    "status": status,
                    "finished_at": now,
                    "prompt_tokens": usage["prompt_tokens"],
                    "completion_tokens": usage["completion_tokens"],
                    "error_code": failure.code if failure else None,
                    "first_token_ms": payload["timing"]["first_token_ms"],
                    "total_ms": payload["timing"]["total_ms"],
                },
            )
        except Exception:
            log.exception("closing the record of ai request %s failed", job.request_id)
        await self.deliver(job, payload)

    async def deliver(self, job: Job, payload: dict[str, Any]) -> None:
        """``ai.completed`` to the app, signed with its secret, in the requesting user's and
        conversation's context — even if it was since removed from the chat (the answer it
        asked for is its business until it is told)."""
        host = self.host
        entry = host.apps_catalogue.apps.get(job.app_id)
        if entry is None or AI_EVENT not in (entry.manifest.get("events") or {}).get("accepts", []):
            log.warning("ai request %s: %s cannot hear %s", job.request_id, job.app_id, AI_EVENT)
            return
        payload["signature"] = sign_event(await host.remote.launch_secret(job.app_id), payload)
        params = {"name": AI_EVENT, "payload": payload}
        if not job.stopping:
            host.invoker.invoke_later(
                entry, job.user_id, job.conversation_id, "event", params, host_event=True
            )
            return
        try:  # the node is going: deliver now, or not at all
            await asyncio.wait_for(
                host.invoker.invoke(
                    entry, job.user_id, job.conversation_id, "event", params, host_event=True
                ),
                DELIVER_ON_SHUTDOWN,
            )
        except Exception:
            log.warning("ai request %s: ai.completed not delivered on shutdown", job.request_id)
