"""Hosted mini-programs as sandboxed, supervised OS processes.

One ``AppProcess`` per app: it starts ``python -m sdk.runtime <app dir>`` (or any argv), talks to
it only over stdin/stdout with the JSON-RPC protocol of ``sdk/PROTOCOL.md``, and supervises it:
per-call deadlines, a cap on concurrent calls, kill after a hang, restart with back-off after a
crash, ``failed`` after too many crashes in a short window.

Isolation (Linux, bubblewrap): new mount, PID, network, IPC and UTS namespaces; the only files
visible are the interpreter, the venv's packages, the ``sdk`` package and the app (all read-only),
a private writable folder at ``/data`` (also the cwd and ``HOME``) and a small ``/tmp``. The
network namespace has only its own loopback, so no host port (MongoDB, Redis, the gateway) is
reachable. The environment is rebuilt from scratch. Resource limits (address space, CPU seconds,
open files, processes) are set with ``setrlimit`` before exec.

The process limit needs care when the host runs as root: the kernel never enforces
``RLIMIT_NPROC`` for uid 0. So a root host runs each app as its own unprivileged uid (bubblewrap
keeps ``CAP_SETUID``/``CAP_SETGID`` just long enough for a tiny launcher inside the sandbox to
drop to that uid), and a watchdog counts the app's processes and kills the whole sandbox past the
limit, a second line of defence (and the only one in degraded mode when the interpreter is not
reachable by an unprivileged uid).

Without bubblewrap the host still runs apps ("sandbox degraded"): same argv, scrubbed
environment, rlimits, cwd in the private folder, die-with-parent, but no namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
_PR_SET_PDEATHSIG = 1
MIB = 1024 * 1024
MAX_LINE = MIB

# Where things appear inside the bubblewrap sandbox.
SANDBOX_APP_DIR = "/app"
SANDBOX_DATA_DIR = "/data"
SANDBOX_LIB_DIR = "/opt/aetherial"  # holds the read-only ``sdk`` package

# ``{app_dir}`` is replaced by the app folder as the process sees it (``/app`` in the sandbox).
DEFAULT_ARGV: tuple[str, ...] = (sys.executable, "-m", "sdk.runtime", "{app_dir}")

# Runs inside the sandbox as root with only CAP_SETUID/CAP_SETGID: drop to the app's uid (which
# clears every capability) and exec the app. ``-I -S`` keeps it from reading anything else.
_DROP_PRIVILEGES = (
    "import os,sys;u=int(sys.argv[1]);g=int(sys.argv[2]);"
    "os.setgroups([]);os.setgid(g);os.setuid(u);os.execvp(sys.argv[3],sys.argv[3:])"
)

OnRequest = Callable[[str, dict[str, Any]], Awaitable[Any]]


def _default_bwrap() -> str | None:
    return shutil.which("bwrap")


@dataclass
class SandboxConfig:
    """Limits and policy shared by every hosted app. ``bwrap_path=None`` means degraded."""

    bwrap_path: str | None = field(default_factory=_default_bwrap)
    memory_bytes: int = 256 * MIB
    cpu_seconds: int = 30
    open_files: int = 64
    processes: int = 32
    tmp_bytes: int = 16 * MIB
    call_timeout: float = 3.0
    start_timeout: float = 5.0
    stop_timeout: float = 2.0
    max_concurrent_calls: int = 8
    max_concurrent_requests: int = 32  # app -> host capability calls in flight
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    backoff_reset_after: float = 30.0  # a run this long counts as healthy again
    max_crashes: int = 5
    crash_window: float = 60.0
    stderr_keep: int = 64 * 1024
    watchdog_interval: float = 0.2
    # A root host runs each app as uid ``uid_base + crc32(app_id) % uid_span`` unless the caller
    # assigns one (the catalogue should, to rule out two apps sharing a uid and so a limit).
    uid_base: int = 200_000
    uid_span: int = 100_000

    @property
    def degraded(self) -> bool:
        return self.bwrap_path is None


# --- errors ------------------------------------------------------------------------------------


class SandboxError(Exception):
    """A call or start failed; ``code`` is stable (it reaches API clients and logs)."""

    code = "sandbox_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class CallTimeout(SandboxError):
    code = "timeout"


class AppCrashed(SandboxError):
    code = "crashed"


class Overloaded(SandboxError):
    code = "overloaded"


class ProtocolError(SandboxError):
    code = "protocol_error"


class Unavailable(SandboxError):
    """The app is stopped, restarting or failed."""

    code = "unavailable"


class AppCallError(SandboxError):
    """The app answered with a JSON-RPC error; ``app_code`` is its ``error.data.code``."""

    code = "app_error"

    def __init__(self, message: str, app_code: str, data: Any = None) -> None:
        super().__init__(message, app_code=app_code)
        self.app_code = app_code
        self.data = data


@dataclass(frozen=True)
class SandboxStatus:
    state: str  # running / restarting / stopped / failed
    restarts: int
    last_exit_reason: str | None
    degraded: bool
    pid: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "restarts": self.restarts,
            "last_exit_reason": self.last_exit_reason,
            "degraded": self.degraded,
        }


# --- helpers -----------------------------------------------------------------------------------


def _reachable_by_anyone(path: Path) -> bool:
    """Whether an unrelated unprivileged uid can reach and read ``path`` (every parent o+x)."""
    try:
        path = path.resolve()
        for parent in reversed(path.parents):
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        return bool(os.stat(path).st_mode & stat.S_IROTH)
    except OSError:
        return False


def _python_roots() -> list[str]:
    """The directories the interpreter needs: the venv and the real installation it points to."""
    roots = {
        os.path.realpath(sys.prefix),
        os.path.realpath(sys.base_prefix),
        os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
    }
    # The venv's own path may be a symlink; bind it where the argv names it too.
    roots.add(os.path.abspath(sys.prefix))
    # System directories are bound whole below; binding them again would only shadow them.
    system = ("/usr", "/lib", "/lib64", "/bin", "/sbin")
    return sorted(r for r in roots if r != "/" and not r.startswith(system))


def _pids_where(match: Callable[[int], bool]) -> list[int]:
    pids = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                pid = int(entry.name)
                with contextlib.suppress(OSError):
                    if match(pid) and not _is_zombie(pid):
                        pids.append(pid)
    return pids


def _is_zombie(pid: int) -> bool:
    """A zombie holds no resources and cannot be killed; its parent (or init) reaps it."""
    with open(f"/proc/{pid}/stat", "rb") as file:
        return file.read().rsplit(b")", 1)[1].split()[0] == b"Z"


def _owned_by(uid: int) -> Callable[[int], bool]:
    return lambda pid: os.stat(f"/proc/{pid}").st_uid == uid


def _in_session(sid: int) -> Callable[[int], bool]:
    return lambda pid: os.getsid(pid) == sid


# --- the process -------------------------------------------------------------------------------


class AppProcess:
    """One hosted app: its sandboxed process, the protocol over its pipes, its supervision."""

    def __init__(
        self,
        app_id: str,
        app_dir: Path | str,
        data_dir: Path | str,
        *,
        config: SandboxConfig | None = None,
        manifest: dict[str, Any] | None = None,
        on_request: OnRequest | None = None,
        argv: Sequence[str] = DEFAULT_ARGV,
        uid: int | None = None,
        secret: str | None = None,
    ) -> None:
        self.app_id = app_id
        self.app_dir = Path(app_dir).resolve()
        self.data_dir = Path(data_dir).resolve()
        self.config = config or SandboxConfig()
        self.manifest = manifest or {}
        self.on_request = on_request
        self.argv = tuple(argv)
        self._secret = secret  # the app's own signing secret, sent in ``initialize``
        self._is_root = os.geteuid() == 0
        self._host_pid = os.getpid()
        if uid is None and self._is_root:
            uid = self.config.uid_base + zlib.crc32(app_id.encode()) % self.config.uid_span
        # The uid the app runs as when we can choose it (root host); None = our own uid.
        self.uid = uid if self._is_root else None
        self._drop_uid = self.uid is not None and self._can_drop_uid()

        self._proc: asyncio.subprocess.Process | None = None
        self._state = "stopped"
        self._restarts = 0
        self._last_exit_reason: str | None = None
        self._kill_reason: str | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._io_tasks: list[asyncio.Task[Any]] = []
        self._requests_in_flight = 0
        self._supervisor: asyncio.Task[None] | None = None
        self._exited: asyncio.Task[None] | None = None
        self._crash_times: deque[float] = deque()
        self._backoff = self.config.backoff_initial
        self._started_at = 0.0
        self._stopping = False
        self._warned_degraded = False
        self.stderr_tail = bytearray()

    # -- public API ---------------------------------------------------------------------------

    @property
    def status(self) -> SandboxStatus:
        return SandboxStatus(
            state=self._state,
            restarts=self._restarts,
            last_exit_reason=self._last_exit_reason,
            degraded=self.config.degraded,
            pid=self._proc.pid if self._proc else None,
        )

    async def start(self) -> None:
        """Start the app and wait for its ``initialize`` answer; raises ``SandboxError``."""
        if self._state == "running" or (self._supervisor and not self._supervisor.done()):
            return
        self._stopping = False
        self._crash_times.clear()
        self._backoff = self.config.backoff_initial
        try:
            await self._launch()
        except SandboxError:
            self._state = "failed"
            raise
        self._supervisor = asyncio.create_task(self._supervise(), name=f"sandbox:{self.app_id}")

    async def stop(self) -> None:
        """``shutdown``, then SIGKILL after ``stop_timeout``; no process of the app survives."""
        self._stopping = True
        supervisor, self._supervisor = self._supervisor, None
        proc = self._proc
        if proc is not None and proc.returncode is None and self._state == "running":
            with contextlib.suppress(SandboxError):
                await self.call("shutdown", {}, timeout=self.config.stop_timeout)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), self.config.stop_timeout)
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        # The supervisor may have been cancelled in the middle of a restart: kill what is there.
        await self._kill("stopped")
        if self._exited is not None:
            await asyncio.wait([self._exited])
        for task in list(self._tasks):
            task.cancel()
        self._state = "stopped"

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Send one host -> app request and return its result.

        Past the deadline the app is considered hung: it is killed (and restarted by the
        supervisor), and this and every other in-flight call fail with ``timeout``.
        """
        proc = self._proc
        if proc is None or proc.returncode is not None or self._state != "running":
            raise Unavailable(f"app {self.app_id} is {self._state}")
        if len(self._pending) >= self.config.max_concurrent_calls:
            raise Overloaded(f"app {self.app_id} already has {len(self._pending)} calls in flight")
        timeout = self.config.call_timeout if timeout is None else timeout
        self._next_id += 1
        call_id = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        try:
            message = {"jsonrpc": "2.0", "id": call_id, "method": method, "params": params or {}}
            await self._send(proc, message)
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            except TimeoutError:
                if future.done():  # the process died at the same moment
                    return future.result()
                await self._kill(f"timeout: {method} took more than {timeout:g}s")
                if self._exited is not None:  # so status shows why when we raise
                    await asyncio.wait([self._exited])
                raise CallTimeout(f"{method} took more than {timeout:g}s") from None
        finally:
            self._pending.pop(call_id, None)
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # mark it retrieved: we may have raised another error

    # -- starting -----------------------------------------------------------------------------

    def _can_drop_uid(self) -> bool:
        if not self.config.degraded:
            return True  # inside the sandbox every bound path is reachable
        # Without a mount namespace the app sees the host's tree: a root-only parent such as
        # /root (pyenv) would make the interpreter unreachable for an unprivileged uid.
        paths = [Path(sys.executable), self.app_dir]
        if all(_reachable_by_anyone(p) for p in paths):
            return True
        log.warning(
            "app %s runs as root in degraded mode (%s is not reachable by an unprivileged "
            "uid): the process limit is enforced only by the watchdog",
            self.app_id,
            ", ".join(str(p) for p in paths if not _reachable_by_anyone(p)),
        )
        return False

    def _prepare_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        readable = stat.S_IROTH | stat.S_IXOTH
        if self._drop_uid and (self.app_dir.stat().st_mode & readable) != readable:
            log.warning("app %s: %s is not readable by the app's uid", self.app_id, self.app_dir)
        if self._drop_uid:
            assert self.uid is not None
            os.chown(self.data_dir, self.uid, self.uid)
        os.chmod(self.data_dir, 0o700)

    def _command(self) -> list[str]:
        bwrap = self.config.bwrap_path
        app_dir = SANDBOX_APP_DIR if bwrap else str(self.app_dir)
        argv = [part.replace("{app_dir}", app_dir) for part in self.argv]
        if bwrap is None:
            return argv
        if self._drop_uid:
            assert self.uid is not None
            python = os.path.realpath(sys.executable)
            uid = str(self.uid)
            argv = [python, "-I", "-S", "-c", _DROP_PRIVILEGES, uid, uid, *argv]
        return [bwrap, *self._bwrap_args(), "--", *argv]

    def _bwrap_args(self) -> list[str]:
        args = ["--die-with-parent", "--new-session"]
        # No user namespace for a root host: a uid mapped to root inside would still be root to
        # the kernel's process accounting. We drop to an unprivileged uid instead.
        if self._is_root:
            args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
            args += ["--unshare-cgroup-try"]
            if self._drop_uid:
                args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args += ["--unshare-all"]
        args += ["--hostname", "app"]
        for path in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        for path in ("/etc/ld.so.cache", "/etc/localtime"):
            if os.path.exists(path):
                args += ["--ro-bind", path, path]
        # /tmp first: the project (and so its venv) may itself live under /tmp, as in a CI
        # checkout; binds made after the tmpfs land on top of it instead of being hidden by it.
        args += ["--perms", "1777", "--size", str(self.config.tmp_bytes), "--tmpfs", "/tmp"]
        # bwrap creates missing parents of a mount point with mode 0700, which an unprivileged
        # uid cannot traverse (/root/.pyenv, /work/main/.venv): create them 0755 first.
        made: set[str] = set()
        for target in [*_python_roots(), f"{SANDBOX_LIB_DIR}/sdk"]:
            for parent in reversed(Path(target).parents):
                if str(parent) != "/" and str(parent) not in made:
                    made.add(str(parent))
                    args += ["--perms", "0755", "--dir", str(parent)]
        for root in _python_roots():
            args += ["--ro-bind", root, root]
        args += ["--ro-bind", str(_PROJECT_ROOT / "sdk"), f"{SANDBOX_LIB_DIR}/sdk"]
        args += ["--ro-bind", str(self.app_dir), SANDBOX_APP_DIR]
        args += ["--bind", str(self.data_dir), SANDBOX_DATA_DIR]
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--chdir", SANDBOX_DATA_DIR, "--clearenv"]
        for key, value in self._env().items():
            args += ["--setenv", key, value]
        return args

    def _env(self) -> dict[str, str]:
        """The whole environment of the app: nothing of the host's (no URLs, keys, secrets)."""
        sandboxed = not self.config.degraded
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": SANDBOX_LIB_DIR if sandboxed else str(_PROJECT_ROOT),
            "HOME": SANDBOX_DATA_DIR if sandboxed else str(self.data_dir),
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "AETHERIAL_APP_ID": self.app_id,
        }

    def _preexec(self) -> None:
        """In the child between fork and exec: limits, uid (degraded), die with the parent."""
        cfg = self.config
        limits = [
            (resource.RLIMIT_AS, cfg.memory_bytes),
            (resource.RLIMIT_CPU, cfg.cpu_seconds),
            (resource.RLIMIT_NOFILE, cfg.open_files),
            (resource.RLIMIT_NPROC, cfg.processes),
            (resource.RLIMIT_CORE, 0),
        ]
        for limit, value in limits:
            resource.setrlimit(limit, (value, value))
        if cfg.degraded and self._drop_uid:
            assert self.uid is not None
            os.setgroups([])
            os.setgid(self.uid)
            os.setuid(self.uid)
        # After setuid: a change of credentials clears the parent-death signal.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != self._host_pid:  # the host died before the prctl
            os._exit(1)

    async def _launch(self) -> None:
        """Spawn the process and complete ``initialize`` within the start deadline."""
        if self.config.degraded and not self._warned_degraded:
            self._warned_degraded = True
            log.warning(
                "sandbox degraded: bubblewrap not found, app %s runs without namespaces "
                "(no file, network or PID isolation)",
                self.app_id,
            )
        env = {} if self.config.bwrap_path else self._env()
        self._kill_reason = None
        self.stderr_tail.clear()
        try:
            self._prepare_data_dir()
            proc = await self._spawn_process(env)
        except (OSError, subprocess.SubprocessError) as exc:
            self._last_exit_reason = f"crashed: could not start: {exc}"
            raise AppCrashed(f"app {self.app_id} could not start: {exc}") from exc
        self._proc = proc
        self._io_tasks = [
            asyncio.create_task(self._read_stdout(proc)),
            asyncio.create_task(self._read_stderr(proc)),
            asyncio.create_task(self._watchdog(proc)),
        ]
        self._exited = exited = asyncio.create_task(self._on_exit(proc))
        self._state = "running"
        params = {"protocol": 1, "app_id": self.app_id, "manifest": self.manifest}
        if self._secret:
            params["secret"] = self._secret
        try:
            answer = await self.call("initialize", params, timeout=self.config.start_timeout)
            if not isinstance(answer, dict) or answer.get("ready") is not True:
                raise ProtocolError(f"bad initialize answer: {answer!r:.200}")
        except SandboxError as exc:
            await self._kill(f"start failed: {exc.code}: {exc.message}")
            await asyncio.wait([exited])
            raise
        self._started_at = time.monotonic()
        log.info(
            "app %s started (pid %s, degraded=%s)", self.app_id, proc.pid, self.config.degraded
        )

    async def _spawn_process(self, env: dict[str, str]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self._command(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.data_dir if self.config.degraded else "/",
            env=env,
            limit=MAX_LINE + 1,
            # Its own process group: signals from the terminal reach only the host, and we can
            # kill the whole group.
            start_new_session=True,
            preexec_fn=self._preexec,
            close_fds=True,
        )

    # -- supervision --------------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Wait for the process to end; restart it with back-off until stopped or failed."""
        while True:
            assert self._exited is not None
            # wait(), not await: cancelling the supervisor must not cancel the exit handling.
            await asyncio.wait([self._exited])
            if self._stopping:
                return
            now = time.monotonic()
            if now - self._started_at >= self.config.backoff_reset_after:
                self._backoff = self.config.backoff_initial
            self._crash_times.append(now)
            while self._crash_times and now - self._crash_times[0] > self.config.crash_window:
                self._crash_times.popleft()
            if len(self._crash_times) >= self.config.max_crashes:
                self._state = "failed"
                log.error(
                    "app %s failed: %d exits within %gs (last: %s)",
                    self.app_id,
                    len(self._crash_times),
                    self.config.crash_window,
                    self._last_exit_reason,
                )
                return
            # Restart until a launch succeeds or the crash budget is spent.
            while True:
                self._state = "restarting"
                delay, self._backoff = (
                    self._backoff,
                    min(self._backoff * 2, self.config.backoff_max),
                )
                log.warning(
                    "app %s exited (%s); restart in %.1fs",
                    self.app_id,
                    self._last_exit_reason,
                    delay,
                )
                await asyncio.sleep(delay)
                if self._stopping:
                    return
                self._restarts += 1
                try:
                    await self._launch()
                    break
                except SandboxError:
                    self._crash_times.append(time.monotonic())
                    if len(self._crash_times) >= self.config.max_crashes:
                        self._state = "failed"
                        return

    async def _on_exit(self, proc: asyncio.subprocess.Process) -> None:
        """Wait for the exit, record why, fail in-flight calls, make sure nothing is left."""
        await proc.wait()
        await asyncio.gather(*self._io_tasks, return_exceptions=True)
        if self._kill_reason is None and self._stopping:
            self._kill_reason = "stopped"
        reason = self._kill_reason or self._describe_exit(proc.returncode)
        self._last_exit_reason = reason
        if reason.startswith("timeout"):
            error: SandboxError = CallTimeout(f"app {self.app_id} was killed: {reason}")
        elif reason.startswith("protocol_error"):
            error = ProtocolError(f"app {self.app_id} was killed: {reason}")
        else:
            error = AppCrashed(f"app {self.app_id} exited: {reason}")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        # Whatever the app forked and left behind (degraded mode, or between kill and reap).
        self._sweep(proc.pid)
        if self._state == "running":
            self._state = "restarting"

    def _describe_exit(self, code: int | None) -> str:
        signum = None
        if code is not None and code < 0:
            signum = -code
        elif code is not None and code > 128 and not self.config.degraded:
            signum = code - 128  # bwrap exits with 128 + the signal that killed the app
        if signum is not None:
            try:
                name = signal.Signals(signum).name
            except ValueError:
                name = f"signal {signum}"
            if signum == signal.SIGXCPU:
                return f"cpu_limit: killed by {name}"
            return f"crashed: killed by {name}"
        tail = bytes(self.stderr_tail[-300:]).decode(errors="replace").strip()
        return f"crashed: exit code {code}" + (f" ({tail.splitlines()[-1]})" if tail else "")

    async def _kill(self, reason: str) -> None:
        """Kill the whole sandbox (first reason wins) and wait for the process to end."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None and self._kill_reason is None:
            self._kill_reason = reason
            log.warning("killing app %s: %s", self.app_id, reason)
        if proc.returncode is None:
            # bwrap's PID 1 inside the sandbox dies with it (--die-with-parent), and the kernel
            # then kills every process of that PID namespace.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5)
        self._sweep(proc.pid)

    def _sweep(self, pid: int) -> None:
        """SIGKILL every leftover process of this app, until none is left (bounded)."""
        match = self._membership(pid)
        for _ in range(50):
            pids = _pids_where(match)
            if not pids:
                return
            for leftover in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(leftover, signal.SIGKILL)
            time.sleep(0.02)
        log.error("app %s: processes left after kill: %s", self.app_id, _pids_where(match))

    def _membership(self, pid: int) -> Callable[[int], bool]:
        # A dedicated uid is the reliable test (a setsid() cannot escape it); otherwise the
        # session we started the process in.
        if self._drop_uid and self.uid is not None:
            return _owned_by(self.uid)
        return _in_session(pid)

    async def _watchdog(self, proc: asyncio.subprocess.Process) -> None:
        """Kill the sandbox when its process count passes the limit (fork bombs as root)."""
        match = self._membership(proc.pid)
        limit = self.config.processes
        while proc.returncode is None:
            count = await asyncio.to_thread(lambda: len(_pids_where(match)))
            if count > limit and proc.returncode is None:
                await self._kill(f"process_limit: {count} processes (limit {limit})")
                return
            await asyncio.sleep(self.config.watchdog_interval)

    # -- the protocol -------------------------------------------------------------------------

    async def _send(self, proc: asyncio.subprocess.Process, message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        try:
            proc.stdin.write(data)
            await proc.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise AppCrashed(f"app {self.app_id} is gone: {exc}") from None

    async def _read_stdout(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            try:
                line = await proc.stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):
                await self._kill(f"protocol_error: a line of more than {MAX_LINE} bytes")
                return
            if not line:
                return
            try:
                message = json.loads(line)
                if not isinstance(message, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                await self._kill(f"protocol_error: bad line ({exc}): {line[:100]!r}")
                return
            self._dispatch(proc, message)

    def _dispatch(self, proc: asyncio.subprocess.Process, message: dict[str, Any]) -> None:
        method = message.get("method")
        if isinstance(method, str):
            if "id" in message:
                self._spawn(self._serve_request(proc, message))
            elif method == "log":
                params = message.get("params") or {}
                log.info("app %s: %.2000s", self.app_id, params.get("message", ""))
            return
        future = self._pending.get(message.get("id"))  # type: ignore[arg-type]
        if future is None or future.done():
            log.debug("app %s: response to an unknown call id %r", self.app_id, message.get("id"))
            return
        if "error" in message:
            error = message["error"] if isinstance(message["error"], dict) else {}
            data = error.get("data")
            app_code = data.get("code") if isinstance(data, dict) else None
            future.set_exception(
                AppCallError(
                    str(error.get("message", "app error"))[:1000],
                    str(app_code or "internal_error"),
                    data,
                )
            )
        else:
            future.set_result(message.get("result"))

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_request(self, proc: asyncio.subprocess.Process, message: dict) -> None:
        """Answer one app -> host capability request with the host's ``on_request``."""
        request_id = message["id"]
        method = message["method"]
        params = message.get("params")
        response: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        if self._requests_in_flight >= self.config.max_concurrent_requests:
            response["error"] = _rpc_error("rate_limited", "too many requests in flight")
        elif self.on_request is None:
            response["error"] = _rpc_error("unknown_method", f"unknown method {method}")
        elif not isinstance(params, dict):
            response["error"] = _rpc_error("invalid_params", "params must be an object")
        else:
            self._requests_in_flight += 1
            try:
                response["result"] = await self.on_request(method, params)
            except Exception as exc:
                code = getattr(exc, "code", None)
                if isinstance(code, str):
                    text = getattr(exc, "message", None) or str(exc)
                    response["error"] = _rpc_error(code, str(text))
                else:
                    log.exception("app %s: capability %s failed", self.app_id, method)
                    response["error"] = _rpc_error("internal_error", "internal error")
            finally:
                self._requests_in_flight -= 1
        if proc.returncode is None:
            with contextlib.suppress(SandboxError):
                await self._send(proc, response)

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        """Keep the tail of stderr and log it line by line (truncated), never parse it."""
        assert proc.stderr is not None
        pending = b""
        while chunk := await proc.stderr.read(65536):
            self.stderr_tail += chunk
            del self.stderr_tail[: -self.config.stderr_keep]
            pending += chunk
            *lines, pending = pending.split(b"\n")
            pending = pending[-4096:]
            for line in lines[-20:]:  # a flood is kept in the tail, not in the log
                log.info("app %s stderr: %.500s", self.app_id, line.decode(errors="replace"))


def _rpc_error(code: str, message: str) -> dict[str, Any]:
    number = {"unknown_method": -32601, "invalid_params": -32602}.get(code, -32000)
    return {"code": number, "message": message, "data": {"code": code}}
