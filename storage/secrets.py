"""Keys the platform needs: from config in production, generated once under DATA_DIR otherwise."""

from __future__ import annotations

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
