"""`run.py backup` / `run.py restore` as real processes, on the embedded default.

The whole journey: the platform runs, a client keeps writing messages, `backup` runs meanwhile;
the platform stops, the data dir is wiped, `restore` brings it back, and the platform starts
again with the same password, the same tokens, the messages (gap-free, still appendable) and the
media. Then every kind of damaged archive: refused with a clear message and a non-zero exit
code, the data dir byte for byte as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from storage import backup as backup_module
from storage.embedded_mongo import EmbeddedMongo
from tests.conftest import _free_port
from tests.helpers import PASSWORD, ApiClient
from tests.media.media_helpers import fetch, jpeg, upload
from tests.test_run import _env, start, stop, wait_gone

pytestmark = [
    pytest.mark.xdist_group("heavy"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="flock, /proc"),
]

ROOT = Path(__file__).resolve().parents[2]
# One client sends one message at a time, so the snapshot can catch at most its last message
# stored and the conversation's counter not yet moved past it.
BATCH_LAG = 1


def cli(data_dir: Path, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "run.py", "--data-dir", str(data_dir), *args],
        cwd=ROOT,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def listing(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its type, mode and (files) SHA-256: byte-for-byte state."""
    found: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            info = path.lstat()
            relative = path.relative_to(root).as_posix()
            if stat.S_ISLNK(info.st_mode):
                found[relative] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[relative] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[relative] = ("file", stat.S_IMODE(info.st_mode), digest)
    return found


def check_written(archive: Path) -> None:
    """One file, readable by its owner only (it holds the keys), no .tmp or staging left."""
    assert [p.name for p in archive.parent.iterdir()] == [archive.name]
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600


# --- the journey ----------------------------------------------------------------------------


async def _history(api: ApiClient, conversation_id: str) -> list[dict]:
    messages, after = [], 0
    while True:
        status, body = await api.get(
            f"/api/v1/conversations/{conversation_id}/messages?after={after}&limit=100"
        )
        assert status == 200, body
        messages += body["messages"]
        if not body["messages"] or not body["has_more"]:
            return messages
        after = body["messages"][-1]["seq"]


async def _send(api: ApiClient, conversation_id: str, text: str) -> int:
    status, body = await api.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"client_msg_id": uuid.uuid4().hex[:24], "text": text},
    )
    assert status == 200, body
    return body["message"]["seq"]


