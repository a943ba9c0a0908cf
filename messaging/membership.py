"""Who is in which conversation, cached per node and kept honest by a version number.

Every membership change bumps the conversation's ``members_version`` in MongoDB, invalidates the
local cache and publishes an invalidation to every node. A node that commits a message batch reads
the conversation's current version back in the same round trip and reloads when its cache is
older, so events never go to a member removed before the message was written.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from messaging.store.conversations import Conversations
from messaging.store.members import Members


@dataclass(frozen=True)
class Membership:
    conversation_id: str
    type: str
    version: int
    roles: dict[str, str]  # user_id -> owner | admin | member
    joined_seq: dict[str, int]

    def role_of(self, user_id: str) -> str | None:
        return self.roles.get(user_id)

    def is_admin(self, user_id: str) -> bool:
        return self.roles.get(user_id) in {"owner", "admin"}

    @property
    def member_ids(self) -> list[str]:
        return list(self.roles)

    def rooms(self, *, exclude: str | None = None) -> list[str]:
        """The Socket.IO rooms of every member's devices."""
        return [f"user:{user_id}" for user_id in self.roles if user_id != exclude]


class MembershipCache:
    def __init__(self, conversations: Conversations, members: Members, max_entries: int = 20_000):
        self._conversations = conversations
        self._members = members
        self._entries: OrderedDict[str, Membership] = OrderedDict()
        self._max_entries = max_entries

    async def get(self, conversation_id: str) -> Membership | None:
        """The conversation's membership, or None when it does not exist."""
        cached = self._entries.get(conversation_id)
        if cached is not None:
            self._entries.move_to_end(conversation_id)
            return cached
        return await self._load(conversation_id)

    async def ensure_version(self, conversation_id: str, version: int) -> Membership | None:
        """Reload when the cached entry is older than ``version``."""
        cached = self._entries.get(conversation_id)
        if cached is not None and cached.version >= version:
            return cached
        return await self._load(conversation_id)

    def invalidate(self, conversation_id: str) -> None:
        self._entries.pop(conversation_id, None)

    async def _load(self, conversation_id: str) -> Membership | None:
        conversation = await self._conversations.get_conversation(conversation_id)
        if conversation is None:
            self.invalidate(conversation_id)
            return None
        members = await self._members.get_members(conversation_id)
        membership = Membership(
            conversation_id=conversation_id,
            type=conversation["type"],
            version=conversation.get("members_version", 0),
            roles={m["user_id"]: m["role"] for m in members},
            joined_seq={m["user_id"]: m.get("joined_seq", 0) for m in members},
        )
        self._entries[conversation_id] = membership
        self._entries.move_to_end(conversation_id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return membership
