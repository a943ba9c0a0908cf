"""The simulator's privacy mode, chat history and tools (issue 20, section C), as the host does
them.

People's messages: ``sim.say(user, chat, text, reply_to=None)`` posts a message in a chat; it
reaches the app (as the event ``message.received``) only when addressed to it, by the host's
own rule (``sdk.addressing``): ``sim.mention(user, chat, text)`` mentions the app's bot,
``sim.say(..., reply_to=<one of the app's messages>)`` replies to it, ``sim.direct(user,
text)`` is a message in the user's service chat with the app (``sim.service_chat(user)``).
``sim.received`` lists the payloads that reached the app; whatever else was said is only in the
chat (``messages.history`` reads it once granted)::

    await sim.say(bob, chat, "lunch at 1?")           # never reaches the app
    await sim.mention(alice, chat, "@assistant what did we decide?")
    assert sim.received[-1]["reason"] == "mention"

History: ``sim.grant_history(chat)`` / ``sim.revoke_history(chat)`` play a group admin's grant
(without it ``messages.history`` is ``history_not_granted``); ``sim.mark_read(user, chat)``
moves the user's read position (what ``since_read`` counts from).

Tools: ``sim.install_app(folder)`` loads a second app into the chats (its own ``Simulator``,
returned, with its own per-app ids): ``apps.tools`` lists its manifest ``tools`` and
``apps.call_tool`` runs its ``@app.tool`` handler read-only; a card it answers is posted as
*its* card (``peer.messages(chat)``, pressed with ``peer.press(peer.user("alice"), …)``).
``sim.invoke_tool(user, chat, name, arguments)`` calls this app's own tool as another app
would. Mixed into ``sdk.simulator.Simulator``.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdk._capability_services import HISTORY_NOT_GRANTED
from sdk._sim_world import SimCall, SimConversation, SimMessage, SimUser
from sdk.addressing import MESSAGE_RECEIVED, bot_id, reason_for, split_mentions
from sdk.errors import AppCallError, HostRefused, InvalidParams, host_error
from sdk.tools import (
    check_tool_answer,
    check_tool_arguments,
    check_tool_depth,
    find_tool,
    tool_view,
)

if TYPE_CHECKING:
    from sdk.app import App
    from sdk.simulator import Simulator


@dataclass
class SimSaid:
    """A person's message in a chat (the app's own are ``SimMessage``)."""

    id: str
    conversation_id: str
    sender: SimUser
    text: str
    at: int
    reply_to: str | None = None
    media: list[dict[str, Any]] = field(default_factory=list)


def _order(message_id: str) -> int:
    # Every message id of the simulator ends with a number of its one counter (``_ids``):
    # the app's ``m-7``, a person's ``h-8``. It orders a chat's messages as the host's seq.
    return int(message_id.rsplit("-", 1)[1])


class RouteMixin:
    """``message.received``, ``messages.history``, ``apps.tools`` and ``apps.call_tool``."""

    # provided by the Simulator
    manifest: dict[str, Any]
    app_id: str
    now: int
    _ids: itertools.count
    _users: dict[str, SimUser]
    _conversations: dict[str, SimConversation]
    _messages: dict[str, SimMessage]

    def _init_route(self) -> None:
        self._said: dict[str, SimSaid] = {}
        self._posted_at: dict[str, int] = {}  # the app's messages, stamped when first seen
        self._read: dict[tuple[str, str], int] = {}  # (conversation, user id) -> order read
        self._history_grants: set[str] = set()
        self._service_chats: dict[str, SimConversation] = {}  # by user id
        self._peers: dict[str, tuple[Simulator, set[str] | None]] = {}
        self.received: list[dict[str, Any]] = []  # message.received payloads, oldest first

    # --- people's messages ----------------------------------------------------------------

    def service_chat(self, user: SimUser) -> SimConversation:
        """``user``'s service chat with the app (created on first use): type ``service``, the
        user its only member. The app posts there (``ctx.send_text`` in a ``direct``
        invocation) and ``sim.messages(sim.service_chat(user))`` shows it."""
        chat = self._service_chats.get(user.id)
        if chat is None:
            chat = self.conversation(members=[user], title=self.manifest["name"], type="service")  # type: ignore[attr-defined]
            self._service_chats[user.id] = chat
        return chat

    def _stamp(self) -> None:
        for message_id in self._messages:
            self._posted_at.setdefault(message_id, self.now)

    async def say(
        self,
        user: SimUser,
        conversation: SimConversation,
        text: str,
        *,
        reply_to: str | None = None,
        mentions: list[str] | None = None,
        media: list[dict[str, Any]] | None = None,
    ) -> str:
        """``user`` posts ``text`` in ``conversation`` (replying to the message ``reply_to``,
        mentioning ``mentions`` — member names or ``app:<id>`` — with ``media`` ``[{media_id,
        kind}]``); returns the message's id. It reaches the app as ``message.received`` only
        when addressed to it (a mention of its bot, a reply to its message, the user's service
        chat) and the manifest accepts that event: then its handler has run when this returns
        (``AppCallError`` if it failed). Refused (``HostRefused``) for a non-member, an empty
        text without media, a reply to a message not in that chat."""
        self._check_member(user, conversation)  # type: ignore[attr-defined]
        if not text.strip() and not media:
            raise HostRefused("empty_message", "a message needs some text")
        target = None
        if reply_to is not None:
            target = self._chat_message(conversation, reply_to)
            if target is None:
                raise HostRefused("message_not_found", "the message replied to is not there")
        self._stamp()
        said = SimSaid(
            id=f"h-{next(self._ids)}",
            conversation_id=conversation.id,
            sender=user,
            text=text,
            at=self.now,
            reply_to=reply_to,
            media=[{"media_id": m["media_id"], "kind": m["kind"]} for m in media or []],
        )
        self._said[said.id] = said
        self._read[(conversation.id, user.id)] = _order(said.id)  # one reads what one says
        _, app_mentions = split_mentions(mentions or [])
        reason = reason_for(
            self.app_id,
            conversation_type=conversation.type,
            service_app_id=self.app_id,
            text=text,
            app_mentions=app_mentions,
            reply_sender=None if target is None else target["sender_id"],
        )
        accepts = MESSAGE_RECEIVED in self.manifest["events"]["accepts"]
        if reason is not None and accepts:
            payload = {"message": self._received_view(said, target), "reason": reason}
            self.received.append(copy.deepcopy(payload))
            await self._invoke(  # type: ignore[attr-defined]
                "event", user, conversation, {"name": MESSAGE_RECEIVED, "payload": payload}
            )
        return said.id

    async def mention(
        self,
        user: SimUser,
        conversation: SimConversation,
        text: str,
        reply_to: str | None = None,
    ) -> str:
        """``user`` posts ``text`` mentioning the app's bot (``app:<id>`` in the message's
        mentions, as a client's mention picker sends it; ``@<id>`` in the text does the same)
        in ``conversation``: ``message.received`` with reason ``mention``. Returns its id."""
        return await self.say(
            user, conversation, text, reply_to=reply_to, mentions=[bot_id(self.app_id)]
        )

    async def direct(self, user: SimUser, text: str, reply_to: str | None = None) -> str:
        """``user`` writes ``text`` in their service chat with the app
        (``sim.service_chat(user)``): ``message.received`` with reason ``direct``."""
        return await self.say(user, self.service_chat(user), text, reply_to=reply_to)

    def _chat_message(self, conversation: SimConversation, message_id: str) -> dict | None:
        """A message of ``conversation``, the app's or a person's, as history shows it."""
        said = self._said.get(message_id)
        if said is not None and said.conversation_id == conversation.id:
            return {
                "id": said.id,
                "text": said.text,
                "sender_id": said.sender.id,
                "sender_name": said.sender.display_name,
                "at": said.at,
                "media": copy.deepcopy(said.media),
            }
        message = self._messages.get(message_id)
        if message is None or message.conversation_id != conversation.id:
            return None
        if message.type == "card":
            card = message.versions[-1]
            text = "\n".join(part for part in (card.get("title"), card.get("text")) if part)
        else:
            text = message.text or ""
        return {
            "id": message.id,
            "text": text,
            "sender_id": bot_id(self.app_id),
            "sender_name": self.manifest["name"],
            "at": self._posted_at.get(message.id, self.now),
            "media": [],
        }

    def _received_view(self, said: SimSaid, target: dict | None) -> dict[str, Any]:
        reply = None
        if target is not None:
            reply = {"id": target["id"], "text": target["text"], "sender": target["sender_id"]}
            if target["media"]:
                reply["media"] = target["media"]
        return {
            "id": said.id,
            "text": said.text,
            "sender": said.sender.id,
            "reply_to": reply,
            "media": copy.deepcopy(said.media),
        }

    # --- history --------------------------------------------------------------------------

    def grant_history(self, conversation: SimConversation) -> None:
        """A group admin lets the app read ``conversation``'s history (``messages.history``),
        as ``PUT …/grants/messages.read_history`` does on the platform."""
        self._history_grants.add(conversation.id)

    def revoke_history(self, conversation: SimConversation) -> None:
        """The grant is taken back: ``messages.history`` is ``history_not_granted`` again."""
        self._history_grants.discard(conversation.id)

    def mark_read(
        self, user: SimUser, conversation: SimConversation, message_id: str | None = None
    ) -> None:
        """``user`` has read ``conversation`` up to ``message_id`` (default: all of it) —
        ``messages.history`` with ``since_read`` gives what comes after."""
        if message_id is None:
            ids = [m["id"] for m in self._chat_log(conversation)]
            position = _order(ids[-1]) if ids else 0
        else:
            position = _order(message_id)
        key = (conversation.id, user.id)
        self._read[key] = max(self._read.get(key, 0), position)

    def seq(self, conversation: SimConversation, message_id: str) -> int:
        """The seq of a message of ``conversation`` (people's and apps' messages numbered 1, 2,
        … in order, as the platform numbers them): what a client knows of each message, e.g.
        for ``sim.command(..., catch_up_from=...)``."""
        for seq, message in enumerate(self._chat_log(conversation), start=1):
            if message["id"] == message_id:
                return seq
        raise KeyError(f"no message {message_id!r} in {conversation.id}")

    def _chat_log(self, conversation: SimConversation) -> list[dict[str, Any]]:
        self._stamp()
        ids = [s.id for s in self._said.values() if s.conversation_id == conversation.id]
        ids += [m.id for m in self._messages.values() if m.conversation_id == conversation.id]
        found = [self._chat_message(conversation, i) for i in sorted(ids, key=_order)]
        return [m for m in found if m is not None]

    def _history(self, call: SimCall, params: dict) -> dict:
        conversation, user = call.conversation, call.user
        assert conversation is not None and user is not None  # needs both
        if conversation.id not in self._history_grants:
            raise host_error("history_not_granted", HISTORY_NOT_GRANTED)
        log = self._chat_log(conversation)
        for seq, message in enumerate(log, start=1):
            message["seq"] = seq
        if params.get("before") is not None:
            log = [m for m in log if m["seq"] < params["before"]]
        if params["since_read"]:
            read = self._read.get((conversation.id, user.id), 0)
            log = [m for m in log if _order(m["id"]) > read]
        if params.get("after") is not None:
            log = [m for m in log if m["seq"] > params["after"]]
        page = log[-params["limit"] :]
        rows = [
            {
                "id": m["id"],
                "text": m["text"],
                "sender": m["sender_id"],
                "sender_name": m["sender_name"],
                "at": m["at"],
            }
            for m in page
            if m["text"]
        ]
        return {
            "messages": rows,
            "from_seq": page[0]["seq"] if page else None,
            "to_seq": page[-1]["seq"] if page else None,
            "has_more": len(log) > len(page),
        }

    # --- tools ----------------------------------------------------------------------------

    def install_app(
        self,
        app: App | str | Path,
        *,
        manifest: dict[str, Any] | None = None,
        conversations: list[SimConversation] | None = None,
    ) -> Simulator:
        """Load another app (a folder, or an ``App`` with ``manifest=``) into this simulator's
        chats — every chat, or only ``conversations`` — so that this app's ``apps.tools``
        lists its manifest ``tools`` and ``apps.call_tool`` runs them. Returns its own
        ``Simulator`` (its per-app ids, its messages: a card a tool answered is posted there,
        in the chat of the same id; ``peer.press(peer.user(name), message_id, action_id)``
        presses it as that person; ``peer.mirror(chat)`` is the chat in its world)."""
        # The simulator's own class (this mixin's), not an import of it: no import circle.
        peer = type(self)(app, manifest=manifest, secret=self.secret)  # type: ignore[call-arg,attr-defined]
        if peer.app_id == self.app_id:
            raise ValueError(f"{peer.app_id} is the app under test")
        chats = None if conversations is None else {c.id for c in conversations}
        self._peers[peer.app_id] = (peer, chats)
        for chat in self._conversations.values() if conversations is None else conversations:
            peer.mirror(chat)
        return peer

    def _peers_in(self, conversation: SimConversation) -> list[Simulator]:
        return [
            peer
            for peer, chats in self._peers.values()
            if chats is None or conversation.id in chats
        ]

    def mirror(self, conversation: SimConversation) -> SimConversation:
        """This app's view of a chat of the simulator it was loaded into (``install_app``):
        the same id and title, the same people by name — each with this app's own per-app
        id — so ``peer.command(peer.user("ann"), peer.mirror(chat), …)`` acts there."""
        chat = self._conversations.get(conversation.id)
        if chat is None:
            chat = SimConversation(conversation.id, conversation.title, type=conversation.type)
            self._conversations[chat.id] = chat
        chat.members = [
            self.user(  # type: ignore[attr-defined]
                m.name,
                display_name=m.display_name,
                avatar_url=m.avatar_url,
                locale=m.locale,
                time_zone=m.time_zone,
            )
            for m in conversation.members
        ]
        return chat

    def _mirror(self, peer: Simulator, user: SimUser, conversation: SimConversation):
        """The same person and chat in ``peer``'s world (its own per-app ids)."""
        chat = peer.mirror(conversation)
        return peer.user(user.name), chat

    def _app_tools(self, call: SimCall, params: dict) -> dict:
        assert call.conversation is not None
        return {
            "tools": [
                tool_view(peer.app_id, tool)
                for peer in self._peers_in(call.conversation)
                for tool in peer.manifest.get("tools") or []
            ]
        }

    async def _call_tool(self, call: SimCall, params: dict) -> dict:
        conversation, user = call.conversation, call.user
        assert conversation is not None and user is not None  # needs both
        check_tool_depth(call.depth)
        if params["app_id"] == self.app_id:
            raise InvalidParams("an app calls its own code directly, not as a tool")
        peer = next((p for p in self._peers_in(conversation) if p.app_id == params["app_id"]), None)
        if peer is None:
            raise host_error("app_not_installed", f"{params['app_id']} is not an app of this chat")
        tool = find_tool(peer.manifest, params["name"])
        check_tool_arguments(tool, params["arguments"])
        peer_user, chat = self._mirror(peer, user, conversation)
        answer = await peer._run_tool(peer_user, chat, params["name"], params["arguments"], call)
        return await peer._post_tool_answer(chat, params["name"], answer)

    async def _run_tool(
        self,
        user: SimUser,
        conversation: SimConversation,
        name: str,
        arguments: dict[str, Any],
        caller: SimCall | None = None,
    ) -> Any:
        what = f"{self.app_id}.{name}"
        try:
            return await self._invoke(  # type: ignore[attr-defined]
                "tool",
                user,
                conversation,
                {"name": name, "arguments": arguments},
                read_only=True,
                depth=(caller.depth if caller else 0) + 1,
            )
        except AppCallError as exc:
            raise host_error("tool_failed", f"{what} failed ({exc.code}): {exc.message}") from None

    async def _post_tool_answer(
        self, conversation: SimConversation, name: str, answer: Any
    ) -> dict[str, Any]:
        result, card = check_tool_answer(answer, f"{self.app_id}.{name}")
        message_id = None
        if card is not None:
            try:
                self._check_card_media(card)  # type: ignore[attr-defined]
            except InvalidParams as exc:
                raise host_error("tool_failed", f"{self.app_id}.{name}: {exc}") from None
            message_id = self._post(conversation, "card", card)  # type: ignore[attr-defined]
        return {"result": result, "message_id": message_id}

    async def invoke_tool(
        self,
        user: SimUser,
        conversation: SimConversation,
        name: str,
        arguments: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Another app (the assistant) calls this app's tool ``name`` as ``user`` in
        ``conversation`` — the host's checks (``unknown_tool``, ``invalid_params`` for
        arguments not valid against the declared ``parameters``), the read-only invocation,
        its card posted as this app's card. Returns ``{"result", "message_id"}`` as
        ``apps.call_tool`` would; raises ``HostError`` (``tool_failed`` when the handler
        raised, timed out or answered something else than ``{result, card?}``)."""
        self._check_member(user, conversation)  # type: ignore[attr-defined]
        tool = find_tool(self.manifest, name)
        check_tool_arguments(tool, arguments or {})
        answer = await self._run_tool(user, conversation, name, arguments or {})
        return await self._post_tool_answer(conversation, name, answer)

    EFFECTS: dict[str, Any] = {}


RouteMixin.EFFECTS = {
    "messages.history": RouteMixin._history,
    "apps.tools": RouteMixin._app_tools,
    "apps.call_tool": RouteMixin._call_tool,
}
