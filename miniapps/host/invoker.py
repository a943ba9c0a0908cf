"""Running apps: their processes (or remote transports), the per-app gate on concurrent
invocations, call ids, and what becomes of an app's reply or failure.

Nothing is handed to an app unless it may act in that conversation now: installed there and not
switched off by an admin (checked on every invocation, on the node that makes it). The only
exception is the host's own payment outcomes, owed to the app whatever happened since it asked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from messaging.actions.accounts import DEFAULT_LOCALE, DEFAULT_TIME_ZONE
from messaging.context import Messaging
from messaging.events import event
from miniapps.host import app_config, roles
from miniapps.host.calls import CallRegistry
from miniapps.host.catalogue import Catalogue
from miniapps.host.identity import Identity
from miniapps.host.registry import AppEntry
from miniapps.host.sandbox import AppProcess, SandboxConfig, SandboxError
from sdk.capabilities import expand_reply
from sdk.errors import HostError
from storage.errors import AppError

log = logging.getLogger(__name__)

MAX_WAITING_CALLS = 200  # invocations queued per app beyond its concurrency cap

Serve = Callable[[str, str, dict], Awaitable[Any]]  # (app_id, method, params) -> result


async def conversation_type(messaging, conversation_id: str | None) -> str | None:
    """``direct``, ``group`` or ``service`` (what an app may do depends on it: a group buy
    needs a group), None when there is no conversation."""
    if not conversation_id:
        return None
    membership = await messaging.membership.get(conversation_id)
    return membership.type if membership is not None else None


async def user_preferences(messaging, user_id: str | None) -> dict[str, str]:
    """What an invocation's context tells the app of the person's choices, in one read per
    invocation: ``locale`` (a BCP 47 tag such as ``en-GB``, else ``en``: apps format prices and
    dates with it) and ``time_zone`` (an IANA name such as ``Europe/Berlin``, else ``UTC``:
    apps show times and set deadlines in it)."""
    chosen = await messaging.users.get_preferences(user_id) if user_id else {}
    return {
        "locale": chosen.get("locale") or DEFAULT_LOCALE,
        "time_zone": chosen.get("time_zone") or DEFAULT_TIME_ZONE,
    }


class Transport(Protocol):
    async def call(self, method: str, params: dict[str, Any]) -> Any: ...


class Invoker:
    def __init__(
        self,
        messaging: Messaging,
        catalogue: Catalogue,
        identity: Identity,
        calls: CallRegistry,
        *,
        data_dir: Path,
        sandbox: SandboxConfig,
        serve: Serve,
        remote_transport: Callable[[str], Transport],
    ) -> None:
        self.messaging = messaging
        self.catalogue = catalogue
        self.identity = identity
        self.calls = calls
        self.sandbox = sandbox
        self._data_dir = data_dir
        self._serve = serve
        self._remote_transport = remote_transport
        self._processes: dict[str, AppProcess] = {}
        self._starting: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task] = set()
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._waiting: dict[str, int] = {}
        messaging.metrics.track_app_restarts(self.restarts)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(p.stop() for p in self._processes.values()), return_exceptions=True)

    def status(self) -> dict[str, dict]:
        return {app_id: p.status.as_dict() for app_id, p in self._processes.items()}

    def restarts(self) -> dict[str, int]:
        """How often each hosted app's supervisor restarted it (read by each metrics scrape)."""
        return {app_id: p.status.restarts for app_id, p in self._processes.items()}

    async def _transport(self, entry: AppEntry) -> Transport:
        if entry.kind == "remote":
            return self._remote_transport(entry.app_id)
        # One start per app even when many invocations arrive at once; while it is starting
        # (registered, not yet running) callers wait for it rather than get a stopped process.
        starting = self._starting.setdefault(entry.app_id, asyncio.Lock())
        process = self._processes.get(entry.app_id)
        if process is not None and not starting.locked():
            return process
        async with starting:
            process = self._processes.get(entry.app_id)
            if process is None:
                process = await self._start(entry)
        return process

    async def _start(self, entry: AppEntry) -> AppProcess:
        assert entry.folder is not None
        app_id = entry.app_id
        data = self._data_dir / app_id
        data.mkdir(parents=True, exist_ok=True)

        async def on_request(method: str, params: dict) -> Any:
            return await self._serve(app_id, method, params)

        process = AppProcess(
            app_id,
            entry.folder,
            data,
            config=self.sandbox,
            on_request=on_request,
            manifest=entry.manifest,
            secret=self.identity.hosted_secret(app_id),
            uid=await self.identity.uid(app_id),
        )
        self._processes[app_id] = process
        await process.start()
        return process

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def invoke_later(self, *args: Any, **kwargs: Any) -> None:
        """``invoke`` in the background (commands, presses and events never wait for apps)."""
        self.spawn(self.invoke(*args, **kwargs))

    async def invoke(
        self,
        entry: AppEntry,
        user_id: str,
        conversation_id: str,
        method: str,
        params: dict,
        *,
        depth: int = 0,
        host_event: bool = False,
    ) -> None:
        """Run one command/action/event in the app; a failure becomes an ephemeral error to
        the invoker (for an event, whose user did not call this app, only a log line)."""
        remote = entry.kind == "remote"
        call_id = None
        try:
            if not host_event:
                await self.catalogue.check_active(entry.app_id, conversation_id)
            app_user_id = await self.identity.app_user(entry.app_id, user_id)
            call_id = await self.calls.open(
                entry.app_id, user_id, app_user_id, conversation_id, depth, remote=remote
            )
            context = await self._context(entry, call_id, user_id, app_user_id, conversation_id)
            reply = await self._gated(entry, method, {**params, "context": context})
            if reply:
                for capability, part in expand_reply(reply):
                    await self._serve(entry.app_id, capability, {**part, "call_id": call_id})
        except (SandboxError, HostError, AppError) as exc:
            code = getattr(exc, "app_code", None) or getattr(exc, "code", "app_error")
            log.warning("mini-program %s %s failed: %s", entry.app_id, method, exc)
            if method != "event":
                await self.ephemeral(
                    user_id,
                    conversation_id,
                    entry.app_id,
                    {"text": f"{entry.manifest['name']} could not answer ({code}).", "error": code},
                )
        except Exception:
            log.exception("mini-program %s %s failed", entry.app_id, method)
            if method != "event":
                await self.ephemeral(
                    user_id,
                    conversation_id,
                    entry.app_id,
                    {"text": f"{entry.manifest['name']} failed.", "error": "internal_error"},
                )
        finally:
            if call_id is not None:
                await self.calls.close(call_id, remote=remote)

    async def _context(
        self,
        entry: AppEntry,
        call_id: str,
        user_id: str,
        app_user_id: str,
        conversation_id: str,
    ) -> dict[str, Any]:
        context: dict[str, Any] = {
            "call_id": call_id,
            "conversation_id": conversation_id,
            "conversation_type": await conversation_type(self.messaging, conversation_id),
            "user": {"id": app_user_id},
            **await user_preferences(self.messaging, user_id),  # locale, time_zone
        }
        if entry.manifest.get("config") or entry.manifest.get("roles"):
            # Sent along, so the runtime need not ask for them with ``app.setup``.
            context["config"] = await app_config.get_values(self.catalogue, entry)
            context["roles"] = await roles.roles_of(self.catalogue, entry, user_id)
        return context

    async def call_view(
        self, entry: AppEntry, user_id: str, conversation_id: str, name: str, params: dict
    ) -> Any:
        """A web view's page calls the app (``view``, ``@app.view(name)``) for ``user_id``, who
        opened it from ``conversation_id``: a call id binds the handler's capability calls to
        them as in an action. Unlike ``invoke`` it waits and returns the app's answer — the
        page awaits it — and lets failures through (``SandboxError``, ``AppError``): the
        caller (``miniapps.host.webviews``) says what each means to the page."""
        remote = entry.kind == "remote"
        app_user_id = await self.identity.app_user(entry.app_id, user_id)
        call_id = await self.calls.open(
            entry.app_id, user_id, app_user_id, conversation_id, 0, remote=remote
        )
        try:
            context = await self._context(entry, call_id, user_id, app_user_id, conversation_id)
            return await self._gated(
                entry, "view", {"name": name, "params": params, "context": context}
            )
        finally:
            await self.calls.close(call_id, remote=remote)

    async def call_tool(
        self,
        entry: AppEntry,
        user_id: str,
        conversation_id: str,
        name: str,
        arguments: dict,
        *,
        depth: int,
    ) -> Any:
        """Another app calls ``entry``'s read-only tool ``name`` (``apps.call_tool``) for
        ``user_id`` in ``conversation_id``: a ``tool`` request under a *read-only* call id (its
        capability calls may only read: ``sdk.capabilities.TOOL_CAPABILITIES``), ``depth`` hops
        from the user's action, within the app's own deadline. Waits and returns the app's
        answer (``{result, card?}``, checked by the caller) and lets failures through
        (``SandboxError``, ``AppError``, ``HostError``), like ``call_view``. Nothing of the
        answer is applied here: the tool's card is the caller's to post."""
        remote = entry.kind == "remote"
        app_user_id = await self.identity.app_user(entry.app_id, user_id)
        call_id = await self.calls.open(
            entry.app_id,
            user_id,
            app_user_id,
            conversation_id,
            depth,
            remote=remote,
            read_only=True,
        )
        try:
            context = await self._context(entry, call_id, user_id, app_user_id, conversation_id)
            return await self._gated(
                entry, "tool", {"name": name, "arguments": arguments, "context": context}
            )
        finally:
            await self.calls.close(call_id, remote=remote)

    async def _gated(self, entry: AppEntry, method: str, params: dict) -> Any:
        """Above the app's cap on concurrent calls, invocations wait their turn (bounded)."""
        app_id = entry.app_id
        gate = self._gates.setdefault(app_id, asyncio.Semaphore(self.sandbox.max_concurrent_calls))
        if self._waiting.get(app_id, 0) >= MAX_WAITING_CALLS:
            raise AppError("overloaded", "this mini-program is busy; try again")
        self._waiting[app_id] = self._waiting.get(app_id, 0) + 1
        try:
            await gate.acquire()
        finally:
            self._waiting[app_id] -= 1
        self.messaging.metrics.app_call(app_id)
        try:
            transport = await self._transport(entry)
            return await transport.call(method, params)
        except Exception as exc:
            self.messaging.metrics.app_call_failed(app_id, exc)
            raise
        finally:
            gate.release()

    async def ephemeral(
        self, user_id: str, conversation_id: str, app_id: str, content: dict
    ) -> None:
        """Something shown to one person only (every device of theirs), never a message in the
        chat. (A card with buttons is also kept for its presses, with an ``ephemeral_id`` in
        ``content``: ``capabilities.messages.reply_ephemeral``.)"""
        await self.messaging.events.emit(
            event(
                "miniapp.ephemeral",
                {"user": user_id},
                {"conversation_id": conversation_id, "app_id": app_id, **content},
            )
        )
