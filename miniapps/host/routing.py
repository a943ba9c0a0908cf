"""What people do that reaches apps: slash commands typed in a chat and card buttons pressed —
on a card posted in the chat, or on an ephemeral card the app showed the presser alone — and,
in privacy mode, the messages addressed to an app (``route_message``): a mention of its bot, a
reply to one of its messages, anything said in a person's service chat with it
(``sdk.addressing``). Nothing else said in a chat ever reaches an app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from messaging.actions import cards, service_chats
from messaging.actions.conversations import check_member, view_for
from messaging.context import Messaging
from miniapps.host.installs import InstallDesk
from miniapps.host.invoker import Invoker
from miniapps.host.store.ephemeral_cards import EphemeralCards
from sdk.addressing import MESSAGE_RECEIVED, app_of_bot, reason_for
from sdk.protocol import command_params
from sdk.signing import sign_event
from storage.errors import AppError
from storage.mongo import now_ms

# Presses per person and app: a member may press quickly, but cannot fill an app's queue
# (MAX_WAITING_CALLS) for everybody else.
PRESS_RATE_MAX = 20
PRESS_RATE_WINDOW = 10  # seconds


class Router:
    def __init__(
        self,
        messaging: Messaging,
        installs: InstallDesk,
        invoker: Invoker,
        ephemeral_cards: EphemeralCards,
    ) -> None:
        self.messaging = messaging
        self.ephemeral_cards = ephemeral_cards
        self.installs = installs
        self.invoker = invoker
        self.catalogue = installs.catalogue

    async def route_command(
        self,
        user_id: str,
        conversation_id: str,
        text: str,
        reply_to: dict[str, Any] | None = None,
        catch_up_from: int | None = None,
    ) -> str | None:
        """If ``text`` is a command of an app this conversation has, hand it to the app (in the
        background) and return the app id; else None (the text is an ordinary message). A
        command typed as a reply (``reply_to``: the draft's ``{id, seq, sender_id}``) brings the
        message replied to, as ``message.received`` shows one: ``reply_to`` ``{id, text,
        sender, media?}`` in the command's params (``ctx.reply_to``). ``catch_up_from``: the seq
        the sender's client had read up to when it opened the chat (``ctx.catch_up_from``)."""
        params = command_params(text)
        if params is None:
            return None
        for app_id in await self.installs.installs.get_app_ids(conversation_id):
            entry = self.catalogue.apps.get(app_id)
            if entry is None or params["command"] not in entry.commands:
                continue
            if app_id in self.catalogue.disabled:
                await self.invoker.ephemeral(
                    user_id,
                    conversation_id,
                    app_id,
                    {
                        "text": f"{entry.manifest['name']} is disabled by the administrator.",
                        "error": "app_disabled",
                    },
                )
                return app_id
            if reply_to:
                shell = {"id": "", "conversation_id": conversation_id, "reply_to": reply_to}
                replied = await self._received_view(app_id, user_id, shell)
                params = {**params, "reply_to": replied["reply_to"]}
            if catch_up_from is not None:
                params = {**params, "catch_up_from": catch_up_from}
            self.invoker.invoke_later(entry, user_id, conversation_id, "command", params)
            return app_id
        return None

    async def check_press(
        self, user_id: str, conversation_id: str, message_id: str, action_id: str, value
    ):
        """Who gets the press of button ``action_id`` on ``message_id`` — a card posted in the
        conversation, or an ephemeral card (``ephemeral_cards``) shown to this person in it —
        and the value the app put on that button."""
        await check_member(self.messaging, conversation_id, user_id)
        card = await cards.get_card(self.messaging, conversation_id, message_id)
        if card is None:
            card = await self._ephemeral_card(user_id, conversation_id, message_id)
        if card is None or card.get("app_id") not in self.catalogue.apps:
            raise AppError("message_not_found", "no such card in this chat", status=404)
        if card.get("moderated"):
            raise AppError("message_hidden", "an administrator hid this card", status=409)
        if card.get("recalled"):
            raise AppError("message_recalled", "this card was recalled", status=409)
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
        if "opens" in pressed[0]:
            # A button that opens the app's web view is the client's to follow (it launches the
            # web view), never a press the app receives — even on a card stored without the
            # card check (sdk.manifest.validate_card refuses action_id beside opens).
            raise AppError(
                "not_a_press",
                "that button opens the app's web view; it is not pressed",
                details={"field": "action_id"},
            )
        entry = await self.catalogue.check_active(card["app_id"], conversation_id)
        verdict = await self.messaging.limiter.hit(
            f"press:{entry.app_id}:{user_id}", PRESS_RATE_MAX, PRESS_RATE_WINDOW
        )
        if not verdict.allowed:
            raise AppError(
                "rate_limited",
                f"you are pressing too fast; try again in {verdict.retry_after} seconds",
                status=429,
                details={"retry_after": verdict.retry_after},
            )
        return entry, pressed[0].get("value")

    async def _ephemeral_card(
        self, user_id: str, conversation_id: str, ephemeral_id: str
    ) -> dict | None:
        """The ephemeral card ``ephemeral_id`` if it was shown to ``user_id`` in this
        conversation and has not expired; to anyone else it does not exist."""
        card = await self.ephemeral_cards.get_card(ephemeral_id, now_ms())
        if card is None or card["user_id"] != user_id or card["conversation_id"] != conversation_id:
            return None
        return card

    async def do_action(
        self, user_id: str, conversation_id: str, message_id: str, action_id: str, value
    ) -> str:
        """A press of a card button: delivered to the app that posted the card. For an
        ephemeral card ``message_id`` is its ``ephemeral_id``, and the app gets it as such."""
        entry, app_value = await self.check_press(
            user_id, conversation_id, message_id, action_id, value
        )
        params = {"message_id": message_id, "action_id": action_id, "value": app_value}
        self.invoker.invoke_later(entry, user_id, conversation_id, "action", params)
        return entry.app_id

    # --- privacy mode: messages addressed to an app ---------------------------------------

    def listening_apps(self) -> set[str]:
        """Apps on this server that take people's messages (``events.accepts`` has
        ``message.received``), not switched off: none, and sending a message costs nothing."""
        return {
            app_id
            for app_id, entry in self.catalogue.apps.items()
            if MESSAGE_RECEIVED in (entry.manifest.get("events") or {}).get("accepts", [])
            and app_id not in self.catalogue.disabled
            and entry.unavailable is None
        }

    async def service_app(self, conversation_id: str) -> str | None:
        """The app of a service chat that takes its person's messages, None for any other
        chat — a service chat is read-only unless its app listens (``message.received``)."""
        membership = await self.messaging.membership.get(conversation_id)
        if membership is None or membership.type != "service":
            return None
        conversation = await self.messaging.conversations.get_conversation(conversation_id)
        app_id = (conversation or {}).get("app_id")
        return app_id if app_id in self.listening_apps() else None

    async def do_open_service_chat(self, user_id: str, app_id: object) -> tuple[dict, bool]:
        """A person opens their service chat with an app that takes messages (to write to
        it directly): ``(conversation view, created)``, the app installed there so its
        commands, cards and answers work. ``app_not_found``, ``app_disabled``,
        ``app_unavailable``; ``no_direct_messages`` for an app that takes none."""
        entry = self.catalogue.check_app(app_id)
        self.catalogue.check_enabled(entry)
        if entry.app_id not in self.listening_apps():
            raise AppError(
                "no_direct_messages",
                f"{entry.manifest['name']} does not take messages (it answers commands)",
                status=409,
            )
        conversation, created = await service_chats.do_open_service_chat(
            self.messaging, user_id, entry.app_id, entry.manifest["name"]
        )
        await self.installs.installs.add_install(
            conversation["_id"], entry.app_id, f"app:{entry.app_id}", now_ms()
        )
        return await view_for(self.messaging, user_id, conversation), created

    async def route_message(
        self,
        user_id: str,
        message: dict[str, Any],
        app_mentions: list[str],
        launch_secret: Callable[[str], Awaitable[str]],
    ) -> list[str]:
        """A person's message, just stored (``message``: its view), to each app it is
        addressed to, as the host event ``message.received`` ``{message, reason}`` (signed
        with the app's secret) in the background; returns those apps' ids. ``app_mentions``:
        the app ids mentioned as ``app:<id>`` (not members: taken out before the send)."""
        listening = self.listening_apps()
        if not listening:
            return []
        conversation_id = message["conversation_id"]
        membership = await self.messaging.membership.get(conversation_id)
        if membership is None:
            return []
        reply_to = message.get("reply_to") or None
        service = await self.service_app(conversation_id) if membership.type == "service" else None
        reasons = {}
        for app_id in listening:
            reason = reason_for(
                app_id,
                conversation_type=membership.type,
                service_app_id=service,
                text=message.get("text") or "",
                app_mentions=app_mentions,
                reply_sender=reply_to["sender_id"] if reply_to else None,
            )
            if reason is not None:
                reasons[app_id] = reason
        if not reasons:
            return []
        installed = set(await self.installs.installs.get_app_ids(conversation_id))
        routed = []
        for app_id, reason in sorted(reasons.items()):
            if app_id not in installed:
                continue
            entry = self.catalogue.apps[app_id]
            payload: dict[str, Any] = {
                "message": await self._received_view(app_id, user_id, message),
                "reason": reason,
            }
            payload["signature"] = sign_event(await launch_secret(app_id), payload)
            self.invoker.invoke_later(
                entry,
                user_id,
                conversation_id,
                "event",
                {"name": MESSAGE_RECEIVED, "payload": payload},
            )
            routed.append(app_id)
        return routed

    async def _received_view(
        self, app_id: str, user_id: str, message: dict[str, Any]
    ) -> dict[str, Any]:
        """``message.received``'s ``message``: ``{id, text, sender, reply_to, media}`` —
        people named by their per-app ids, the message replied to with its text and media
        (the one other message an addressed message brings along)."""
        identity = self.invoker.identity
        reply = None
        if message.get("reply_to"):
            target = await self.messaging.messages.get_message(
                message["conversation_id"], message["reply_to"]["id"]
            )
            if target is not None:
                sender = target["sender_id"]
                if app_of_bot(sender) is None:
                    sender = identity.app_user_id(app_id, sender)
                hidden = target.get("recalled") or target.get("moderated")
                reply = {
                    "id": target["_id"],
                    "text": "" if hidden else target.get("text") or "",
                    "sender": sender,
                }
                media = [] if hidden else _media_of(target)
                if media:
                    reply["media"] = media
        return {
            "id": message["id"],
            "text": message.get("text") or "",
            "sender": await identity.app_user(app_id, user_id),
            "reply_to": reply,
            "media": _media_of(message),
        }


def _media_of(message: dict[str, Any]) -> list[dict[str, str]]:
    """A message's media as an app sees them: ``[{media_id, kind}]`` (``image``, ``file``,
    ``voice``); a card's own image is the app's business, not listed."""
    if message.get("type") == "card":
        return []
    ids = message.get("media_ids")
    if ids is None:  # a view: its media are {id, …}
        ids = [m["id"] for m in message.get("media") or []]
    return [{"media_id": media_id, "kind": message["type"]} for media_id in ids]
