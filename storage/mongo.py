"""MongoDB through PyMongo's async API (``pymongo.AsyncMongoClient``; Motor is deprecated).

``open_database`` starts the embedded nx-27017 server when no ``MONGODB_URL`` is configured and
yields a ``Database`` handle; ``ensure_indexes`` applies the index declarations that each
collection module keeps beside its queries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from storage.backup import lock_data_dir
from storage.config import Config
from storage.embedded_mongo import EmbeddedMongo

log = logging.getLogger(__name__)

# collection name -> the indexes it needs
IndexSpec = Mapping[str, Sequence[IndexModel]]


def now_ms() -> int:
    """Now, as integer milliseconds since the epoch (UTC): how every timestamp is stored.

    Integers survive every update operator on both MongoDB and nx-27017, which turns a datetime
    written by ``$set`` into a string (see tests/storage/test_mongo_conformance.py).
    """
    return time.time_ns() // 1_000_000


def iso(ms: int | None) -> str | None:
    """A stored millisecond timestamp as ISO 8601 UTC for the API."""
    if ms is None:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


async def count_up_to(collection: Any, query: Mapping[str, Any], cap: int) -> int:
    """How many documents match ``query``, counting at most ``cap``. A find of their ids, not
    ``count_documents``: PyMongo sends that as an aggregation, which nx-27017 runs through
    temporary tables — about ten times a find (58 against 6 ms per call over 5,000 documents),
    and the embedded store runs one command at a time, so every node's hot paths pay for it.
    The cap bounds what the find brings back, in one reply (no ``getMore`` past 101 ids)."""
    cursor = collection.find(query, {"_id": 1}).limit(cap).batch_size(cap)
    return len(await cursor.to_list(None))


def new_id() -> str:
    """A new document id: an ObjectId's 24 hex digits, sortable by creation time."""
    return str(ObjectId())


@dataclass
class Database:
    client: AsyncMongoClient
    db: AsyncDatabase
    url: str
    embedded: EmbeddedMongo | None = None

    async def ping(self) -> None:
        await self.db.command("ping")


@asynccontextmanager
async def open_database(
    config: Config, listeners: Sequence[monitoring.CommandListener] = ()
) -> AsyncIterator[Database]:
    """Connect to MongoDB (starting the embedded server first if none is configured).
    ``listeners``: the driver's command monitoring (the gateway times commands for /metrics)."""
    embedded = None
    url = config.mongodb_url
    if url is None:
        # Held while we use the data dir: `run.py restore` refuses meanwhile (storage/backup.py).
        data_dir_lock = lock_data_dir(config.data_dir)
        embedded = EmbeddedMongo(config.data_dir / "mongo")
        await embedded.start()
        url = embedded.url
    client: AsyncMongoClient = AsyncMongoClient(
        url,
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        appname="aetherial",
        event_listeners=list(listeners),
    )
    try:
        yield Database(client=client, db=client[config.mongodb_db], url=url, embedded=embedded)
    finally:
        await client.close()
        if embedded is not None:
            await embedded.stop()
            data_dir_lock.release()


async def ensure_indexes(db: AsyncDatabase, specs: IndexSpec) -> None:
    """Create every declared index; creating an existing index again is a no-op."""
    for collection, indexes in specs.items():
        if indexes:
            await db[collection].create_indexes(list(indexes))
