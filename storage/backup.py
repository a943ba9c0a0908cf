"""Backup and restore of an embedded-default data dir: one gzip-compressed tar file.

``python run.py backup FILE`` and ``python run.py restore FILE`` (see README "Backup and
restore"). Production (``MONGODB_URL`` set) uses ``mongodump``/``mongorestore`` instead; both
functions refuse there and say so.

The archive holds ``manifest.json`` first (format name and version, creation time, Aetherial
version, the source's layout, and every member's path, type, mode, size and SHA-256), then the
data dir's files under ``data/``:

- ``mongo/*.db``: the SQLite files of the embedded server (nx-27017), each copied through
  SQLite's online backup API in one step. That holds a read transaction for the whole copy, so
  the copy is one consistent state even while the server writes (WAL mode lets it go on
  writing meanwhile): no lock, no pause, the gateway may keep running.
- everything else (keys such as ``jwt.key``, ``media/blobs``, mini-programs' folders, ...),
  read *after* the database. Blobs are written before the row that references them, so every
  blob the database snapshot references is already on disk.

Restore checks the whole archive before touching anything: a known format, safe paths (no
absolute path, no ``..``, only regular files and folders: no links or devices), every size and
checksum, every member present, and ``PRAGMA integrity_check`` on each database. It extracts into
``DATA_DIR/.restore-staging-*`` (inside the data dir, because the data dir is often a mount point
and ``rename`` does not cross file systems), then moves the current contents aside into
``DATA_DIR/.before-restore-<time>/`` and the staged ones in. A failure before that swap leaves
the data dir exactly as it was.

A running platform holds a shared ``flock`` on ``DATA_DIR/.lock`` (``lock_data_dir``, taken
where the embedded server is started); restore takes it exclusively without waiting, so it
refuses while anything uses the data dir, and a gateway cannot start in the middle of a restore.
The lock is shared, not exclusive, because ``create-admin`` and ``seed-demo`` may run beside a
running gateway.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from storage.config import Config

FORMAT = "aetherial-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATA_PREFIX = "data/"  # members live under data/, so no data file can collide with the manifest
MANIFEST_MAX_BYTES = 256 * 2**20  # a million media blobs make a manifest of about 200 MB
LOCK_FILE = ".lock"
ASIDE_PREFIX = ".before-restore-"
STAGING_PREFIX = ".restore-staging-"
DATABASE_DIR = "mongo"
# Not state: uploads still arriving, and half-written blobs (renamed into place when complete).
SKIPPED_PATHS = {"media/incoming"}
SKIPPED_PREFIXES = (".incoming-",)
CHUNK = 1 << 20
README_SECTION = 'README.md, section "Backup and restore"'
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BackupError(Exception):
    """The backup or restore failed; nothing was changed. ``exit_code`` 1: it failed, 2: bad
    input or configuration (what ``run.py`` exits with)."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class DataDirBusy(OSError):
    """The data dir is locked by a restore (for a gateway) or by a running platform (for a
    restore)."""


# --- the lock a running platform holds -----------------------------------------------------


