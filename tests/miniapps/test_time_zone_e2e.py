"""Each person's time zone reaches the apps they use, through a real gateway: the ``localizer``
test app (a real sandboxed process) says the ``ctx.time_zone`` it was given in a command (the
invoker's), a timer (who scheduled it, as their profile says when it fires) and a web view
(who opened it); a person who chose none gives ``UTC``; a change applies to the next call; the
locale and the time zone come together."""

from __future__ import annotations

import pytest

from gateway.keys import MINIAPPS
from miniapps.host.registry import discover
from tests.conftest import base_url, make_config
from tests.messaging.chat_helpers import close_all, group, people
from tests.miniapps.conftest import APPS_DIR
from tests.miniapps.test_capabilities import _world_readable
from tests.miniapps.test_locale_e2e import answer, command

pytestmark = pytest.mark.timeout(120)

APP = "localizer"


async def set_time_zone(person, time_zone: str | None) -> None:
    status, body = await person.api.patch("/api/v1/me", json={"time_zone": time_zone})
    assert status == 200 and body["user"]["time_zone"] == time_zone, body


async def view(person, cid: str, name: str) -> dict:
    status, launched = await person.api.post(f"/api/v1/conversations/{cid}/apps/{APP}/launch")
    assert status == 200, launched
    status, body = await person.api.post(
        "/api/v1/webviews/call", json={"token": launched["token"], "name": name}
    )
    assert status == 200, body
    return body["result"]


async def test_apps_see_the_invokers_time_zone(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    from gateway.app import create_app

    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", jobs_interval=0.05)
    server = await aiohttp_server(create_app(config))
    _world_readable(APPS_DIR / APP)
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    server.app[MINIAPPS].apps[APP] = apps[APP]
    ann, bea = await people(base_url(server), 2)
    try:
        cid = await group(ann, [bea], "Time zones")
        status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
        assert status == 201, body
        await set_time_zone(ann, "Europe/Berlin")

        # commands: each person's own; none chosen → UTC
        await command(ann, cid, "/zone", "z1")
        assert await answer(bea, cid, "time zone:", 1) == ["time zone: Europe/Berlin"]
        await command(bea, cid, "/zone", "z2")
        assert await answer(bea, cid, "time zone:", 2) == [
            "time zone: Europe/Berlin",
            "time zone: UTC",
        ]

        # web views: who opened it
        assert await view(ann, cid, "time_zone") == {"time_zone": "Europe/Berlin"}
        assert await view(bea, cid, "time_zone") == {"time_zone": "UTC"}

        # a change applies to the next invocation (nothing cached); the locale comes along
        await set_time_zone(bea, "America/New_York")
        status, _ = await bea.api.patch("/api/v1/me", json={"locale": "en-US"})
        assert status == 200
        await command(bea, cid, "/zone", "z3")
        assert (await answer(bea, cid, "time zone:", 3))[2] == "time zone: America/New_York"
        assert await view(bea, cid, "time_zone") == {"time_zone": "America/New_York"}
        assert await view(bea, cid, "locale") == {"locale": "en-US"}

        # timers: the zone of who scheduled it, as it is when it fires
        await command(bea, cid, "/zone_later 0.2", "l1")
        assert await answer(bea, cid, "timer time zone:", 1) == [
            "timer time zone: America/New_York"
        ]
        await command(ann, cid, "/zone_later 0.2", "l2")
        texts = await answer(bea, cid, "timer time zone:", 2)
        assert texts == ["timer time zone: America/New_York", "timer time zone: Europe/Berlin"]

        # cleared: back to UTC
        await set_time_zone(ann, None)
        await command(ann, cid, "/zone", "z4")
        assert (await answer(bea, cid, "time zone:", 4))[3] == "time zone: UTC"
    finally:
        await close_all([ann, bea])
