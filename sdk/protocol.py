"""Protocol constants and the one place that turns a host → app request into the app's answer,
shared by the runtime (over stdin/stdout) and the simulator (in-process), so both behave alike.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sdk.errors import AppError, HostError

if TYPE_CHECKING:
    from sdk.app import App, HostLink

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 1024 * 1024
INTERACTIVE_DEADLINE = 3.0  # seconds the host waits for a command or action

RPC_UNKNOWN_METHOD = -32601
RPC_INVALID_PARAMS = -32602
RPC_APPLICATION_ERROR = -32000

log = logging.getLogger("sdk")


def error_body(code: str, message: str) -> dict[str, Any]:
    """A JSON-RPC ``error`` object for the Aetherial error ``code``."""
    number = {
        "unknown_method": RPC_UNKNOWN_METHOD,
        "invalid_params": RPC_INVALID_PARAMS,
    }.get(code, RPC_APPLICATION_ERROR)
    return {"code": number, "message": message, "data": {"code": code}}


async def answer(app: App, method: str, params: Any, host: HostLink) -> dict[str, Any]:
    """The app's answer to one host → app request: ``{"result": …}`` or ``{"error": …}``.

    An ``AppError`` or an uncaught ``HostError`` keeps its code; any other exception becomes
    ``internal_error`` with a one-line message, its traceback logged (to stderr) only.
    """
    try:
        return {"result": await app.handle(method, params, host)}
    except AppError as exc:
        return {"error": error_body(exc.code, exc.message)}
    except HostError as exc:
        log.warning("%s failed: the host answered %s", method, exc)
        return {"error": error_body(exc.code, exc.message)}
    except Exception as exc:
        log.exception("%s failed", method)
        return {"error": error_body("internal_error", f"the app failed: {type(exc).__name__}")}
