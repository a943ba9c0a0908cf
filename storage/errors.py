"""The one error type every layer raises for a request that cannot be served.

It lives in ``storage`` (the lowest layer) so that domains (messaging, wallet, miniapps) can raise
it without importing the gateway; the gateway turns it into JSON ``{"error": {code, message}}``
and Socket.IO acks turn it into ``{"ok": false, "error": {...}}``.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """A failure with a stable machine-readable ``code`` and a human ``message``."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 400,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return error


class ConfigError(Exception):
    """A configuration value is missing or malformed; the message names the variable."""