class DataDirLock:
    """A ``flock`` on ``DATA_DIR/.lock``, released by ``release()`` (or when the process ends:
    the kernel drops it with the file descriptor, so a killed gateway leaves no stale lock)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:  # a start-up that failed halfway drops it without release()
        self.release()


def _lock(data_dir: Path, operation: int) -> DataDirLock:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # O_CLOEXEC (Python's default) keeps the lock out of child processes: an embedded server or
    # a mini-program that outlived us must not keep a restore out.
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return DataDirLock(fd)


def lock_data_dir(data_dir: Path) -> DataDirLock:
    """The shared lock a process using the data dir holds; ``DataDirBusy`` during a restore."""
    try:
        return _lock(data_dir, fcntl.LOCK_SH)
    except BlockingIOError:
        raise DataDirBusy(
            f"{data_dir} is being restored (another process holds {data_dir / LOCK_FILE}); "
            "start Aetherial when the restore has finished"
        ) from None


# --- what a backup holds --------------------------------------------------------------------


@dataclass
class _Member:
    path: str  # relative to the data dir, POSIX
    kind: str  # "file" | "dir"
    mode: int
    uid: int
    gid: int
    mtime: int
    size: int = 0
    sha256: str = ""
    source: Path | None = None  # where the bytes are read from when the tar is written

    def manifest_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": self.path, "type": self.kind, "mode": self.mode}
        entry.update(uid=self.uid, gid=self.gid, mtime=self.mtime)
        if self.kind == "file":
            entry.update(size=self.size, sha256=self.sha256)
        return entry


@dataclass
class _Collected:
    members: list[_Member] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _member(path: str, info: os.stat_result, kind: str) -> _Member:
    return _Member(
        path=path,
        kind=kind,
        mode=stat.S_IMODE(info.st_mode),
        uid=info.st_uid,
        gid=info.st_gid,
        mtime=int(info.st_mtime),
    )


def _hash_copy(source: Path, target: Path | None) -> tuple[int, str]:
    """(size, sha256) of ``source``, copying it to ``target`` in the same single read."""
    digest, size = hashlib.sha256(), 0
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(source.open("rb"))
        writer = stack.enter_context(target.open("xb")) if target is not None else None
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if writer is not None:
                writer.write(chunk)
    return size, digest.hexdigest()


def _integrity_problem(path: Path) -> str | None:
    """None when SQLite's ``PRAGMA integrity_check`` says ok, else what it says."""
    try:
        connection = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
        try:
            rows = connection.execute("PRAGMA integrity_check").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        return str(exc)
    if rows != [("ok",)]:
        return "; ".join(str(row[0]) for row in rows[:5])
    return None


