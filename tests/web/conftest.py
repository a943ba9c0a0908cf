"""Browser tests: a real gateway on a loopback port and Debian's Chromium driven by Playwright.

``web_base`` is the URL of a running gateway (the same ``create_app`` as ``run.py``, serving the
built web client); ``browser`` is headless Chromium, Debian's ``chromium`` found on ``PATH``
or the one ``CHROMIUM_PATH`` names (never a downloaded one), with a fake camera and microphone.
Without Chromium or the built client the tests skip locally and fail under ``CI=true``
(``.ci/run`` installs Chromium; ``make test`` builds the client when Node is present).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import _free_port, make_config, require
from tests.helpers import ApiClient

ROOT = Path(__file__).resolve().parents[2]
# Looked up on PATH like any other tool (no fixed path), so a PATH without it hides it.
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
WEB_DIST = ROOT / "gateway" / "web" / "dist"
# Looked at once, at import (not inside the async fixtures).
WEB_BUILT = (WEB_DIST / "index.html").exists()
HAVE_CHROMIUM = CHROMIUM is not None and Path(CHROMIUM).exists()
WEB_MISSING = (
    "the web client is not built (make web)"
    if shutil.which("node") and shutil.which("npm")
    else "the web client is not built: Node.js and npm are not on PATH "
    "(apt-get install nodejs npm, then make web)"
)
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",  # we run as root in CI containers
]


@asynccontextmanager
async def _serve(
    mongo_url, mongo_db_name, tmp_path, **settings
) -> AsyncIterator[tuple[str, web.Application]]:
    """A gateway on a real loopback port (browsers need a fixed origin), like ``make run``;
    ``settings`` are more config overrides (e.g. ``ai_stub.settings()``)."""
    from gateway.app import create_app

    require(WEB_BUILT, WEB_MISSING)
    config = make_config(
        mongo_url, mongo_db_name, tmp_path / "var", **{"jobs_interval": 0.2, **settings}
    )
    app = create_app(config)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        await runner.cleanup()


@pytest.fixture
async def web_base(mongo_url, mongo_db_name, tmp_path) -> AsyncIterator[str]:
    """The URL of a running gateway serving the web client."""
    async with _serve(mongo_url, mongo_db_name, tmp_path) as (base, _app):
        yield base


@pytest.fixture
async def web_gateway(
    mongo_url, mongo_db_name, tmp_path
) -> AsyncIterator[tuple[str, web.Application]]:
    """Like ``web_base`` but ``(base_url, app)``, for a test that reaches into the running app
    (e.g. ``app[gateway.keys.MINIAPPS]`` to add test mini-programs to the catalogue). Use one of
    the two in a test, not both: each starts its own gateway."""
    async with _serve(mongo_url, mongo_db_name, tmp_path) as served:
        yield served


@pytest.fixture
async def browser():
    require(
        HAVE_CHROMIUM,
        f"no Chromium at {CHROMIUM}"
        if CHROMIUM
        else "chromium is not on PATH (apt-get install chromium, or set CHROMIUM_PATH)",
    )
    try:
        from playwright.async_api import async_playwright
    except ImportError:  # pragma: no cover - a test dependency
        require(False, "the playwright package is not installed")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def rest(served):
    """The REST client of a module's ``served`` gateway (``(base, app)``): a module that serves
    its own gateway defines ``served``; one that talks to another defines its own ``rest``."""
    client = ApiClient(served[0])
    try:
        yield client
    finally:
        await client.close()
