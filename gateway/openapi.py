"""The OpenAPI 3.1 document, built from the declared routes (so it cannot drift from them)."""

from __future__ import annotations

from typing import Any

from gateway.api import Api
from gateway.schemas import ERROR

_STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content"}


def build_openapi(apis: list[Api], *, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for api in apis:
        for route in api.routes:
            operation: dict[str, Any] = {
                "summary": route.summary,
                "tags": [route.tag],
                "operationId": route.handler.__name__,
                "responses": {},
            }
            if route.handler.__doc__:
                operation["description"] = route.handler.__doc__.strip()
            parameters = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in route.path_params
            ]
            for name, schema in (route.query or {}).items():
                parameters.append(
                    {"name": name, "in": "query", "required": False, "schema": schema}
                )
            if parameters:
                operation["parameters"] = parameters
            if route.body is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": route.body}},
                }
            elif route.request_content is not None:  # a raw body: multipart upload, bytes
                operation["requestBody"] = {"required": True, "content": route.request_content}
            success: dict[str, Any] = {"description": _STATUS_TEXT.get(route.status, "OK")}
            if route.response is not None:
                success["content"] = {"application/json": {"schema": route.response}}
            elif route.response_content is not None:
                success["content"] = route.response_content
            operation["responses"][str(route.status)] = success
            error_text = "Error; `error.code` is one of: " + ", ".join(
                sorted(
                    {
                        *route.errors,
                        "invalid_json",
                        "missing_field",
                        "wrong_type",
                        "unknown_field",
                        "invalid_field",
                    }
                    if route.body
                    else set(route.errors)
                )
                or ["internal_error"]
            )
            operation["responses"]["default"] = {
                "description": error_text,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
            if route.auth:
                operation["security"] = [{"bearer": []}]
            paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Aetherial",
            "version": version,
            "description": "Chat-first super-app backend. Real-time events: see docs/realtime.md.",
        },
        "paths": paths,
        "tags": [{"name": api.tag, "description": api.description} for api in apis],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {"Error": ERROR},
        },
    }
