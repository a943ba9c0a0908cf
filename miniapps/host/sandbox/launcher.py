"""Starting one app's process in its jail: the data folder, the preexec (cgroup, rlimits, uid,
parent-death signal, seccomp), the spawn itself, and what an exit status means."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import resource
import signal
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from miniapps.host.sandbox import jail, seccomp
from miniapps.host.sandbox.cgroups import AppCgroup
from miniapps.host.sandbox.config import SandboxConfig
from sdk.protocol import MAX_LINE_BYTES

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class Launcher:
    """Spawns the processes of one app, each a fresh jail built by ``jail.py``."""

    def __init__(
        self,
        app_id: str,
        app_dir: Path,
        data_dir: Path,
        argv: Sequence[str],
        config: SandboxConfig,
        uid: int | None,
    ) -> None:
        self.app_id = app_id
        self.app_dir = app_dir
        self.data_dir = data_dir
        self.argv = tuple(argv)
        self.config = config
        self.uid = uid
        self.is_root = os.geteuid() == 0
        # Whether the app runs as ``uid`` (else as the host's own uid).
        self.drop_uid = uid is not None and self._can_drop_uid()
        self._host_pid = os.getpid()
        self._rlimits = jail.rlimits(config)
        self._libc = ctypes.CDLL(None, use_errno=True)
        arch = seccomp.native_arch() if config.seccomp else None
        if config.seccomp and arch is None:
            log.warning("app %s: no seccomp filter for this architecture", app_id)
        self._seccomp = seccomp.build_program(arch) if arch else None
        # Without bubblewrap the preexec loads the filter itself.
        self._loader = seccomp.Loader(self._seccomp) if self._seccomp else None

    def _can_drop_uid(self) -> bool:
        if not self.config.degraded:
            return True  # inside the sandbox every bound path is reachable
        # Without a mount namespace the app sees the host's tree: a root-only parent such as
        # /root (pyenv) would make the interpreter unreachable for an unprivileged uid.
        paths = [Path(sys.executable), self.app_dir]
        unreachable = [str(p) for p in paths if not jail.reachable_by_anyone(p)]
        if not unreachable:
            return True
        log.warning(
            "app %s runs as root in degraded mode (%s is not reachable by an unprivileged "
            "uid): the process limit is enforced only by the cgroup or the watchdog",
            self.app_id,
            ", ".join(unreachable),
        )
        return False

    def prepare_data_dir(self) -> None:
        """The app's private folder, owned by its uid, closed to everyone else."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        readable = stat.S_IROTH | stat.S_IXOTH
        if self.drop_uid and (self.app_dir.stat().st_mode & readable) != readable:
            log.warning("app %s: %s is not readable by the app's uid", self.app_id, self.app_dir)
        if self.drop_uid:
            assert self.uid is not None
            os.chown(self.data_dir, self.uid, self.uid)
        os.chmod(self.data_dir, 0o700)

    def _preexec(self, cgroup_fds: list[int]) -> None:
        """In the child between fork and exec. Order matters, see each step."""
        # First, while still root: every process the app will ever have is born in its cgroup.
        AppCgroup.join(cgroup_fds)
        for limit, value in self._rlimits:
            resource.setrlimit(limit, (value, value))
        degraded = self.config.degraded
        if degraded and self.drop_uid:
            assert self.uid is not None
            os.setgroups([])
            os.setgid(self.uid)
            os.setuid(self.uid)
        # After setuid: a change of credentials clears the parent-death signal.
        self._libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != self._host_pid:  # the host died before the prctl
            os._exit(1)
        if degraded and self._loader is not None:
            self._loader.install()  # last: setuid and prctl above are done (and allowed anyway)

    async def spawn(self, cgroup: AppCgroup | None) -> asyncio.subprocess.Process:
        """Start the process with its three pipes; ``OSError``/``SubprocessError`` if not."""
        bwrap = self.config.bwrap_path
        env = jail.app_env(self.app_id, self.data_dir, sandboxed=bwrap is not None)
        seccomp_fd = seccomp.program_fd(self._seccomp) if bwrap and self._seccomp else None
        options: list[str] = []
        if bwrap:
            options = jail.bwrap_args(
                self.app_dir,
                self.data_dir,
                env,
                is_root=self.is_root,
                drop_uid=self.drop_uid,
                tmp_bytes=self.config.tmp_bytes,
                seccomp_fd=seccomp_fd,
            )
        uid = self.uid if self.drop_uid else None
        argv = jail.command(self.argv, bwrap=bwrap, uid=uid, app_dir=self.app_dir, options=options)
        cgroup_fds = cgroup.open_procs() if cgroup else []
        try:
            return await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.data_dir if bwrap is None else "/",
                env={} if bwrap else env,  # bwrap sets the app's own (--clearenv, --setenv)
                limit=MAX_LINE_BYTES + 1,
                # Its own process group: signals from the terminal reach only the host, and we
                # can kill the whole group.
                start_new_session=True,
                preexec_fn=lambda: self._preexec(cgroup_fds),
                pass_fds=(seccomp_fd,) if seccomp_fd is not None else (),
                close_fds=True,
            )
        finally:
            for fd in [*cgroup_fds, *([seccomp_fd] if seccomp_fd is not None else [])]:
                os.close(fd)


def describe_exit(code: int | None, *, degraded: bool, stderr_tail: bytes) -> str:
    """Why a process ended, from its exit status (and the last line of its stderr)."""
    signum = None
    if code is not None and code < 0:
        signum = -code
    elif code is not None and code > 128 and not degraded:
        signum = code - 128  # bwrap exits with 128 + the signal that killed the app
    if signum is not None:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        if signum == signal.SIGXCPU:
            return f"cpu_limit: killed by {name}"
        return f"crashed: killed by {name}"
    tail = stderr_tail[-300:].decode(errors="replace").strip()
    return f"crashed: exit code {code}" + (f" ({tail.splitlines()[-1]})" if tail else "")
