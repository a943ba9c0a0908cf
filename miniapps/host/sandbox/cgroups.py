"""Limits for an app as a whole — all its processes together — with one cgroup per app.

``auto`` picks the first mechanism the host allows:

- **cgroup v2** when ``/sys/fs/cgroup/cgroup.controllers`` exists and the host's own cgroup is
  writable: ``<own>/aetherial/<app>.<host pid>`` with ``memory.max`` (and no swap),
  ``pids.max`` and ``cpu.max``. The host's cgroup must be able to hand the controllers down
  (``cgroup.subtree_control``); a cgroup that holds processes itself cannot (the kernel's
  "no internal processes" rule), so give the host a delegated cgroup of its own.
- **cgroup v1** when the ``memory``, ``pids`` and ``cpu`` hierarchies are writable (a hybrid
  host, a privileged container): the same folder in each, with ``memory.limit_in_bytes`` (and
  ``memory.memsw.limit_in_bytes``), ``pids.max`` and ``cpu.cfs_quota_us``.
- **fallback** otherwise: RLIMIT_AS/RLIMIT_NPROC per process (NPROC holds for the app's uid
  as a whole) and the watchdog, which sums the RSS and CPU time of the app's processes and
  kills the whole sandbox past ``memory_bytes``, ``processes`` or ``cpu_cores``.

The child joins its cgroup in its preexec, between fork and exec (``AppCgroup.join``): every
process it ever creates is born inside. Writing the child's pid after the spawn would race:
bubblewrap forks at once, and a process forked before the write would stay outside.
The cgroup lives from ``start`` to ``stop`` (across restarts); ``remove`` deletes it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from miniapps.host.sandbox.config import SandboxConfig

log = logging.getLogger(__name__)

CGROUP_MOUNT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000


def v2_settings(config: SandboxConfig) -> dict[str, str]:
    """The files of an app's v2 cgroup and what goes in them."""
    quota = max(1000, int(config.cpu_cores * CPU_PERIOD_US))
    return {
        "memory.max": str(config.memory_bytes),
        "memory.swap.max": "0",  # else the limit only moves the excess to swap
        "pids.max": str(config.processes),
        "cpu.max": f"{quota} {CPU_PERIOD_US}",
    }


def v1_settings(config: SandboxConfig) -> dict[str, dict[str, str]]:
    """Per v1 controller, the files of the app's cgroup (in the order they must be written:
    memsw may never be below the memory limit)."""
    quota = max(1000, int(config.cpu_cores * CPU_PERIOD_US))
    return {
        "memory": {
            "memory.limit_in_bytes": str(config.memory_bytes),
            "memory.memsw.limit_in_bytes": str(config.memory_bytes),  # only if swap accounting
        },
        "pids": {"pids.max": str(config.processes)},
        "cpu": {"cpu.cfs_period_us": str(CPU_PERIOD_US), "cpu.cfs_quota_us": str(quota)},
    }


def own_cgroups(text: str) -> dict[str, str]:
    """``/proc/self/cgroup`` as {controller: path}; the v2 hierarchy is the key ``""``."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2]
    return paths


def leaf_name(app_id: str) -> str:
    """A new cgroup folder name for one running copy of an app: two gateway nodes on one
    machine (even in one process, as in the tests) may each run the same app, and each copy's
    kill must reach only its own processes. Nothing from the id can walk the tree; the host's
    pid comes last, for ``_sweep_stale``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in app_id).lstrip(".")
    return f"{safe or 'app'}.{secrets.token_hex(4)}.{os.getpid()}"


