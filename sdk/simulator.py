"""The offline host: test a mini-program with pytest, in-process, without a server.

::

    sim = Simulator("miniapps/poll")
    alice, bob = sim.user("alice"), sim.user("bob")
    chat = sim.conversation(members=[alice, bob])
    await sim.command(alice, chat, '/poll "Lunch?" pizza sushi')
    card_id = sim.messages(chat)[-1]["id"]
    await sim.press(bob, card_id, "vote", value=...)

The app's handlers run in this process, but every request and answer goes through JSON as on
the wire. Capability calls are checked with the host's own contract (``sdk.capabilities``: params,
limits, manifest permissions, consent per scope, reply expansion — the same code and message as
the host, which tests/miniapps/test_capability_contract.py checks), and the simulator adds the
effects in memory (``sdk._sim_effects``): membership, group-state versions (``Conflict``), the
storage quota, the 3 s deadline, call ids that expire with their invocation, and payments
(``payments.request``/``.refund``: the user confirms with ``sim.confirm_payment``, the app gets a
signed ``payment.succeeded``; see ``sdk._sim_payments``). What the app did is recorded for
assertions: ``messages``, ``card``, ``ephemeral``, ``group_state``, ``storage``,
``events_emitted``, ``notifications``, ``calls``, ``payments``, ``payment_events``;
``call_capability`` makes one capability call outside a handler. ``view`` plays a web view's
page calling the app (``Aetherial.call`` → ``@app.view``). Verifiable credentials
(``credentials.issue``/``.revoke``) are signed with a test Ed25519 key: ``credentials`` (by id)
and ``verify_credential(jwt)`` (``sdk._sim_credentials``).
Inbound webhooks: ``webhooks.url`` answers a signed URL like the host's, and
``post_webhook(url, body, headers)`` delivers to it as a provider would (``sdk._sim_webhooks``).
Privacy mode (``sdk._sim_route``): ``say``/``mention``/``direct`` post people's messages, which
reach the app as ``message.received`` only when addressed to it (``received``);
``grant_history``/``mark_read`` for ``messages.history``; ``install_app`` loads a second app
whose tools ``apps.call_tool`` runs read-only; ``invoke_tool`` calls this app's own tool.
Streaming messages (``messages.stream_*``): ``stream(message_id)`` gives a stream's text, state
and every piece appended; one left unwritten for 10 minutes of ``sim.now`` is stopped
(``sdk._sim_streams``).
The platform's model (``ai.chat``): ``ai_script(...)`` scripts its answers, ``ai_complete()``
runs the waiting requests and delivers ``ai.completed``, ``ai_requests`` is what the app sent
(``sdk._sim_ai``); without a script or ``ai_configure`` there is no model, as on a fresh server.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import inspect
import itertools
import secrets
import warnings
import zoneinfo
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sdk import signing
from sdk._sim_ai import AiMixin
from sdk._sim_credentials import CredentialsMixin
from sdk._sim_effects import EFFECTS, EffectsMixin
from sdk._sim_payments import PaymentsMixin
from sdk._sim_route import RouteMixin
from sdk._sim_streams import StreamsMixin
from sdk._sim_webhooks import WebhooksMixin
from sdk._sim_world import Consent, SimCall, SimConversation, SimMessage, SimUser, wire
from sdk.app import PAYMENT_EVENTS, App
from sdk.capabilities import check_call, expand_reply
from sdk.errors import (
    AppCallError,
    HostError,
    HostRefused,
    InvalidParams,
    ScopeDenied,
    ViewError,
    host_error,
)
from sdk.loader import load_app
from sdk.manifest import storage_quota, validate_manifest
from sdk.protocol import (
    INTERACTIVE_DEADLINE,
    VIEW_FAILURES,
    VIEW_NAME_MAX,
    VIEW_PARAMS_MAX_BYTES,
    answer,
    command_params,
    json_size,
)
from sdk.tools import check_read_only

__all__ = ["TEST_SECRET", "AppCallError", "HostRefused", "SimConversation", "SimUser", "Simulator"]

TEST_SECRET = "aetherial-simulator-test-secret"
# Every effect of a capability, by capability: the simulator's side of sdk.capabilities.
_EFFECTS = {
    **EFFECTS,
    **CredentialsMixin.EFFECTS,
    "payments.request": PaymentsMixin._payments_request,
    "payments.refund": PaymentsMixin._payments_refund,
    **WebhooksMixin.EFFECTS,
    **RouteMixin.EFFECTS,
    **StreamsMixin.EFFECTS,
    **AiMixin.EFFECTS,
}


def _check_time_zone(time_zone: str) -> str:
    """An IANA time zone name the platform would accept, else ``ValueError``."""
    if time_zone not in _time_zones():
        raise ValueError(f"{time_zone!r} is not an IANA time zone name such as Europe/Berlin")
    return time_zone


@functools.cache
def _time_zones() -> frozenset[str]:
    # As messaging.actions.accounts.time_zones: the tz database's names, but the server's own.
    return frozenset(zoneinfo.available_timezones() - {"localtime", "posixrules", "Factory"})


class _Link:
    """The simulator as the app's ``HostLink``."""

    def __init__(self, simulator: Simulator) -> None:
        self._simulator = simulator

    @property
    def app_secret(self) -> str:
        """The secret ``ctx.verify_payment_event()`` falls back to in the simulator."""
        return self._simulator.app_secret

    @property
    def manifest(self) -> dict[str, Any]:
        """The app's manifest: ``App.handle`` asks ``app.setup`` when it declares config or
        roles, as under the runtime."""
        return self._simulator.manifest

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            params = wire(params)
        except ValueError as exc:
            raise InvalidParams(str(exc)) from None
        # Yield like a real round trip, so concurrent handlers interleave as they would.
        await asyncio.sleep(0)
        result = await self._simulator._capability(method, params)
        await asyncio.sleep(0)
        return wire(result)


