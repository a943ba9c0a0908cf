"""What people do that reaches apps: slash commands typed in a chat and card buttons pressed —
on a card posted in the chat, or on an ephemeral card the app showed the presser alone."""

from __future__ import annotations

from messaging.actions import cards
from messaging.actions.conversations import check_member
from messaging.context import Messaging
from miniapps.host.installs import InstallDesk
from miniapps.host.invoker import Invoker
from miniapps.host.store.ephemeral_cards import EphemeralCards
from sdk.protocol import command_params
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

    async def route_command(self, user_id: str, conversation_id: str, text: str) -> str | None:
        """If ``text`` is a command of an app this conversation has, hand it to the app (in the
        background) and return the app id; else None (the text is an ordinary message)."""
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
