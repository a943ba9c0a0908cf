"""Every error leaves as JSON ``{"error": {"code", "message"}}`` with its status, never a trace."""

from __future__ import annotations

import logging
import sys
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from storage.errors import AppError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_response(error: AppError) -> web.Response:
    return web.json_response({"error": error.to_dict()}, status=error.status, headers=error.headers)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AppError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.reason
        if exc.status == 413:
            message = f"the request body is larger than {request.app._client_max_size} bytes"
        elif exc.status == 404:
            message = f"no route for {request.method} {request.path}"
        elif exc.status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        return error_response(AppError(code, message, status=exc.status))
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(
            AppError("internal_error", "something went wrong on our side", status=500)
        )


class ServerLogger(logging.LoggerAdapter):
    """aiohttp's own server log, for its request handler:
    ``web.Application(handler_args={"logger": ServerLogger()})``.

    aiohttp answers a request it cannot parse (a request line or a header over 8190 bytes, a
    malformed request line) itself, with a plain-text 400, before any middleware runs, and logs
    it at ERROR with a traceback: any client could fill the error log with them. Such a request
    is the client's mistake, so it becomes one INFO line; everything else stays an ERROR."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("aiohttp.server"), {})

    def exception(self, msg: Any, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        error = sys.exc_info()[1] if exc_info is True else exc_info
        if isinstance(error, BadHttpMessage):
            text = msg % args if args else msg
            self.info("%s: refused an unparsable request (%s)", text, error.message)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)