class Simulator(
    EffectsMixin,
    PaymentsMixin,
    CredentialsMixin,
    WebhooksMixin,
    RouteMixin,
    StreamsMixin,
    AiMixin,
):
    """Plays the host for one app, in-process. ``app``: an app folder (manifest + entry file)
    or an ``App`` together with ``manifest=``.

    ``consent``: the users' answers per scope — a mapping ``{"users.profile": False}`` or a
    function ``(user, scope) -> bool``; unset scopes are granted. ``secret`` is the app's
    secret (``sim.app_secret``): it signs launch tokens, requests and payment events;
    ``storage_quota_bytes`` bounds the app's storage (default: the manifest's
    ``storage.quota_bytes``, else 1 MiB, as on the host); ``deadline`` is the seconds a command,
    action or event may take; ``config`` the settings an administrator set (``ctx.config``;
    people's roles: ``sim.grant_role(user, role)``); ``locale`` the ``ctx.locale`` of people
    who chose none (a person's own: ``sim.user(name, locale="de-DE")``); ``time_zone`` the
    ``ctx.time_zone`` of people who chose none (a person's own: ``sim.user(name,
    time_zone="Europe/Berlin")``, changed by ``sim.set_time_zone``).
    """

    def __init__(
        self,
        app: App | str | Path,
        *,
        manifest: dict[str, Any] | None = None,
        consent: Consent | None = None,
        secret: str = TEST_SECRET,
        storage_quota_bytes: int | None = None,
        deadline: float = INTERACTIVE_DEADLINE,
        locale: str = "en",
        config: Mapping[str, str] | None = None,
        time_zone: str = "UTC",
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
        self.storage_quota_bytes = (
            storage_quota(self.manifest) if storage_quota_bytes is None else storage_quota_bytes
        )
        self.deadline = deadline
        self.locale = locale
        self.time_zone = _check_time_zone(time_zone)
        self.events_emitted: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []  # every capability call: method, ok, error code
        self.conflicts = 0
        self._ids = itertools.count(1)
        self._users: dict[str, SimUser] = {}
        self._conversations: dict[str, SimConversation] = {}
        self._messages: dict[str, SimMessage] = {}
        self._ephemeral: dict[str, list[dict[str, Any]]] = {}
        self._ephemeral_cards: dict[str, dict[str, Any]] = {}  # by ephemeral_id: pressable
        self._notifications: dict[str, list[str]] = {}
        self._group_state: dict[str, tuple[int, dict[str, Any]]] = {}
        self._storage: dict[str, dict[str, Any]] = {}
        self._calls: dict[str, SimCall] = {}
        self._http: dict[str, Any] = {}
        self._failures: dict[str, list[tuple[str, str]]] = {}  # method -> [(code, message)]
        self._nonces = signing.NonceCache()
        self._init_payments()
        self._init_timers()
        self._init_app_setup(config)
        self._init_webhooks()
        self._init_route()
        self._init_streams()
        self._init_ai()

    # --- the world ------------------------------------------------------------------------

    def user(
        self,
        name: str,
        *,
        display_name: str | None = None,
        avatar_url: str | None = None,
        consent: Mapping[str, bool] | None = None,
        notifications: bool = True,
        locale: str | None = None,
        time_zone: str | None = None,
    ) -> SimUser:
        """The user called ``name`` (created on first use). ``consent`` overrides the
        simulator's answers for this user; ``notifications``: opted in to the app's
        notifications; ``locale``: the locale they chose in their profile (a BCP 47 tag such
        as ``"de-DE"``), what their invocations see as ``ctx.locale`` — unset, the
        simulator's ``locale`` (on the platform: ``"en"``); ``time_zone``: the IANA time zone
        they chose (``"Europe/Berlin"``; ``ValueError`` for an unknown name), what their
        invocations and the timers they scheduled see as ``ctx.time_zone`` — unset, the
        simulator's ``time_zone`` (on the platform: ``"UTC"``)."""
        if name in self._users:
            return self._users[name]
        if time_zone is not None:
            _check_time_zone(time_zone)
        digest = hmac.new(self.secret.encode(), f"{self.app_id}\0{name}".encode(), hashlib.sha256)
        user = SimUser(
            name=name,
            id="u-" + digest.hexdigest()[:24],
            display_name=display_name or name.capitalize(),
            avatar_url=avatar_url,
            notifications=notifications,
            consent=dict(consent or {}),
            locale=locale,
            time_zone=time_zone,
        )
        self._users[name] = user
        return user

    def set_time_zone(self, user: SimUser, time_zone: str | None) -> None:
        """``user`` changes their time zone in their profile (they travel): their next
        invocations, and their timers' next firings, see it as ``ctx.time_zone``; None clears
        it (back to the simulator's ``time_zone``). ``ValueError`` for an unknown name (the
        platform answers ``invalid_field``)."""
        user.time_zone = None if time_zone is None else _check_time_zone(time_zone)

    def conversation(
        self,
        members: Iterable[SimUser | str],
        *,
        title: str | None = None,
        type: str = "group",
    ) -> SimConversation:
        """A new conversation with these members (users or names) that has this app; ``type``
        is what handlers see as ``ctx.conversation_type`` (``group``, ``direct``, ``service``)."""
        if type not in ("group", "direct", "service"):
            raise ValueError("type is group, direct or service")
        conversation = SimConversation(id=f"conv-{next(self._ids)}", title=title, type=type)
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

    async def command(
        self,
        user: SimUser,
        conversation: SimConversation,
        text: str,
        *,
        reply_to: str | None = None,
        catch_up_from: int | None = None,
    ) -> dict:
        """``user`` types ``text`` (``/name args…``) in ``conversation`` — as a reply to the
        message ``reply_to`` when given (``ctx.reply_to``: ``{id, text, sender, media?}``, as
        ``message.received`` shows it), from a client that says it had read up to the seq
        ``catch_up_from`` when it opened the chat (``ctx.catch_up_from``). Parsed like the
        host: the first word (lower-cased, ``@suffix`` dropped) is the command, the rest is
        ``text`` and, split with ``shlex``, ``args``. Returns the app's reply after applying
        it; raises ``HostRefused`` or ``AppCallError``."""
        params = command_params(text)
        if params is None:
            raise HostRefused("not_a_command", "a command starts with '/'")
        if reply_to is not None:
            target = self._chat_message(conversation, reply_to)
            if target is None:
                raise HostRefused("message_not_found", "the message replied to is not there")
            params["reply_to"] = {
                "id": target["id"],
                "text": target["text"],
                "sender": target["sender_id"],
            }
            if target["media"]:
                params["reply_to"]["media"] = target["media"]
        if catch_up_from is not None:
            params["catch_up_from"] = catch_up_from
        self._check_member(user, conversation)
        command = params["command"]
        if command not in {c["name"] for c in self.manifest["commands"]}:
            raise HostRefused("unknown_command", f"{self.app_id} declares no command /{command}")
        return await self._invoke("command", user, conversation, params)

    async def press(
        self, user: SimUser, message_id: str, action_id: str, value: str | None = None
    ) -> dict:
        """``user`` presses the button ``action_id`` of the card ``message_id`` — or of an
        ephemeral card, ``message_id`` being the ``ephemeral_id`` in ``sim.ephemeral(user)``
        (only its one reader may press it, for an hour of ``sim.now``). ``value`` defaults to
        that button's value (pass one to play a client sending something else).
        Refused (``HostRefused``) for non-members and buttons the current card lacks."""
        message = self._messages.get(message_id)
        if message is not None and message.type == "card":
            conversation_id, card = message.conversation_id, message.versions[-1]
        else:
            kept = self._ephemeral_card(message_id)
            # Someone else's ephemeral card, or an expired one, is not there for this user.
            if kept is None or kept["user_id"] != user.id or kept["conversation_id"] is None:
                raise HostRefused("message_not_found", f"no card {message_id}")
            conversation_id, card = kept["conversation_id"], kept["card"]
        conversation = self._conversations[conversation_id]
        self._check_member(user, conversation)
        current = card.get("buttons", [])
        buttons = [button for button in current if button.get("action_id") == action_id]
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
        payments = name in PAYMENT_EVENTS and any(
            p.startswith("payments.") for p in self.manifest["permissions"]
        )
        if name not in self.manifest["events"]["accepts"] and not payments:
            raise HostRefused("event_not_accepted", f"{self.app_id} does not accept {name!r}")
        return await self._invoke("event", user, conversation, {"name": name, "payload": payload})

    async def view(
        self,
        user: SimUser,
        conversation: SimConversation,
        name: str,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``user``'s web view, opened from ``conversation``, calls the app:
        ``Aetherial.call(name, params)`` on the page, the app's ``@app.view(name)`` handler here.
        Returns the handler's dict (what the page's promise resolves with).

        Raises ``ViewError`` with the code and message the page's rejected promise would carry:
        the handler's own ``ViewError``, a ``HostError`` it let through, or ``unknown_view``
        (no handler of that name); ``AppCallError`` when the app failed (``internal_error``,
        also for an answer that is not a dict of at most 256 KiB; ``timeout``); ``HostRefused``
        when the host refuses before the app sees it (``not_member``; ``invalid_params``:
        ``params`` not a JSON object of at most 64 KiB, or a bad ``name``)."""
        self._check_member(user, conversation)
        if not isinstance(name, str) or not 1 <= len(name) <= VIEW_NAME_MAX:
            raise HostRefused("invalid_params", f"name: 1-{VIEW_NAME_MAX} characters")
        params = {} if params is None else params
        if not isinstance(params, dict):
            raise HostRefused("invalid_params", "params must be a JSON object")
        try:
            size = json_size(params)
        except (TypeError, ValueError) as exc:
            raise HostRefused("invalid_params", f"params: {exc}") from None
        if size > VIEW_PARAMS_MAX_BYTES:
            raise HostRefused(
                "invalid_params", f"params may not exceed {VIEW_PARAMS_MAX_BYTES} bytes of JSON"
            )
        try:
            return await self._invoke("view", user, conversation, {"name": name, "params": params})
        except AppCallError as exc:
            if exc.code in VIEW_FAILURES:
                raise
            raise ViewError(exc.code, exc.message) from None

    async def _invoke(
        self,
        method: str,
        user: SimUser | None,
        conversation: SimConversation | None,
        params: dict[str, Any],
        *,
        read_only: bool = False,
        depth: int = 0,
    ) -> dict:
        call_id = "c-" + secrets.token_urlsafe(12)
        # A tool's invocation (``sdk._sim_route``) is read-only, a hop away from its caller.
        self._calls[call_id] = SimCall(user, conversation, depth=depth, read_only=read_only)
        context = {
            "call_id": call_id,
            "conversation_id": conversation.id if conversation else None,
            "conversation_type": conversation.type if conversation else None,
            "user": {"id": user.id} if user else None,
            # The invoker's own choice, as the host does (a timer's: who scheduled it).
            "locale": (user.locale if user else None) or self.locale,
            "time_zone": (user.time_zone if user else None) or self.time_zone,
        }
        try:
            request = wire({**params, "context": context})
            try:
                body = await asyncio.wait_for(
                    answer(self.app, method, request, _Link(self)), self.deadline
                )
            except TimeoutError:
                raise AppCallError("timeout", f"no answer within {self.deadline} s") from None
            try:
                body = wire(body)
            except (TypeError, ValueError) as exc:
                raise AppCallError("internal_error", f"the answer cannot be sent: {exc}") from None
            if "error" in body:
                error = body["error"]
                raise AppCallError(error["data"]["code"], error["message"])
            reply = body["result"]
            # A command's or an action's answer is a Reply; a view's is the page's data.
            if method in ("command", "action") and reply:
                await self._apply_reply(call_id, reply)
            return reply
        finally:
            # A call_id expires when the invocation's response has been sent.
            self._calls.pop(call_id, None)

    async def _apply_reply(self, call_id: str, reply: dict[str, Any]) -> None:
        """A Reply is shorthand for the capabilities it names — with their permissions."""
        for method, params in expand_reply(reply):
            await self._capability(method, {**params, "call_id": call_id})

    # --- capabilities: sdk.capabilities checks, the mixins' effects -----------------------

    def fail_next(
        self, method: str, code: str = "unavailable", *, times: int = 1, message: str = ""
    ) -> None:
        """Make the next ``times`` calls of capability ``method`` fail with the host error
        ``code`` (after the usual checks) — a refund the wallet refuses now, a timer the host
        cannot set, a fetch that times out — to test an app's retry paths."""
        failure = (code, message or f"{method} failed ({code}), as the test asked")
        self._failures.setdefault(method, []).extend([failure] * times)

    async def _capability(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {"method": method, "ok": False}
        self.calls.append(record)
        try:
            call = self._calls.get(params.get("call_id")) if isinstance(params, dict) else None
            if call is None:
                raise InvalidParams("missing or expired call_id")
            capability, clean = check_call(method, self.manifest["permissions"], params)
            check_read_only(method, call.read_only)  # a tool only reads, as on the host
            if capability.needs_conversation and call.conversation is None:
                raise InvalidParams("this invocation has no conversation")
            if capability.needs_user and call.user is None:
                raise InvalidParams("this invocation has no user")
            scope = capability.scope
            if scope and call.user is not None and not self._granted(call.user, scope):
                raise ScopeDenied(f"the user has not granted {scope}")
            if self._failures.get(method):
                raise host_error(*self._failures[method].pop(0))
            result = _EFFECTS[method](self, call, clean)
            if inspect.isawaitable(result):  # an effect that runs another app (apps.call_tool)
                result = await result
            record["ok"] = True
            return result
        except HostError as exc:
            record["error"] = exc.code
            raise

    async def call_capability(
        self,
        user: SimUser | None,
        conversation: SimConversation | None,
        method: str,
        params: dict[str, Any],
    ) -> tuple[str, Any]:
        """Call capability ``method`` with ``params`` (no ``call_id``) as the app would during
        an invocation by ``user`` in ``conversation`` — without a handler, with every check of
        the host. Returns ``("ok", result)`` or ``("error", code)``: the shape the capability
        contract test compares with the host's answers. The call is recorded in ``calls``."""
        call_id = "c-" + secrets.token_urlsafe(12)
        self._calls[call_id] = SimCall(user, conversation)
        try:
            request = wire({**params, "call_id": call_id})
            return ("ok", wire(await self._capability(method, request)))
        except HostError as exc:
            return ("error", exc.code)
        finally:
            self._calls.pop(call_id, None)

    def _granted(self, user: SimUser, scope: str) -> bool:
        if scope in user.consent:
            return user.consent[scope]
        if self.consent is None:
            return True
        if callable(self.consent):
            return bool(self.consent(user, scope))
        return bool(self.consent.get(scope, True))

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
