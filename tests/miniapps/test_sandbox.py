"""The mini-program sandbox: every escape attempt of a hostile app is blocked and reported.

The hostile app (``hostile_app.py``) speaks the raw protocol; each ``command`` runs one attack.
The bwrap tests skip locally without bubblewrap and fail under CI=true (.ci/run installs it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest

from miniapps.host.sandbox import (
    AppCallError,
    AppCrashed,
    AppProcess,
    CallTimeout,
    Overloaded,
    ProtocolError,
    SandboxConfig,
    UidConflict,
    Unavailable,
)
from tests.conftest import require
from tests.miniapps.hostile import Sandboxes, attack, leftovers, needs_bwrap

# The hostile app runs under one uid, and the teardown checks that no process of that uid is left:
# two copies at once (two xdist workers) would see each other's. One group: one worker.
pytestmark = pytest.mark.xdist_group("sandbox")

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def sandboxes(tmp_path):
    apps = Sandboxes(tmp_path)
    yield apps
    await apps.close()


@pytest.fixture
def host_var(sandboxes) -> Path:
    return sandboxes.host_var


@pytest.fixture
def app_dir(sandboxes) -> Path:
    return sandboxes.app_dir


@pytest.fixture
def make_app(sandboxes):
    """Start hostile apps; afterwards stop them and check no process of theirs is left."""
    return sandboxes.start


# --- isolation with bubblewrap -----------------------------------------------------------------


async def test_sandbox_view(make_app):
    needs_bwrap()
    app = await make_app()
    me = await attack(app, "whoami")
    assert app.status.state == "running" and not app.status.degraded
    assert me["cwd"] == "/data" and me["home"] == "/data"
    assert me["cap_eff"] == "0000000000000000"
    assert me["visible_pids"] <= 3  # its own PID namespace: bwrap's init and the app
    assert "var" not in me["root"]
    if os.geteuid() == 0:
        assert me["uid"] == app.uid != 0


async def test_cannot_read_host_secrets(make_app, host_var):
    needs_bwrap()
    app = await make_app()
    for path in (
        host_var / "jwt.key",
        host_var / "mongo" / "aetherial.db",
        Path("../jwt.key"),
        Path("../../jwt.key"),
        PROJECT / "pyproject.toml",
        Path("/etc/shadow"),
    ):
        result = await attack(app, "read_file", str(path))
        assert result["ok"] is False, path
        assert "FileNotFoundError" in result["error"] or "PermissionError" in result["error"]


async def test_cannot_connect_to_host_ports(make_app):
    needs_bwrap()
    listeners = []
    try:
        for _ in ("mongodb", "redis"):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            listeners.append(sock)
        app = await make_app()
        for sock in listeners:
            port = sock.getsockname()[1]
            # The host itself reaches the port; the app must not.
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            result = await attack(app, "connect", str(port))
            assert result["ok"] is False
            assert "Connection refused" in result["error"] or "unreachable" in result["error"]
    finally:
        for sock in listeners:
            sock.close()


async def test_environment_is_scrubbed(make_app, monkeypatch):
    needs_bwrap()
    monkeypatch.setenv("JWT_SECRET", "jwt-secret-value")
    monkeypatch.setenv("MONGODB_URL", "mongodb://admin:pw@127.0.0.1:27017/")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    app = await make_app()
    env = (await attack(app, "environ"))["env"]
    assert not {"JWT_SECRET", "MONGODB_URL", "REDIS_URL"} & set(env)
    joined = " ".join(env.values())
    assert "jwt-secret-value" not in joined and "mongodb://" not in joined
    assert env["HOME"] == "/data"


async def test_memory_limit(make_app):
    needs_bwrap()
    app = await make_app(memory_bytes=128 * 1024 * 1024)
    try:
        result = await attack(app, "alloc", "512")
    except AppCrashed:  # killed instead of MemoryError: reported as a crash
        assert app.status.last_exit_reason.startswith("crashed")
        return
    assert result["ok"] is False and "MemoryError" in result["error"]
    assert result["allocated_mib"] < 128
    assert (await attack(app, "whoami"))["ok"]  # and it is still alive


async def test_spin_forever_times_out_is_killed_and_restarted(make_app):
    needs_bwrap()
    app = await make_app()
    first_pid = app.status.pid
    started = time.monotonic()
    with pytest.raises(CallTimeout) as info:
        await attack(app, "spin", timeout=0.5)
    assert info.value.code == "timeout"
    assert time.monotonic() - started < 3
    assert app.status.last_exit_reason.startswith("timeout")
    assert leftovers(app, first_pid) == [] or app.status.pid != first_pid
    await wait_running(app, restarts=1)
    assert app.status.pid != first_pid
    assert (await attack(app, "whoami"))["ok"]


async def test_fork_bomb_is_contained(make_app):
    needs_bwrap()
    app = await make_app(processes=16)
    result = await attack(app, "fork_bomb", "2000", timeout=10)
    # Refused by RLIMIT_NPROC (enforced because the app is not root) long before 2000.
    assert result["ok"] is False and "BlockingIOError" in result["error"]
    assert result["forked"] < 16
    # The machine is fine: the host still starts processes.
    probe = await asyncio.create_subprocess_exec("true")
    assert await asyncio.wait_for(probe.wait(), 5) == 0
    pid = app.status.pid
    await app.stop()
    assert leftovers(app, pid) == []


async def test_cannot_write_outside_its_folder(make_app, host_var):
    needs_bwrap()
    app = await make_app()
    for path in (
        "/app/hostile_app.py",
        "/app/new.py",
        "/usr/pwned",
        "/pwned",
        "/etc/pwned",
        str(host_var / "jwt.key"),
        "/opt/aetherial/sdk/pwned.py",
    ):
        result = await attack(app, "write_file", path)
        assert result["ok"] is False, path
    assert (host_var / "jwt.key").read_text() == "super-secret-jwt-key"
    assert (await attack(app, "write_file", "/data/notes.txt"))["ok"]
    assert (await attack(app, "write_file", "/tmp/scratch"))["ok"]
    assert (host_var / "miniapps" / "hostile" / "notes.txt").read_text() == "pwned"


# --- supervision -------------------------------------------------------------------------------


async def wait_running(app: AppProcess, restarts: int, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not (app.status.state == "running" and app.status.restarts >= restarts):
        assert time.monotonic() < deadline, app.status
        await asyncio.sleep(0.02)


async def test_crash_is_reported_and_restarted_with_backoff(make_app):
    app = await make_app(bwrap_path=shutil.which("bwrap"), backoff_initial=0.2, backoff_max=1.0)
    with pytest.raises(AppCrashed) as info:
        await attack(app, "crash", "3")
    assert info.value.code == "crashed"
    assert app.status.state == "restarting"
    assert "exit code 3" in app.status.last_exit_reason
    crashed_at = time.monotonic()
    await wait_running(app, restarts=1)
    first_delay = time.monotonic() - crashed_at
    assert first_delay >= 0.2
    with pytest.raises(AppCrashed):
        await attack(app, "crash", "4")
    crashed_at = time.monotonic()
    await wait_running(app, restarts=2)
    assert time.monotonic() - crashed_at >= 0.4  # doubled
    assert (await attack(app, "whoami"))["ok"]


async def test_too_many_crashes_means_failed(make_app):
    app = await make_app(bwrap_path=shutil.which("bwrap"), max_crashes=2, backoff_initial=0.05)
    with pytest.raises(AppCrashed):
        await attack(app, "crash")
    await wait_running(app, restarts=1)
    with pytest.raises(AppCrashed):
        await attack(app, "crash")
    for _ in range(250):  # the supervisor notices the second crash asynchronously
        if app.status.state == "failed":
            break
        await asyncio.sleep(0.02)
    assert app.status.state == "failed"
    with pytest.raises(Unavailable):
        await attack(app, "whoami")
    await app.start()  # an operator's explicit start gives it a fresh crash budget
    assert app.status.state == "running"
    assert (await attack(app, "whoami"))["ok"]


async def test_concurrent_call_cap(make_app):
    app = await make_app(bwrap_path=shutil.which("bwrap"), max_concurrent_calls=2)
    slow = [asyncio.create_task(attack(app, "sleep", "0.5")) for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(Overloaded) as info:
        await attack(app, "whoami")
    assert info.value.code == "overloaded"
    assert [r["ok"] for r in await asyncio.gather(*slow)] == [True, True]
    assert (await attack(app, "whoami"))["ok"]


async def test_capability_request_reaches_the_host(make_app):
    seen = []

    class Denied(Exception):
        code = "permission_denied"
        message = "not in the manifest"

    async def on_request(method, params):
        seen.append((method, params))
        if method == "payments.request":
            raise Denied()
        return {"message_id": "m-1"}

    app = await make_app(on_request=on_request, bwrap_path=shutil.which("bwrap"))
    answer = await attack(app, "capability", "messages.send_text", "hi there")
    assert answer["response"]["result"] == {"message_id": "m-1"}
    assert seen == [("messages.send_text", {"call_id": "c-test", "text": "hi there"})]
    denied = (await attack(app, "capability", "payments.request"))["response"]["error"]
    assert denied["code"] == -32000 and denied["data"] == {"code": "permission_denied"}
    assert denied["message"] == "not in the manifest"


async def test_app_error_and_protocol_error(make_app):
    app = await make_app(bwrap_path=shutil.which("bwrap"))
    with pytest.raises(AppCallError) as failure:
        await app.call("fail", {})
    assert failure.value.code == "app_error" and failure.value.app_code == "conflict"
    assert failure.value.message == "version mismatch"
    with pytest.raises(ProtocolError) as info:
        await attack(app, "garbage")
    assert info.value.code == "protocol_error"
    assert app.status.last_exit_reason.startswith("protocol_error")
    await wait_running(app, restarts=1)


# --- degraded mode -----------------------------------------------------------------------------


async def test_degraded_mode_without_bwrap(make_app, caplog, monkeypatch):
    monkeypatch.setenv("JWT_SECRET", "jwt-secret-value")
    caplog.set_level(logging.WARNING, logger="miniapps.host.sandbox")
    app = await make_app(bwrap_path=None)
    assert app.status.degraded and app.status.as_dict()["degraded"] is True
    assert any("sandbox degraded: bubblewrap not found" in r.message for r in caplog.records)
    me = await attack(app, "whoami")
    assert me["cwd"] == str(app.data_dir)
    env = (await attack(app, "environ"))["env"]
    assert "JWT_SECRET" not in env
    # The limits still apply.
    assert (await attack(app, "alloc", "1024"))["ok"] is False
    with pytest.raises(CallTimeout):
        await attack(app, "spin", timeout=0.3)
    await wait_running(app, restarts=1)


async def test_degraded_fork_bomb_is_contained(make_app):
    # As root without bwrap the app keeps uid 0 when the interpreter is not reachable by an
    # unprivileged uid (pyenv under /root), so RLIMIT_NPROC is not enforced: the watchdog must
    # count the app's processes and kill them all. Otherwise the rlimit refuses the forks.
    app = await make_app(bwrap_path=None, processes=16, watchdog_interval=0.05)
    try:
        result = await attack(app, "fork_bomb", "300", timeout=10)
    except AppCrashed:
        result = None
    if result is not None and not result["ok"] and app.status.state == "running":
        assert "BlockingIOError" in result["error"] and result["forked"] < 16
        return
    deadline = time.monotonic() + 5
    while not (app.status.last_exit_reason or "").startswith("process_limit"):
        assert time.monotonic() < deadline, app.status
        await asyncio.sleep(0.05)
    await wait_running(app, restarts=1)


async def test_start_deadline(app_dir, host_var):
    app = AppProcess(
        "silent",
        app_dir,
        host_var / "miniapps" / "silent",
        config=SandboxConfig(start_timeout=0.5),
        argv=[sys.executable, "-c", "import time; time.sleep(30)"],
    )
    with pytest.raises(CallTimeout):
        await app.start()
    assert app.status.state == "failed"
    assert app.status.last_exit_reason.startswith("timeout")
    assert leftovers(app, app.status.pid) == []
    await app.stop()


async def test_two_apps_never_share_a_uid(sandboxes):
    require(os.geteuid() == 0, "only a root host chooses the apps' uids")
    config = SandboxConfig(bwrap_path=shutil.which("bwrap"), uid_base=250_000, uid_span=2)
    first = await sandboxes.start("first", config=config)
    second = await sandboxes.start("second", config=config)
    assert first.uid != second.uid  # the hashed slots may collide; the registry moves one on
    third = sandboxes.make("third", config=config)
    with pytest.raises(UidConflict):  # the span is full: refused rather than shared
        await third.start()
    assert third.status.state == "failed"
    # A uid the caller (the catalogue) assigns is refused too when another app holds it.
    thief = sandboxes.make("thief", config=config, uid=first.uid)
    with pytest.raises(UidConflict) as info:
        await thief.start()
    assert info.value.code == "uid_conflict" and thief.status.last_exit_reason.startswith("uid")
    # Without bubblewrap an app whose interpreter or folder only root can reach runs as root
    # (the launcher logs why): the uid it holds is then reserved, not the one it runs as.
    for app in (first, second):
        runs_as = app.uid if app._launcher.drop_uid else 0
        assert (await attack(app, "whoami"))["uid"] == runs_as
