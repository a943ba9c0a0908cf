"""The mini-program host: runs apps in their sandboxes, routes commands and button presses to
them, and answers their capability calls — each checked against the manifest and the user's
consent, and recorded in the audit log.

An app never sees a platform user id: every user it hears of is a per-app id (an HMAC of the app
and the user under a platform key kept in MongoDB), stable for that app, different for each.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from messaging.actions import cards
from messaging.actions.accounts import user_view
from messaging.actions.conversations import check_member
from messaging.context import Messaging
from messaging.events import event
from miniapps.host import fetch, payments
from miniapps.host.registry import AppEntry
from miniapps.host.remote import Remote, RemoteApp
from miniapps.host.sandbox import AppProcess, SandboxConfig, SandboxError
from miniapps.host.store.app_storage import AppStorage
from miniapps.host.store.app_users import AppUsers
from miniapps.host.store.audit import Audit
from miniapps.host.store.consents import Consents
from miniapps.host.store.disabled_apps import DisabledApps
from miniapps.host.store.group_state import GroupState
from miniapps.host.store.installs import Installs
from storage.errors import AppError
from storage.mongo import now_ms

log = logging.getLogger(__name__)

CALL_TTL = 30.0  # seconds a call_id stays usable after its invocation started
CONSENT_WAIT = 2.0  # seconds a capability waits for the user's first answer to a scope
STATE_MAX_BYTES = 64 * 1024
MAX_WAITING_CALLS = 200  # invocations queued per app beyond its concurrency cap
# Scopes a user grants an app: data about them (users.profile), or reaching them directly
# (notifications: only users who opted in receive an app's notifications).
SCOPES = {"users.profile", "notifications"}
TEXT_MAX = 4000
# Per-app storage, with the simulator's rules (sdk/simulator.py).
COLLECTION_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
STORAGE_KEY_MAX = 256
STORAGE_VALUE_MAX_BYTES = 64 * 1024
STORAGE_QUOTA_BYTES = 1024 * 1024
FIND_LIMIT_MAX = 100
FIND_SCAN_MAX = 1000  # documents of one collection ``storage.find`` looks at
EVENT_NAME_MAX = 96
EVENT_PAYLOAD_MAX_BYTES = 64 * 1024
MAX_EVENT_DEPTH = 4  # an event handler's events may cascade this far, then they are refused
DISABLED_CHANNEL = "miniapps.disabled"  # "an admin switched an app on or off": reload the set


class CapabilityError(Exception):
    """An error answered to the app: ``.code`` and ``.message`` travel in ``error.data``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Call:
    app_id: str
    user_id: str
    app_user_id: str
    conversation_id: str
    expires: float
    depth: int = 0  # 0 for a user's command or action, n for an event n hops away from one


