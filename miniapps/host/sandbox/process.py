"""``AppProcess``: one hosted app as a sandboxed, supervised OS process.

It starts ``python -m sdk.runtime <app dir>`` (or any argv) in the jail of ``jail.py``, talks to
it only over stdin/stdout with the JSON-RPC peer of ``sdk.protocol``, and supervises it:
per-call deadlines, a cap on concurrent calls, kill after a hang, restart with back-off after a
crash, ``failed`` after too many crashes in a short window.

A root host runs each app as its own unprivileged uid, because the kernel never enforces
RLIMIT_NPROC for uid 0: bubblewrap keeps ``CAP_SETUID``/``CAP_SETGID`` just long enough for a
tiny launcher inside the sandbox to drop to that uid. Without bubblewrap the host still runs
apps ("sandbox degraded"): same argv, scrubbed environment, limits, cgroup, seccomp filter, cwd
in the private folder, die-with-parent, but no namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from miniapps.host.sandbox import jail, logs, transport, watchdog
from miniapps.host.sandbox.cgroups import AppCgroup, create_cgroup
from miniapps.host.sandbox.config import DEFAULT_ARGV, MIB, SandboxConfig, SandboxStatus
from miniapps.host.sandbox.errors import (
    AppCallError,
    AppCrashed,
    CallTimeout,
    DiskQuota,
    Overloaded,
    ProtocolError,
    SandboxError,
    UidConflict,
    Unavailable,
)
from miniapps.host.sandbox.launcher import Launcher, describe_exit
from sdk.protocol import Peer, RpcError

log = logging.getLogger(__name__)

OnRequest = Callable[[str, dict[str, Any]], Awaitable[Any]]


class AppProcess:
    """One hosted app: its sandboxed process, the protocol over its pipes, its supervision.

    ``uid`` is the unprivileged uid a root host runs the app as; the catalogue passes a unique
    one per app. Without it the app gets one from ``config.uids`` (unique within this host).
    Starting an app whose uid belongs to another app of the host fails with ``uid_conflict``.
    """

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
        self._uid_error: UidConflict | None = None
        if uid is None and os.geteuid() == 0:
            try:
                uid = jail.fallback_uid(app_id, self.config)
            except UidConflict as exc:  # reported by start(), not by the constructor
                self._uid_error = exc
        # The uid the app runs as when we can choose it (root host); None = our own uid.
        self.uid = uid if os.geteuid() == 0 else None
        self._launcher = Launcher(
            app_id, self.app_dir, self.data_dir, self.argv, self.config, self.uid
        )

        self._proc: asyncio.subprocess.Process | None = None
        self._peer: Peer | None = None
        self._cgroup: AppCgroup | None = None
        self._cgroup_made = False
        self._oom_kills = 0
        self._state = "stopped"
        self._restarts = 0
        self._last_exit_reason: str | None = None
        self._kill_reason: str | None = None
        self._io_tasks: list[asyncio.Task[Any]] = []
        self._pacers: list[logs.Pacer] = []
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
            limits=self._cgroup.mechanism if self._cgroup else "fallback",
        )

    @property
    def cgroup(self) -> AppCgroup | None:
        """The app's cgroup while started, None under the fallback."""
        return self._cgroup

    async def start(self) -> None:
        """Start the app and wait for its ``initialize`` answer; raises ``SandboxError``."""
        if self._state == "running" or (self._supervisor and not self._supervisor.done()):
            return
        self._stopping = False
        self._crash_times.clear()
        self._backoff = self.config.backoff_initial
        try:
            self._claim_uid()
            if not self._cgroup_made:
                self._cgroup = await asyncio.to_thread(create_cgroup, self.app_id, self.config)
                self._cgroup_made = True
            await self._launch()
        except SandboxError as exc:
            self._state = "failed"
            if isinstance(exc, UidConflict):
                self._last_exit_reason = f"uid_conflict: {exc.message}"
            else:
                await self._release()
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
        if self._peer is not None:
            await self._peer.close()
        self._state = "stopped"
        await self._release()

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Send one host -> app request and return its result.

        Past the deadline the app is considered hung: it is killed (and restarted by the
        supervisor), and this and every other in-flight call fail with ``timeout``.
        """
        proc, peer = self._proc, self._peer
        if proc is None or peer is None or proc.returncode is not None or self._state != "running":
            raise Unavailable(f"app {self.app_id} is {self._state}")
        if peer.pending >= self.config.max_concurrent_calls:
            raise Overloaded(f"app {self.app_id} already has {peer.pending} calls in flight")
        timeout = self.config.call_timeout if timeout is None else timeout
        try:
            return await peer.request(method, params or {}, timeout=timeout)
        except RpcError as err:
            raise AppCallError(err.message, app_code=err.code, data=err.data) from None
        except ValueError as exc:  # from ``encode``: the request itself is too large
            raise ProtocolError(f"{method}: {exc}") from None
        except TimeoutError:
            await self._kill(f"timeout: {method} took more than {timeout:g}s")
            if self._exited is not None:  # so status shows why when we raise
                await asyncio.wait([self._exited])
            raise CallTimeout(f"{method} took more than {timeout:g}s") from None

    # -- starting -----------------------------------------------------------------------------

    def _claim_uid(self) -> None:
        if self._uid_error is not None:
            raise self._uid_error
        if self.uid is not None:
            self.config.uids.claim(self.uid, self.app_id, self)

    async def _release(self) -> None:
        """Give back what ``start`` took: the cgroup and the uid."""
        if self._cgroup is not None:
            await asyncio.to_thread(self._cgroup.remove)
        self._cgroup, self._cgroup_made = None, False
        if self.uid is not None:
            self.config.uids.release(self.uid, self)

    async def _launch(self) -> None:
        """Spawn the process and complete ``initialize`` within the start deadline."""
        if self.config.degraded and not self._warned_degraded:
            self._warned_degraded = True
            log.warning(
                "sandbox degraded: bubblewrap not found, app %s runs without namespaces "
                "(no file, network or PID isolation)",
                self.app_id,
            )
        self._kill_reason = None
        self.stderr_tail.clear()
        # An app is not started into a full folder: it would be killed again at once, and only
        # an operator (freeing space or raising data_bytes, then start()) can fix that.
        full = await asyncio.to_thread(watchdog.over_quota, self.data_dir, self.config)
        if full:
            self._last_exit_reason = f"disk_quota: {full}; not started"
            raise DiskQuota(f"app {self.app_id} not started: {full}")
        try:
            self._launcher.prepare_data_dir()
            proc = await self._launcher.spawn(self._cgroup)
        except (OSError, subprocess.SubprocessError) as exc:
            self._last_exit_reason = f"crashed: could not start: {exc}"
            raise AppCrashed(f"app {self.app_id} could not start: {exc}") from exc
        self._proc = proc
        notes = logs.NotificationLog(self.app_id, self.config)
        self._peer = peer = Peer(
            transport.sender(proc, self.app_id),
            self.on_request,
            max_serving=self.config.max_concurrent_requests,
            on_notification=notes,
            name=f"app {self.app_id}",
        )
        cfg = self.config
        stdout_pacer = logs.Pacer(cfg.protocol_rate, cfg.protocol_burst)
        stderr_pacer = logs.Pacer(cfg.stderr_rate, cfg.stderr_burst)
        self._pacers = [stdout_pacer, stderr_pacer]
        self._oom_kills = self._cgroup.oom_kills() if self._cgroup else 0
        assert proc.stdout is not None and proc.stderr is not None
        self._io_tasks = [
            asyncio.create_task(
                transport.read_messages(proc.stdout, peer, stdout_pacer, self._kill)
            ),
            asyncio.create_task(
                logs.pump_stderr(
                    proc.stderr,
                    app_id=self.app_id,
                    config=cfg,
                    pacer=stderr_pacer,
                    tail=self.stderr_tail,
                )
            ),
            asyncio.create_task(self._watchdog(proc)),
        ]
        self._exited = exited = asyncio.create_task(self._on_exit(proc, peer, notes))
        self._state = "running"
        params = {"protocol": 1, "app_id": self.app_id, "manifest": self.manifest}
        if self._secret:
            params["secret"] = self._secret
        try:
            answer = await self.call("initialize", params, timeout=cfg.start_timeout)
            if not isinstance(answer, dict) or answer.get("ready") is not True:
                raise ProtocolError(f"bad initialize answer: {answer!r:.200}")
        except SandboxError as exc:
            await self._kill(f"start failed: {exc.code}: {exc.message}")
            await asyncio.wait([exited])
            raise
        self._started_at = time.monotonic()
        log.info(
            "app %s started (pid %s, degraded=%s, limits=%s)",
            self.app_id,
            proc.pid,
            cfg.degraded,
            self.status.limits,
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
                except DiskQuota:
                    self._state = "failed"
                    log.error("app %s failed: %s", self.app_id, self._last_exit_reason)
                    return
                except SandboxError:
                    self._crash_times.append(time.monotonic())
                    if len(self._crash_times) >= self.config.max_crashes:
                        self._state = "failed"
                        return

    async def _on_exit(
        self, proc: asyncio.subprocess.Process, peer: Peer, notes: logs.NotificationLog
    ) -> None:
        """Wait for the exit, record why, fail in-flight calls, make sure nothing is left."""
        await proc.wait()
        for pacer in self._pacers:
            pacer.release()  # drain what is left in the pipes without waiting for tokens
        await asyncio.gather(*self._io_tasks, return_exceptions=True)
        if self._kill_reason is None and self._stopping:
            self._kill_reason = "stopped"
        reason = (
            self._kill_reason
            or self._oom_reason()
            or describe_exit(
                proc.returncode, degraded=self.config.degraded, stderr_tail=bytes(self.stderr_tail)
            )
        )
        self._last_exit_reason = reason
        if reason.startswith("timeout"):
            error: SandboxError = CallTimeout(f"app {self.app_id} was killed: {reason}")
        elif reason.startswith("protocol_error"):
            error = ProtocolError(f"app {self.app_id} was killed: {reason}")
        else:
            error = AppCrashed(f"app {self.app_id} exited: {reason}")
        peer.fail_pending(error)
        notes.close()
        # Whatever the app forked and left behind (degraded mode, or between kill and reap).
        self._sweep(proc.pid)
        if self._state == "running":
            self._state = "restarting"

    def _oom_reason(self) -> str | None:
        if self._cgroup is None or self._cgroup.oom_kills() <= self._oom_kills:
            return None
        limit = self.config.memory_bytes / MIB
        return f"memory_limit: the kernel's OOM killer ended it (limit {limit:g} MiB)"

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
            pids = watchdog.members(self._cgroup, match)
            if not pids:
                return
            for leftover in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(leftover, signal.SIGKILL)
            time.sleep(0.02)
        log.error(
            "app %s: processes left after kill: %s",
            self.app_id,
            watchdog.members(self._cgroup, match),
        )

    def _membership(self, pid: int) -> Callable[[int], bool]:
        # Behind bubblewrap the app is in its own PID namespace under the process we started:
        # its descendants are exactly the app (a same-uid copy run by another node on this
        # machine is not). Without it a dedicated uid is the reliable test (a setsid() cannot
        # escape it); otherwise the session we started the process in.
        if not self.config.degraded:
            return watchdog.descended_from(pid)
        if self._launcher.drop_uid and self.uid is not None:
            return watchdog.owned_by(self.uid)
        return watchdog.in_session(pid)

    async def _watchdog(self, proc: asyncio.subprocess.Process) -> None:
        match = self._membership(proc.pid)
        cgroup = self._cgroup
        await watchdog.watch(
            config=self.config,
            is_running=lambda: proc.returncode is None,
            find=lambda: watchdog.members(cgroup, match),
            data_dir=self.data_dir,
            cgroup=cgroup,
            kill=self._kill,
        )
