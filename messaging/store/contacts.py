"""The ``contacts`` collection: one document per *unordered* pair of users who are connected.

Data model. The id is ``"<low>|<high>"``, the two user ids in sorted order, so both people address
the same single document and there is exactly one place that says how they stand::

    {_id: "<low>|<high>", users: [low, high],
     state: "pending" | "friends",
     requester_id, addressee_id,     # who asked whom (kept after acceptance)
     message: str,                   # the request's note, at most 200 characters
     requested_at: ms, since: ms,    # since: when they became friends
     updated_at: ms}

No document means strangers. Every transition is one conditional single-document write, so two
sides can never disagree, even under concurrency and without (non-isolated) transactions:

- send: ``insert_one`` — the ``_id`` unique index decides a race between two requests; the
  loser reads the winner and either returns it (same requester: idempotent) or accepts it
  (mutual request);
- accept: ``pending → friends`` conditional on state, requester and addressee;
- decline / cancel: ``delete_one`` conditional on state and direction;
- remove friend: ``delete_one`` conditional on ``state: friends``;
- block: ``find_one_and_delete`` whatever the state (the block itself lives in ``blocks``).

Blocks are in ``messaging/store/blocks.py``; a block is written *before* the pair is deleted and a
new request re-checks blocks *after* its insert, so one of the two always sees the other.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "contacts"
INDEXES = [
    # friend lists, newest first (users holds two scalar ids: a multikey index)
    IndexModel(
        [("users", ASCENDING), ("state", ASCENDING), ("since", DESCENDING)], name="user_state"
    ),
    IndexModel([("addressee_id", ASCENDING), ("state", ASCENDING)], name="incoming"),
    IndexModel([("requester_id", ASCENDING), ("state", ASCENDING)], name="outgoing"),
]

PENDING = "pending"
FRIENDS = "friends"


def pair_id(a: str, b: str) -> str:
    low, high = sorted((a, b))
    return f"{low}|{high}"


def other_of(contact: dict[str, Any], user_id: str) -> str:
    low, high = contact["users"]
    return high if low == user_id else low


class Contacts:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def get_contact(self, a: str, b: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": pair_id(a, b)})

    async def add_request(
        self, requester_id: str, addressee_id: str, message: str, now: int
    ) -> dict[str, Any] | None:
        """Insert a pending request; None when the pair already has a document."""
        contact = {
            "_id": pair_id(requester_id, addressee_id),
            "users": sorted((requester_id, addressee_id)),
            "state": PENDING,
            "requester_id": requester_id,
            "addressee_id": addressee_id,
            "message": message,
            "requested_at": now,
            "updated_at": now,
        }
        try:
            await self.collection.insert_one(contact)
        except DuplicateKeyError:
            return None
        return contact

    async def accept_request(
        self, requester_id: str, addressee_id: str, now: int
    ) -> dict[str, Any] | None:
        """pending → friends, only if that exact request is still pending; None otherwise."""
        return await self.collection.find_one_and_update(
            {
                "_id": pair_id(requester_id, addressee_id),
                "state": PENDING,
                "requester_id": requester_id,
                "addressee_id": addressee_id,
            },
            {"$set": {"state": FRIENDS, "since": now, "updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def delete_request(self, requester_id: str, addressee_id: str) -> bool:
        """Delete that exact pending request (decline or cancel); False when it was not there."""
        result = await self.collection.delete_one(
            {
                "_id": pair_id(requester_id, addressee_id),
                "state": PENDING,
                "requester_id": requester_id,
            }
        )
        return result.deleted_count == 1

    async def remove_friendship(self, a: str, b: str) -> bool:
        result = await self.collection.delete_one({"_id": pair_id(a, b), "state": FRIENDS})
        return result.deleted_count == 1

    async def delete_contact(self, a: str, b: str) -> dict[str, Any] | None:
        """Delete whatever links the pair (used by blocking); returns what was deleted."""
        return await self.collection.find_one_and_delete({"_id": pair_id(a, b)})

    async def get_friends(
        self, user_id: str, limit: int, before: tuple[int, str] | None = None
    ) -> list[dict[str, Any]]:
        """Friendships of ``user_id``, newest first; ``before`` is a (since, pair id) cursor."""
        query: dict[str, Any] = {"users": user_id, "state": FRIENDS}
        if before is not None:
            since, last_id = before
            query["$or"] = [{"since": {"$lt": since}}, {"since": since, "_id": {"$lt": last_id}}]
        cursor = self.collection.find(query).sort([("since", DESCENDING), ("_id", DESCENDING)])
        return await cursor.limit(limit).to_list(None)

    async def get_friend_ids(self, user_id: str) -> list[str]:
        cursor = self.collection.find({"users": user_id, "state": FRIENDS}, {"users": 1})
        return [other_of(contact, user_id) async for contact in cursor]

    async def get_requests(
        self, user_id: str, *, incoming: bool, limit: int
    ) -> list[dict[str, Any]]:
        """Pending requests to (``incoming``) or from ``user_id``, newest first."""
        field = "addressee_id" if incoming else "requester_id"
        cursor = self.collection.find({field: user_id, "state": PENDING}).sort(
            [("requested_at", DESCENDING), ("_id", DESCENDING)]
        )
        return await cursor.limit(limit).to_list(None)

    async def get_user_contacts(self, user_id: str, limit: int) -> list[dict[str, Any]]:
        """Every pair document ``user_id`` is in (friends and pending requests both ways)."""
        cursor = self.collection.find({"users": user_id}).sort("_id", ASCENDING)
        return await cursor.limit(limit).to_list(None)