@pytest.mark.timeout(600)
async def test_backup_while_writing_then_wipe_restore_and_sign_in(tmp_path):
    data_dir, archive = tmp_path / "var", tmp_path / "backups" / "aetherial.tar.gz"
    archive.parent.mkdir()
    env = _env() | {"SEND_RATE_MAX": "100000"}
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = start(data_dir, port, env)
    alice, bob = ApiClient(base), ApiClient(base)
    try:
        tokens = await alice.signup("alice")
        bob_id = (await bob.signup("bob"))["user"]["id"]
        status, body = await alice.post(
            "/api/v1/conversations", json={"type": "direct", "user_id": bob_id}
        )
        assert status == 201, body
        conversation_id = body["conversation"]["id"]
        await _send(alice, conversation_id, "hello before the backup")
        status, body = await upload(alice, jpeg(96, 64))
        assert status == 201, body
        media_id = body["media"]["id"]
        status, _, photo = await fetch(alice, body["media"]["url"])
        assert status == 200 and photo
        status, body = await alice.patch("/api/v1/me", json={"avatar_media_id": media_id})
        assert status == 200, body

        # Bob keeps writing for as long as the backup runs.
        acked: list[int] = []
        writing = asyncio.Event()
        done = asyncio.Event()

        async def writer() -> None:
            while not done.is_set():
                acked.append(await _send(bob, conversation_id, f"during {len(acked)}"))
                writing.set()

        task = asyncio.create_task(writer())
        await asyncio.wait_for(writing.wait(), 30)
        acked_before_backup = list(acked)
        backup = await asyncio.create_subprocess_exec(
            sys.executable,
            "run.py",
            "--data-dir",
            str(data_dir),
            "backup",
            str(archive),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(backup.communicate(), 300)
        done.set()
        await asyncio.wait_for(task, 30)
        assert backup.returncode == 0, err.decode()
        assert f"backup written to {archive}" in out.decode()
        check_written(archive)

        refused = cli(data_dir, "restore", str(archive), env=env)
        assert refused.returncode == 1, refused.stderr
        assert "stop Aetherial first" in refused.stderr
        assert {p.name for p in data_dir.iterdir() if p.name.startswith(".")} == {".lock"}
    finally:
        await alice.close()
        await bob.close()
        code = stop(process, signal.SIGTERM)
    assert code == 0
    assert wait_gone(data_dir) == []

    shutil.rmtree(data_dir)
    restored = cli(data_dir, "restore", str(archive), env=env)
    assert restored.returncode == 0, restored.stderr
    assert f"restored {archive} into {data_dir}" in restored.stdout
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".before-restore-")]

    port = _free_port()
    process = start(data_dir, port, env)
    old, fresh = ApiClient(f"http://127.0.0.1:{port}"), ApiClient(f"http://127.0.0.1:{port}")
    try:
        # The old access token still works: jwt.key came back, and so did the session.
        status, body = await old.get("/api/v1/me", token=tokens["access_token"])
        assert status == 200, body
        assert body["user"]["username"] == "alice" and body["user"]["avatar_url"]
        status, body = await old.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert status == 200, body
        await fresh.login("alice", PASSWORD)

        messages = await _history(fresh, conversation_id)
        seqs = [m["seq"] for m in messages]
        assert seqs == list(range(1, len(seqs) + 1)), "the snapshot has a gap"
        assert messages[0]["text"] == "hello before the backup"
        assert set(acked_before_backup) <= set(seqs)
        # The state of a crash at that instant, which the writer is built to resume from: the
        # messages are stored before the conversation's counter moves past them, so the counter
        # may lag the last batch (never lead it: no seq without its message). Writing goes on
        # after the highest stored seq, and the counter catches up.
        status, body = await fresh.get(f"/api/v1/conversations/{conversation_id}")
        assert status == 200, body
        assert len(seqs) - BATCH_LAG <= body["conversation"]["last_seq"] <= len(seqs), body
        assert await _send(fresh, conversation_id, "after the restore") == len(seqs) + 1
        status, body = await fresh.get(f"/api/v1/conversations/{conversation_id}")
        assert status == 200 and body["conversation"]["last_seq"] == len(seqs) + 1, body

        status, body = await fresh.get(f"/api/v1/media/{media_id}")
        assert status == 200, body
        status, _, again = await fetch(fresh, body["media"]["url"])
        assert status == 200 and again == photo
    finally:
        await old.close()
        await fresh.close()
        code = stop(process, signal.SIGTERM)
    assert code == 0
    assert wait_gone(data_dir) == []


# --- a good archive to damage -----------------------------------------------------------------


async def _fill_database(mongo_dir: Path) -> None:
    from pymongo import AsyncMongoClient

    server = EmbeddedMongo(mongo_dir)
    await server.start()
    try:
        client: AsyncMongoClient = AsyncMongoClient(server.url)
        try:
            users = client["aetherial"]["users"]
            await users.insert_many([{"_id": f"u{i}", "username": f"user{i}"} for i in range(300)])
        finally:
            await client.close()
    finally:
        await server.stop()


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict:
    """A data dir with a database, keys, a blob and things a backup must leave out; its backup;
    and a data dir restored from it."""
    root = tmp_path_factory.mktemp("backup")
    source = root / "source"
    asyncio.run(_fill_database(source / "mongo"))
    (source / "jwt.key").write_text("k" * 86 + "\n")
    os.chmod(source / "jwt.key", 0o600)
    blob = b"\x89PNG not really, but bytes"
    key = hashlib.sha256(blob).hexdigest()
    (source / "media" / "blobs" / key[:2] / key[2:4]).mkdir(parents=True)
    (source / "media" / "blobs" / key[:2] / key[2:4] / key).write_bytes(blob)
    (source / "media" / "blobs" / key[:2] / key[2:4] / ".incoming-x").write_bytes(b"half")
    (source / "media" / "incoming" / "tmp1").mkdir(parents=True)
    (source / "media" / "incoming" / "tmp1" / "upload").write_bytes(b"arriving")
    (source / "miniapps" / "shop").mkdir(parents=True)
    (source / "miniapps" / "shop" / "notes.txt").write_text("app scratch")
    (source / "miniapps" / "shop" / "passwd").symlink_to("/etc/passwd")
    (source / ".before-restore-20000101T000000Z").mkdir()
    (source / ".before-restore-20000101T000000Z" / "old").write_text("old state")
    archive = root / "good.tar.gz"
    result = cli(source, "backup", str(archive))
    assert result.returncode == 0, result.stderr
    restored = root / "restored"
    result = cli(restored, "restore", str(archive))
    assert result.returncode == 0, result.stderr
    return {"source": source, "archive": archive, "restored": restored, "blob": key}


