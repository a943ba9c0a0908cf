"""What a newcomer's ``make test`` relies on, proved with small inner ``pytest`` runs (each with
a deadline) that load our conftest: a run fails when it leaves a process behind, and a missing
tool (Redis, bubblewrap, Chromium) skips the tests that need it, naming the tool, except under
``CI=true`` where it fails them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import processes

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
timeout = 60
"""


def inner_pytest(
    tmp_path: Path, source: str, *plugins: str, **env: str
) -> subprocess.CompletedProcess:
    """Run ``source`` as a test file in its own pytest process, with tests/conftest.py (and
    ``plugins``) loaded, the environment of this run changed by ``env`` (an empty value
    removes a variable). Its output is read with a deadline; on timeout it is killed."""
    (tmp_path / "test_inner.py").write_text(source)
    (tmp_path / "pytest.ini").write_text(INI)
    environ = {k: v for k, v in os.environ.items() if k not in {"CI", "REDIS_URL", "CHROMIUM_PATH"}}
    environ.update(env)
    environ = {k: v for k, v in environ.items() if v}
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.conftest"]
    for plugin in plugins:
        argv += ["-p", plugin]
    argv += [
        "-rfEs",
        "--rootdir",
        str(tmp_path),
        "-c",
        str(tmp_path / "pytest.ini"),
        "--basetemp",
        str(tmp_path / "basetemp"),
        str(tmp_path / "test_inner.py"),
    ]
    return subprocess.run(argv, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)


LEAKY = """
import os
import subprocess
from pathlib import Path


def test_forgets_what_it_started():
    # A child in its own session, and one that leaves the tree (its parent, sh, exits at once,
    # so it is re-parented to init): only the run's mark in its environment finds it.
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    escaped = subprocess.run(
        ["sh", "-c", "sleep 61 >/dev/null 2>&1 & echo $!"],
        capture_output=True, text=True, timeout=10, check=True,
    ).stdout.strip()
    Path(os.environ["PIDS_FILE"]).write_text(f"{child.pid} {escaped}")
"""

TIDY = """
import subprocess


def test_stops_what_it_started():
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        assert child.poll() is None
    finally:
        child.kill()
        child.wait(timeout=10)
"""


def test_a_run_that_leaves_a_process_running_fails_naming_it(tmp_path):
    pids_file = tmp_path / "pids"
    pids: list[int] = []
    try:
        result = inner_pytest(tmp_path, LEAKY, PIDS_FILE=str(pids_file))
        pids = [int(pid) for pid in pids_file.read_text().split()]
        out = result.stdout + result.stderr
        assert result.returncode == 1, out
        assert "1 passed" in out  # the test itself passed: the check failed the run
        assert "processes left running" in out, out
        assert f"pid {pids[0]}: sleep 60" in out, out
        assert f"pid {pids[1]}: sleep 61" in out, out  # escaped the tree: found by its mark
        assert [pid for pid in pids if processes.alive(pid)] == [], "not killed"
    finally:  # never leave them, even when the check is broken
        for pid in pids:
            if processes.cmdline(pid).startswith("sleep 6"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_a_run_that_stops_what_it_starts_passes(tmp_path):
    result = inner_pytest(tmp_path, TIDY)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "left running" not in out, out


NEEDS_TOOLS = """
from tests.miniapps.hostile import needs_bwrap


def test_needs_redis(redis_url):
    pass


async def test_needs_chromium(browser):
    pass


def test_needs_bubblewrap():
    needs_bwrap()
"""

MISSING = (
    "redis-server is not installed",
    "chromium is not on PATH",
    "bubblewrap (bwrap) is not installed",
)


def test_missing_tools_skip_naming_them(tmp_path):
    """A machine with only Python (an empty PATH): each test skips, saying what is missing."""
    empty = tmp_path / "bin"
    empty.mkdir()
    result = inner_pytest(tmp_path, NEEDS_TOOLS, "tests.web.conftest", PATH=str(empty))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "3 skipped" in out, out
    for why in MISSING:
        assert why in out, (why, out)


def test_missing_tools_fail_under_ci(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    result = inner_pytest(tmp_path, NEEDS_TOOLS, "tests.web.conftest", PATH=str(empty), CI="true")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    # A test's own check fails it; a fixture's is an error in its setup.
    assert "1 failed, 2 errors" in out, out
    for why in MISSING:
        assert f"required for CI but missing: {why}" in out, (why, out)
