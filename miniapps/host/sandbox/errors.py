"""The errors a sandboxed call or start can end with; each ``code`` is stable (it reaches API
clients and logs)."""

from __future__ import annotations

from typing import Any


class SandboxError(Exception):
    """A call or start failed; ``code`` says how."""

    code = "sandbox_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class CallTimeout(SandboxError):
    """The app did not answer in time (it was killed: a hung app is restarted)."""

    code = "timeout"


class AppCrashed(SandboxError):
    """The process died (or could not start) before answering."""

    code = "crashed"


class Overloaded(SandboxError):
    """Too many calls already in flight to this app."""

    code = "overloaded"


class ProtocolError(SandboxError):
    """The app wrote something that is not the protocol (it was killed)."""

    code = "protocol_error"


class Unavailable(SandboxError):
    """The app is stopped, restarting or failed."""

    code = "unavailable"


class UidConflict(SandboxError):
    """The uid chosen for this app already belongs to another app of this host."""

    code = "uid_conflict"


class DiskQuota(SandboxError):
    """The app's ``/data`` folder is over its quota, so it is not started."""

    code = "disk_quota"


class AppCallError(SandboxError):
    """The app answered with a JSON-RPC error; ``app_code`` is its ``error.data.code``."""

    code = "app_error"

    def __init__(self, message: str, app_code: str, data: Any = None) -> None:
        super().__init__(message, app_code=app_code)
        self.app_code = app_code
        self.data = data
