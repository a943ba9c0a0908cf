"""Hosted mini-programs as sandboxed, supervised OS processes (one ``AppProcess`` per app).

- ``config.py``: ``SandboxConfig`` (every limit), ``UidRegistry``, ``SandboxStatus``.
- ``jail.py``: pure functions building the jail: bwrap argv, environment, rlimits, uid.
- ``seccomp.py``: the seccomp filter, compiled to classic BPF.
- ``cgroups.py``: memory, process and CPU limits for the app as a whole (v2, v1, fallback).
- ``watchdog.py``: process count, ``/data`` quota, and the fallback's memory and CPU checks.
- ``logs.py``: the throttled log channel (stderr and ``log`` notifications).
- ``launcher.py``: spawning a process in its jail; ``transport.py``: the pipes and the peer.
- ``process.py``: ``AppProcess``, the lifecycle and supervision.
"""

from miniapps.host.sandbox.config import DEFAULT_ARGV, SandboxConfig, SandboxStatus, UidRegistry
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
from miniapps.host.sandbox.process import AppProcess

__all__ = [
    "DEFAULT_ARGV",
    "AppCallError",
    "AppCrashed",
    "AppProcess",
    "CallTimeout",
    "DiskQuota",
    "Overloaded",
    "ProtocolError",
    "SandboxConfig",
    "SandboxError",
    "SandboxStatus",
    "UidConflict",
    "UidRegistry",
    "Unavailable",
]
