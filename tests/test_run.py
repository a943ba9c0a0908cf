"""run.py as a real process: serves, keeps data across restarts, leaves no process behind."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from storage.config import settings as settings_list
from tests import processes
from tests.conftest import _free_port

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Correct-horse-9"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URL", "REDIS_URL"}}
    env.update(PASSWORD_HASH_MEMORY_KIB="1024", PASSWORD_HASH_TIME_COST="1", LOG_LEVEL="warning")
    return env


def start(data_dir: Path, port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start run.py and wait (with a deadline) for its "running on" line; warnings may come
    first. On failure the process is killed and what it printed is in the assertion."""
    process = subprocess.Popen(
        [sys.executable, "run.py", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=ROOT,
        env=env or _env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        process.seen = wait_for_line(process, f"http://127.0.0.1:{port}")
    except BaseException:
        process.kill()
        process.wait(timeout=10)
        raise
    return process


def wait_for_line(process: subprocess.Popen, needle: str, timeout: float = 60.0) -> list[str]:
    """Lines of the process's output up to the first holding ``needle``. A daemon thread keeps
    reading afterwards, so the pipe never fills and no read ever blocks the test."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no {needle!r} within {timeout}s: {''.join(seen)}") from None
        if line is None:
            raise AssertionError(f"the process ended before {needle!r}: {''.join(seen)}")
        seen.append(line)
        if needle in line:
            return seen


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
    """Send ``sig`` and wait (with a deadline) for the exit code; SIGKILL when it is ignored,
    so a failing test never leaves run.py behind."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise AssertionError(f"run.py ignored signal {sig} for {timeout}s") from None
    return process.returncode


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def embedded_pids(data_dir: Path) -> list[int]:
    """Processes of the embedded MongoDB server serving ``data_dir``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"storage.embedded_mongo" in cmdline and str(data_dir / "mongo").encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def wait_gone(data_dir: Path, timeout: float = 10.0) -> list[int]:
    """The embedded servers of ``data_dir`` still alive after ``timeout``, which are then
    killed: they run in their own session with a scrubbed environment, so the session-end
    check would not find one that outlived run.py."""
    deadline = time.monotonic() + timeout
    while (pids := embedded_pids(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    processes.kill(pids)
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_serves_stops_cleanly_and_keeps_data(tmp_path):
    data_dir = tmp_path / "var"
    port = _free_port()
    process = start(data_dir, port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert embedded_pids(data_dir), "embedded MongoDB not running"
        status, _ = http(
            "POST",
            base + "/api/v1/auth/register",
            {"username": "keeper", "email": "k@example.com", "password": PASSWORD},
        )
        assert status == 201
    finally:
        code = stop(process, signal.SIGTERM)
    assert code == 0
    assert wait_gone(data_dir) == []
    assert (data_dir / "jwt.key").exists()

    process = start(data_dir, port)
    try:
        status, body = http(
            "POST", base + "/api/v1/auth/login", {"login": "keeper", "password": PASSWORD}
        )
        assert status == 200, body
    finally:
        code = stop(process, signal.SIGINT)
    assert code == 0
    assert wait_gone(data_dir) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_leaves_no_orphan(tmp_path):
    data_dir = tmp_path / "var"
    process = start(data_dir, _free_port())
    try:
        assert embedded_pids(data_dir)
    finally:
        process.kill()
        process.wait(timeout=10)
    assert wait_gone(data_dir) == [], "embedded MongoDB outlived its parent"


def _production_env(path_dir: Path, **settings: str) -> dict[str, str]:
    """Production settings, and a PATH (an empty folder) on which there is no bubblewrap."""
    ours = {spec["env"] for spec in settings_list()}
    env = {k: v for k, v in _env().items() if k not in ours}
    env.update(
        AETHERIAL_ENV="production",
        JWT_SECRET="r" * 40,
        METRICS_TOKEN="m" * 40,
        PATH=str(path_dir),
        PASSWORD_HASH_MEMORY_KIB="1024",
        PASSWORD_HASH_TIME_COST="1",
        LOG_LEVEL="warning",
        **settings,
    )
    return env


def test_production_refuses_to_run_apps_unsandboxed(tmp_path):
    """Without bwrap the sandbox is degraded: production stops before it opens anything (the
    URLs below lead nowhere), saying why and how to proceed."""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = _production_env(
        empty, MONGODB_URL="mongodb://127.0.0.1:1", REDIS_URL="redis://127.0.0.1:1/0"
    )
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "run.py", "--port", str(port), "--data-dir", str(tmp_path / "var")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 2, out + err
    assert "cannot start" in err and "bubblewrap" in err
    assert "MINIAPPS_ALLOW_UNSANDBOXED=1" in err
    assert "running on" not in out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_production_runs_apps_unsandboxed_only_when_told_to(tmp_path, mongo_url, redis_url):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = _production_env(
        empty,
        MINIAPPS_ALLOW_UNSANDBOXED="1",
        MONGODB_URL=mongo_url,
        MONGODB_DB="t_" + uuid.uuid4().hex[:16],
        REDIS_URL=redis_url,
    )
    port = _free_port()
    process = start(tmp_path / "var", port, env)
    try:
        seen = process.seen  # the degraded sandbox's warning comes first, then "running on"
        assert any("sandbox degraded" in line for line in seen), "".join(seen)
        status, body = http("GET", f"http://127.0.0.1:{port}/readyz")
        assert status == 200, body
        assert body["checks"]["sandbox"] == "degraded"
    finally:
        code = stop(process, signal.SIGTERM)
    assert code == 0


def test_bad_config_stops_startup_naming_the_variable(tmp_path):
    env = _env() | {"AETHERIAL_PORT": "eighty"}
    result = subprocess.run(
        [sys.executable, "run.py", "--data-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "AETHERIAL_PORT" in result.stderr