@dataclass
class AppCgroup:
    """One app's cgroup: a folder per hierarchy (one for v2, three for v1)."""

    mechanism: str  # cgroup2 / cgroup1
    dirs: dict[str, Path]  # controller ("" for v2) -> folder

    def _dir(self, controller: str) -> Path:
        return self.dirs.get(controller) or self.dirs[""]

    def open_procs(self) -> list[int]:
        """Write-only fds of every ``cgroup.procs``, opened by the parent for ``join``."""
        return [os.open(path / "cgroup.procs", os.O_WRONLY) for path in self.dirs.values()]

    @staticmethod
    def join(fds: list[int]) -> None:
        """In the child before exec: move this process into the cgroup (see module doc)."""
        pid = str(os.getpid()).encode()
        for fd in fds:
            os.write(fd, pid)

    def pids(self) -> list[int]:
        """Every process in the cgroup now."""
        with contextlib.suppress(OSError):
            text = (self._dir("pids") / "cgroup.procs").read_text()
            return [int(pid) for pid in text.split()]
        return []

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer took from this cgroup."""
        if self.mechanism == "cgroup2":
            return _field(self._dir("memory") / "memory.events", "oom_kill")
        return _field(self._dir("memory") / "memory.oom_control", "oom_kill")

    def cpu_throttled(self) -> int:
        """How many CPU periods the app was held back by its quota."""
        return _field(self._dir("cpu") / "cpu.stat", "nr_throttled")

    def cpu_cores(self) -> float | None:
        """The CPU quota in force, in cores (None: no quota), as the kernel reads it back."""
        folder = self._dir("cpu")
        if self.mechanism == "cgroup2":
            quota, period = (folder / "cpu.max").read_text().split()
        else:
            quota = (folder / "cpu.cfs_quota_us").read_text().strip()
            period = (folder / "cpu.cfs_period_us").read_text().strip()
        return None if quota in ("max", "-1") else int(quota) / int(period)

    def remove(self) -> bool:
        """Delete the folders (their processes must be gone; retried briefly while the last
        ones are reaped). False if one is left."""
        for _ in range(50):
            left = []
            for path in self.dirs.values():
                try:
                    path.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(path)
            if not left:
                return True
            time.sleep(0.02)
        log.error("cgroup folders left behind: %s", ", ".join(str(p) for p in left))
        return False


def _field(path: Path, name: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    return 0


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _sweep_stale(parent: Path) -> None:
    """Remove app cgroups left by host processes that died (their name ends in the pid)."""
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            pid = entry.name.rpartition(".")[2]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                with contextlib.suppress(OSError):
                    entry.rmdir()


def _create_v2(folder: str, config: SandboxConfig, mount: Path, own: dict[str, str]) -> AppCgroup:
    if "" not in own or not (mount / "cgroup.controllers").exists():
        raise OSError("no cgroup v2 hierarchy")
    parent = mount / own[""].lstrip("/")
    base = parent / config.cgroup_name
    base.mkdir(exist_ok=True)
    enable = "+memory +pids +cpu"
    _write(parent / "cgroup.subtree_control", enable)  # EBUSY if the host's cgroup has procs
    _write(base / "cgroup.subtree_control", enable)
    _sweep_stale(base)
    leaf = base / folder
    leaf.mkdir(exist_ok=True)
    cgroup = AppCgroup("cgroup2", {"": leaf})
    try:
        for name, value in v2_settings(config).items():
            if name == "memory.swap.max" and not (leaf / name).exists():
                continue  # a kernel without swap accounting
            _write(leaf / name, value)
    except OSError:
        cgroup.remove()
        raise
    return cgroup


def _v1_parent(mount: Path, controller: str, own: dict[str, str]) -> Path:
    root = mount / controller
    inside = root / own.get(controller, "/").lstrip("/")
    # In a container the mount's root may already be the container's cgroup.
    return inside if inside.is_dir() else root


def _create_v1(folder: str, config: SandboxConfig, mount: Path, own: dict[str, str]) -> AppCgroup:
    dirs: dict[str, Path] = {}
    cgroup = AppCgroup("cgroup1", dirs)
    try:
        for controller, files in v1_settings(config).items():
            base = _v1_parent(mount, controller, own) / config.cgroup_name
            if not (base.parent / "cgroup.procs").exists():
                raise OSError(f"no cgroup v1 {controller} hierarchy")
            base.mkdir(exist_ok=True)
            _sweep_stale(base)
            leaf = base / folder
            leaf.mkdir(exist_ok=True)
            dirs[controller] = leaf
            for name, value in files.items():
                if name == "memory.memsw.limit_in_bytes" and not (leaf / name).exists():
                    continue  # no swap accounting: there is no swap to escape to either
                _write(leaf / name, value)
    except OSError:
        cgroup.remove()
        raise
    return cgroup


def create_cgroup(
    app_id: str,
    config: SandboxConfig,
    *,
    mount: Path = CGROUP_MOUNT,
    proc_cgroup: Path = Path("/proc/self/cgroup"),
) -> AppCgroup | None:
    """The app's cgroup by the mechanism ``config.limits`` asks for (``auto``: the first that
    works), or None for the fallback (the reason is logged)."""
    if config.limits == "fallback":
        return None
    try:
        own = own_cgroups(proc_cgroup.read_text())
    except OSError as exc:
        log.warning("app %s: limits by fallback (cannot read %s: %s)", app_id, proc_cgroup, exc)
        return None
    makers = {"cgroup2": _create_v2, "cgroup1": _create_v1}
    wanted = list(makers) if config.limits == "auto" else [config.limits]
    reasons = []
    for mechanism in wanted:
        try:
            return makers[mechanism](leaf_name(app_id), config, mount, own)
        except OSError as exc:
            reasons.append(f"{mechanism}: {exc}")
    log.warning(
        "app %s: limits for the app as a whole by fallback (rlimits and the watchdog): %s",
        app_id,
        "; ".join(reasons),
    )
    return None
