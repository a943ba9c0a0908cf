"""The simulator's service subscriptions and app-started calls (issue 14 items 4, 5).

``notifications.request_subscription``: a user already opted in is ``granted``; one who said no
(``sim.user(..., notifications=False)`` then ``sim.set_consent(user, "notifications", False)``,
or a ``sim.answer_subscription(user, False)``) is ``declined``; anyone else is ``asked`` and
recorded (``sim.subscription_asks``) — the test then plays the user's answer with
``await sim.answer_subscription(user, granted)``, which delivers ``subscription.granted`` /
``subscription.declined`` when the manifest accepts it.

``calls.start``: the call is recorded (``sim.app_calls()``), nobody is in it; the test plays
people answering (``await sim.answer_call(user, call_id)``: the first answer delivers
``call.started``) and the end (``await sim.end_call(call_id)``: ``call.ended`` with its
outcome). ``sim.set_in_call(user)`` puts someone in another call (``user_busy``). Events are
signed with the app's secret, as the host signs them. Mixed into ``sdk.simulator.Simulator``
(through ``sdk._sim_effects.EffectsMixin``).

``calls.start`` with ``own_chat``: like the host, the call is in the app's own chat of exactly
``participant_ids`` (the invoker among them, each a user of the simulator), made on first use
and found again for the same people (``sim.own_chats()``; a member removed since is added
back); ``sim.set_blocked(user, other)`` makes two people refuse to share it (``blocked``).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from sdk._capability_services import CALL_CHAT_TITLE_MAX, check_call_participants, check_own_chat
from sdk._sim_world import SimCall, SimConversation, SimUser
from sdk.errors import HostError, HostRefused, InvalidParams, PermissionDenied
from sdk.signing import sign_event

CALL_EVENTS = ("call.started", "call.ended")
SUBSCRIPTION_EVENTS = ("subscription.granted", "subscription.declined")


def _refused(code: str, message: str) -> HostError:
    return HostError(message, code=code)


class CallsMixin:
    # provided by the Simulator
    manifest: dict[str, Any]
    app_id: str
    secret: str
    _ids: Any
    _users: dict[str, SimUser]
    _conversations: dict[str, SimConversation]

    _invoke: Callable[..., Awaitable[dict]]  # the Simulator's: (method, user, conversation, params)

    # State, made on first use (the Simulator's __init__ knows nothing of it).
    def _calls_world(self) -> dict[str, Any]:
        world = self.__dict__.get("_sim_calls_world")
        if world is None:
            world = {
                "calls": {},
                "busy": set(),
                "asks": [],
                "ids": itertools.count(1),
                "own_chats": {},  # sorted participant ids -> SimConversation
                "blocked": set(),  # frozenset({id, id}): one of them blocked the other
            }
            self.__dict__["_sim_calls_world"] = world
        return world

    # --- notifications.request_subscription -----------------------------------------------

    def _request_subscription(self, call: SimCall, params: dict) -> dict:
        user = call.user
        assert user is not None  # the capability needs_user
        if user.notifications:
            return {"status": "granted"}
        if user.consent.get("notifications") is False:
            return {"status": "declined"}
        self._calls_world()["asks"].append(user)
        return {"status": "asked"}

    @property
    def subscription_asks(self) -> list[SimUser]:
        """The users the app asked to subscribe (consent sheets shown), oldest first."""
        return list(self._calls_world()["asks"])

    async def answer_subscription(self, user: SimUser, granted: bool) -> None:
        """``user`` answers the consent sheet: they are opted in (or not) and the app gets
        ``subscription.granted`` / ``subscription.declined`` ``{user_id}`` when it accepts it."""
        user.notifications = granted
        user.consent["notifications"] = granted
        name = SUBSCRIPTION_EVENTS[0] if granted else SUBSCRIPTION_EVENTS[1]
        if name in self.manifest["events"]["accepts"]:
            await self._invoke("event", user, None, {"name": name, "payload": {"user_id": user.id}})

    # --- calls.start ----------------------------------------------------------------------

    def set_in_call(self, user: SimUser, in_call: bool = True) -> None:
        """Put ``user`` in (or take them out of) a call elsewhere: they are not rung."""
        busy = self._calls_world()["busy"]
        if in_call:
            busy.add(user.id)
        else:
            busy.discard(user.id)

    def set_blocked(self, user: SimUser, other: SimUser, blocked: bool = True) -> None:
        """``user`` blocks (or unblocks) ``other``: the host puts them in no chat together, so
        a ``calls.start`` with ``own_chat`` for both is refused (``blocked``)."""
        pair = frozenset({user.id, other.id})
        if blocked:
            self._calls_world()["blocked"].add(pair)
        else:
            self._calls_world()["blocked"].discard(pair)

    def own_chats(self) -> list[SimConversation]:
        """The chats ``calls.start`` with ``own_chat`` opened, oldest first."""
        return list(self._calls_world()["own_chats"].values())

    def _open_own_chat(self, call: SimCall, params: dict) -> SimConversation:
        world = self._calls_world()
        invoker = call.user.id if call.user is not None else None
        participant_ids = check_own_chat(params, invoker)
        by_id = {u.id: u for u in self._users.values()}
        if any(p not in by_id for p in participant_ids):
            raise _refused("unknown_participant", "a participant is not a user of this app")
        for index, first in enumerate(participant_ids):
            if any(frozenset({first, o}) in world["blocked"] for o in participant_ids[index + 1 :]):
                raise _refused("blocked", "you cannot start a chat with this user")
        key = tuple(sorted(participant_ids))
        conversation = world["own_chats"].get(key)
        if conversation is None:
            title = " ".join((params.get("title") or self.manifest["name"]).split())
            conversation = SimConversation(
                id=f"conv-{next(self._ids)}", title=title[:CALL_CHAT_TITLE_MAX]
            )
            world["own_chats"][key] = conversation
            self._conversations[conversation.id] = conversation
        for participant_id in participant_ids:  # a member removed since is added back
            if by_id[participant_id] not in conversation.members:
                conversation.members.append(by_id[participant_id])
        return conversation

    def _start_call(self, call: SimCall, params: dict) -> dict:
        if params.get("own_chat"):
            # Everyone in the app's chat is rung: exactly the participants.
            return self._ring(self._open_own_chat(call, params), None, params)
        participant_ids = check_call_participants(params.get("participant_ids"))
        conversation = call.conversation
        if params.get("conversation_id") is not None:
            conversation = self._conversations.get(params["conversation_id"])
            if conversation is None:
                raise PermissionDenied("this app is not in that conversation")
        if conversation is None:
            raise InvalidParams("this invocation has no conversation")
        return self._ring(conversation, participant_ids, params)

    def _ring(
        self, conversation: SimConversation, participant_ids: list[str] | None, params: dict
    ) -> dict:
        world = self._calls_world()
        members = {m.id: m for m in conversation.members}
        if participant_ids is None:
            rung = list(members)
        elif any(p not in members for p in participant_ids):
            raise _refused("not_a_member", "a participant is not a member of this chat")
        else:
            rung = participant_ids
        if not rung:
            raise _refused("nobody_to_call", "nobody is in this conversation")
        live = [c for c in world["calls"].values() if c["state"] != "ended"]
        if any(c["conversation_id"] == conversation.id for c in live):
            raise _refused("call_in_progress", "this conversation already has a call")
        in_calls = set(world["busy"]) | {u for c in live for u in c["joined"]}
        rung = [u for u in rung if u not in in_calls]
        if not rung:
            raise _refused("user_busy", "everyone to call is in another call")
        call_id = f"call-{next(world['ids'])}"
        world["calls"][call_id] = {
            "call_id": call_id,
            "conversation_id": conversation.id,
            "media": params["media"],
            "title": params.get("title"),
            "origin": {
                "app_id": self.app_id,
                "name": self.manifest["name"],
                "title": params.get("title"),
            },
            "rung": rung,
            "joined": [],
            "state": "ringing",
            "outcome": None,
        }
        return {"call_id": call_id, "conversation_id": conversation.id}

    def app_calls(self) -> list[dict[str, Any]]:
        """The calls the app started, oldest first: ``{call_id, conversation_id, media, title,
        origin, rung (per-app ids), joined, state (ringing|active|ended), outcome}``."""
        return copy.deepcopy(list(self._calls_world()["calls"].values()))

    def _live_call(self, call_id: str) -> dict[str, Any]:
        found = self._calls_world()["calls"].get(call_id)
        if found is None:
            raise HostRefused("call_not_found", f"no call {call_id}")
        if found["state"] == "ended":
            raise HostRefused("call_ended", f"call {call_id} has ended")
        return found

    async def _call_event(self, name: str, found: dict[str, Any], user: SimUser | None, extra):
        if name not in self.manifest["events"]["accepts"]:
            return
        payload = {
            "call_id": found["call_id"],
            "conversation_id": found["conversation_id"],
            "media": found["media"],
            "title": found["title"],
            **extra,
        }
        payload["signature"] = sign_event(self.secret, payload)
        conversation = self._conversations.get(found["conversation_id"])
        await self._invoke("event", user, conversation, {"name": name, "payload": payload})

    async def answer_call(self, user: SimUser, call_id: str) -> None:
        """``user`` taps to join the app's call; the first to join starts it and the app gets
        ``call.started`` ``{call_id, conversation_id, media, title, user_id}``. Refused
        (``HostRefused``) for non-members, people already in it and ended calls."""
        found = self._live_call(call_id)
        conversation = self._conversations[found["conversation_id"]]
        if user not in conversation.members:
            raise HostRefused("not_member", f"{user.name} is not a member of {conversation.id}")
        if user.id in found["joined"]:
            raise HostRefused("already_joined", f"{user.name} is in this call")
        found["joined"].append(user.id)
        if found["state"] == "ringing":
            found["state"] = "active"
            await self._call_event("call.started", found, user, {"user_id": user.id})

    async def end_call(self, call_id: str, *, duration_seconds: int = 0) -> None:
        """The app's call ends (hang-up, or nobody answered): outcome ``completed`` when
        someone joined (lasting ``duration_seconds``), else ``missed``; the app gets
        ``call.ended`` ``{…, outcome, duration_seconds, reason}``."""
        found = self._live_call(call_id)
        answered = bool(found["joined"])
        found["state"] = "ended"
        found["outcome"] = "completed" if answered else "missed"
        extra = {
            "outcome": found["outcome"],
            "duration_seconds": duration_seconds if answered else 0,
            "reason": "hangup" if answered else "timeout",
        }
        await self._call_event("call.ended", found, None, extra)

    EFFECTS: dict[str, Any] = {}


CallsMixin.EFFECTS = {
    "notifications.request_subscription": CallsMixin._request_subscription,
    "calls.start": CallsMixin._start_call,
}
