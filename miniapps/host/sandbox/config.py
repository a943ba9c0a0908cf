"""What a sandbox is allowed: ``SandboxConfig`` (shared by every hosted app of a host), the uid
registry that keeps two apps off one uid, and ``SandboxStatus``."""

from __future__ import annotations

import shutil
import sys
import zlib
from dataclasses import dataclass, field
from typing import Any

from miniapps.host.sandbox.errors import UidConflict

MIB = 1024 * 1024
KIB = 1024

# ``{app_dir}`` is replaced by the app folder as the process sees it (``/app`` in the sandbox).
DEFAULT_ARGV: tuple[str, ...] = (sys.executable, "-m", "sdk.runtime", "{app_dir}")

# How the limits of the app as a whole are enforced (``SandboxConfig.limits``).
LIMIT_MECHANISMS = ("auto", "cgroup2", "cgroup1", "fallback")


def _default_bwrap() -> str | None:
    return shutil.which("bwrap")


class UidRegistry:
    """Which app owns which uid, for one host: two apps never share a uid (they would share
    RLIMIT_NPROC, the watchdog's view of "its processes" and each other's files).

    The catalogue passes a unique ``uid=`` per app; without one, an app gets
    ``uid_base + crc32(app_id) % uid_span`` and, when that is taken by another app, the next
    free uid of the span (so the fallback cannot collide within this host either).
    """

    def __init__(self) -> None:
        self._owners: dict[int, str] = {}
        self._running: dict[int, object] = {}

    def choose(self, app_id: str, base: int, span: int) -> int:
        """The fallback uid of ``app_id``: its hashed slot, or the next one no other app owns."""
        for owned, owner in self._owners.items():
            if owner == app_id and base <= owned < base + span:
                return owned
        start = zlib.crc32(app_id.encode()) % span
        for step in range(span):
            uid = base + (start + step) % span
            if self._owners.get(uid, app_id) == app_id:
                self._owners[uid] = app_id
                return uid
        raise UidConflict(f"no free uid left in [{base}, {base + span}) for app {app_id}")

    def claim(self, uid: int, app_id: str, process: object) -> None:
        """Mark ``uid`` as run by ``process`` of ``app_id``; ``UidConflict`` when another app
        owns it, or another process of the same app is running on it."""
        owner = self._owners.setdefault(uid, app_id)
        if owner != app_id:
            raise UidConflict(f"uid {uid} belongs to app {owner}, not {app_id}")
        running = self._running.setdefault(uid, process)
        if running is not process:
            raise UidConflict(f"uid {uid} is already running another process of app {app_id}")

    def release(self, uid: int, process: object) -> None:
        """``process`` stopped: its uid may be run again (still owned by the same app)."""
        if self._running.get(uid) is process:
            del self._running[uid]


@dataclass
class SandboxConfig:
    """Limits and policy shared by every hosted app. ``bwrap_path=None`` means degraded.

    Memory, processes and CPU hold for the app as a whole (all its processes), through cgroups
    when the host can create them (``limits``: ``auto`` tries cgroup v2, then v1, then the
    fallback of per-process rlimits plus the watchdog; see ``cgroups.py``).
    """

    bwrap_path: str | None = field(default_factory=_default_bwrap)
    memory_bytes: int = 256 * MIB  # the whole app (cgroup, or the watchdog's RSS sum)
    address_space_bytes: int | None = None  # RLIMIT_AS of each process; None = memory_bytes
    cpu_cores: float = 1.0  # CPU of the whole app (cgroup quota, or the watchdog's average)
    cpu_seconds: int = 30  # RLIMIT_CPU of each process
    open_files: int = 64
    processes: int = 32  # the whole app (pids cgroup, RLIMIT_NPROC of its uid, the watchdog)
    file_bytes: int = 16 * MIB  # RLIMIT_FSIZE: the largest file it may write
    data_bytes: int = 64 * MIB  # quota of its /data folder (disk blocks)
    data_files: int = 10_000  # quota of its /data folder (entries)
    data_check_interval: float = 1.0
    tmp_bytes: int = 16 * MIB
    limits: str = "auto"  # one of LIMIT_MECHANISMS
    cgroup_name: str = "aetherial"  # the folder of the app cgroups under the host's own
    seccomp: bool = True
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
    stderr_keep: int = 64 * KIB
    # The log channel: stderr is read at most this fast (the app blocks on the full pipe), and
    # at most this many lines a second (stderr and ``log`` notifications each) reach the log.
    stderr_rate: int = 256 * KIB
    stderr_burst: int = 1 * MIB
    log_lines_per_second: float = 20.0
    log_lines_burst: int = 100
    # Protocol lines are parsed on the event loop (about 27 ms for a 1 MiB line on our 2-core
    # machine): bound how fast one app can make us parse, so a flood of big lines costs the
    # other users little. Real apps send kilobytes; one 1 MiB http.fetch body still passes.
    protocol_rate: int = 2 * MIB
    protocol_burst: int = 4 * MIB
    watchdog_interval: float = 0.2
    # Without cgroups, the watchdog kills an app that averaged more than ``cpu_cores`` plus this
    # tolerance over ``cpu_window`` seconds (measuring one busy core can read a little above 1).
    cpu_window: float = 5.0
    cpu_tolerance: float = 0.25
    # A root host runs each app as its own uid: the caller's ``uid=`` (the catalogue assigns
    # unique ones), else one from [uid_base, uid_base + uid_span) that ``uids`` keeps unique.
    uid_base: int = 200_000
    uid_span: int = 100_000
    uids: UidRegistry = field(default_factory=UidRegistry, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.limits not in LIMIT_MECHANISMS:
            raise ValueError(f"limits must be one of {LIMIT_MECHANISMS}, not {self.limits!r}")

    @property
    def degraded(self) -> bool:
        return self.bwrap_path is None


@dataclass(frozen=True)
class SandboxStatus:
    """A snapshot of one app's process; ``limits`` is the mechanism bounding it as a whole."""

    state: str  # running / restarting / stopped / failed
    restarts: int
    last_exit_reason: str | None
    degraded: bool
    pid: int | None
    limits: str = "fallback"

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "restarts": self.restarts,
            "last_exit_reason": self.last_exit_reason,
            "degraded": self.degraded,
        }
