"""Blob storage for media bytes: content-addressed (the key is the SHA-256 of the bytes).

Two backends behind one interface, chosen by ``MEDIA_BACKEND``:

- ``local`` (default): files under ``DATA_DIR/media/<2 hex>/<2 hex>/<sha256>``, written to a
  temporary file and renamed into place, so a reader never sees half a blob. One node only.
- ``gridfs``: the same MongoDB through GridFS (PyMongo's async ``AsyncGridFSBucket``, bucket
  ``media``; the blob's ``_id`` is its key), shared by every node. Probed on nx-27017: upload,
  download, seek (for range requests) and duplicate-key refusal behave as on MongoDB; only
  ``count_documents`` on the dotted ``media.chunks`` collection fails there, which this module
  does not use.

Identical bytes are stored once. Blobs are never rewritten. ``delete`` removes one: its caller
checks first that nothing else points at it (several media documents may share one).

``UrlSigner`` makes the short-lived signed URLs media are served by: HMAC-SHA256 over
(id, variant, expiry) with a key every node shares.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from pymongo.asynchronous.database import AsyncDatabase

from storage.config import Config
from storage.secrets import shared_key

READ_CHUNK = 256 * 1024


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class BlobStore(Protocol):
    async def put_file(self, path: Path) -> str:
        """Store a file's bytes; returns its key (the SHA-256, hex). The file is left in place."""

    async def put_bytes(self, data: bytes) -> str:
        """Store bytes; returns their key."""

    async def size(self, key: str) -> int | None:
        """The blob's length in bytes, or None when there is no such blob."""

    def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """The bytes ``[start, start + length)`` of a blob, in chunks."""

    async def delete(self, key: str) -> bool:
        """Remove a blob (idempotent); False when there was none."""


class LocalBlobs:
    """Content-addressed files under a folder (``DATA_DIR/media``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError("not a blob key")
        return self.root / key[:2] / key[2:4] / key

    def _put(self, source: Path) -> str:
        key = _sha256_file(source)
        target = self._path(key)
        if target.exists():
            return key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return key

    async def put_file(self, path: Path) -> str:
        import asyncio

        return await asyncio.to_thread(self._put, path)

    async def put_bytes(self, data: bytes) -> str:
        import asyncio

        def put() -> str:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".bytes-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                return self._put(Path(tmp))
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

        return await asyncio.to_thread(put)

    async def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except (FileNotFoundError, ValueError):
            return None

    async def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except (FileNotFoundError, ValueError):
            return False
        return True

    async def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        import asyncio

        file = await asyncio.to_thread(self._path(key).open, "rb")
        try:
            file.seek(start)
            left = length
            while left > 0:
                chunk = await asyncio.to_thread(file.read, min(READ_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
        finally:
            file.close()


class GridFsBlobs:
    """Content-addressed blobs in MongoDB's GridFS (bucket ``media``), shared by every node."""

    def __init__(self, db: AsyncDatabase) -> None:
        from gridfs import AsyncGridFSBucket

        self.db = db
        self.bucket = AsyncGridFSBucket(db, bucket_name="media")

    async def _exists(self, key: str) -> bool:
        return await self.db["media.files"].find_one({"_id": key}, {"_id": 1}) is not None

    async def _upload(self, key: str, source) -> None:
        from pymongo.errors import DuplicateKeyError, OperationFailure

        if await self._exists(key):
            return
        try:
            await self.bucket.upload_from_stream_with_id(key, key, source)
        except (DuplicateKeyError, OperationFailure):
            # Another upload of the same bytes won; the blob is there (or the error is real).
            if not await self._exists(key):
                raise

    async def put_file(self, path: Path) -> str:
        import asyncio

        key = await asyncio.to_thread(_sha256_file, path)
        with path.open("rb") as file:
            await self._upload(key, file)
        return key

    async def put_bytes(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        await self._upload(key, data)
        return key

    async def size(self, key: str) -> int | None:
        found = await self.db["media.files"].find_one({"_id": key}, {"length": 1})
        return None if found is None else int(found["length"])

    async def delete(self, key: str) -> bool:
        from gridfs.errors import NoFile

        try:
            await self.bucket.delete(key)
        except NoFile:
            return False
        return True

    async def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        stream = await self.bucket.open_download_stream(key)
        try:
            await stream.seek(start)
            left = length
            while left > 0:
                chunk = await stream.read(min(READ_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
        finally:
            await stream.close()


def make_blob_store(config: Config, db: AsyncDatabase) -> BlobStore:
    if config.media_backend == "gridfs":
        return GridFsBlobs(db)
    return LocalBlobs(config.data_dir / "media" / "blobs")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class UrlSigner:
    """Signed, expiring media URLs: ``/media/{id}[/thumbnail]?exp=<unix s>&sig=<HMAC>``.

    The key is shared by every node (``platform_keys``), loaded once by ``load``.
    """

    def __init__(self, db: AsyncDatabase, ttl: int) -> None:
        self._db = db
        self.ttl = ttl
        self._key: bytes | None = None

    async def load(self) -> None:
        if self._key is None:
            self._key = await shared_key(self._db, "media_urls")

    def _sig(self, media_id: str, variant: str, exp: int) -> str:
        if self._key is None:
            raise RuntimeError("UrlSigner.load() was not awaited")
        message = f"{media_id}|{variant}|{exp}".encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def expiry(self, now: float | None = None) -> int:
        # Rounded up to the minute: URLs signed in the same minute are the same URL, so a
        # client's HTTP cache can reuse what it fetched.
        now = time.time() if now is None else now
        return (int(now + self.ttl) // 60 + 1) * 60

    def url(self, media_id: str, variant: str, exp: int) -> str:
        suffix = "" if variant == "original" else f"/{variant}"
        return f"/media/{media_id}{suffix}?exp={exp}&sig={self._sig(media_id, variant, exp)}"

    def verify(self, media_id: str, variant: str, exp: str | None, sig: str | None) -> str:
        """'' when the signature is good and unexpired, else why not: 'expired' or 'invalid'."""
        if not exp or not sig or not exp.isdigit() or len(exp) > 12:
            return "invalid"
        if not hmac.compare_digest(self._sig(media_id, variant, int(exp)), sig):
            return "invalid"
        if int(exp) != 0 and int(exp) < time.time():  # exp=0: does not expire (avatars)
            return "expired"
        return ""
