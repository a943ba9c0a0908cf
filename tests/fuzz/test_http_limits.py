"""Found by the REST fuzzer: requests aiohttp cannot parse (a request line or a header over its
8190-byte limit) never reach our middleware; aiohttp answers a plain-text 400 and logged each at
ERROR with a traceback, so any anonymous client could fill the error log."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from gateway.errors import ServerLogger
from tests.fuzz.common import ErrorLogWatcher

pytestmark = pytest.mark.fuzz

TOO_LONG = "a" * 9000


async def _send_unparsable(base: str) -> list[int]:
    statuses = []
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz?x={TOO_LONG}") as response:
            statuses.append(response.status)
        async with session.get(f"{base}/healthz", headers={"X-Big": TOO_LONG}) as response:
            statuses.append(response.status)
        async with session.get(f"{base}/healthz") as response:  # the server still serves
            statuses.append(response.status)
    return statuses


async def test_server_logger_turns_unparsable_requests_into_one_info_line(aiohttp_server, caplog):
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(handler_args={"logger": ServerLogger()})
    app.router.add_get("/healthz", healthz)
    server = await aiohttp_server(app)
    caplog.set_level("INFO", logger="aiohttp.server")
    with ErrorLogWatcher() as errors:
        assert await _send_unparsable(str(server.make_url("")).rstrip("/")) == [400, 400, 200]
    assert errors.records == []
    refused = [r for r in caplog.records if "refused an unparsable request" in r.getMessage()]
    assert len(refused) == 2 and all(r.levelname == "INFO" and not r.exc_info for r in refused)


async def test_server_logger_keeps_real_failures_at_error():
    logger = ServerLogger()
    with ErrorLogWatcher() as errors:
        try:
            raise RuntimeError("boom")
        except RuntimeError as exc:
            logger.exception("Error handling request from %s", "127.0.0.1", exc_info=exc)
    assert [r.levelname for r in errors.records] == ["ERROR"]
    assert errors.records[0].exc_info is not None


async def test_the_gateway_does_not_log_unparsable_requests_as_errors(gateway):
    with ErrorLogWatcher() as errors:
        assert await _send_unparsable(str(gateway.make_url("")).rstrip("/")) == [400, 400, 200]
    assert errors.describe() == []
