"""Declared REST routes: one declaration gives the route, its validation, its auth and its OpenAPI.

A handler is ``async def handler(request) -> dict | None``; before it runs the wrapper has
authenticated the caller (``request[AUTH]``), parsed and validated the JSON body
(``request[BODY]``) and query (``request[QUERY]``). A dict becomes a JSON response with the declared
status; ``None`` becomes ``204 No Content``.

Routes that are not JSON (a multipart upload, bytes served) declare ``request_content`` and/or
``response_content`` (OpenAPI ``content`` maps): the wrapper leaves the body to the handler,
which returns its own ``web.StreamResponse``; the OpenAPI document still describes them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.validation import INT64_MAX, Validator, parse_json
from storage.errors import AppError
from storage.logs import bind_user

Handler = Callable[[web.Request], Awaitable[dict[str, Any] | web.StreamResponse | None]]
Authenticator = Callable[[web.Request], Awaitable[Any]]

# Request-scoped values the wrapper sets before the handler runs.
AUTH = web.RequestKey("auth", Any)
BODY = web.RequestKey("body", Any)
QUERY = web.RequestKey("query", dict)

_PATH_PARAM = re.compile(r"{(\w+)}")


@dataclass
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: bool
    admin: bool
    status: int
    body: dict[str, Any] | None
    query: dict[str, dict[str, Any]] | None
    response: dict[str, Any] | None
    errors: tuple[str, ...]
    request_content: dict[str, Any] | None = None
    response_content: dict[str, Any] | None = None
    body_validator: Validator | None = field(default=None, repr=False)
    query_validator: Validator | None = field(default=None, repr=False)

    @property
    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)


class Api:
    """A group of declared routes (one per module of ``gateway/routes``)."""

    def __init__(self, tag: str, description: str = "") -> None:
        self.tag = tag
        self.description = description
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        auth: bool = True,
        admin: bool = False,
        status: int = 200,
        body: dict[str, Any] | None = None,
        query: dict[str, dict[str, Any]] | None = None,
        response: dict[str, Any] | None = None,
        errors: tuple[str, ...] = (),
        request_content: dict[str, Any] | None = None,
        response_content: dict[str, Any] | None = None,
    ) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            query_schema = None
            if query:
                query_schema = {
                    "type": "object",
                    "properties": query,
                    "additionalProperties": False,
                }
            self.routes.append(
                Route(
                    method=method,
                    path=path,
                    handler=handler,
                    summary=summary,
                    tag=self.tag,
                    auth=auth or admin,
                    admin=admin,
                    status=status,
                    body=body,
                    query=query,
                    response=response,
                    errors=(*errors, "not_admin") if admin else errors,
                    request_content=request_content,
                    response_content=response_content,
                    body_validator=Validator(body) if body else None,
                    query_validator=Validator(query_schema) if query_schema else None,
                )
            )
            return handler

        return decorator

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)

    def register(self, app: web.Application, authenticator: Authenticator) -> None:
        for route in self.routes:
            app.router.add_route(route.method, route.path, _wrap(route, authenticator))


def _parse_query(route: Route, request: web.Request) -> dict[str, Any]:
    assert route.query is not None and route.query_validator is not None
    parsed: dict[str, Any] = {}
    for name, raw in request.query.items():
        kind = route.query.get(name, {}).get("type")
        if kind == "integer":
            try:
                parsed[name] = int(raw)
            except ValueError:
                raise AppError(
                    "wrong_type",
                    f"query.{name} must be of type integer",
                    details={"field": f"query.{name}"},
                ) from None
            if abs(parsed[name]) > INT64_MAX:
                raise AppError(
                    "invalid_field",
                    f"query.{name} is a number too large to store",
                    details={"field": f"query.{name}"},
                )
        else:
            parsed[name] = raw
    try:
        return route.query_validator.validate(parsed)
    except AppError as exc:
        field = exc.details["field"]
        raise AppError(
            exc.code, f"query.{exc.message}", details={"field": f"query.{field}"}
        ) from None


def _wrap(route: Route, authenticator: Authenticator) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if route.auth:
            request[AUTH] = await authenticator(request)
            bind_user(request[AUTH].user_id)  # the request's log records name the caller
            # Checked on the server for every request: hiding a button is not security.
            if route.admin and request[AUTH].user.get("role") != "admin":
                raise AppError("not_admin", "administrators only", status=403)
        if route.query_validator is not None:
            request[QUERY] = _parse_query(route, request)
        elif request.query:
            raise AppError("unknown_field", "this route takes no query parameters")
        if route.body_validator is not None:
            # read() enforces the app's client_max_size and raises 413 past it.
            request[BODY] = route.body_validator.validate(parse_json(await request.read()))
        result = await route.handler(request)
        if isinstance(result, web.StreamResponse):
            return result
        if result is None:
            return web.Response(status=204)
        return web.json_response(result, status=route.status)

    handler.__name__ = route.handler.__name__
    handler.__doc__ = route.handler.__doc__
    return handler
