"""``App``: the object a mini-program's entry file defines, with its handlers.

::

    from sdk import App, Reply

    app = App("dice")

    @app.command("roll")
    async def roll(ctx):
        return Reply(text=f"{ctx.user_id[:6]} rolled a 4")

Handlers are ``async def handler(ctx) -> Reply | dict | None``; ``ctx`` is a ``Context``.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sdk._capability_services import TOOL_RESULT_MAX_BYTES
from sdk._context_services import ServiceCalls
from sdk.cards import Card, as_dict, normalize_reply
from sdk.errors import (
    AppError,
    Conflict,
    InvalidParams,
    InvalidSignature,
    SDKError,
    UnknownMethod,
)
from sdk.media import encode_upload
from sdk.protocol import UNKNOWN_VIEW, VIEW_RESULT_MAX_BYTES, json_size
from sdk.signing import APP_SECRET_ENV, verify_event

Handler = Callable[["Context"], Awaitable[Any] | Any]
H = TypeVar("H", bound=Handler)
T = TypeVar("T")

# The events the host's payment service sends, and the ``status`` each payload carries. An app
# whose manifest has ``payments.request`` may handle them without declaring them in
# ``events.accepts``; no manifest may emit or accept a ``payment.*`` event.
PAYMENT_EVENTS: dict[str, str] = {"payment.succeeded": "succeeded", "payment.failed": "failed"}
# A hold (``request_payment(..., capture=False)``): authorized by the user, then captured or
# voided (by the app, or at its expiry).
PAYMENT_EVENTS |= {
    "payment.authorized": "authorized",
    "payment.captured": "captured",
    "payment.voided": "voided",
    # A transfer request (``request_transfer``): what the payer did.
    "transfer_request.paid": "paid",
    "transfer_request.declined": "declined",
    "transfer_request.expired": "expired",
}


class HostLink(Protocol):
    """How a ``Context`` reaches the host: the runtime's pipe, or the simulator.

    A link may also have an ``app_secret`` attribute — the runtime's (the secret the host sent
    in ``initialize``) and the simulator's have one: the secret ``Context.verify_payment_event``
    checks payment events with when it is given none.
    """

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send an app → host request; return its ``result`` or raise a ``HostError``."""
        ...


@dataclass(frozen=True)
class GroupState:
    """The conversation's shared document for this app and its version (0 and ``{}`` when
    none was written yet)."""

    version: int
    state: dict[str, Any]