def read_archive(path: Path) -> tuple[dict, list[tuple[tarfile.TarInfo, bytes]]]:
    with tarfile.open(path, "r:gz") as tar:
        members = [
            (info, tar.extractfile(info).read() if info.isfile() else b"")
            for info in tar.getmembers()
        ]
    assert members[0][0].name == "manifest.json"
    return json.loads(members[0][1]), members[1:]


def write_archive(
    path: Path, manifest: dict | None, members: list[tuple[tarfile.TarInfo, bytes]]
) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if manifest is not None:
            encoded = json.dumps(manifest).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(encoded)
            tar.addfile(info, io.BytesIO(encoded))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return path


def test_the_archive_is_described_by_its_manifest(good):
    manifest, members = read_archive(good["archive"])
    assert manifest["format"] == "aetherial-backup" and manifest["format_version"] == 1
    assert manifest["created_at"].endswith("Z") and manifest["aetherial_version"]
    assert manifest["source"]["data_dir"] == str(good["source"].resolve())
    assert manifest["layout"]["database"] == ["mongo/admin.db", "mongo/aetherial.db"]
    assert "jwt.key" in manifest["layout"]["keys"]
    assert manifest["layout"]["skipped"] == ["miniapps/shop/passwd"]  # a link: never followed
    listed = {entry["path"]: entry for entry in manifest["members"]}
    archived = {info.name.removeprefix("data/"): (info, data) for info, data in members}
    assert set(listed) == set(archived)
    for path, (info, data) in archived.items():
        if info.isfile():
            assert listed[path]["size"] == len(data)
            assert listed[path]["sha256"] == hashlib.sha256(data).hexdigest()
    # Not state: uploads still arriving, half-written blobs, the lock, earlier restores' leftovers.
    assert not [p for p in listed if "incoming" in p or p.startswith(".")]
    assert "miniapps/shop/notes.txt" in listed
    # The database copies are whole SQLite files, no -wal beside them.
    assert not [p for p in listed if p.endswith(("-wal", "-shm", ".log"))]


def test_restore_brings_back_the_same_files_and_a_sound_database(good):
    restored = good["restored"]
    before, after = listing(good["source"]), listing(restored)
    key = good["blob"]
    for path in ("jwt.key", "miniapps/shop/notes.txt", f"media/blobs/{key[:2]}/{key[2:4]}/{key}"):
        assert after[path] == before[path], path
    connection = sqlite3.connect(restored / "mongo" / "aetherial.db")
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()
    assert stat.S_IMODE(restored.stat().st_mode) == 0o700
    assert not (restored / "media" / "incoming").exists()
    assert not (restored / "miniapps" / "shop" / "passwd").exists()


async def test_restored_database_serves_its_documents(good, tmp_path):
    from pymongo import AsyncMongoClient

    copy = tmp_path / "var"
    shutil.copytree(good["restored"], copy, symlinks=True)
    server = EmbeddedMongo(copy / "mongo")
    await server.start()
    try:
        client: AsyncMongoClient = AsyncMongoClient(server.url)
        try:
            assert await client["aetherial"]["users"].count_documents({}) == 300
        finally:
            await client.close()
    finally:
        await server.stop()


def test_a_backup_written_inside_the_data_dir_leaves_itself_out(good, tmp_path):
    source = tmp_path / "var"
    shutil.copytree(good["source"], source, symlinks=True)
    (source / "backups").mkdir()
    first = cli(source, "backup", str(source / "backups" / "one.tar.gz"))
    assert first.returncode == 0, first.stderr
    second = cli(source, "backup", str(source / "backups" / "two.tar.gz"))
    assert second.returncode == 0, second.stderr
    manifest, _ = read_archive(source / "backups" / "two.tar.gz")
    listed = {entry["path"] for entry in manifest["members"]}
    assert "backups" in listed and "backups/one.tar.gz" in listed  # an earlier backup is a file
    assert not [p for p in listed if "two.tar.gz" in p or ".aetherial-backup-" in p]
    assert sorted(p.name for p in (source / "backups").iterdir()) == ["one.tar.gz", "two.tar.gz"]


def test_restore_over_a_used_data_dir_keeps_the_old_state_aside(good, tmp_path):
    target = tmp_path / "var"
    target.mkdir()
    (target / "jwt.key").write_text("an older key\n")
    (target / "mongo").mkdir()
    (target / "mongo" / "aetherial.db").write_bytes(b"older")
    result = cli(target, "restore", str(good["archive"]))
    assert result.returncode == 0, result.stderr
    [aside] = [p for p in target.iterdir() if p.name.startswith(".before-restore-")]
    assert f"previous contents are in {aside}" in result.stdout
    assert (aside / "jwt.key").read_text() == "an older key\n"
    assert (aside / "mongo" / "aetherial.db").read_bytes() == b"older"
    assert (target / "jwt.key").read_text() == (good["source"] / "jwt.key").read_text()


