"""Dev conveniences are on only with an explicit ``AETHERIAL_ENV=development``.

A gateway started with AETHERIAL_ENV unset (``python run.py`` on a laptop, or a forgotten variable
on a server) refuses money from nowhere, mini-program fetches to internal addresses, and plain-HTTP
remote apps; the same calls work once development is said out loud.
"""

from __future__ import annotations

import pytest
from aiohttp import web

from gateway.keys import CONFIG
from tests.conftest import make_config
from tests.messaging.chat_helpers import close_all, people
from tests.miniapps.test_remote import make_admin, register


@pytest.fixture(params=[None, "development"], ids=["unset", "development"])
def config(request, mongo_url, mongo_db_name, tmp_path):
    return make_config(mongo_url, mongo_db_name, tmp_path / "var", environment=request.param)


@pytest.fixture
async def internal_url(aiohttp_server) -> str:
    """A server on 127.0.0.1 (an internal address; the contract app may fetch 127.0.0.1)."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(text="internal")

    app = web.Application()
    app.router.add_route("*", "/x", answer)
    server = await aiohttp_server(app)
    return str(server.make_url("/x"))


def development(gateway) -> bool:
    return gateway.app[CONFIG].development


async def test_dev_topup_needs_development(gateway):
    (ann,) = await people(str(gateway.make_url("")).rstrip("/"), 1)
    try:
        status, body = await ann.api.post(
            "/api/v1/wallet/dev-topup", json={"amount": 500, "currency": "USD"}
        )
        _, wallet = await ann.api.get("/api/v1/wallet")
        if development(gateway):
            assert status == 200, body
            assert wallet["dev_topup"] is True
        else:
            assert status == 403 and body["error"]["code"] == "dev_topup_disabled", body
            assert wallet["dev_topup"] is False
            assert all(b["amount"] == 0 for b in wallet.get("balances", [])), wallet
    finally:
        await close_all([ann])


async def test_internal_fetch_needs_development(host_capability, internal_url):
    outcome, result = await host_capability("http.fetch", {"url": internal_url})
    if host_capability.host.messaging.config.development:
        assert outcome == "ok" and result["status"] == 200, result
    else:
        assert (outcome, result) == ("error", "permission_denied"), result


async def test_plain_http_remote_app_needs_development(gateway):
    (admin,) = await people(str(gateway.make_url("")).rstrip("/"), 1)
    try:
        await make_admin(gateway, admin)
        status, body = await register(admin, "http://127.0.0.1:9/rpc")
        if development(gateway):
            assert status == 201, body
        else:
            assert status == 400 and body["error"]["code"] == "invalid_field", body
            assert "https" in body["error"]["message"], body
    finally:
        await close_all([admin])
