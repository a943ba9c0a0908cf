"""The ``contacts`` collection (friend requests and friendships). Being written in parallel."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "contacts"
INDEXES: list = []


class Contacts:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]