class MiniappHost:
    def __init__(
        self,
        messaging: Messaging,
        apps: dict[str, AppEntry],
        *,
        data_dir: Path,
        sandbox: SandboxConfig,
        id_key: bytes,
    ) -> None:
        db = messaging.db
        self.messaging = messaging
        self.apps = apps
        self.installs = Installs(db)
        self.group_state = GroupState(db)
        self.consents = Consents(db)
        self.audit = Audit(db)
        self.app_users = AppUsers(db)
        self.storage = AppStorage(db)
        self.disabled_apps = DisabledApps(db)
        # Apps an admin switched off (loaded by ``load_disabled``, kept fresh across nodes).
        self.disabled: set[str] = set()
        self._data_dir = data_dir
        self._sandbox = sandbox
        self._id_key = id_key
        self._processes: dict[str, AppProcess] = {}
        self._calls: dict[str, Call] = {}
        self._consent_waiters: dict[tuple[str, str, str], asyncio.Event] = {}
        self._tasks: set[asyncio.Task] = set()
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._waiting: dict[str, int] = {}
        # Registered remote apps join the catalogue when the owner calls ``remote.load()``.
        self.remote = Remote(self, id_key)
        # The wallet, when money is on this server: ``payments.*`` capabilities need it.
        self.wallet: Any = None

    # --- processes ------------------------------------------------------------------------

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(p.stop() for p in self._processes.values()), return_exceptions=True)
        await self.remote.close()

    async def _process(self, app_id: str) -> AppProcess | RemoteApp:
        if self.apps[app_id].kind == "remote":
            return self.remote.client(app_id)
        process = self._processes.get(app_id)
        if process is None:
            entry = self.apps[app_id]
            assert entry.folder is not None
            data = self._data_dir / app_id
            data.mkdir(parents=True, exist_ok=True)

            async def on_request(method: str, params: dict) -> Any:
                return await self.handle_capability(app_id, method, params)

            process = AppProcess(
                app_id,
                entry.folder,
                data,
                config=self._sandbox,
                on_request=on_request,
                manifest=entry.manifest,
                secret=self.remote.hosted_secret(app_id),
            )
            self._processes[app_id] = process
            await process.start()
        return process

    def status(self) -> dict[str, dict]:
        return {app_id: p.status.as_dict() for app_id, p in self._processes.items()}

    @property
    def degraded(self) -> bool:
        return self._sandbox.bwrap_path is None

    def catalogue(self) -> list[dict]:
        sandbox = "degraded" if self.degraded else "isolated"
        return [
            {**entry.view(), "sandbox": sandbox, "enabled": app_id not in self.disabled}
            for app_id, entry in self.apps.items()
        ]

    # --- switched off by an admin ---------------------------------------------------------

    async def load_disabled(self) -> None:
        self.disabled = await self.disabled_apps.get_app_ids()
        await self.messaging.pubsub.subscribe(DISABLED_CHANNEL, self._on_disabled_message)

    async def set_enabled(self, app_id: str, enabled: bool, by: str, reason: str) -> bool:
        """Switch an app on or off on every node; True when that changed something."""
        self._check_app(app_id)
        if enabled:
            changed = await self.disabled_apps.enable(app_id)
        else:
            changed = await self.disabled_apps.disable(app_id, by, reason, now_ms())
        await self._on_disabled_message({})
        await self.messaging.pubsub.publish(DISABLED_CHANNEL, {"app_id": app_id})
        return changed

    async def _on_disabled_message(self, message: dict) -> None:
        self.disabled = await self.disabled_apps.get_app_ids()

    def _check_enabled(self, entry: AppEntry) -> None:
        if entry.app_id in self.disabled:
            raise AppError(
                "app_disabled",
                f"{entry.manifest['name']} is disabled by the administrator",
                status=403,
            )

    # --- identity -------------------------------------------------------------------------

    def app_user_id(self, app_id: str, user_id: str) -> str:
        digest = hmac.new(self._id_key, f"{app_id}\0{user_id}".encode(), hashlib.sha256)
        return "u-" + digest.hexdigest()[:24]

    async def _context(
        self, app_id: str, user_id: str, conversation_id: str, depth: int = 0
    ) -> dict:
        app_user_id = self.app_user_id(app_id, user_id)
        await self.app_users.remember(app_user_id, app_id, user_id)
        call_id = "c-" + secrets.token_urlsafe(16)
        loop = asyncio.get_running_loop()
        self._calls[call_id] = Call(
            app_id, user_id, app_user_id, conversation_id, loop.time() + CALL_TTL, depth
        )
        for stale in [k for k, c in self._calls.items() if c.expires < loop.time()]:
            self._calls.pop(stale, None)
        return {
            "call_id": call_id,
            "conversation_id": conversation_id,
            "user": {"id": app_user_id},
            "locale": "en",
        }

    # --- conversations --------------------------------------------------------------------

    def _check_app(self, app_id: object) -> AppEntry:
        entry = self.apps.get(app_id) if isinstance(app_id, str) else None
        if entry is None:
            raise AppError("app_not_found", "no such mini-program", status=404)
        return entry

    async def _check_chooser(self, user_id: str, conversation_id: str, app_id: str):
        """Group owners and admins choose a group's apps; either member of a direct chat may."""
        membership = await check_member(self.messaging, conversation_id, user_id)
        entry = self._check_app(app_id)
        if membership.type == "group" and not membership.is_admin(user_id):
            raise AppError(
                "not_allowed", "only the owner and admins choose a group's apps", status=403
            )
        return membership, entry

    async def _announce_apps(self, membership, conversation_id: str) -> None:
        app_ids = await self.installs.get_app_ids(conversation_id)
        await self.messaging.events.emit(
            event(
                "conversation.apps",
                {"users": membership.member_ids},
                {"conversation_id": conversation_id, "app_ids": app_ids},
            )
        )

    async def do_install(self, user_id: str, conversation_id: str, app_id: str) -> dict:
        membership, entry = await self._check_chooser(user_id, conversation_id, app_id)
        self._check_enabled(entry)
        await self.installs.add_install(conversation_id, app_id, user_id, now_ms())
        await self._announce_apps(membership, conversation_id)
        return entry.view()

    async def do_uninstall(self, user_id: str, conversation_id: str, app_id: str) -> None:
        membership, _ = await self._check_chooser(user_id, conversation_id, app_id)
        if not await self.installs.remove_install(conversation_id, app_id):
            raise AppError(
                "app_not_installed", "this conversation does not have that app", status=404
            )
        await self._announce_apps(membership, conversation_id)

    async def get_installed(self, user_id: str, conversation_id: str) -> list[dict]:
        await check_member(self.messaging, conversation_id, user_id)
        ids = await self.installs.get_app_ids(conversation_id)
        return [self.apps[a].view() for a in ids if a in self.apps]

    async def route_command(self, user_id: str, conversation_id: str, text: str) -> str | None:
        """If ``text`` is a command of an app this conversation has, hand it to the app (in the
        background) and return the app id; else None (the text is an ordinary message)."""
        if not text.startswith("/"):
            return None
        word, _, rest = text[1:].partition(" ")
        command = word.split("@", 1)[0].lower()
        for app_id in await self.installs.get_app_ids(conversation_id):
            entry = self.apps.get(app_id)
            if entry and command in entry.commands:
                if app_id in self.disabled:
                    await self._ephemeral(
                        user_id,
                        conversation_id,
                        app_id,
                        {
                            "text": f"{entry.manifest['name']} is disabled by the administrator.",
                            "error": "app_disabled",
                        },
                    )
                    return app_id
                try:
                    args = shlex.split(rest)
                except ValueError:
                    args = rest.split()
                self._spawn(
                    self._invoke(
                        entry,
                        user_id,
                        conversation_id,
                        "command",
                        {"command": command, "args": args, "text": rest},
                    )
                )
                return app_id
        return None

    async def do_action(
        self, user_id: str, conversation_id: str, message_id: str, action_id: str, value: str | None
    ) -> str:
        """A press of a card button: delivered to the app that posted the card."""
        await check_member(self.messaging, conversation_id, user_id)
        card = await cards.get_card(self.messaging, conversation_id, message_id)
        if card is None or card.get("app_id") not in self.apps:
            raise AppError("message_not_found", "no such card in this chat", status=404)
        # The pressed button must be on the card, and the app gets the value *it* put on that
        # button, never one the client made up.
        pressed = [
            b
            for b in (card.get("card") or {}).get("buttons", [])
            if b.get("action_id") == action_id and (value is None or b.get("value") == value)
        ]
        if not pressed:
            raise AppError(
                "invalid_field", "that card has no such button", details={"field": "action_id"}
            )
        entry = self.apps[card["app_id"]]
        self._check_enabled(entry)
        self._spawn(
            self._invoke(
                entry,
                user_id,
                conversation_id,
                "action",
                {
                    "message_id": message_id,
                    "action_id": action_id,
                    "value": pressed[0].get("value"),
                },
            )
        )
        return entry.app_id

    def deliver_event(
        self, entry: AppEntry, user_id: str, conversation_id: str, name: str, payload: dict
    ) -> None:
        """A host event to one app (payment outcomes), in the background like every event."""
        params = {"name": name, "payload": payload}
        self._spawn(self._invoke(entry, user_id, conversation_id, "event", params))

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _invoke(
        self,
        entry: AppEntry,
        user_id: str,
        conversation_id: str,
        method: str,
        params: dict,
        *,
        depth: int = 0,
    ) -> None:
        """Run one command/action/event in the app's process; a failure becomes an ephemeral
        error to the invoker (for an event, whose user did not call this app, only a log line)."""
        context = await self._context(entry.app_id, user_id, conversation_id, depth)
        gate = self._gates.setdefault(
            entry.app_id, asyncio.Semaphore(self._sandbox.max_concurrent_calls)
        )
        try:
            # Above the app's cap on concurrent calls, invocations wait their turn (bounded).
            if self._waiting.get(entry.app_id, 0) >= MAX_WAITING_CALLS:
                raise AppError("overloaded", "this mini-program is busy; try again")
            self._waiting[entry.app_id] = self._waiting.get(entry.app_id, 0) + 1
            try:
                await gate.acquire()
            finally:
                self._waiting[entry.app_id] -= 1
            try:
                process = await self._process(entry.app_id)
                reply = await process.call(method, {**params, "context": context})
            finally:
                gate.release()
            if reply:
                await self._apply_reply(entry.app_id, context["call_id"], reply)
        except (SandboxError, CapabilityError, AppError) as exc:
            code = getattr(exc, "app_code", None) or getattr(exc, "code", "app_error")
            message = f"{entry.manifest['name']} could not answer ({code})."
            log.warning("mini-program %s %s failed: %s", entry.app_id, method, exc)
            if method == "event":
                return
            await self._ephemeral(
                user_id, conversation_id, entry.app_id, {"text": message, "error": code}
            )
        except Exception:
            log.exception("mini-program %s %s failed", entry.app_id, method)
            if method == "event":
                return
            await self._ephemeral(
                user_id,
                conversation_id,
                entry.app_id,
                {"text": f"{entry.manifest['name']} failed.", "error": "internal_error"},
            )
        finally:
            self._calls.pop(context["call_id"], None)

    async def _apply_reply(self, app_id: str, call_id: str, reply: dict) -> None:
        """A Reply is shorthand for the capabilities it names."""
        if not isinstance(reply, dict):
            raise CapabilityError("invalid_params", "a reply must be an object")
        for key, method in (
            ("text", "messages.send_text"),
            ("card", "messages.send_card"),
            ("ephemeral", "messages.reply_ephemeral"),
            ("update_card", "messages.update_card"),
        ):
            if key in reply and reply[key] is not None:
                value = reply[key]
                if key == "ephemeral":  # text, or a card
                    params = {"card": value} if isinstance(value, dict) else {"text": value}
                elif key == "update_card":
                    params = value
                else:
                    params = {key: value}
                await self.handle_capability(app_id, method, {**params, "call_id": call_id})

    async def _ephemeral(
        self, user_id: str, conversation_id: str, app_id: str, content: dict
    ) -> None:
        await self.messaging.events.emit(
            event(
                "miniapp.ephemeral",
                {"user": user_id},
                {"conversation_id": conversation_id, "app_id": app_id, **content},
            )
        )

    # --- consent --------------------------------------------------------------------------

    async def do_consent(self, user_id: str, app_id: str, scope: str, granted: bool) -> None:
        self._check_app(app_id)
        if scope not in SCOPES:
            raise AppError("invalid_field", "unknown scope", details={"field": "scope"})
        await self.consents.set_answer(user_id, app_id, scope, granted, now_ms())
        waiter = self._consent_waiters.get((user_id, app_id, scope))
        if waiter is not None:
            waiter.set()

    async def _check_scope(self, call: Call, scope: str) -> None:
        answer = await self.consents.get_answer(call.user_id, call.app_id, scope)
        if answer is None:
            key = (call.user_id, call.app_id, scope)
            waiter = self._consent_waiters.setdefault(key, asyncio.Event())
            await self.messaging.events.emit(
                event(
                    "miniapp.consent_required",
                    {"user": call.user_id},
                    {
                        "app_id": call.app_id,
                        "app_name": self.apps[call.app_id].manifest["name"],
                        "scope": scope,
                    },
                )
            )
            try:
                await asyncio.wait_for(waiter.wait(), CONSENT_WAIT)
            except TimeoutError:
                pass
            finally:
                self._consent_waiters.pop(key, None)
            answer = await self.consents.get_answer(call.user_id, call.app_id, scope)
        if not answer:
            raise CapabilityError("scope_denied", f"the user has not granted {scope}")

    # --- capabilities ---------------------------------------------------------------------

    async def handle_capability(self, app_id: str, method: str, params: dict) -> Any:
        call = self._calls.get(params.get("call_id")) if isinstance(params, dict) else None
        entry = {
            "app_id": app_id,
            "method": method,
            "at": now_ms(),
            "ok": False,
            "user_id": call.user_id if call else None,
            "conversation_id": call.conversation_id if call else None,
        }
        try:
            if call is None or call.app_id != app_id:
                raise CapabilityError("invalid_params", "missing or expired call_id")
            handler = _CAPABILITIES.get(method)
            if handler is None:
                raise CapabilityError("unknown_method", f"no capability {method!r}")
            if method not in self.apps[app_id].permissions:
                raise CapabilityError(
                    "permission_denied", f"{method} is not in this app's manifest permissions"
                )
            result = await handler(self, call, params)
            entry["ok"] = True
            return result
        except CapabilityError as exc:
            entry["error"] = exc.code
            raise
        except AppError as exc:
            entry["error"] = exc.code
            raise CapabilityError(exc.code, exc.message) from None
        finally:
            await self.audit.record(entry)

    async def _send_text(self, call: Call, params: dict) -> dict:
        text = _string(params, "text", 4000)
        view = await cards.do_post_app_text(self.messaging, call.conversation_id, call.app_id, text)
        return {"message_id": view["id"]}

    async def _send_card(self, call: Call, params: dict) -> dict:
        card = _card(params.get("card"))
        view = await cards.do_post_card(self.messaging, call.conversation_id, call.app_id, card)
        return {"message_id": view["id"]}

    async def _reply_ephemeral(self, call: Call, params: dict) -> dict:
        content: dict[str, Any] = {}
        if "card" in params:
            content["card"] = _card(params["card"])
        else:
            content["text"] = _string(params, "text", 4000)
        await self._ephemeral(call.user_id, call.conversation_id, call.app_id, content)
        return {}

    async def _update_card(self, call: Call, params: dict) -> dict:
        message_id = _string(params, "message_id", 64)
        await cards.do_update_card(
            self.messaging, call.conversation_id, call.app_id, message_id, _card(params.get("card"))
        )
        return {}

    async def _get_group_state(self, call: Call, params: dict) -> dict:
        version, state = await self.group_state.get_state(call.app_id, call.conversation_id)
        return {"version": version, "state": state}

    async def _set_group_state(self, call: Call, params: dict) -> dict:
        state, expected = params.get("state"), params.get("expected_version")
        if not isinstance(state, dict):
            raise CapabilityError("invalid_params", "state must be an object")
        if not isinstance(expected, int) or isinstance(expected, bool) or expected < 0:
            raise CapabilityError("invalid_params", "expected_version must be an integer >= 0")
        text = json.dumps(state, separators=(",", ":"))
        if len(text.encode()) > STATE_MAX_BYTES:
            raise CapabilityError(
                "quota_exceeded", f"group state is limited to {STATE_MAX_BYTES} bytes"
            )
        version = await self.group_state.set_state(
            call.app_id, call.conversation_id, text, expected, now_ms()
        )
        if version is None:
            raise CapabilityError("conflict", "the group state changed; read it and try again")
        membership = await self.messaging.membership.get(call.conversation_id)
        if membership is not None:
            await self.messaging.events.emit(
                event(
                    "miniapp.state",
                    {"users": membership.member_ids},
                    {
                        "conversation_id": call.conversation_id,
                        "app_id": call.app_id,
                        "version": version,
                        "state": state,
                    },
                )
            )
        return {"version": version}

    async def _profile(self, call: Call, params: dict) -> dict:
        await self._check_scope(call, "users.profile")
        user = await self.messaging.users.get_user(call.user_id)
        if user is None:
            raise CapabilityError("not_found", "the user no longer exists")
        view = user_view(user)
        return {
            "id": call.app_user_id,
            "display_name": view["display_name"],
            "avatar_url": view["avatar_url"],
        }

    # --- storage: the app's own documents, namespaced by app ------------------------------

    async def _storage_get(self, call: Call, params: dict) -> dict:
        collection, key = _collection(params), _string(params, "key", STORAGE_KEY_MAX)
        _, value = await self.storage.get_value(call.app_id, collection, key)
        return {"value": value}

    async def _storage_put(self, call: Call, params: dict) -> dict:
        collection, key = _collection(params), _string(params, "key", STORAGE_KEY_MAX)
        if "value" not in params:
            raise CapabilityError("invalid_params", "value is required")
        try:
            text = json.dumps(params["value"], separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            raise CapabilityError("invalid_params", "value must be JSON") from None
        size = len(text.encode())
        if size > STORAGE_VALUE_MAX_BYTES:
            raise CapabilityError(
                "quota_exceeded", f"a stored value is limited to {STORAGE_VALUE_MAX_BYTES} bytes"
            )
        size += len(key.encode())
        previous = await self.storage.get_size(call.app_id, collection, key)
        if await self.storage.get_used(call.app_id) - previous + size > STORAGE_QUOTA_BYTES:
            raise CapabilityError(
                "quota_exceeded", f"this app's storage is limited to {STORAGE_QUOTA_BYTES} bytes"
            )
        await self.storage.put_value(call.app_id, collection, key, text, size, now_ms())
        return {}

    async def _storage_delete(self, call: Call, params: dict) -> dict:
        collection, key = _collection(params), _string(params, "key", STORAGE_KEY_MAX)
        await self.storage.delete_value(call.app_id, collection, key)
        return {}

    async def _storage_find(self, call: Call, params: dict) -> dict:
        from sdk.filters import FilterError, matches, validate_filter

        collection = _collection(params)
        query = params.get("filter")
        query = {} if query is None else query
        try:
            validate_filter(query)
        except FilterError as exc:
            raise CapabilityError("invalid_params", str(exc)) from None
        limit = params.get("limit", FIND_LIMIT_MAX)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
            raise CapabilityError(
                "invalid_params", f"limit must be an integer from 1 to {FIND_LIMIT_MAX}"
            )
        items = await self.storage.get_items(call.app_id, collection, limit=FIND_SCAN_MAX)
        return {"items": [item for item in items if matches(query, item["value"])][:limit]}

    # --- notifications and events ---------------------------------------------------------

    async def _notify(self, call: Call, params: dict) -> dict:
        app_user_id = _string(params, "user_id", 64)
        text = _string(params, "text", TEXT_MAX)
        user_id = await self.app_users.get_user_id(call.app_id, app_user_id)
        if user_id is None:
            raise CapabilityError("not_found", "no such user")
        if not await self.consents.get_answer(user_id, call.app_id, "notifications"):
            raise CapabilityError(
                "scope_denied", "the user has not opted in to this app's notifications"
            )
        await self.messaging.events.emit(
            event("miniapp.notification", {"user": user_id}, {"app_id": call.app_id, "text": text})
        )
        return {}

    async def _emit(self, call: Call, params: dict) -> dict:
        name = _string(params, "name", EVENT_NAME_MAX)
        if name not in self.apps[call.app_id].manifest.get("events", {}).get("emits", []):
            raise CapabilityError("permission_denied", f"{name!r} is not declared in events.emits")
        payload = params.get("payload")
        if not isinstance(payload, dict):
            raise CapabilityError("invalid_params", "payload must be an object")
        if len(json.dumps(payload, separators=(",", ":")).encode()) > EVENT_PAYLOAD_MAX_BYTES:
            raise CapabilityError(
                "invalid_params", f"payload is limited to {EVENT_PAYLOAD_MAX_BYTES} bytes"
            )
        if call.depth >= MAX_EVENT_DEPTH:
            raise CapabilityError("rate_limited", "events may not cascade this deep")
        if name.startswith("payment."):
            raise CapabilityError("permission_denied", "payment.* events come only from the host")
        # The host delivers: apps never call each other, and each recipient sees only its own
        # per-app id for the user.
        for entry in list(self.apps.values()):
            accepts = entry.manifest.get("events", {}).get("accepts", [])
            if entry.app_id != call.app_id and name in accepts:
                self._spawn(
                    self._invoke(
                        entry,
                        call.user_id,
                        call.conversation_id,
                        "event",
                        {"name": name, "payload": payload},
                        depth=call.depth + 1,
                    )
                )
        return {}

    async def _fetch(self, call: Call, params: dict) -> dict:
        try:
            return await fetch.fetch(
                self.apps[call.app_id].manifest,
                params,
                allow_internal=self.messaging.config.environment != "production",
            )
        except fetch.FetchError as exc:
            raise CapabilityError(exc.code, exc.message) from None


def _collection(params: dict) -> str:
    collection = params.get("collection")
    if not isinstance(collection, str) or not COLLECTION_PATTERN.match(collection):
        raise CapabilityError(
            "invalid_params", "collection must be 1-64 characters of [A-Za-z0-9_.-]"
        )
    return collection


def _string(params: dict, name: str, max_length: int) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise CapabilityError("invalid_params", f"{name} must be a string of 1-{max_length}")
    return value


def _card(card: object) -> dict:
    from sdk.errors import CardError
    from sdk.manifest import validate_card

    try:
        validate_card(card)
    except CardError as exc:
        raise CapabilityError("invalid_params", f"bad card: {exc}") from None
    return card  # type: ignore[return-value]


_CAPABILITIES = {
    "messages.send_text": MiniappHost._send_text,
    "messages.send_card": MiniappHost._send_card,
    "messages.reply_ephemeral": MiniappHost._reply_ephemeral,
    "messages.update_card": MiniappHost._update_card,
    "group_state.get": MiniappHost._get_group_state,
    "group_state.set": MiniappHost._set_group_state,
    "users.profile": MiniappHost._profile,
    "storage.get": MiniappHost._storage_get,
    "storage.put": MiniappHost._storage_put,
    "storage.delete": MiniappHost._storage_delete,
    "storage.find": MiniappHost._storage_find,
    "notifications.send": MiniappHost._notify,
    "events.emit": MiniappHost._emit,
    "http.fetch": MiniappHost._fetch,
    "payments.request": payments.request_payment,
    "payments.refund": payments.refund_payment,
}
