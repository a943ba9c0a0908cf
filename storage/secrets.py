"""Keys the platform needs: from config in production, generated once under DATA_DIR otherwise."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from storage.config import Config


def load_or_create_key(path: Path) -> str:
    """Read a key file, creating it (mode 0600, 64 random bytes, URL-safe) when absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if len(key) < 32:
            raise ValueError(f"{path} holds a key shorter than 32 characters") from None
        return key
    key = secrets.token_urlsafe(64)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key


def jwt_secret(config: Config) -> str:
    return config.jwt_secret or load_or_create_key(config.data_dir / "jwt.key")


async def shared_key(db, name: str) -> bytes:
    """A random key every node shares, created once in MongoDB (``platform_keys``).

    For values that must stay stable across restarts and nodes, such as per-app user ids; the
    unique ``_id`` decides which node's key wins the first time.
    """
    from pymongo.errors import DuplicateKeyError

    with contextlib.suppress(DuplicateKeyError):  # another node created it first
        await db.platform_keys.insert_one({"_id": name, "key": secrets.token_hex(32)})
    found = await db.platform_keys.find_one({"_id": name})
    return bytes.fromhex(found["key"])