def _snapshot_database(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (see the module docstring)."""
    try:
        reader = sqlite3.connect(f"file:{quote(str(source))}?mode=ro", uri=True, timeout=60)
        writer = sqlite3.connect(target)
        try:
            reader.backup(writer)  # pages=-1: one step, one read transaction, one state
            # A self-contained file (no -wal beside it); the server turns WAL on when it opens it.
            writer.execute("PRAGMA journal_mode=DELETE")
        finally:
            writer.close()
            reader.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy the database {source}: {exc}") from None
    problem = _integrity_problem(target)
    if problem is not None:
        raise BackupError(f"the database {source} fails its integrity check: {problem}")


def _collect(data_dir: Path, staging: Path, excluded: set[Path]) -> _Collected:
    """Snapshot the database into ``staging``, then list (and copy what may change) the rest."""
    found = _Collected()
    database_dir = data_dir / DATABASE_DIR
    databases = sorted(database_dir.glob("*.db")) if database_dir.is_dir() else []
    if not databases:
        raise BackupError(
            f"nothing to back up: {database_dir} holds no database (is --data-dir / "
            "AETHERIAL_DATA_DIR the folder Aetherial runs with?)",
            exit_code=2,
        )
    (staging / DATABASE_DIR).mkdir(mode=0o700)
    found.members.append(_member(DATABASE_DIR, database_dir.stat(), "dir"))
    for source in databases:
        relative = f"{DATABASE_DIR}/{source.name}"
        target = staging / DATABASE_DIR / source.name
        _snapshot_database(source, target)
        member = _member(relative, source.stat(), "file")
        member.size, member.sha256 = _hash_copy(target, None)
        member.source = target
        found.members.append(member)
        found.databases.append(relative)
    # The rest is read after the database: every blob the snapshot references exists already.
    for entry in sorted(data_dir.iterdir()):
        name = entry.name
        if (
            name in {LOCK_FILE, DATABASE_DIR}
            or name.startswith((ASIDE_PREFIX, STAGING_PREFIX))
            or (excluded and entry.resolve() in excluded)
        ):
            continue
        for member in _walk(data_dir, entry, staging, excluded, found):
            found.members.append(member)
            if "/" not in member.path:
                (found.keys if member.kind == "file" else found.folders).append(member.path)
    return found


def _walk(
    data_dir: Path, entry: Path, staging: Path, excluded: set[Path], found: _Collected
) -> Iterator[_Member]:
    """Members for ``entry`` and below, parents first; symbolic links, sockets and devices are
    skipped (an app's folder may hold a link to anywhere, which must not pull that in)."""
    relative = entry.relative_to(data_dir).as_posix()
    if relative in SKIPPED_PATHS or entry.name.startswith(SKIPPED_PREFIXES):
        return
    if excluded and entry.resolve() in excluded:
        return
    try:
        info = entry.lstat()
    except FileNotFoundError:  # deleted meanwhile (a finished upload, a removed media)
        return
    if stat.S_ISDIR(info.st_mode):
        yield _member(relative, info, "dir")
        try:
            children = sorted(entry.iterdir())
        except FileNotFoundError:
            return
        for child in children:
            yield from _walk(data_dir, child, staging, excluded, found)
        return
    if not stat.S_ISREG(info.st_mode):
        found.skipped.append(relative)
        return
    member = _member(relative, info, "file")
    # Blobs never change once in place (content-addressed, renamed in whole): read where they
    # are. Anything else may change while we read it, so it is copied once and the copy used.
    immutable = relative.startswith("media/blobs/")
    copy = None if immutable else staging / "files" / relative
    if copy is not None:
        copy.parent.mkdir(parents=True, exist_ok=True)
    try:
        member.size, member.sha256 = _hash_copy(entry, copy)
    except FileNotFoundError:
        return
    member.source = entry if immutable else copy
    yield member


class _HashingReader:
    """Reads a file for the tar while hashing it, to prove it did not change since listed."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(size)
        self.digest.update(chunk)
        return chunk


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aetherial")
    except PackageNotFoundError:
        return "unknown"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _refuse_production(config: Config, what: str) -> None:
    if config.mongodb_url is None:
        return
    keys = [
        name
        for name, setting in (
            ("jwt.key", config.jwt_secret),
            ("vapid_private.pem", config.vapid_private_key),
            ("credentials_ed25519.pem", config.credentials_private_key),
        )
        if not setting
    ]
    local = [*keys, "miniapps/"]
    if config.media_backend == "local":
        local.append("media/blobs/")
    raise BackupError(
        f"{what} works on the embedded database only, and MONGODB_URL is set: use mongodump / "
        f"mongorestore as {README_SECTION} shows, and copy these files of {config.data_dir} "
        f"with it: {', '.join(local)}",
        exit_code=2,
    )


def backup(config: Config, path: Path) -> str:
    """Write a backup of ``config.data_dir`` to ``path`` (via ``path.tmp``, renamed when
    complete); returns a one-line summary. Works with the gateway running or not."""
    _refuse_production(config, "backup")
    data_dir = config.data_dir
    path = Path(path)
    if not data_dir.is_dir():
        raise BackupError(f"no data dir at {data_dir}", exit_code=2)
    if path.is_dir():
        raise BackupError(f"{path} is a folder: give the backup file's name", exit_code=2)
    if not path.parent.is_dir():
        raise BackupError(f"no folder {path.parent} to write the backup into", exit_code=2)
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise BackupError(f"cannot write {tmp}: {exc.strerror}", exit_code=2) from None
    try:
        # Two backups into one file at once would interleave their bytes.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)  # and its .tmp is the other backup's: left alone
        raise BackupError(f"another backup is writing {tmp}", exit_code=2) from None
    try:
        os.ftruncate(fd, 0)
        staging = Path(tempfile.mkdtemp(prefix=".aetherial-backup-", dir=path.parent))
        try:
            # Only paths inside the data dir need leaving out (and resolving each file is
            # not free: skip it when there are none).
            inside = config.data_dir.resolve()
            excluded = {
                p.resolve() for p in (path, tmp, staging) if p.resolve().is_relative_to(inside)
            }
            summary = _write(config, fd, tmp, path, staging, excluded)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.close(fd)
    return summary


def _write(
    config: Config, fd: int, tmp: Path, path: Path, staging: Path, excluded: set[Path]
) -> str:
    started = _utc_now()
    try:
        found = _collect(config.data_dir, staging, excluded)
    except OSError as exc:
        raise BackupError(
            f"cannot read {exc.filename or config.data_dir}: {exc.strerror}"
        ) from None
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "aetherial_version": _version(),
        "source": {
            "data_dir": str(config.data_dir.resolve()),
            "mongodb_db": config.mongodb_db,
            "media_backend": config.media_backend,
        },
        "layout": {
            "database": found.databases,
            "keys": found.keys,
            "folders": found.folders,
            "skipped": found.skipped,
        },
        "members": [member.manifest_entry() for member in found.members],
    }
    encoded = json.dumps(manifest, indent=1).encode()
    total = 0
    try:
        with (
            os.fdopen(os.dup(fd), "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as compressed,
            tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(encoded), 0o600, int(started.timestamp())
            tar.addfile(info, io.BytesIO(encoded))
            for member in found.members:
                total += member.size
                _add(tar, member)
            tar.close()
            compressed.close()
            raw.flush()
            os.fsync(raw.fileno())
    except OSError as exc:
        raise BackupError(f"cannot write {tmp}: {exc.strerror or exc}") from None
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # the rename itself durable, where the system allows
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    files = sum(1 for member in found.members if member.kind == "file")
    skipped = f"; skipped (not regular files): {', '.join(found.skipped)}" if found.skipped else ""
    return (
        f"backup written to {path}: {files} files, {_size(total)} before compression, "
        f"{_size(path.stat().st_size)} compressed; database "
        f"{', '.join(found.databases)} as of {manifest['created_at']}{skipped}"
    )


def _size(count: int) -> str:
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count / 1024:.0f} KiB"


def _add(tar: tarfile.TarFile, member: _Member) -> None:
    info = tarfile.TarInfo(DATA_PREFIX + member.path)
    info.mode, info.uid, info.gid, info.mtime = member.mode, member.uid, member.gid, member.mtime
    if member.kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        return
    info.size = member.size
    assert member.source is not None
    with member.source.open("rb") as file:
        reader = _HashingReader(file)
        tar.addfile(info, reader)  # reads exactly size bytes; fewer raises
    if reader.digest.hexdigest() != member.sha256:
        raise BackupError(f"{member.path} changed while being backed up: run the backup again")


# --- restore --------------------------------------------------------------------------------


class _Damaged(Exception):
    """The archive is not a sound Aetherial backup (message: why)."""


def _safe_path(raw: Any) -> str:
    """A member path relative to the data dir, or ``_Damaged`` when it could land elsewhere."""
    if not isinstance(raw, str) or not raw or len(raw) > 4096 or "\0" in raw:
        raise _Damaged(f"a member has an invalid path: {raw!r}")
    if raw.startswith("/"):
        raise _Damaged(f"a member has an absolute path: {raw!r}")
    parts = raw.split("/")
    if any(part in {"", ".", ".."} for part in parts):
        raise _Damaged(f"a member's path leaves the data dir or is not normal: {raw!r}")
    if parts[0] == LOCK_FILE or parts[0].startswith((ASIDE_PREFIX, STAGING_PREFIX)):
        raise _Damaged(f"a member has a reserved name: {raw!r}")
    return raw


def _entry_ok(entry: dict[str, Any]) -> bool:
    def count(name: str, high: int = 2**63) -> bool:
        value = entry.get(name)
        return type(value) is int and 0 <= value < high

    if not all(count(name) for name in ("uid", "gid", "mtime")) or not count("mode", 0o10000):
        return False
    if entry.get("type") == "dir":
        return True
    digest = entry.get("sha256")
    return (
        entry.get("type") == "file"
        and count("size")
        and isinstance(digest, str)
        and _SHA256.fullmatch(digest) is not None
    )


def _read_manifest(data: bytes) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The members by path and the database files, from a checked manifest."""
    try:
        manifest = json.loads(data)
    except ValueError:
        raise _Damaged("manifest.json is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _Damaged(f"manifest.json is not of the format {FORMAT!r}: not an Aetherial backup")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise _Damaged(
            f"backup format version {version!r} is not one this Aetherial ({_version()}) reads "
            f"(it reads {FORMAT_VERSION}); the backup was made by Aetherial "
            f"{manifest.get('aetherial_version', 'unknown')!s:.40}: restore it with that version"
        )
    entries, layout = manifest.get("members"), manifest.get("layout")
    if not isinstance(entries, list) or not isinstance(layout, dict):
        raise _Damaged("manifest.json lacks its members or layout")
    members: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise _Damaged("manifest.json has a malformed member")
        path = _safe_path(entry.get("path"))
        if path in members:
            raise _Damaged(f"manifest.json lists {path!r} twice")
        if not _entry_ok(entry):
            raise _Damaged(f"manifest.json describes {path!r} wrongly")
        members[path] = entry
    databases = layout.get("database")
    if not isinstance(databases, list) or not databases:
        raise _Damaged("manifest.json names no database")
    for database in databases:
        entry = members.get(database) if isinstance(database, str) else None
        if (
            entry is None
            or entry["type"] != "file"
            or not re.fullmatch(rf"{DATABASE_DIR}/[^/]+\.db", database)
        ):
            raise _Damaged(f"manifest.json names a database that is not in it: {database!r}")
    return members, databases


def _extract_file(tar: tarfile.TarFile, info: tarfile.TarInfo, target: Path, size: int) -> str:
    source = tar.extractfile(info)
    assert source is not None
    digest, written = hashlib.sha256(), 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            written += len(chunk)
            out.write(chunk)
    if written != size:
        raise _Damaged(f"{info.name} is cut short ({written} of {size} bytes)")
    return digest.hexdigest()


def _unpack(archive: Path, staging: Path) -> list[str]:
    """Check and extract the whole archive into ``staging``; returns the database files."""
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(archive.open("rb"))
        compressed = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
        tar = stack.enter_context(tarfile.open(fileobj=compressed, mode="r|"))
        first = tar.next()
        if first is None or first.name != MANIFEST or first.type not in tarfile.REGULAR_TYPES:
            raise _Damaged("the archive does not start with manifest.json: not an Aetherial backup")
        if first.size > MANIFEST_MAX_BYTES:
            raise _Damaged("manifest.json is implausibly large")
        manifest_file = tar.extractfile(first)
        assert manifest_file is not None
        members, databases = _read_manifest(manifest_file.read())
        seen: set[str] = set()
        root = staging.resolve()
        # tar.next(), not ``for info in tar``: iterating a stream would yield the manifest again.
        while (info := tar.next()) is not None:
            if not info.name.startswith(DATA_PREFIX):
                raise _Damaged(f"unexpected member {info.name!r} outside data/")
            path = _safe_path(info.name[len(DATA_PREFIX) :])
            entry = members.get(path)
            if entry is None:
                raise _Damaged(f"{path!r} is in the archive but not in its manifest")
            if path in seen:
                raise _Damaged(f"{path!r} is in the archive twice")
            seen.add(path)
            target = staging / path
            # Belt and braces: staging holds only what we created (no links), so a checked
            # path cannot leave it.
            if os.path.commonpath([root, target.resolve()]) != str(root):
                raise _Damaged(f"{path!r} would land outside the data dir")
            if entry["type"] == "dir":
                if info.type != tarfile.DIRTYPE:
                    raise _Damaged(f"{path!r} should be a folder but is not")
                target.mkdir(mode=0o700, parents=True, exist_ok=True)
                continue
            if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                # Links and devices are never written by a backup: refuse, never create them.
                raise _Damaged(f"{path!r} is not a regular file (a link or a device?)")
            if info.size != entry["size"]:
                raise _Damaged(f"{path!r} has {info.size} bytes, the manifest says {entry['size']}")
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if _extract_file(tar, info, target, entry["size"]) != entry["sha256"]:
                raise _Damaged(f"{path!r} does not match its checksum")
        tar.close()
        while compressed.read(CHUNK):  # to the end: the gzip trailer's CRC and length checked
            pass
    missing = sorted(set(members) - seen)
    if missing:
        raise _Damaged(f"the archive lacks {len(missing)} member(s) it lists, e.g. {missing[0]!r}")
    for database in databases:
        problem = _integrity_problem(staging / database)
        if problem is not None:
            raise _Damaged(f"the database {database} fails its integrity check: {problem}")
    _apply_attributes(staging, members)
    return databases


def _apply_attributes(staging: Path, members: dict[str, dict[str, Any]]) -> None:
    """Modes (never set-id bits) and, when we are root, owners: an app's folder belongs to its
    sandbox uid. Folders last and deepest first, so a read-only folder is set after its
    contents."""
    is_root = os.geteuid() == 0
    ordered = sorted(members.items(), key=lambda item: (item[1]["type"] == "dir", -len(item[0])))
    for path, entry in ordered:
        target = staging / path
        if is_root:
            os.chown(target, entry["uid"], entry["gid"], follow_symlinks=False)
        os.chmod(target, entry["mode"] & 0o777, follow_symlinks=False)


def _stamp() -> str:
    return _utc_now().strftime("%Y%m%dT%H%M%SZ")


def _swap(data_dir: Path, staging: Path) -> Path | None:
    """Move the current contents aside and the staged ones in; all or nothing."""
    aside = data_dir / f"{ASIDE_PREFIX}{_stamp()}"
    suffix = 1
    while aside.exists():
        suffix += 1
        aside = data_dir / f"{ASIDE_PREFIX}{_stamp()}-{suffix}"
    current = [
        entry
        for entry in sorted(data_dir.iterdir())
        if entry.name != LOCK_FILE
        and not entry.name.startswith((ASIDE_PREFIX, STAGING_PREFIX))
        and entry != staging
    ]
    staged = sorted(staging.iterdir())
    moved_aside: list[str] = []
    moved_in: list[str] = []
    try:
        if current:
            aside.mkdir(mode=0o700)
        for entry in current:
            os.rename(entry, aside / entry.name)
            moved_aside.append(entry.name)
        for entry in staged:
            os.rename(entry, data_dir / entry.name)
            moved_in.append(entry.name)
    except BaseException as exc:
        for name in reversed(moved_in):
            with contextlib.suppress(OSError):
                os.rename(data_dir / name, staging / name)
        for name in reversed(moved_aside):
            with contextlib.suppress(OSError):
                os.rename(aside / name, data_dir / name)
        with contextlib.suppress(OSError):
            aside.rmdir()
        if isinstance(exc, OSError):
            raise BackupError(
                f"the swap into {data_dir} failed ({exc.strerror or exc}); what was moved has "
                "been put back"
            ) from None
        raise
    return aside if current else None


def restore(config: Config, path: Path) -> str:
    """Replace ``config.data_dir``'s contents with the backup at ``path``; returns a one-line
    summary. Refuses while the platform runs on that data dir."""
    _refuse_production(config, "restore")
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no backup file at {path}", exit_code=2)
    data_dir = config.data_dir
    try:
        held = _lock(data_dir, fcntl.LOCK_EX)
    except BlockingIOError:
        raise BackupError(
            f"{data_dir} is in use: Aetherial is running on it, or another restore is under way "
            f"({data_dir / LOCK_FILE} is held); stop Aetherial first, then restore"
        ) from None
    except OSError as exc:
        raise BackupError(
            f"cannot use the data dir {data_dir}: {exc.strerror}", exit_code=2
        ) from None
    try:
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=data_dir))
        try:
            try:
                databases = _unpack(path, staging)
            except _Damaged as exc:
                raise BackupError(
                    f"{path} is not a sound backup, nothing was changed: {exc}"
                ) from None
            except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise BackupError(
                    f"{path} is damaged or not a gzip-compressed tar (truncated?), nothing was "
                    f"changed: {exc}"
                ) from None
            except OSError as exc:
                raise BackupError(
                    f"cannot extract {path} into {staging} ({exc.strerror or exc}), nothing was "
                    "changed"
                ) from None
            os.sync()  # what was extracted is on disk before it replaces anything
            os.chmod(data_dir, 0o700)  # it holds keys again
            aside = _swap(data_dir, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        held.release()
    kept = f"; the previous contents are in {aside}" if aside else ""
    return f"restored {path} into {data_dir} (database {', '.join(databases)}){kept}"
