"""HTTP basics: health, readiness, JSON errors, OpenAPI covering every route, rate limits."""

from __future__ import annotations

import pytest

from gateway.web import is_web_route
from tests.conftest import make_config
from tests.helpers import PASSWORD, ApiClient


async def test_health_and_ready(api: ApiClient):
    assert await api.get("/healthz") == (200, {"status": "ok"})
    status, body = await api.get("/readyz")
    assert status == 200
    assert body["checks"]["mongodb"] == "ok" and body["checks"]["redis"] == "not configured"
    assert body["checks"]["sandbox"] in {"ok", "degraded"}


async def test_errors_are_json(api: ApiClient):
    status, body = await api.get("/no/such/route")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await api.request("PUT", "/api/v1/me")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
    status, body = await api.get("/healthz?verbose=1")
    assert status == 400 and body["error"]["code"] == "unknown_field"


async def test_openapi_describes_every_route(api: ApiClient, gateway):
    status, spec = await api.get("/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    served = set()
    for route in gateway.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith("/socket.io") or route.method == "HEAD" or is_web_route(route):
            continue  # the web client's pages are not API
        served.add((route.method, path))
    assert served, "no routes found"
    assert served == documented
    register = spec["paths"]["/api/v1/auth/register"]["post"]
    assert register["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "username",
        "email",
        "password",
    ]
    assert "security" in spec["paths"]["/api/v1/me"]["get"]
    assert "security" not in spec["paths"]["/api/v1/auth/login"]["post"]


async def test_openapi_is_a_valid_document(api: ApiClient):
    import openapi_spec_validator as validator

    _, spec = await api.get("/openapi.json")
    validator.validate(spec)


@pytest.fixture
def strict_config(mongo_url, mongo_db_name, tmp_path):
    return make_config(
        mongo_url,
        mongo_db_name,
        tmp_path / "var",
        login_max_failures=3,
        login_max_attempts_per_address=8,
    )


async def test_login_rate_limited_per_account_and_address(aiohttp_server, strict_config):
    from gateway.app import create_app

    server = await aiohttp_server(create_app(strict_config))
    api = ApiClient(str(server.make_url("")).rstrip("/"))
    try:
        await api.register("target")
        for _ in range(3):
            status, _ = await api.post(
                "/api/v1/auth/login", json={"login": "target", "password": "Wrong-pass-1"}
            )
            assert status == 401
        # the account is now locked for this window, even with the right password
        status, body = await api.post(
            "/api/v1/auth/login", json={"login": "TARGET", "password": PASSWORD}
        )
        assert status == 429 and body["error"]["code"] == "rate_limited"
        # other accounts from this address still work until the address budget is spent
        await api.register("other")
        status, _ = await api.post(
            "/api/v1/auth/login", json={"login": "other", "password": PASSWORD}
        )
        assert status == 200
        statuses = []
        for _ in range(4):
            status, body = await api.post(
                "/api/v1/auth/login", json={"login": "other", "password": PASSWORD}
            )
            statuses.append(status)
        assert statuses[-1] == 429 and body["error"]["code"] == "rate_limited"
    finally:
        await api.close()
