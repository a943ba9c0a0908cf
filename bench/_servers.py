"""Servers under test for the benchmarks: start them as processes, read their CPU and memory."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CEILING_SERVER = Path(__file__).resolve().parent / "ceiling_server.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
SERVER_START_TIMEOUT = 60.0
SERVER_STOP_TIMEOUT = 15.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to signal this process when its parent dies (no orphans if the bench is killed)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


# ----------------------------------------------------------------------------------------------
# /proc readings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of the process (all its threads), in seconds."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def descendants(pid: int) -> list[int]:
    """Every living descendant of ``pid`` (the embedded MongoDB is the gateway's child)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found.extend(kids)
        frontier.extend(kids)
    return found


def machine_cpu() -> tuple[int, int, int]:
    """(busy, steal, total) jiffies of the whole machine since boot.

    Busy excludes idle, iowait and steal (time the hypervisor gave to other guests).
    """
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    values += [0] * (8 - len(values))
    total = sum(values)
    return total - values[3] - values[4] - values[7], values[7], total


def cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


# ----------------------------------------------------------------------------------------------
# Servers under test


class ServerProcess:
    """A server started as its own process (own session, SIGTERM when the bench dies)."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path = ROOT
    ) -> None:
        self.name = name
        self.cwd = cwd
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.children: dict[int, str] = {}  # pid -> cmdline, as seen after start

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, ready_marker: str) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches only the bench, which stops us
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {self.process.returncode} while starting:\n"
                    + self.log_tail()
                )
            if ready_marker in self.log_path.read_text(errors="replace"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} did not print {ready_marker!r} within "
                    f"{SERVER_START_TIMEOUT:.0f}s:\n" + self.log_tail()
                )
            time.sleep(0.05)
        self.children = {pid: cmdline(pid) for pid in descendants(self.pid)}

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a while; then any child we saw that outlived it."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(SERVER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(SERVER_STOP_TIMEOUT)
        for pid, seen in self.children.items():
            # Only a process that is still the one we saw (same command line).
            if seen and cmdline(pid) == seen:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 5
                while cmdline(pid) == seen and time.monotonic() < deadline:
                    time.sleep(0.05)
                if cmdline(pid) == seen:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        return process.returncode

    def problems(self) -> list[str]:
        """Lines of the server's log that look like errors (first few)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        keys = ("ERROR", "Traceback", "CRITICAL", "Exception")
        return [line for line in lines if any(k in line for k in keys)]


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    # The scenario is the embedded store: ignore any external MongoDB/Redis of the shell.
    for name in ("MONGODB_URL", "REDIS_URL", "AETHERIAL_ENV", "JWT_SECRET", "AETHERIAL_DATA_DIR"):
        env.pop(name, None)
    env.update(
        {
            "PASSWORD_HASH_MEMORY_KIB": "1024",
            "PASSWORD_HASH_TIME_COST": "1",
            "SEND_RATE_MAX": "100000",
            "SEND_RATE_WINDOW": "1",
            "LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "100000",
            "LOGIN_MAX_FAILURES": "10000",
            "REGISTER_MAX_PER_ADDRESS": "1000000",  # every simulated person signs up from loopback
            "REGISTER_MAX_GLOBAL": "10000000",
            "AETHERIAL_ENV": "development",  # dev top-ups fund the wallet scenarios
            "ACCESS_TOKEN_TTL": "86400",
            "LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def start_aetherial(workdir: Path, root: Path = ROOT, name: str = "aetherial") -> ServerProcess:
    """``run.py`` of the checkout at ``root`` (another revision's worktree for ``--baseline``),
    with this checkout's interpreter: its own directory comes first on ``sys.path``."""
    port = free_port()
    data_dir = workdir / "data"
    server = ServerProcess(
        name,
        [sys.executable, str(root / "run.py"), "--port", str(port), "--data-dir", str(data_dir)],
        server_env(),
        workdir / "gateway.log",
        cwd=root,
    )
    server.url = f"http://{HOST}:{port}"  # type: ignore[attr-defined]
    server.start("Aetherial is running on")
    return server


def start_ceiling(workdir: Path) -> ServerProcess:
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    server = ServerProcess(
        "ceiling",
        [sys.executable, str(CEILING_SERVER), "--host", HOST, "--port", str(port)],
        env,
        workdir / "ceiling.log",
    )
    server.url = f"http://{HOST}:{port}"  # type: ignore[attr-defined]
    server.start("ceiling server is running on")
    return server
