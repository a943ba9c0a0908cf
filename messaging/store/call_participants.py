"""The ``call_participants`` collection: one document per (call, user).

``state`` is ``joined``, ``left`` or ``declined``; ``session_id`` is the device in the call
(a user is in a call on one device at a time). ``dropped_at`` is set when that device's
connection went away: past the grace period the participant is removed. ``audio``/``video``
are the mute and camera state the others see (stored as 1/0).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "call_participants"
INDEXES = [
    IndexModel([("call_id", ASCENDING), ("state", ASCENDING)], name="call_state"),
    IndexModel([("session_id", ASCENDING), ("state", ASCENDING)], name="session_state"),
    IndexModel([("state", ASCENDING), ("dropped_at", ASCENDING)], name="dropped"),
    IndexModel([("user_id", ASCENDING), ("state", ASCENDING)], name="user_state"),
]


def participant_id(call_id: str, user_id: str) -> str:
    return f"{call_id}|{user_id}"


class CallParticipants:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def join(
        self, call_id: str, user_id: str, session_id: str | None, media: str, now: int
    ) -> dict[str, Any] | None:
        """Join (or re-join after leaving or declining); None when already joined."""
        fields = {
            "call_id": call_id,
            "user_id": user_id,
            "session_id": session_id,
            "state": "joined",
            "audio": 1,
            "video": 1 if media == "video" else 0,
            "joined_at": now,
        }
        try:
            await self.collection.insert_one({"_id": participant_id(call_id, user_id), **fields})
        except DuplicateKeyError:
            doc = await self.collection.find_one_and_update(
                {"_id": participant_id(call_id, user_id), "state": {"$in": ["left", "declined"]}},
                {"$set": fields, "$unset": {"dropped_at": "", "left_at": ""}},
                return_document=ReturnDocument.AFTER,
            )
            return doc
        return {"_id": participant_id(call_id, user_id), **fields}

    async def decline(self, call_id: str, user_id: str, now: int) -> bool:
        try:
            await self.collection.insert_one(
                {
                    "_id": participant_id(call_id, user_id),
                    "call_id": call_id,
                    "user_id": user_id,
                    "state": "declined",
                    "declined_at": now,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def get_in_calls(self, user_ids: list[str]) -> dict[str, str]:
        """Of these people, those in a call right now: user id -> call id."""
        cursor = self.collection.find(
            {"user_id": {"$in": user_ids}, "state": "joined"}, {"user_id": 1, "call_id": 1}
        )
        return {doc["user_id"]: doc["call_id"] for doc in await cursor.to_list(None)}

    async def get(self, call_id: str, user_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": participant_id(call_id, user_id)})

    async def get_all(self, call_id: str) -> list[dict[str, Any]]:
        return await self.collection.find({"call_id": call_id}).to_list(length=None)

    async def count_joined(self, call_id: str) -> int:
        return await self.collection.count_documents({"call_id": call_id, "state": "joined"})

    async def leave(self, call_id: str, user_id: str, now: int) -> bool:
        result = await self.collection.update_one(
            {"_id": participant_id(call_id, user_id), "state": "joined"},
            {"$set": {"state": "left", "left_at": now}, "$unset": {"dropped_at": ""}},
        )
        return result.modified_count == 1

    async def leave_all(self, call_id: str, now: int) -> None:
        await self.collection.update_many(
            {"call_id": call_id, "state": "joined"},
            {"$set": {"state": "left", "left_at": now}, "$unset": {"dropped_at": ""}},
        )

    async def set_session(self, call_id: str, user_id: str, session_id: str) -> None:
        """The device now carrying this participant's media (a reconnect or another device)."""
        await self.collection.update_one(
            {"_id": participant_id(call_id, user_id), "state": "joined"},
            {"$set": {"session_id": session_id}, "$unset": {"dropped_at": ""}},
        )

    async def mark_dropped(self, session_id: str, now: int) -> list[dict[str, Any]]:
        """Note that a device's connection went away; the participants it carried."""
        found = await self.collection.find({"session_id": session_id, "state": "joined"}).to_list(
            length=None
        )
        for doc in found:
            await self.collection.update_one(
                {"_id": doc["_id"], "state": "joined", "session_id": session_id},
                {"$set": {"dropped_at": now}},
            )
        return found

    async def mark_back(self, session_id: str) -> None:
        """The device is connected again: its participants are no longer dropped."""
        await self.collection.update_many(
            {"session_id": session_id, "state": "joined"}, {"$unset": {"dropped_at": ""}}
        )

    async def get_dropped_before(self, before: int) -> list[dict[str, Any]]:
        return await self.collection.find(
            {"state": "joined", "dropped_at": {"$lte": before}}
        ).to_list(length=None)

    async def set_media_state(self, call_id: str, user_id: str, audio: bool, video: bool) -> bool:
        result = await self.collection.update_one(
            {"_id": participant_id(call_id, user_id), "state": "joined"},
            {"$set": {"audio": int(audio), "video": int(video)}},
        )
        return result.matched_count == 1
