"""Who is in which conversation, cached per node and kept honest by a version number.

Every membership change bumps the conversation's ``members_version`` in MongoDB, invalidates the
local cache and publishes an invalidation to every node. A node that commits a message batch reads
the conversation's current version back in the same round trip and reloads when its cache is
older, so events never go to a member removed before the message was written.

Invalidations can be lost (Redis down, a subscriber reconnecting), so entries also have a bounded
age, a shorter one while invalidations are not arriving, and all are dropped when the subscriber
reconnects (``MembershipCache``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from messaging.store.conversations import Conversations
from messaging.store.members import Members

# Seconds a cached member list is used before it is read again, however quiet pub/sub is: a
# lost invalidation cannot keep a removed member reading for longer than this.
MAX_AGE = 30.0
# The same while invalidations are known not to arrive (the pub/sub subscriber is down).
MAX_AGE_UNLISTENED = 1.0


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
    """Per-node cache of member lists, never trusted blindly.

    Invalidations travel over pub/sub, which can lose them (a Redis outage, a dropped
    subscriber). So an entry is re-read from MongoDB once it is ``max_age`` seconds old; while
    ``invalidations_live()`` says they are not arriving, once it is ``max_age_unlistened``
    seconds old; and ``invalidate_all`` (run when the subscriber reconnects) drops everything.
    A read that started before an invalidation does not store its (possibly older) result.
    """

    def __init__(
        self,
        conversations: Conversations,
        members: Members,
        max_entries: int = 20_000,
        *,
        max_age: float = MAX_AGE,
        max_age_unlistened: float = MAX_AGE_UNLISTENED,
        invalidations_live: Callable[[], bool] = lambda: True,
    ):
        self._conversations = conversations
        self._members = members
        self._entries: OrderedDict[str, tuple[float, Membership]] = OrderedDict()
        self._max_entries = max_entries
        self.max_age = max_age
        self.max_age_unlistened = max_age_unlistened
        self.invalidations_live = invalidations_live
        self._generation = 0  # moves on every invalidation

    def _fresh(self, conversation_id: str) -> Membership | None:
        entry = self._entries.get(conversation_id)
        if entry is None:
            return None
        loaded_at, membership = entry
        limit = self.max_age if self.invalidations_live() else self.max_age_unlistened
        if time.monotonic() - loaded_at > limit:
            return None
        return membership

    async def get(self, conversation_id: str) -> Membership | None:
        """The conversation's membership, or None when it does not exist."""
        cached = self._fresh(conversation_id)
        if cached is not None:
            self._entries.move_to_end(conversation_id)
            return cached
        return await self._load(conversation_id)

    async def ensure_version(self, conversation_id: str, version: int) -> Membership | None:
        """Reload when the cached entry is older than ``version``."""
        cached = self._fresh(conversation_id)
        if cached is not None and cached.version >= version:
            return cached
        return await self._load(conversation_id)

    def invalidate(self, conversation_id: str) -> None:
        self._generation += 1
        self._entries.pop(conversation_id, None)

    def invalidate_all(self) -> None:
        """Forget every entry (invalidations may have been missed)."""
        self._generation += 1
        self._entries.clear()

    async def _load(self, conversation_id: str) -> Membership | None:
        generation = self._generation
        loaded_at = time.monotonic()
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
        if generation != self._generation:
            # An invalidation arrived while we read: this answer is as fresh as any read, but
            # may predate the change, so it is not kept for others.
            return membership
        self._entries[conversation_id] = (loaded_at, membership)
        self._entries.move_to_end(conversation_id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return membership
