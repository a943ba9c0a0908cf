"""App icons through a real gateway: the catalogue's ``icon_url`` — the built-in poll app's
icon served from its ``web/`` folder as image/png, a remote app's https:// URL, null for an app
without one — and the icon in a chat's list of apps."""

from __future__ import annotations

import io
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from tests.messaging.chat_helpers import close_all, group, people
from tests.miniapps.test_remote import make_admin
from tests.miniapps.test_webview_calls import add_apps

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
POLL_ICON = ROOT / "miniapps" / "poll" / "web" / "icon.png"
REMOTE_ICON = "https://apps.example/icons/far.webp"


def remote_manifest(app_id: str, **extra) -> dict:
    return {"id": app_id, "name": "Far", "version": "1.0.0", **extra}


async def test_the_catalogue_gives_each_apps_icon_url_and_serves_hosted_icons(gateway):
    add_apps(gateway)  # test apps, none of which has an icon
    base = str(gateway.make_url("")).rstrip("/")
    ann, bea = await people(base, 2)
    try:
        await make_admin(gateway, ann)
        endpoint = "http://127.0.0.1:9/rpc"
        status, body = await ann.api.post(
            "/api/v1/admin/miniapps/remote",
            json={"manifest": remote_manifest("far", icon=REMOTE_ICON), "endpoint": endpoint},
        )
        assert status == 201, body
        assert body["app"]["icon_url"] == REMOTE_ICON
        # A remote app's manifest that names a web/ file: the host has no such file to serve.
        status, body = await ann.api.post(
            "/api/v1/admin/miniapps/remote",
            json={
                "manifest": remote_manifest(
                    "far2", icon="web/icon.png", remote={"endpoint": "https://apps.example/rpc"}
                ),
                "endpoint": endpoint,
            },
        )
        assert status == 400 and body["error"]["code"] == "invalid_manifest", body
        assert body["error"]["details"]["field"] == "icon"

        status, body = await bea.api.get("/api/v1/miniapps")
        assert status == 200, body
        icons = {app["id"]: app["icon_url"] for app in body["miniapps"]}
        assert icons["poll"] == "/miniapps/poll/web/icon.png"
        assert icons["far"] == REMOTE_ICON
        assert icons["viewer"] is None and icons["webviewer"] is None

        # The icon is public like the app's pages, sent as the PNG it is.
        async with (
            aiohttp.ClientSession() as session,
            session.get(base + icons["poll"]) as response,
        ):
            content = await response.read()
            assert response.status == 200
            assert response.content_type == "image/png"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert content == POLL_ICON.read_bytes()
        assert Image.open(io.BytesIO(content)).size == (64, 64)

        # A chat's own list of apps carries the icon too (the app menu shows it).
        cid = await group(ann, [bea], "Icons")
        status, body = await ann.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "poll"}
        )
        assert status == 201 and body["miniapp"]["icon_url"] == icons["poll"], body
        status, body = await bea.api.get(f"/api/v1/conversations/{cid}/apps")
        assert status == 200 and [a["icon_url"] for a in body["miniapps"]] == [icons["poll"]]
    finally:
        await close_all([ann, bea])


async def test_the_openapi_document_declares_icon_url(gateway):
    async with (
        aiohttp.ClientSession() as session,
        session.get(str(gateway.make_url("/openapi.json"))) as response,
    ):
        spec = await response.json()
    catalogue = spec["paths"]["/api/v1/miniapps"]["get"]["responses"]["200"]
    app = catalogue["content"]["application/json"]["schema"]["properties"]["miniapps"]["items"]
    assert app["properties"]["icon_url"] == {"type": ["string", "null"]}