# --- bad input: refused, nothing changed -------------------------------------------------------


def _truncated(good, path):
    data = good["archive"].read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _flipped(good, path):
    data = bytearray(good["archive"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _not_a_tar(good, path):
    path.write_bytes(b"this is a shopping list, not a backup\n" * 50)
    return path


def _gzip_not_tar(good, path):
    path.write_bytes(gzip.compress(b"\x01\x02 not a tar " * 500))
    return path


def _member_changed(good, path):
    """A member's bytes differ from what the manifest says (same size): only the checksum
    can tell."""
    manifest, members = read_archive(good["archive"])
    changed = []
    for info, data in members:
        if info.name == "data/jwt.key":
            data = bytes([data[0] ^ 0x01]) + data[1:]
        changed.append((info, data))
    return write_archive(path, manifest, changed)


def _no_manifest(good, path):
    _, members = read_archive(good["archive"])
    return write_archive(path, None, members)


def _future_version(good, path):
    manifest, members = read_archive(good["archive"])
    return write_archive(path, manifest | {"format_version": 99}, members)


def _other_format(good, path):
    manifest, members = read_archive(good["archive"])
    return write_archive(path, manifest | {"format": "somebody-elses-backup"}, members)


def _escaping_member(name: str, kind: bytes = tarfile.REGTYPE, link: str = ""):
    def build(good, path):
        manifest, members = read_archive(good["archive"])
        data = b"owned\n"
        info = tarfile.TarInfo("data/" + name)
        info.type, info.linkname = kind, link
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        entry = {"path": name, "type": "file", "mode": 0o600, "uid": 0, "gid": 0, "mtime": 0}
        entry |= {"size": info.size, "sha256": hashlib.sha256(data[: info.size]).hexdigest()}
        manifest["members"].append(entry)
        return write_archive(path, manifest, [*members, (info, data)])

    return build


def _missing_member(good, path):
    manifest, members = read_archive(good["archive"])
    return write_archive(path, manifest, [m for m in members if m[0].name != "data/jwt.key"])


def _corrupt_database(good, path):
    """The database's pages past the first overwritten; manifest updated to match, so only
    SQLite's integrity check can tell."""
    manifest, members = read_archive(good["archive"])
    changed = []
    for info, data in members:
        if info.name == "data/mongo/aetherial.db":
            data = data[:4096] + b"\x55" * (len(data) - 4096)
            for entry in manifest["members"]:
                if entry["path"] == "mongo/aetherial.db":
                    entry["sha256"] = hashlib.sha256(data).hexdigest()
        changed.append((info, data))
    return write_archive(path, manifest, changed)


BAD: dict[str, tuple[Callable, str]] = {
    "truncated": (_truncated, "damaged or not a gzip-compressed tar"),
    "flipped_byte": (_flipped, "nothing was changed"),
    "not_a_tar": (_not_a_tar, "not a gzip-compressed tar"),
    "gzip_of_junk": (_gzip_not_tar, "nothing was changed"),
    "member_changed": (_member_changed, "does not match its checksum"),
    "no_manifest": (_no_manifest, "does not start with manifest.json"),
    "unknown_version": (_future_version, "format version 99"),
    "unknown_format": (_other_format, "not an Aetherial backup"),
    "dot_dot": (_escaping_member("../escaped"), "leaves the data dir"),
    "dot_dot_inside": (_escaping_member("media/../../escaped"), "leaves the data dir"),
    "absolute": (_escaping_member("/tmp/escaped-aetherial"), "absolute path"),
    "symlink": (_escaping_member("evil", tarfile.SYMTYPE, "/etc/passwd"), "not a regular file"),
    "hardlink": (_escaping_member("evil", tarfile.LNKTYPE, "jwt.key"), "not a regular file"),
    "device": (_escaping_member("evil", tarfile.CHRTYPE), "not a regular file"),
    "reserved_name": (_escaping_member(".lock"), "reserved name"),
    "missing_member": (_missing_member, "lacks 1 member"),
    "corrupt_database": (_corrupt_database, "integrity check"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_archive_is_refused_and_nothing_changes(good, tmp_path, case):
    make, expected = BAD[case]
    target = tmp_path / "var"
    shutil.copytree(good["restored"], target, symlinks=True)
    before = listing(target)
    bad = make(good, tmp_path / f"{case}.tar.gz")
    result = cli(target, "restore", str(bad))
    assert result.returncode == 1, result.stdout + result.stderr
    message = result.stderr.strip()
    assert message.startswith("restore failed:") and len(message.splitlines()) == 1, message
    assert expected in message, message
    assert listing(target) == before
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/escaped-aetherial").exists()


def test_restore_of_a_missing_file_is_bad_input(tmp_path):
    result = cli(tmp_path / "var", "restore", str(tmp_path / "nothing.tar.gz"))
    assert result.returncode == 2
    assert "no backup file at" in result.stderr


def test_backup_of_a_data_dir_without_database_is_bad_input(tmp_path):
    result = cli(tmp_path / "typo", "backup", str(tmp_path / "b.tar.gz"))
    assert result.returncode == 2
    assert "no data dir" in result.stderr
    (tmp_path / "empty").mkdir()
    result = cli(tmp_path / "empty", "backup", str(tmp_path / "b.tar.gz"))
    assert result.returncode == 2
    assert "nothing to back up" in result.stderr
    assert not (tmp_path / "typo").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # no file, no .tmp


def test_backup_into_a_missing_folder_is_bad_input(good, tmp_path):
    result = cli(good["source"], "backup", str(tmp_path / "no" / "such" / "b.tar.gz"))
    assert result.returncode == 2
    assert "no folder" in result.stderr


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_production_database_is_refused_with_directions(good, tmp_path, command):
    env = _env() | {"MONGODB_URL": "mongodb://127.0.0.1:1"}
    target = tmp_path / "var"
    shutil.copytree(good["restored"], target, symlinks=True)
    before = listing(target)
    file = tmp_path / "b.tar.gz" if command == "backup" else good["archive"]
    result = cli(target, command, str(file), env=env)
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    for needle in ("MONGODB_URL is set", "mongodump", "Backup and restore", "jwt.key", "media"):
        assert needle in message, message
    assert listing(target) == before
    assert not (tmp_path / "b.tar.gz").exists()


# --- the lock ---------------------------------------------------------------------------------


def test_a_gateway_cannot_start_during_a_restore_and_a_restore_waits_for_nobody(tmp_path):
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    with open(data_dir / ".lock", "a+b") as restoring:
        fcntl.flock(restoring, fcntl.LOCK_EX)
        with pytest.raises(backup_module.DataDirBusy, match="being restored"):
            backup_module.lock_data_dir(data_dir)
        result = subprocess.run(
            [sys.executable, "run.py", "--port", str(_free_port()), "--data-dir", str(data_dir)],
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert "cannot start" in result.stderr and "being restored" in result.stderr
        assert "running on" not in result.stdout
    held = backup_module.lock_data_dir(data_dir)
    other = backup_module.lock_data_dir(data_dir)  # shared: create-admin beside the gateway
    try:
        result = cli(data_dir, "restore", str(tmp_path / "any.tar.gz"))
        assert result.returncode == 2  # no such file: checked before the lock
        (tmp_path / "any.tar.gz").write_bytes(b"x")
        result = cli(data_dir, "restore", str(tmp_path / "any.tar.gz"))
        assert result.returncode == 1 and "stop Aetherial first" in result.stderr
    finally:
        held.release()
        other.release()
    assert sorted(p.name for p in data_dir.iterdir()) == [".lock"]


def test_concurrent_restores_take_turns(good, tmp_path):
    """Several restores into one data dir at once: each either completes whole or is refused
    by the lock; the result is the archive's state, with one old state kept per later win."""
    target = tmp_path / "var"
    processes = [
        subprocess.Popen(
            [sys.executable, "run.py", "--data-dir", str(target), "restore", str(good["archive"])],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = []
    for process in processes:
        try:
            _, err = process.communicate(timeout=300)
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        results.append((process.returncode, err))
    wins = [code for code, _ in results if code == 0]
    assert wins, results
    for code, err in results:
        assert code == 0 or (code == 1 and "stop Aetherial first" in err), (code, err)
    asides = [p for p in target.iterdir() if p.name.startswith(".before-restore-")]
    assert len(asides) == len(wins) - 1
    assert not [p for p in target.iterdir() if p.name.startswith(".restore-staging-")]
    state = {k: v for k, v in listing(target).items() if not k.startswith(".")}
    expected = {k: v for k, v in listing(good["restored"]).items() if not k.startswith(".")}
    assert state == expected
