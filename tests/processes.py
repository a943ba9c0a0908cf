"""The processes a test run started, found through Linux's /proc (no dependency).

A process belongs to the run when it descends from the pytest process, or when its environment
carries the run's mark (``AETHERIAL_TEST_RUN=<uuid>``, put in ``os.environ`` at session start
and inherited by every child that is not given a scrubbed environment): that finds the ones
that escaped the tree, re-parented to init after their parent died. Sandboxed mini-programs get
a scrubbed environment, but bubblewrap kills them with their parent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

MARK = "AETHERIAL_TEST_RUN"
PROC = Path("/proc")


def _pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def _state_and_parent(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) from /proc/<pid>/stat; None when the process is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and ")", so split after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """Running or sleeping: not gone, not a zombie waiting to be reaped."""
    found = _state_and_parent(pid)
    return found is not None and found[0] not in {"Z", "X", "x"}


def cmdline(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def descendants(root: int) -> set[int]:
    """Every process below ``root`` (children, their children …)."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        found = _state_and_parent(pid)
        if found is not None:
            children.setdefault(found[1], []).append(pid)
    seen: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def marked(token: str) -> set[int]:
    """Processes whose environment holds ``AETHERIAL_TEST_RUN=<token>``."""
    needle = f"{MARK}={token}".encode()
    found = set()
    for pid in _pids():
        try:
            environ = (PROC / str(pid) / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if needle in environ.split(b"\0"):
            found.add(pid)
    return found


def left_running(root: int, token: str) -> dict[int, str]:
    """The run's processes still alive, ``root`` itself aside: pid -> command line."""
    pids = (descendants(root) | marked(token)) - {root}
    return {pid: cmdline(pid) for pid in sorted(pids) if alive(pid)}


def kill(pids, grace: float = 3.0) -> list[int]:
    """SIGTERM, then SIGKILL what is still alive after ``grace`` seconds. The pids that would
    not die (should be none)."""
    targets = pids = list(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while (pids := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not pids:
            break
    for pid in targets:  # reap our own children among them (no zombies left behind)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    return pids
