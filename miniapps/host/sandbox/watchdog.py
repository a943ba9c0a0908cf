"""The watchdog: a second line of defence that measures an app from outside and kills the whole
sandbox past a limit.

Always: the process count (fork bombs of a root host's degraded apps, where RLIMIT_NPROC is not
enforced) and the ``/data`` quota (bytes on disk and entries; measured every
``data_check_interval``, so an app may overshoot by what it writes in that time, each file at
most ``file_bytes``). Without cgroups (``fallback``): also the app's memory (the sum of its
processes' proportional set sizes) against ``memory_bytes`` and its CPU use averaged over
``cpu_window`` against ``cpu_cores`` (plus ``cpu_tolerance``).

An app's processes are found through its cgroup when it has one, and besides: behind bubblewrap,
as the descendants of the process we started (the app lives in its own PID namespace, whose
orphans are re-parented to the namespace's init, itself our child: nothing escapes, and another
node's copy of the same app on this machine, running as the same uid, is not touched); without
bubblewrap, by its uid (a setsid() cannot escape it), else by the session it was started in.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from miniapps.host.sandbox.cgroups import AppCgroup
from miniapps.host.sandbox.config import MIB, SandboxConfig

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")

Kill = Callable[[str], Awaitable[None]]


def pids_where(match: Callable[[int], bool]) -> list[int]:
    """Live (non-zombie) pids for which ``match(pid)`` holds."""
    pids = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                pid = int(entry.name)
                with contextlib.suppress(OSError):
                    if match(pid) and not is_zombie(pid):
                        pids.append(pid)
    return pids


def is_zombie(pid: int) -> bool:
    """A zombie holds no resources and cannot be killed; its parent (or init) reaps it."""
    with open(f"/proc/{pid}/stat", "rb") as file:
        return file.read().rsplit(b")", 1)[1].split()[0] == b"Z"


def owned_by(uid: int) -> Callable[[int], bool]:
    return lambda pid: os.stat(f"/proc/{pid}").st_uid == uid


def in_session(sid: int) -> Callable[[int], bool]:
    return lambda pid: os.getsid(pid) == sid


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as file:
        return int(file.read().rsplit(b")", 1)[1].split()[1])


def descended_from(root: int) -> Callable[[int], bool]:
    """Whether a process is ``root`` or one of its descendants (bounded walk up the parents)."""

    def match(pid: int) -> bool:
        for _ in range(64):
            if pid == root:
                return True
            if pid <= 1:
                return False
            pid = parent_of(pid)
        return False

    return match


def members(cgroup: AppCgroup | None, match: Callable[[int], bool]) -> list[int]:
    """The app's live processes: its cgroup's and those ``match`` finds."""
    found = set(pids_where(match))
    if cgroup is not None:
        found.update(pid for pid in cgroup.pids() if _alive(pid))
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        return not is_zombie(pid)
    except OSError:
        return False


def usage(pid: int) -> tuple[int, int]:
    """(memory bytes, CPU ticks used) of one process; (0, 0) once it is gone. Memory is the
    proportional set size where the kernel has it: forked processes share their pages, and
    summing their RSS would count those pages once per process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0, 0
    # After the ")": state is field 3 of the man page, so utime (14) is index 11.
    ticks = int(fields[11]) + int(fields[12])
    memory = int(fields[21]) * _PAGE  # RSS, when smaps_rollup is missing
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/smaps_rollup", "rb") as file:
        for line in file:
            if line.startswith(b"Pss:"):
                memory = int(line.split()[1]) * 1024
                break
    return memory, ticks


def folder_usage(path: Path, max_entries: int) -> tuple[int, int]:
    """(bytes on disk, entries) under ``path``, not following links; the walk stops once it has
    seen more than ``max_entries`` (that alone is over the quota)."""
    total = entries = 0
    stack = [path]
    while stack and entries <= max_entries:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as listing:
            for entry in listing:
                entries += 1
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    total += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
    return total, entries


def over_quota(path: Path, config: SandboxConfig) -> str | None:
    """Why ``path`` is over the data quota, or None."""
    used, entries = folder_usage(path, config.data_files)
    if used > config.data_bytes:
        return f"/data holds {used / MIB:.1f} MiB (limit {config.data_bytes / MIB:g} MiB)"
    if entries > config.data_files:
        return f"/data holds more than {config.data_files} files"
    return None


class CpuMeter:
    """The CPU an app used lately, in cores, from per-process tick counters."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._last: dict[int, int] = {}
        self._samples: deque[tuple[float, float]] = deque()  # (when, CPU seconds since last)

    def update(self, now: float, ticks: dict[int, int]) -> float | None:
        """Record this sample; the average over the window once it is full, else None."""
        used = sum(max(0, count - self._last.get(pid, 0)) for pid, count in ticks.items())
        self._last = ticks
        self._samples.append((now, used / _TICKS))
        while len(self._samples) > 1 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()
        elapsed = now - self._samples[0][0]
        if elapsed < self.window:
            return None
        # The first sample's CPU was spent before the window began.
        return sum(seconds for _, seconds in list(self._samples)[1:]) / elapsed


@dataclass
class Sample:
    processes: int
    rss: int
    ticks: dict[int, int]


def sample(pids: list[int], measure: bool) -> Sample:
    """Count the processes and, when ``measure``, read their memory and CPU."""
    ticks: dict[int, int] = {}
    rss = 0
    if measure:
        for pid in pids:
            resident, used = usage(pid)
            rss += resident
            ticks[pid] = used
    return Sample(len(pids), rss, ticks)


async def watch(
    *,
    config: SandboxConfig,
    is_running: Callable[[], bool],
    find: Callable[[], list[int]],
    data_dir: Path,
    cgroup: AppCgroup | None,
    kill: Kill,
) -> None:
    """Check the app every ``watchdog_interval`` while ``is_running()``; ``kill`` it (with the
    reason, e.g. ``process_limit: …``) past a limit, then return."""
    fallback = cgroup is None
    meter = CpuMeter(config.cpu_window)
    next_data_check = 0.0
    while is_running():
        now = time.monotonic()
        seen = await asyncio.to_thread(lambda: sample(find(), fallback))
        reason = None
        if seen.processes > config.processes:
            reason = f"process_limit: {seen.processes} processes (limit {config.processes})"
        elif fallback and seen.rss > config.memory_bytes:
            reason = (
                f"memory_limit: {seen.rss / MIB:.0f} MiB in use "
                f"(limit {config.memory_bytes / MIB:g} MiB)"
            )
        elif fallback:
            cores = meter.update(now, seen.ticks)
            if cores is not None and cores > config.cpu_cores + config.cpu_tolerance:
                reason = (
                    f"cpu_limit: {cores:.2f} cores over {config.cpu_window:g}s "
                    f"(limit {config.cpu_cores:g})"
                )
        if reason is None and now >= next_data_check:
            next_data_check = now + config.data_check_interval
            quota = await asyncio.to_thread(over_quota, data_dir, config)
            reason = f"disk_quota: {quota}" if quota else None
        if reason is not None and is_running():
            await kill(reason)
            return
        await asyncio.sleep(config.watchdog_interval)
