"""The offline host: test a mini-program with pytest, in-process, without a server.

::

    sim = Simulator("miniapps/poll")
    alice, bob = sim.user("alice"), sim.user("bob")
    chat = sim.conversation(members=[alice, bob])
    await sim.command(alice, chat, '/poll "Lunch?" pizza sushi')
    card_id = sim.messages(chat)[-1]["id"]
    await sim.press(bob, card_id, "vote", value=...)

The app's handlers run in this process, but every request and answer goes through JSON as on
the wire, and the simulator applies the host's rules: manifest permissions
(``PermissionDenied``), consent per scope (``ScopeDenied``), membership, group-state versions
(``Conflict``), card validation, the storage filter subset and quota, the 3 s deadline, and
call ids that expire with their invocation, and payments (``payments.request``/``.refund``:
the user confirms with ``sim.confirm_payment``, the app gets a signed ``payment.succeeded``; see
``sdk._sim_payments``). What the app did is recorded for assertions: ``messages``, ``card``,
``ephemeral``, ``group_state``, ``storage``, ``events_emitted``, ``notifications``, ``calls``,
``payments``, ``payment_events``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import re
import secrets
import shlex
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sdk import signing
from sdk._sim_payments import PaymentsMixin
from sdk.app import PAYMENT_EVENTS, App
from sdk.errors import (
    AppCallError,
    CardError,
    Conflict,
    HostError,
    HostRefused,
    InvalidParams,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    ScopeDenied,
    UnknownMethod,
)
from sdk.filters import FilterError, matches, validate_filter
from sdk.loader import load_app
from sdk.manifest import validate_card, validate_manifest
from sdk.protocol import INTERACTIVE_DEADLINE, MAX_LINE_BYTES, answer

TEST_SECRET = "aetherial-simulator-test-secret"
TEXT_MAX = 4000
STATE_MAX_BYTES = 64 * 1024
STORAGE_QUOTA_BYTES = 1024 * 1024
STORAGE_VALUE_MAX_BYTES = 64 * 1024
FIND_LIMIT_MAX = 100
SCOPES = {"users.profile": "users.profile"}  # capability -> the consent scope it needs
COLLECTION_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}

Consent = Mapping[str, bool] | Callable[["SimUser", str], bool]


@dataclass(eq=False)
class SimUser:
    """A simulated person; ``id`` is their per-app id (what the app sees)."""

    name: str
    id: str
    display_name: str
    avatar_url: str | None = None
    notifications: bool = True  # opted in to this app's notifications
    consent: dict[str, bool] = field(default_factory=dict)


@dataclass(eq=False)
class SimConversation:
    """A simulated chat and its members."""

    id: str
    title: str | None
    members: list[SimUser] = field(default_factory=list)


@dataclass
class _Message:
    id: str
    conversation_id: str
    type: str  # "text" or "card"
    text: str | None = None
    versions: list[dict[str, Any]] = field(default_factory=list)  # a card's successive versions

    def view(self) -> dict[str, Any]:
        if self.type == "text":
            return {"id": self.id, "type": "text", "text": self.text}
        return {"id": self.id, "type": "card", "card": copy.deepcopy(self.versions[-1])}


@dataclass
class _Call:
    user: SimUser | None
    conversation: SimConversation | None


def _wire(value: Any) -> Any:
    """``value`` after a trip through JSON, as the other side would receive it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) + 1 > MAX_LINE_BYTES:
        raise ValueError(f"a protocol line may not exceed {MAX_LINE_BYTES} bytes")
    return json.loads(text)


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def _string(params: dict, name: str, max_length: int) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise InvalidParams(f"{name} must be a string of 1-{max_length} characters")
    return value


def _card(card: Any) -> dict[str, Any]:
    try:
        return validate_card(card)
    except CardError as exc:
        raise InvalidParams(f"bad card: {exc}") from None


class _Link:
    """The simulator as the app's ``HostLink``."""

    def __init__(self, simulator: Simulator) -> None:
        self._simulator = simulator

    @property
    def app_secret(self) -> str:
        """The secret ``ctx.verify_payment_event()`` falls back to in the simulator."""
        return self._simulator.app_secret

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            params = _wire(params)
        except ValueError as exc:
            raise InvalidParams(str(exc)) from None
        # Yield like a real round trip, so concurrent handlers interleave as they would.
        await asyncio.sleep(0)
        result = await self._simulator._capability(method, params)
        await asyncio.sleep(0)
        return _wire(result)