class Context(ServiceCalls):
    """One invocation: who, where, what — and the capabilities, bound to its ``call_id``.

    Attributes: ``call_id``, ``user_id`` (the invoker's per-app id), ``conversation_id``,
    ``locale``, ``time_zone`` (an IANA name), ``kind``
    (``command``/``action``/``event``/``timer``/``view``/``tool``) and, by kind,
    ``command``, ``args``, ``text`` (commands), ``message_id``, ``action_id``, ``value``
    (actions), ``event_name``, ``payload`` (events), ``view_name``, ``params`` (views: the
    page's params dict), ``tool_name``, ``arguments`` (tools: another app calling this app's
    read-only tool); the others are None. ``config``: the app's settings as an
    administrator set them (manifest ``config``; an unset one is absent); ``roles``: the
    invoker's roles in this app (manifest ``roles``, granted by an administrator).
    """

    def __init__(self, kind: str, params: dict[str, Any], host: HostLink) -> None:
        context = params["context"]
        self.kind = kind
        self.call_id: str = context["call_id"]
        self.conversation_id: str | None = context.get("conversation_id")
        # ``direct``, ``group`` or ``service`` (the user's service chat with this app).
        self.conversation_type: str | None = context.get("conversation_type")
        self.user_id: str | None = (context.get("user") or {}).get("id")
        self.locale: str = context.get("locale") or "en"
        # The invoker's IANA time zone (``Europe/Berlin``; "UTC" when they chose none; a
        # timer's: the scheduler's): ``zoneinfo.ZoneInfo(ctx.time_zone)`` for local times.
        self.time_zone: str = context.get("time_zone") or "UTC"
        self.command: str | None = params.get("command")
        # A command typed as a reply: the message replied to ``{id, text, sender, media?}``.
        self.reply_to: dict[str, Any] | None = params.get("reply_to") if kind == "command" else None
        # A command sent from a client that says where its person had read up to when they
        # opened the chat (a seq): what they missed is after it (``ctx.history(after=...)``).
        self.catch_up_from: int | None = params.get("catch_up_from") if kind == "command" else None
        self.args: list[str] = list(params.get("args") or [])
        self.text: str | None = params.get("text")
        self.message_id: str | None = params.get("message_id")
        self.action_id: str | None = params.get("action_id")
        self.value: str | None = params.get("value")
        self.event_name: str | None = params.get("name") if kind == "event" else None
        self.payload: Any = params.get("payload") if kind == "event" else None
        # What an administrator set up (manifest ``config`` and ``roles``), via ``app.setup``.
        self.config: dict[str, str] = dict(context.get("config") or {})
        self.roles: list[str] = list(context.get("roles") or [])
        # A timer firing (``App.timer``): which timer, its key, when it was due (epoch ms), the
        # payload it was scheduled with, and which firing this is (> 1: an earlier one failed).
        self.timer_name: str | None = params.get("name") if kind == "timer" else None
        self.timer_key: str | None = params.get("key") if kind == "timer" else None
        self.due_at: int | None = params.get("due_at") if kind == "timer" else None
        self.attempt: int = int(params.get("attempt") or 1) if kind == "timer" else 1
        if kind == "timer":
            self.payload = params.get("payload") or {}
        # A web view's page calling its app (``App.view``): which view, and the page's params.
        self.view_name: str | None = params.get("name") if kind == "view" else None
        self.params: dict[str, Any] = dict(params.get("params") or {}) if kind == "view" else {}
        # Another app (the assistant) calling this app's read-only tool (``App.tool``): which
        # tool, and its arguments (checked against the manifest's ``parameters`` by the host).
        self.tool_name: str | None = params.get("name") if kind == "tool" else None
        self.arguments: dict[str, Any] = (
            dict(params.get("arguments") or {}) if kind == "tool" else {}
        )
        self._host = host

    async def call(self, capability: str, /, **params: Any) -> dict[str, Any]:
        """Call any capability by its method name with this invocation's ``call_id``; the
        typed methods below are shorthands for it. Raises a ``HostError`` subclass."""
        return await self._host.call(capability, {"call_id": self.call_id, **params})

    # --- messages -------------------------------------------------------------------------

    async def send_text(self, text: str) -> str:
        """Post ``text`` into the conversation (``messages.send_text``); returns its message id."""
        return (await self.call("messages.send_text", text=text))["message_id"]

    async def send_card(self, card: Card | dict) -> str:
        """Post a card (``messages.send_card``); returns its message id."""
        return (await self.call("messages.send_card", card=as_dict(card)))["message_id"]

    async def reply_ephemeral(self, content: str | Card | dict) -> str | None:
        """Show a text or a card to the invoking user only (``messages.reply_ephemeral``).
        For a card with buttons, returns its ``ephemeral_id``: for an hour the user can press
        them (your ``@app.action`` gets that id as ``ctx.message_id``) and ``update_card`` of
        that id shows them the new card; otherwise None."""
        if isinstance(content, str):
            await self.call("messages.reply_ephemeral", text=content)
            return None
        result = await self.call("messages.reply_ephemeral", card=as_dict(content))
        return result.get("ephemeral_id")

    async def update_card(
        self, message_id: str, card: Card | dict, conversation_id: str | None = None
    ) -> None:
        """Replace a card this app posted (``messages.update_card``): in this conversation, or
        in ``conversation_id`` — another chat that has this app, or a user's service chat with
        it (e.g. a buyer's order card, updated when the seller presses a button in their own
        chat, or from a timer). ``message_id`` may be an ``ephemeral_id`` (an hour at most):
        the ephemeral card is replaced and shown again to its one reader. ``NotFound`` when
        this app posted no such card there."""
        params: dict[str, Any] = {"message_id": message_id, "card": as_dict(card)}
        if conversation_id is not None:
            params["conversation_id"] = conversation_id
        await self.call("messages.update_card", **params)

    # --- media ----------------------------------------------------------------------------

    def has_role(self, role: str) -> bool:
        """Whether the invoking user has ``role`` in this app (``ctx.roles``), e.g.
        ``if not ctx.has_role("merchant"): return Reply(text="merchants only")``."""
        return role in self.roles

    async def upload_media(
        self,
        data: bytes,
        content_type: str,
        name: str | None = None,
        *,
        kind: str | None = None,
    ) -> str:
        """Upload a photo, file or voice note for this app (``media.upload``) and return its
        media id — put it in a card's ``image`` to show a product photo::

            photo = await ctx.upload_media(png_bytes, "image/png", "mug.png")
            await ctx.send_card(Card("Blue mug", text="12.50 USD", image=photo))

        ``data`` is at most 512 KiB (``MEDIA_UPLOAD_MAX_BYTES``; upload once and keep the id
        in storage rather than uploading per card). The host never trusts ``content_type`` or
        ``name``: the bytes decide. A JPEG, PNG, GIF or WebP image is re-encoded without its
        metadata (EXIF, GPS) and gets a thumbnail; Opus/Ogg or AAC/M4A audio is a voice note;
        anything else a file (shown as a download). ``kind`` (``"image"``, ``"file"``,
        ``"voice"``) insists on one; unset, the bytes decide.

        Members of a conversation where a card shows it get a short-lived signed URL in the
        card's ``image``; only this app's cards may show its uploads. Raises ``HostError`` with
        ``.code`` ``media_too_large``, ``empty_file``, ``not_an_image`` (declared an image, or
        ``kind="image"``, but it is not one), ``invalid_image`` (damaged), ``image_too_large``
        (over 50 megapixels), ``svg_not_allowed``, ``not_audio``, ``invalid_audio``,
        ``voice_too_long``; ``PermissionDenied`` without ``media.upload`` in the manifest.
        """
        params: dict[str, Any] = {"data": encode_upload(data), "content_type": content_type}
        if name is not None:
            params["name"] = name
        if kind is not None:
            params["kind"] = kind
        return (await self.call("media.upload", **params))["media_id"]

    # --- group state ----------------------------------------------------------------------

    async def get_group_state(self) -> GroupState:
        """The conversation's shared document for this app (``group_state.get``)."""
        result = await self.call("group_state.get")
        return GroupState(version=result["version"], state=result["state"])

    async def set_group_state(self, state: dict[str, Any], expected_version: int) -> int:
        """Write the shared document if it is still at ``expected_version``
        (``group_state.set``); returns the new version. Raises ``Conflict`` when someone wrote
        in between: read again, reapply your change, retry — or use ``update_group_state``."""
        result = await self.call("group_state.set", state=state, expected_version=expected_version)
        return result["version"]

    async def update_group_state(
        self, change: Callable[[dict[str, Any]], T], *, attempts: int = 25
    ) -> T:
        """Read the group state, apply ``change(state)`` (it edits the dict in place and may
        return a value) and write it back, retrying on ``Conflict`` with a short random back-off
        — the safe way for concurrent users to edit one document. Nothing is written when the
        change leaves the state as it was. Returns what ``change`` returned; an exception raised
        by ``change`` propagates and nothing is written."""
        for attempt in range(attempts):
            current = await self.get_group_state()
            state = copy.deepcopy(current.state)
            outcome = change(state)
            if state == current.state:
                return outcome
            try:
                await self.set_group_state(state, expected_version=current.version)
                return outcome
            except Conflict:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise AssertionError("unreachable")

    # --- storage --------------------------------------------------------------------------

    async def storage_get(self, collection: str, key: str) -> Any:
        """The value stored under ``key`` in ``collection`` (``storage.get``), None when none."""
        return (await self.call("storage.get", collection=collection, key=key)).get("value")

    async def storage_put(self, collection: str, key: str, value: Any) -> None:
        """Store a JSON value under ``key`` (``storage.put``); ``QuotaExceeded`` past the app's
        quota."""
        await self.call("storage.put", collection=collection, key=key, value=value)

    async def storage_delete(self, collection: str, key: str) -> None:
        """Delete ``key`` from ``collection`` (``storage.delete``); deleting nothing is fine."""
        await self.call("storage.delete", collection=collection, key=key)

    async def storage_find(
        self, collection: str, filter: dict[str, Any] | None = None, *, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Items ``{"key", "value"}`` whose value matches ``filter`` (the safe subset of
        PROTOCOL.md: equality, ``$eq $ne $gt $gte $lt $lte $in $nin $exists $and $or $not``),
        at most ``limit`` ≤ 100 (``storage.find``, by key). One call of the capability looks at
        a bounded number of documents and may answer fewer items with a ``next``: this follows
        ``next`` until ``limit`` items are found or the collection ends."""
        items: list[dict[str, Any]] = []
        after = None
        while True:
            result = await self.call(
                "storage.find",
                collection=collection,
                filter=filter or {},
                limit=limit - len(items),
                after=after,
            )
            items.extend(result["items"])
            after = result.get("next")
            if after is None or len(items) >= limit:
                return items[:limit]

    # --- users, notifications, events, http -----------------------------------------------

    async def get_profile(self) -> dict[str, Any]:
        """The invoker's ``{"id", "display_name", "avatar_url"}`` (``users.profile``); raises
        ``ScopeDenied`` unless the user granted the ``users.profile`` scope."""
        return await self.call("users.profile")

    async def notify(self, user_id: str, text: str) -> None:
        """Notify a user (by per-app id) who opted in (``notifications.send``)."""
        await self.call("notifications.send", user_id=user_id, text=text)

    async def emit(self, name: str, payload: dict[str, Any]) -> None:
        """Emit an event declared in the manifest's ``events.emits`` (``events.emit``)."""
        await self.call("events.emit", name=name, payload=payload)

    async def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> dict[str, Any]:
        """An HTTP request through the host to a domain in ``http.allowed_domains``
        (``http.fetch``); returns ``{"status", "headers", "body"}``."""
        return await self.call(
            "http.fetch", url=url, method=method, headers=headers or {}, body=body
        )

    # --- payments -------------------------------------------------------------------------

    async def request_payment(
        self,
        amount: int,
        currency: str,
        description: str,
        order_ref: str,
        *,
        capture: bool = True,
    ) -> dict[str, Any]:
        """Ask the invoking user to pay ``amount`` minor units of ``currency`` (ISO 4217, e.g.
        ``1250, "USD"`` for 12.50 USD) for ``description`` (1-200 characters)
        (``payments.request``); returns ``{"payment_id", "status"}``.

        The host asks the user to confirm; the app never moves money and never sees balances.
        The outcome arrives later as a ``payment.succeeded`` or ``payment.failed`` event — fulfil
        the order there, after ``ctx.verify_payment_event()``, never on this result.

        ``order_ref`` (1-64 characters of ``[A-Za-z0-9_.:-]``) is your order's id and makes the
        request idempotent: asking again with the same ``order_ref``, amount, currency and user
        returns the existing payment and its current ``status`` (``"pending"``, ``"paid"``,
        ``"cancelled"`` or ``"expired"``) instead of charging twice. Raises ``OrderRefReused``
        when the ``order_ref`` was used for another amount, currency or user,
        ``InvalidParams``, ``PermissionDenied`` (``payments.request`` not in the manifest).

        ``capture=False`` only holds the money: see ``authorize_payment``.
        """
        if not capture:
            return await self.authorize_payment(amount, currency, description, order_ref)
        return await self.call(
            "payments.request",
            amount=amount,
            currency=currency,
            description=description,
            order_ref=order_ref,
        )

    async def refund_payment(
        self, payment_id: str, amount: int, refund_ref: str | None = None
    ) -> dict[str, Any]:
        """Give back ``amount`` minor units of a paid payment of this app (``payments.refund``);
        returns ``{"refund_id", "refunded_total"}`` (all refunds of that payment so far).

        Partial refunds add up and may not exceed the amount paid. ``refund_ref`` (1-64
        characters of ``[A-Za-z0-9_.:-]``) makes the refund idempotent: the same ``refund_ref``
        for the same payment and amount returns the first refund instead of refunding twice
        (pass one when you may retry); without it the host picks a random one. Raises
        ``NotFound`` (not this app's payment), ``NotPaid``, ``RefundExceedsPayment``,
        ``InvalidParams`` (also a ``refund_ref`` used on this payment for another amount),
        ``PermissionDenied`` (``payments.refund`` not in the manifest).
        """
        params: dict[str, Any] = {"payment_id": payment_id, "amount": amount}
        if refund_ref is not None:
            params["refund_ref"] = refund_ref
        return await self.call("payments.refund", **params)

    def verify_payment_event(self, secret: str | None = None) -> dict[str, Any]:
        """The payload of this ``payment.succeeded``/``payment.failed`` event once its
        ``signature`` verified; raises ``InvalidSignature`` otherwise (a forged or altered
        event, a payload whose ``status`` does not match the event's name, or a context that is
        not a payment event).

        The secret is ``secret`` when given (a remote app passes the secret it got at
        registration), else the link's ``app_secret`` (a hosted app's runtime receives it from
        the host in ``initialize``; the simulator's is ``sim.app_secret``), else the
        environment variable ``AETHERIAL_APP_SECRET``. Raises ``SDKError`` when there is no
        secret at all (a configuration error, not a forgery).

        An event may be delivered more than once: fulfil each ``payment_id`` (or
        ``order_ref``) once.
        """
        expected_status = (
            PAYMENT_EVENTS.get(self.event_name or "") if self.kind == "event" else None
        )
        if expected_status is None:
            raise InvalidSignature(f"{self.event_name or self.kind!r} is not a payment event")
        if secret is None:
            secret = getattr(self._host, "app_secret", None) or os.environ.get(APP_SECRET_ENV)
        if not secret:
            raise SDKError(f"no app secret: pass secret= or set {APP_SECRET_ENV}")
        payload = self.payload
        if not isinstance(payload, dict) or not verify_event(secret, payload):
            raise InvalidSignature(f"the {self.event_name} event's signature does not verify")
        if payload.get("status") != expected_status:
            raise InvalidSignature(
                f"a {self.event_name} event must have status {expected_status!r}"
            )
        return payload


def _require(params: dict[str, Any], name: str, kind: type | tuple, optional: bool = False):
    value = params.get(name)
    if value is None and optional:
        return
    if not isinstance(value, kind):
        raise InvalidParams(f"{name}: missing or of the wrong type")


class App:
    """A mini-program: its command, action and event handlers.

    An entry file defines exactly one, at module level: ``app = App("poll")``.
    """

    def __init__(self, app_id: str | None = None) -> None:
        self.app_id = app_id
        self.commands: dict[str, Handler] = {}
        self.actions: dict[str, Handler] = {}
        self.events: dict[str, Handler] = {}
        self.timers: dict[str, Handler] = {}
        self.views: dict[str, Handler] = {}
        self.tools: dict[str, Handler] = {}
        self.log = logging.getLogger(f"app.{app_id or 'unnamed'}")

    def _register(self, table: dict[str, Handler], name: str, what: str) -> Callable[[H], H]:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {what} name must be a non-empty string")

        def decorator(handler: H) -> H:
            if name in table:
                raise ValueError(f"{what} {name!r} already has a handler")
            table[name] = handler
            return handler

        return decorator

    def timer(self, name: str) -> Callable[[H], H]:
        """Register the handler of the timer ``name`` (declared in the manifest's ``timers``;
        scheduled with ``ctx.schedule``). ``ctx.timer_name``, ``ctx.timer_key``, ``ctx.due_at``,
        ``ctx.payload`` and ``ctx.attempt`` describe the firing; it answers nothing (post with
        ``ctx.send_text`` …). Returning marks the timer done; raising has it tried again."""
        return self._register(self.timers, name, "timer")

    async def _handle_timer(self, params: Any, host: HostLink) -> dict[str, Any]:
        if not isinstance(params, dict) or not isinstance(params.get("context"), dict):
            raise InvalidParams("context: missing")
        _require(params["context"], "call_id", str)
        _require(params, "name", str)
        _require(params, "key", str)
        _require(params, "due_at", int)
        handler = self.timers.get(params["name"])
        if handler is None:
            raise AppError("not_found", f"this app has no handler for timer {params['name']!r}")
        params = await _with_setup(params, host)
        result = handler(Context("timer", params, host))
        if inspect.isawaitable(result):
            result = await result
        if result:
            self.log.warning("timer handlers answer nothing; %s's reply is ignored", params["name"])
        return {}

    def view(self, name: str) -> Callable[[H], H]:
        """Register the handler a web view's page calls with ``Aetherial.call(name, params)``
        (sdk/js/bridge.js): ``ctx.view_name`` and ``ctx.params`` (the page's params, a dict of
        at most 64 KiB of JSON) describe the call, made for the user who opened the view, in the
        conversation it was opened from — capability calls work as in an action. Return a JSON
        object of at most 256 KiB (None is ``{}``): the page's promise resolves with it. Raise
        ``ViewError(code, message)`` to refuse: the promise rejects with that ``.code``::

            @app.view("items")
            async def items(ctx):
                return {"items": await ctx.storage_find("items", limit=ctx.params.get("n", 20))}
        """
        return self._register(self.views, name, "view")

    async def _handle_view(self, params: Any, host: HostLink) -> dict[str, Any]:
        if not isinstance(params, dict) or not isinstance(params.get("context"), dict):
            raise InvalidParams("context: missing")
        _require(params["context"], "call_id", str)
        _require(params, "name", str)
        _require(params, "params", dict)
        handler = self.views.get(params["name"])
        if handler is None:
            raise AppError(UNKNOWN_VIEW, f"this app has no view {params['name']!r}")
        params = await _with_setup(params, host)
        result = handler(Context("view", params, host))
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            return {}
        if not isinstance(result, dict):
            raise AppError(
                "internal_error", f"view {params['name']!r} must answer a dict, not {type(result)}"
            )
        try:
            size = json_size(result)
        except (TypeError, ValueError) as exc:
            raise AppError("internal_error", f"view {params['name']!r}: {exc}") from None
        if size > VIEW_RESULT_MAX_BYTES:
            raise AppError(
                "internal_error",
                f"view {params['name']!r} answered {size} bytes, over {VIEW_RESULT_MAX_BYTES}",
            )
        return result

    def tool(self, name: str) -> Callable[[H], H]:
        """Register the handler of the read-only tool ``name`` (declared in the manifest's
        ``tools`` with its ``parameters`` and ``read_only: true``), which other apps of the chat
        — the assistant — call with ``ctx.call_tool``. ``ctx.tool_name`` and ``ctx.arguments``
        (checked by the host against the declared ``parameters``) describe the call, made for
        the same user in the same conversation, within the tool's own 3 s.

        A tool only reads: it may call ``storage.get``/``storage.find``, ``http.fetch`` and
        ``users.profile``; anything else is ``PermissionDenied``. It answers
        ``{"result": <JSON>, "card": <Card or None>}``: the result goes back to the caller,
        the card (if any) is posted by the host in the chat as *this* app's card — so what
        acts (buy, book, pay) is a button a person taps, which reaches this app's
        ``@app.action`` like any card's::

            @app.tool("search_products")
            async def search(ctx):
                found = await ctx.storage_find("products", {"name": ctx.arguments["query"]})
                card = Card("Mugs", buttons=[Button("Buy", action_id="buy", value="p-1")])
                return {"result": [i["value"] for i in found], "card": card}
        """
        return self._register(self.tools, name, "tool")

    async def _handle_tool(self, params: Any, host: HostLink) -> dict[str, Any]:
        if not isinstance(params, dict) or not isinstance(params.get("context"), dict):
            raise InvalidParams("context: missing")
        _require(params["context"], "call_id", str)
        _require(params, "name", str)
        _require(params, "arguments", dict)
        handler = self.tools.get(params["name"])
        if handler is None:
            raise AppError("not_found", f"this app has no handler for tool {params['name']!r}")
        params = await _with_setup(params, host)
        result = handler(Context("tool", params, host))
        if inspect.isawaitable(result):
            result = await result
        return _tool_answer(params["name"], result)

    def command(self, name: str) -> Callable[[H], H]:
        """Register the handler of the slash command ``/name`` (declared in the manifest's
        ``commands``). ``ctx.command``, ``ctx.args`` and ``ctx.text`` describe the call."""
        return self._register(self.commands, name.lstrip("/"), "command")

    def action(self, action_id: str) -> Callable[[H], H]:
        """Register the handler of card buttons with this ``action_id``. ``ctx.message_id``,
        ``ctx.action_id`` and ``ctx.value`` describe the press (``ctx.message_id`` is the
        ``ephemeral_id`` for a button on a card shown with ``reply_ephemeral``)."""
        return self._register(self.actions, action_id, "action")

    def event(self, name: str) -> Callable[[H], H]:
        """Register the handler of an event the manifest ``accepts`` (e.g.
        ``shop.order_paid``), or of ``payment.succeeded``/``payment.failed`` (no declaration
        needed with the ``payments.request`` permission); ``ctx.event_name`` and ``ctx.payload``
        describe it."""
        return self._register(self.events, name, "event")

    def check_against_manifest(self, manifest: dict[str, Any]) -> list[str]:
        """Mismatches between the handlers and the manifest (a declared command without a
        handler, a handler for an undeclared command or event — payment events count as
        declared when the manifest has the ``payments.request`` permission); empty when all
        agree."""
        problems = []
        declared = {command["name"] for command in manifest.get("commands", [])}
        for name in sorted(declared - set(self.commands)):
            problems.append(f"command {name!r} is declared in the manifest but has no handler")
        for name in sorted(set(self.commands) - declared):
            problems.append(f"command {name!r} has a handler but is not in the manifest")
        accepts = set(manifest.get("events", {}).get("accepts", []))
        # Any money permission brings its events undeclared (payments, holds, transfer requests).
        pays = any(p.startswith("payments.") for p in manifest.get("permissions", []))
        for name in sorted(set(self.events) - accepts):
            if name not in PAYMENT_EVENTS:
                problems.append(f"event {name!r} has a handler but is not in events.accepts")
            elif not pays:
                problems.append(
                    f"event {name!r} has a handler but the manifest lacks the payments.request"
                    " permission"
                )
        tools = {tool["name"] for tool in manifest.get("tools") or []}
        for name in sorted(tools - set(self.tools)):
            problems.append(f"tool {name!r} is declared in the manifest but has no handler")
        for name in sorted(set(self.tools) - tools):
            problems.append(f"tool {name!r} has a handler but is not in the manifest's tools")
        timers = set(manifest.get("timers") or [])
        for name in sorted(timers - set(self.timers)):
            problems.append(f"timer {name!r} is declared in the manifest but has no handler")
        for name in sorted(set(self.timers) - timers):
            problems.append(f"timer {name!r} has a handler but is not in the manifest's timers")
        return problems

    async def handle(self, method: str, params: Any, host: HostLink) -> dict[str, Any]:
        """Answer one host → app request (``command``, ``action``, ``event``, ``timer``,
        ``view``, ``tool``, ``ping``): the ``result`` dict. Raises ``AppError``/``HostError``
        for error answers."""
        if method == "ping":
            return {}
        if method == "timer":
            return await self._handle_timer(params, host)
        if method == "view":
            return await self._handle_view(params, host)
        if method == "tool":
            return await self._handle_tool(params, host)
        if method not in ("command", "action", "event"):
            raise UnknownMethod(f"unknown method {method!r}")
        if not isinstance(params, dict) or not isinstance(params.get("context"), dict):
            raise InvalidParams("context: missing")
        _require(params["context"], "call_id", str)
        if method == "command":
            _require(params, "command", str)
            _require(params, "args", list)
            _require(params, "text", str, optional=True)
            table, key, what = self.commands, params["command"], "command"
        elif method == "action":
            _require(params, "message_id", str)
            _require(params, "action_id", str)
            _require(params, "value", str, optional=True)
            table, key, what = self.actions, params["action_id"], "action"
        else:
            _require(params, "name", str)
            table, key, what = self.events, params["name"], "event"
        handler = table.get(key)
        if handler is None:
            raise AppError("not_found", f"this app has no handler for {what} {key!r}")
        params = await _with_setup(params, host)
        result = handler(Context(method, params, host))
        if inspect.isawaitable(result):
            result = await result
        if method == "event":
            if result:
                self.log.warning("event handlers answer nothing; %s's reply is ignored", key)
            return {}
        return normalize_reply(result)


def _tool_answer(name: str, answer: Any) -> dict[str, Any]:
    """A tool handler's answer on the wire: ``{"result"}`` and the card as a dict when there
    is one; ``AppError`` (``internal_error``) for anything but ``{"result", "card"?}`` or a
    result over ``TOOL_RESULT_MAX_BYTES`` of JSON (the host refuses those anyway)."""
    if not isinstance(answer, dict) or "result" not in answer or set(answer) - {"result", "card"}:
        raise AppError(
            "internal_error", f"tool {name!r} must answer {{'result': …, 'card': … or None}}"
        )
    try:
        size = json_size(answer["result"])
    except (TypeError, ValueError) as exc:
        raise AppError("internal_error", f"tool {name!r}: {exc}") from None
    if size > TOOL_RESULT_MAX_BYTES:
        raise AppError(
            "internal_error",
            f"tool {name!r} answered {size} bytes, over {TOOL_RESULT_MAX_BYTES}",
        )
    wire: dict[str, Any] = {"result": answer["result"]}
    if answer.get("card") is not None:
        wire["card"] = as_dict(answer["card"])
    return wire


async def _with_setup(params: dict[str, Any], host: HostLink) -> dict[str, Any]:
    """``params`` with ``context.config`` and ``context.roles`` filled by ``app.setup`` when
    the app's manifest (the link's ``manifest``) declares settings or roles and the host did
    not send them along — read fresh for each invocation, so an admin's change applies to the
    next one."""
    context = params["context"]
    manifest = getattr(host, "manifest", None)
    if not isinstance(manifest, dict) or not (manifest.get("config") or manifest.get("roles")):
        return params
    if "config" in context and "roles" in context:
        return params
    setup = await host.call("app.setup", {"call_id": context["call_id"]})
    filled = {"config": setup.get("config") or {}, "roles": setup.get("roles") or []}
    return {**params, "context": {**context, **filled}}
