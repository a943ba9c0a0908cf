"""The simulator's capability effects: what each capability does to the in-memory world once
``sdk.capabilities`` accepted the call (params, permission, scope). Mixed into
``sdk.simulator.Simulator``; the params arrive checked and normalised by
``sdk.capabilities.check_params``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from sdk._sim_app_setup import AppSetupMixin
from sdk._sim_calls import CallsMixin
from sdk._sim_media import MediaMixin
from sdk._sim_payments import EFFECTS as PAYMENTS_EFFECTS
from sdk._sim_storage import StorageMixin
from sdk._sim_timers import TimersMixin
from sdk._sim_world import SimCall, SimConversation, SimMessage, SimUser
from sdk.capabilities import check_emit, check_fetch_target
from sdk.errors import (
    Conflict,
    HostError,
    NotFound,
    PermissionDenied,
    ScopeDenied,
)

# As the host's ``ephemeral_cards``: an ephemeral card's buttons can be pressed for an hour.
EPHEMERAL_CARD_TTL_MS = 60 * 60 * 1000


class EffectsMixin(MediaMixin, AppSetupMixin, CallsMixin, StorageMixin, TimersMixin):
    """The in-memory effects of every capability but ``payments.*`` (``sdk._sim_payments``);
    ``media.upload`` is ``sdk._sim_media``'s."""

    # provided by the Simulator
    manifest: dict[str, Any]
    storage_quota_bytes: int
    events_emitted: list[dict[str, Any]]
    conflicts: int
    _ids: Any
    _users: dict[str, SimUser]
    _messages: dict[str, SimMessage]
    _ephemeral: dict[str, list[dict[str, Any]]]
    _ephemeral_cards: dict[str, dict[str, Any]]
    now: int
    _notifications: dict[str, list[Any]]
    _group_state: dict[str, tuple[int, dict[str, Any]]]
    _storage: dict[str, dict[str, Any]]
    _http: dict[str, Any]

    def _post(self, conversation: SimConversation | None, kind: str, content: Any) -> str:
        assert conversation is not None  # the capability needs_conversation
        message_id = f"m-{next(self._ids)}"
        if kind == "text":
            message = SimMessage(message_id, conversation.id, "text", text=content)
        else:
            message = SimMessage(message_id, conversation.id, "card", versions=[content])
        self._messages[message_id] = message
        return message_id

    def _send_text(self, call: SimCall, params: dict) -> dict:
        return {"message_id": self._post(call.conversation, "text", params["text"])}

    def _send_card(self, call: SimCall, params: dict) -> dict:
        self._check_card_media(params["card"])
        return {"message_id": self._post(call.conversation, "card", params["card"])}

    def _reply_ephemeral(self, call: SimCall, params: dict) -> dict:
        assert call.user is not None  # the capability needs_user
        if "card" in params:
            self._check_card_media(params["card"])
        content = {"card": params["card"]} if "card" in params else {"text": params["text"]}
        conversation = call.conversation.id if call.conversation else None
        entry: dict[str, Any] = {"conversation_id": conversation, **content}
        result: dict[str, Any] = {}
        if "card" in params and params["card"].get("buttons"):
            # Kept for presses, like the host's ``ephemeral_cards``: an hour on ``sim.now``.
            ephemeral_id = f"e-{next(self._ids)}"
            self._ephemeral_cards[ephemeral_id] = {
                "user_id": call.user.id,
                "conversation_id": conversation,
                "card": copy.deepcopy(params["card"]),
                "expires_at": self.now + EPHEMERAL_CARD_TTL_MS,
            }
            entry["ephemeral_id"] = result["ephemeral_id"] = ephemeral_id
        self._ephemeral.setdefault(call.user.id, []).append(entry)
        return result

    def _ephemeral_card(self, ephemeral_id: str) -> dict[str, Any] | None:
        """The kept ephemeral card ``ephemeral_id`` while it has not expired."""
        kept = self._ephemeral_cards.get(ephemeral_id)
        if kept is None or kept["expires_at"] <= self.now:
            return None
        return kept

    def _update_card(self, call: SimCall, params: dict) -> dict:
        assert call.conversation is not None
        # Another conversation (``conversation_id``) works like the host's: any chat of the
        # simulator has this app, and the card must be one it posted there.
        conversation_id = params.get("conversation_id") or call.conversation.id
        kept = self._ephemeral_card(params["message_id"])
        if kept is not None and kept["conversation_id"] == conversation_id:
            # An ephemeral card: replaced, and shown again to its one reader (as the host does).
            self._check_card_media(params["card"])
            kept["card"] = copy.deepcopy(params["card"])
            self._ephemeral.setdefault(kept["user_id"], []).append(
                {
                    "conversation_id": conversation_id,
                    "card": params["card"],
                    "ephemeral_id": params["message_id"],
                }
            )
            return {}
        message = self._messages.get(params["message_id"])
        if message is None or message.type != "card" or message.conversation_id != conversation_id:
            raise NotFound("this app posted no such card in this conversation")
        self._check_card_media(params["card"])
        message.versions.append(params["card"])
        return {}

    def _get_group_state(self, call: SimCall, params: dict) -> dict:
        assert call.conversation is not None
        version, state = self._group_state.get(call.conversation.id, (0, {}))
        return {"version": version, "state": copy.deepcopy(state)}

    def _set_group_state(self, call: SimCall, params: dict) -> dict:
        conversation = call.conversation
        assert conversation is not None
        if call.user is not None and call.user not in conversation.members:
            raise PermissionDenied("group state is written for members only")
        version, _ = self._group_state.get(conversation.id, (0, {}))
        if params["expected_version"] != version:
            self.conflicts += 1
            raise Conflict("the group state changed; read it and try again")
        self._group_state[conversation.id] = (version + 1, copy.deepcopy(params["state"]))
        return {"version": version + 1}

    def _profile(self, call: SimCall, params: dict) -> dict:
        user = call.user
        assert user is not None
        return {"id": user.id, "display_name": user.display_name, "avatar_url": user.avatar_url}

    # --- storage: like the host, a key and its value count against the app's quota ---------

    # --- notifications, events, http ------------------------------------------------------

    def _notify(self, call: SimCall, params: dict) -> dict:
        user = next((u for u in self._users.values() if u.id == params["user_id"]), None)
        if user is None:
            raise NotFound("no such user")
        if not user.notifications:
            raise ScopeDenied("the user has not opted in to this app's notifications")
        if params.get("card") is not None:
            self._check_card_media(params["card"])
        # A text, or a card (the host posts either into the user's service chat with the app).
        sent = params["card"] if params.get("card") is not None else params["text"]
        self._notifications.setdefault(user.id, []).append(copy.deepcopy(sent))
        return {}

    def _emit(self, call: SimCall, params: dict) -> dict:
        check_emit(self.manifest, params["name"], call.depth)
        self.events_emitted.append(
            {
                "name": params["name"],
                "payload": params["payload"],
                "user_id": call.user.id if call.user else None,
                "conversation_id": call.conversation.id if call.conversation else None,
            }
        )
        return {}

    def _fetch(self, call: SimCall, params: dict) -> dict:
        target = check_fetch_target(self.manifest, params["url"])
        response = self._http.get(target.url)
        if response is None:
            # What the host answers for a name it cannot reach: there is no network here.
            raise HostError(
                f"no fake response for {target.url}; register one with sim.fake_http()",
                code="fetch_failed",
            )
        return copy.deepcopy(response)

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
        """What was shown to ``user`` only: ``{"conversation_id", "text"}`` or ``{…, "card"}``;
        a card with buttons also has its ``ephemeral_id`` (``sim.press(user, ephemeral_id,
        …)`` presses them for an hour of ``sim.now``; an ``update_card`` of that id adds the
        new card, with the same id)."""
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

    def notifications(self, user: SimUser) -> list[Any]:
        """Service messages the app sent ``user``: each a text, or a card (a dict)."""
        return list(self._notifications.get(user.id, []))


Effect = Callable[[Any, SimCall, dict], dict]
EFFECTS: dict[str, Effect] = {
    "messages.send_text": EffectsMixin._send_text,
    "messages.send_card": EffectsMixin._send_card,
    "messages.reply_ephemeral": EffectsMixin._reply_ephemeral,
    "messages.update_card": EffectsMixin._update_card,
    "group_state.get": EffectsMixin._get_group_state,
    "group_state.set": EffectsMixin._set_group_state,
    "users.profile": EffectsMixin._profile,
    "notifications.send": EffectsMixin._notify,
    "events.emit": EffectsMixin._emit,
    "http.fetch": EffectsMixin._fetch,
    "media.upload": EffectsMixin._upload_media,
    **PAYMENTS_EFFECTS,
    **TimersMixin.EFFECTS,
    **StorageMixin.EFFECTS,
    **CallsMixin.EFFECTS,
    **AppSetupMixin.EFFECTS,
    **MediaMixin.EFFECTS,
}