class Simulator(PaymentsMixin):
    """Plays the host for one app, in-process. ``app``: an app folder (manifest + entry file)
    or an ``App`` together with ``manifest=``.

    ``consent``: the users' answers per scope — a mapping ``{"users.profile": False}`` or a
    function ``(user, scope) -> bool``; unset scopes are granted. ``secret`` is the app's
    secret (``sim.app_secret``): it signs launch tokens, requests and payment events;
    ``storage_quota_bytes`` bounds the app's storage; ``deadline`` is the seconds a command,
    action or event may take.
    """

    def __init__(
        self,
        app: App | str | Path,
        *,
        manifest: dict[str, Any] | None = None,
        consent: Consent | None = None,
        secret: str = TEST_SECRET,
        storage_quota_bytes: int = STORAGE_QUOTA_BYTES,
        deadline: float = INTERACTIVE_DEADLINE,
        locale: str = "en",
    ) -> None:
        if isinstance(app, App):
            if manifest is None:
                raise TypeError("Simulator(App) needs manifest=: the manifest dict of the app")
            self.manifest = validate_manifest(manifest)
            self.app = app
        else:
            self.app, self.manifest = load_app(app)
        for problem in self.app.check_against_manifest(self.manifest):
            warnings.warn(problem, stacklevel=2)
        self.app_id: str = self.manifest["id"]
        self.secret = secret
        self.consent = consent
        self.storage_quota_bytes = storage_quota_bytes
        self.deadline = deadline
        self.locale = locale
        self.events_emitted: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []  # every capability call: method, ok, error code
        self.conflicts = 0
        self._ids = itertools.count(1)
        self._users: dict[str, SimUser] = {}
        self._conversations: dict[str, SimConversation] = {}
        self._messages: dict[str, _Message] = {}
        self._ephemeral: dict[str, list[dict[str, Any]]] = {}
        self._notifications: dict[str, list[str]] = {}
        self._group_state: dict[str, tuple[int, dict[str, Any]]] = {}
        self._storage: dict[str, dict[str, Any]] = {}
        self._calls: dict[str, _Call] = {}
        self._http: dict[str, Any] = {}
        self._nonces = signing.NonceCache()
        self._init_payments()

    # --- the world ------------------------------------------------------------------------

    def user(
        self,
        name: str,
        *,
        display_name: str | None = None,
        avatar_url: str | None = None,
        consent: Mapping[str, bool] | None = None,
        notifications: bool = True,
    ) -> SimUser:
        """The user called ``name`` (created on first use). ``consent`` overrides the
        simulator's answers for this user; ``notifications``: opted in to the app's
        notifications."""
        if name in self._users:
            return self._users[name]
        digest = hmac.new(self.secret.encode(), f"{self.app_id}\0{name}".encode(), hashlib.sha256)
        user = SimUser(
            name=name,
            id="u-" + digest.hexdigest()[:24],
            display_name=display_name or name.capitalize(),
            avatar_url=avatar_url,
            notifications=notifications,
            consent=dict(consent or {}),
        )
        self._users[name] = user
        return user

    def conversation(
        self, members: Iterable[SimUser | str], *, title: str | None = None
    ) -> SimConversation:
        """A new conversation with these members (users or names) that has this app."""
        conversation = SimConversation(id=f"conv-{next(self._ids)}", title=title)
        for member in members:
            self.add_member(conversation, member)
        self._conversations[conversation.id] = conversation
        return conversation

    def add_member(self, conversation: SimConversation, user: SimUser | str) -> None:
        """Add a member to a conversation."""
        user = self.user(user) if isinstance(user, str) else user
        if user not in conversation.members:
            conversation.members.append(user)

    def remove_member(self, conversation: SimConversation, user: SimUser) -> None:
        """Remove a member from a conversation."""
        if user in conversation.members:
            conversation.members.remove(user)

    def set_consent(self, user: SimUser, scope: str, granted: bool | None) -> None:
        """Record ``user``'s answer for ``scope`` (None forgets it: back to the default)."""
        if granted is None:
            user.consent.pop(scope, None)
        else:
            user.consent[scope] = granted

    def fake_http(
        self,
        url: str,
        *,
        status: int = 200,
        body: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        """The answer ``http.fetch`` gives for ``url`` (there is no network here)."""
        self._http[url] = {"status": status, "headers": headers or {}, "body": body}

    # --- what users do --------------------------------------------------------------------

    def _check_member(self, user: SimUser, conversation: SimConversation) -> None:
        if user not in conversation.members:
            raise HostRefused("not_member", f"{user.name} is not a member of {conversation.id}")

    async def command(self, user: SimUser, conversation: SimConversation, text: str) -> dict:
        """``user`` types ``text`` (``/name args…``) in ``conversation``. Parsed like the
        host: the first word (lower-cased, ``@suffix`` dropped) is the command, the rest is
        ``text`` and, split with ``shlex``, ``args``. Returns the app's reply after applying
        it; raises ``HostRefused`` or ``AppCallError``."""
        if not text.startswith("/"):
            raise HostRefused("not_a_command", "a command starts with '/'")
        self._check_member(user, conversation)
        word, _, rest = text[1:].partition(" ")
        command = word.split("@", 1)[0].lower()
        if command not in {c["name"] for c in self.manifest["commands"]}:
            raise HostRefused("unknown_command", f"{self.app_id} declares no command /{command}")
        try:
            args = shlex.split(rest)
        except ValueError:
            args = rest.split()
        params = {"command": command, "args": args, "text": rest}
        return await self._invoke("command", user, conversation, params)

    async def press(
        self, user: SimUser, message_id: str, action_id: str, value: str | None = None
    ) -> dict:
        """``user`` presses the button ``action_id`` of the card ``message_id``. ``value``
        defaults to that button's value (pass one to play a client sending something else).
        Refused (``HostRefused``) for non-members and buttons the current card lacks."""
        message = self._messages.get(message_id)
        if message is None or message.type != "card":
            raise HostRefused("message_not_found", f"no card {message_id}")
        conversation = self._conversations[message.conversation_id]
        self._check_member(user, conversation)
        current = message.versions[-1].get("buttons", [])
        buttons = [button for button in current if button["action_id"] == action_id]
        if not buttons:
            raise HostRefused("no_such_button", f"card {message_id} has no button {action_id!r}")
        if value is None:
            value = buttons[0].get("value")
        params = {"message_id": message_id, "action_id": action_id, "value": value}
        return await self._invoke("action", user, conversation, params)

    async def deliver_event(
        self,
        name: str,
        payload: dict[str, Any],
        *,
        user: SimUser | None = None,
        conversation: SimConversation | None = None,
    ) -> dict:
        """Deliver an event the manifest ``accepts`` (as the host does for another app's
        emitted event), optionally on behalf of ``user`` in ``conversation``.

        With the ``payments.request`` permission it also delivers ``payment.succeeded`` /
        ``payment.failed`` with ``payload`` exactly as given — a forged or altered event, to
        check that the handler's ``ctx.verify_payment_event()`` refuses it (genuine ones come
        from ``confirm_payment``/``cancel_payment``)."""
        payments = name in PAYMENT_EVENTS and "payments.request" in self.manifest["permissions"]
        if name not in self.manifest["events"]["accepts"] and not payments:
            raise HostRefused("event_not_accepted", f"{self.app_id} does not accept {name!r}")
        return await self._invoke("event", user, conversation, {"name": name, "payload": payload})

    async def _invoke(
        self,
        method: str,
        user: SimUser | None,
        conversation: SimConversation | None,
        params: dict[str, Any],
    ) -> dict:
        call_id = "c-" + secrets.token_urlsafe(12)
        self._calls[call_id] = _Call(user, conversation)
        context = {
            "call_id": call_id,
            "conversation_id": conversation.id if conversation else None,
            "user": {"id": user.id} if user else None,
            "locale": self.locale,
        }
        try:
            request = _wire({**params, "context": context})
            try:
                body = await asyncio.wait_for(
                    answer(self.app, method, request, _Link(self)), self.deadline
                )
            except TimeoutError:
                raise AppCallError("timeout", f"no answer within {self.deadline} s") from None
            try:
                body = _wire(body)
            except (TypeError, ValueError) as exc:
                raise AppCallError("internal_error", f"the answer cannot be sent: {exc}") from None
            if "error" in body:
                error = body["error"]
                raise AppCallError(error["data"]["code"], error["message"])
            reply = body["result"]
            if method != "event" and reply:
                await self._apply_reply(call_id, reply)
            return reply
        finally:
            # A call_id expires when the invocation's response has been sent.
            self._calls.pop(call_id, None)

    async def _apply_reply(self, call_id: str, reply: dict[str, Any]) -> None:
        """A Reply is shorthand for the capabilities it names — with their permissions."""
        parts = (
            ("text", "messages.send_text"),
            ("card", "messages.send_card"),
            ("ephemeral", "messages.reply_ephemeral"),
            ("update_card", "messages.update_card"),
        )
        for key, method in parts:
            value = reply.get(key)
            if value is None:
                continue
            if key == "ephemeral":
                params = {"text": value} if isinstance(value, str) else {"card": value}
            elif key == "update_card":
                params = value if isinstance(value, dict) else {}
            else:
                params = {key: value}
            await self._capability(method, {**params, "call_id": call_id})

    # --- capabilities ---------------------------------------------------------------------

    async def _capability(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {"method": method, "ok": False}
        self.calls.append(record)
        try:
            call = self._calls.get(params.get("call_id")) if isinstance(params, dict) else None
            if call is None:
                raise InvalidParams("missing or expired call_id")
            handler = self._CAPABILITIES.get(method)
            if handler is None:
                raise UnknownMethod(f"no capability {method!r}")
            if method not in self.manifest["permissions"]:
                raise PermissionDenied(f"{method} is not in this app's manifest permissions")
            scope = SCOPES.get(method)
            if scope and call.user is not None and not self._granted(call.user, scope):
                raise ScopeDenied(f"the user has not granted {scope}")
            result = handler(self, call, params)
            record["ok"] = True
            return result
        except HostError as exc:
            record["error"] = exc.code
            raise

    def _granted(self, user: SimUser, scope: str) -> bool:
        if scope in user.consent:
            return user.consent[scope]
        if self.consent is None:
            return True
        if callable(self.consent):
            return bool(self.consent(user, scope))
        return bool(self.consent.get(scope, True))

    def _conversation_of(self, call: _Call) -> SimConversation:
        if call.conversation is None:
            raise InvalidParams("this invocation has no conversation")
        return call.conversation

    def _post(self, conversation: SimConversation, kind: str, content: Any) -> str:
        message_id = f"m-{next(self._ids)}"
        if kind == "text":
            message = _Message(message_id, conversation.id, "text", text=content)
        else:
            message = _Message(message_id, conversation.id, "card", versions=[content])
        self._messages[message_id] = message
        return message_id

    def _send_text(self, call: _Call, params: dict) -> dict:
        text = _string(params, "text", TEXT_MAX)
        return {"message_id": self._post(self._conversation_of(call), "text", text)}

    def _send_card(self, call: _Call, params: dict) -> dict:
        card = _card(params.get("card"))
        return {"message_id": self._post(self._conversation_of(call), "card", card)}

    def _reply_ephemeral(self, call: _Call, params: dict) -> dict:
        if call.user is None:
            raise InvalidParams("this invocation has no user to reply to")
        if "card" in params:
            content = {"card": _card(params["card"])}
        else:
            content = {"text": _string(params, "text", TEXT_MAX)}
        conversation = call.conversation.id if call.conversation else None
        self._ephemeral.setdefault(call.user.id, []).append(
            {"conversation_id": conversation, **content}
        )
        return {}

    def _update_card(self, call: _Call, params: dict) -> dict:
        message_id = _string(params, "message_id", 64)
        message = self._messages.get(message_id)
        conversation = self._conversation_of(call)
        if message is None or message.type != "card" or message.conversation_id != conversation.id:
            raise NotFound("no such card in this chat")
        message.versions.append(_card(params.get("card")))
        return {}

    def _get_group_state(self, call: _Call, params: dict) -> dict:
        version, state = self._group_state.get(self._conversation_of(call).id, (0, {}))
        return {"version": version, "state": copy.deepcopy(state)}

    def _set_group_state(self, call: _Call, params: dict) -> dict:
        conversation = self._conversation_of(call)
        if call.user is not None and call.user not in conversation.members:
            raise PermissionDenied("group state is written for members only")
        state, expected = params.get("state"), params.get("expected_version")
        if not isinstance(state, dict):
            raise InvalidParams("state must be an object")
        if not isinstance(expected, int) or isinstance(expected, bool) or expected < 0:
            raise InvalidParams("expected_version must be an integer >= 0")
        if _size(state) > STATE_MAX_BYTES:
            raise QuotaExceeded(f"group state is limited to {STATE_MAX_BYTES} bytes")
        version, _ = self._group_state.get(conversation.id, (0, {}))
        if expected != version:
            self.conflicts += 1
            raise Conflict("the group state changed; read it and try again")
        self._group_state[conversation.id] = (version + 1, copy.deepcopy(state))
        return {"version": version + 1}

    def _collection(self, params: dict) -> str:
        collection = params.get("collection")
        if not isinstance(collection, str) or not COLLECTION_PATTERN.match(collection):
            raise InvalidParams("collection must be 1-64 characters of [A-Za-z0-9_.-]")
        return collection

    def _storage_get(self, call: _Call, params: dict) -> dict:
        collection, key = self._collection(params), _string(params, "key", 256)
        return {"value": copy.deepcopy(self._storage.get(collection, {}).get(key))}

    def _storage_used(self) -> int:
        return sum(
            len(key.encode()) + _size(value)
            for items in self._storage.values()
            for key, value in items.items()
        )

    def _storage_put(self, call: _Call, params: dict) -> dict:
        collection, key = self._collection(params), _string(params, "key", 256)
        if "value" not in params:
            raise InvalidParams("value is required")
        value = params["value"]
        size = _size(value)
        if size > STORAGE_VALUE_MAX_BYTES:
            raise QuotaExceeded(f"a stored value is limited to {STORAGE_VALUE_MAX_BYTES} bytes")
        items = self._storage.setdefault(collection, {})
        previous = len(key.encode()) + _size(items[key]) if key in items else 0
        if self._storage_used() - previous + len(key.encode()) + size > self.storage_quota_bytes:
            limit = self.storage_quota_bytes
            raise QuotaExceeded(f"this app's storage is limited to {limit} bytes")
        items[key] = copy.deepcopy(value)
        return {}

    def _storage_delete(self, call: _Call, params: dict) -> dict:
        collection, key = self._collection(params), _string(params, "key", 256)
        self._storage.get(collection, {}).pop(key, None)
        return {}

    def _storage_find(self, call: _Call, params: dict) -> dict:
        collection = self._collection(params)
        query = params.get("filter") or {}
        try:
            validate_filter(query)
        except FilterError as exc:
            raise InvalidParams(str(exc)) from None
        limit = params.get("limit", FIND_LIMIT_MAX)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
            raise InvalidParams(f"limit must be an integer from 1 to {FIND_LIMIT_MAX}")
        items = [
            {"key": key, "value": copy.deepcopy(value)}
            for key, value in sorted(self._storage.get(collection, {}).items())
            if matches(query, value)
        ]
        return {"items": items[:limit]}

    def _profile(self, call: _Call, params: dict) -> dict:
        if call.user is None:
            raise InvalidParams("this invocation has no user")
        user = call.user
        return {"id": user.id, "display_name": user.display_name, "avatar_url": user.avatar_url}

    def _notify(self, call: _Call, params: dict) -> dict:
        user_id = _string(params, "user_id", 64)
        text = _string(params, "text", TEXT_MAX)
        user = next((u for u in self._users.values() if u.id == user_id), None)
        if user is None:
            raise NotFound("no such user")
        if not user.notifications:
            raise ScopeDenied("the user has not opted in to this app's notifications")
        self._notifications.setdefault(user.id, []).append(text)
        return {}

    def _emit(self, call: _Call, params: dict) -> dict:
        name = _string(params, "name", 96)
        if name not in self.manifest["events"]["emits"]:
            raise PermissionDenied(f"{name!r} is not declared in events.emits")
        payload = params.get("payload")
        if not isinstance(payload, dict):
            raise InvalidParams("payload must be an object")
        self.events_emitted.append(
            {
                "name": name,
                "payload": payload,
                "user_id": call.user.id if call.user else None,
                "conversation_id": call.conversation.id if call.conversation else None,
            }
        )
        return {}

    def _fetch(self, call: _Call, params: dict) -> dict:
        url = _string(params, "url", 2000)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidParams("url must be an http(s) URL")
        if parts.hostname.lower() not in self.manifest["http"]["allowed_domains"]:
            raise PermissionDenied(f"{parts.hostname} is not in http.allowed_domains")
        method = params.get("method") or "GET"
        if method not in HTTP_METHODS:
            raise InvalidParams(f"method must be one of {sorted(HTTP_METHODS)}")
        response = self._http.get(url)
        if response is None:
            raise NotFound(f"no fake response for {url}; register one with sim.fake_http()")
        return copy.deepcopy(response)

    _CAPABILITIES: dict[str, Callable[[Simulator, _Call, dict], dict]] = {
        "messages.send_text": _send_text,
        "messages.send_card": _send_card,
        "messages.reply_ephemeral": _reply_ephemeral,
        "messages.update_card": _update_card,
        "group_state.get": _get_group_state,
        "group_state.set": _set_group_state,
        "storage.get": _storage_get,
        "storage.put": _storage_put,
        "storage.delete": _storage_delete,
        "storage.find": _storage_find,
        "users.profile": _profile,
        "notifications.send": _notify,
        "events.emit": _emit,
        "http.fetch": _fetch,
        "payments.request": PaymentsMixin._payments_request,
        "payments.refund": PaymentsMixin._payments_refund,
    }

    # --- what happened --------------------------------------------------------------------

    def messages(self, conversation: SimConversation) -> list[dict[str, Any]]:
        """The app's messages in ``conversation``, oldest first: ``{"id", "type": "text",
        "text"}`` or ``{"id", "type": "card", "card"}`` (a card's current version)."""
        return [m.view() for m in self._messages.values() if m.conversation_id == conversation.id]

    def card(self, message_id: str) -> dict[str, Any]:
        """The current version of a card (after its updates)."""
        message = self._messages[message_id]
        if message.type != "card":
            raise KeyError(f"{message_id} is a text, not a card")
        return copy.deepcopy(message.versions[-1])

    def card_history(self, message_id: str) -> list[dict[str, Any]]:
        """Every version of a card, first posted first."""
        return copy.deepcopy(self._messages[message_id].versions)

    def ephemeral(self, user: SimUser) -> list[dict[str, Any]]:
        """What was shown to ``user`` only: ``{"conversation_id", "text"}`` or ``{…, "card"}``."""
        return copy.deepcopy(self._ephemeral.get(user.id, []))

    def group_state(self, conversation: SimConversation) -> dict[str, Any]:
        """The conversation's group state for this app (``{}`` when none)."""
        return copy.deepcopy(self._group_state.get(conversation.id, (0, {}))[1])

    def group_state_version(self, conversation: SimConversation) -> int:
        """The group state's version (0 when none was written)."""
        return self._group_state.get(conversation.id, (0, {}))[0]

    def storage(self, collection: str) -> dict[str, Any]:
        """The app's stored items in ``collection``, by key."""
        return copy.deepcopy(self._storage.get(collection, {}))

    def notifications(self, user: SimUser) -> list[str]:
        """Notifications the app sent ``user``."""
        return list(self._notifications.get(user.id, []))

    # --- signatures -----------------------------------------------------------------------

    def launch_token(
        self,
        user: SimUser,
        conversation: SimConversation,
        *,
        ttl: int = 300,
        now: float | None = None,
    ) -> str:
        """A web-view launch token for ``user`` in ``conversation``, signed with the test
        secret (``sim.secret``)."""
        payload = {"app_id": self.app_id, "user_id": user.id, "conversation_id": conversation.id}
        return signing.make_launch_token(self.secret, payload, ttl=ttl, now=now)

    def verify_launch_token(self, token: str, *, now: float | None = None) -> dict[str, Any]:
        """The payload of a launch token signed with the test secret (``SignatureError``
        otherwise)."""
        return signing.verify_launch_token(token, self.secret, now=now)

    def sign_request(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """Headers signing ``body`` as the host signs requests to a remote app."""
        return signing.sign_request(self.secret, body, timestamp=timestamp, app_id=self.app_id)

    def verify_request(
        self, headers: Mapping[str, str], body: bytes, *, now: float | None = None
    ) -> None:
        """Verify a request signed with the test secret, as the host verifies a remote app's
        capability calls (with its own nonce cache)."""
        signing.verify_request(self.secret, headers, body, now=now, nonce_cache=self._nonces)
