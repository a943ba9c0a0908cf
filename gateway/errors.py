"""Every error leaves as JSON ``{"error": {"code", "message"}}`` with its status, never a trace."""

from __future__ import annotations

import logging

from aiohttp import web

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
