"""Focused tests for what the REST fuzzer found (tests/fuzz/test_rest_fuzz.py)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.fuzz

# Percent-encoded, one such character takes 12 bytes of the request line.
WIDEST = "\U0001f600"


async def test_every_query_value_the_schema_accepts_reaches_the_route(api):
    """A query string the OpenAPI document accepts must reach our validation, not hit aiohttp's
    8190-byte request-line limit (a plain-text 400 before any route runs). Found on
    GET /api/v1/presence: ``user_ids`` allowed 12,999 characters of anything."""
    await api.signup()
    status, document = await api.get("/openapi.json")
    assert status == 200
    checked = []
    for path, operations in document["paths"].items():
        operation = operations.get("get")
        if operation is None:
            continue
        for parameter in operation.get("parameters", []):
            schema = parameter["schema"]
            if parameter["in"] != "query" or "maxLength" not in schema:
                continue
            pattern = schema.get("pattern")
            char = "a" if pattern else WIDEST
            value = char * schema["maxLength"]
            assert not pattern or re.search(pattern, value), (path, parameter)
            url = re.sub(r"{\w+}", "x", path) + f"?{parameter['name']}={value}"
            status, body = await api.get(url)
            assert status < 500 and isinstance(body, dict), (path, parameter["name"], status)
            checked.append((path, parameter["name"]))
    assert ("/api/v1/presence", "user_ids") in checked


async def test_presence_takes_only_user_ids(api):
    await api.signup()
    ids = ",".join(["0123456789abcdef01234567"] * 200)
    status, body = await api.get(f"/api/v1/presence?user_ids={ids}")
    assert (status, body) == (200, {"presence": []})
    status, body = await api.get("/api/v1/presence?user_ids=not-an-id")
    assert status == 400 and body["error"]["code"] == "invalid_field", body
    assert body["error"]["details"]["field"] == "query.user_ids"


async def test_moderation_routes_document_missing_reason(api):
    """A reason of only spaces passes the schema (minLength 1) but not the action: the code it
    answers, missing_reason, is in the operation's documented errors."""
    status, document = await api.get("/openapi.json")
    assert status == 200
    for path in (
        "/api/v1/conversations/{conversation_id}/messages/{message_id}/report",
        "/api/v1/admin/messages/{conversation_id}/{message_id}/hide",
    ):
        assert (
            "missing_reason"
            in document["paths"][path]["post"]["responses"]["default"]["description"]
        ), path
