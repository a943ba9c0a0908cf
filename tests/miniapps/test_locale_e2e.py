"""Each person's locale reaches the apps they use, through a real gateway: the ``localizer`` test
app (a real sandboxed process) says the ``ctx.locale`` it was given in a command (the
invoker's), a timer (who scheduled it, as their profile says when it fires) and a web view
(who opened it); a person who chose none gives ``en``; a change applies to the next call."""

from __future__ import annotations

import pytest

from gateway.keys import MINIAPPS
from miniapps.host.registry import discover
from tests.conftest import base_url, make_config
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, group, people
from tests.miniapps.conftest import APPS_DIR
from tests.miniapps.test_capabilities import _world_readable

pytestmark = pytest.mark.timeout(120)

APP = "localizer"


async def set_locale(person, locale: str | None) -> None:
    status, body = await person.api.patch("/api/v1/me", json={"locale": locale})
    assert status == 200 and body["user"]["locale"] == locale, body


async def command(person, cid: str, text: str, client_msg_id: str) -> None:
    ack = await person.socket.call(
        "message.send", {"conversation_id": cid, "client_msg_id": client_msg_id, "text": text}
    )
    assert ack == {"ok": True, "routed_to": {"app_id": APP}}, ack


async def answer(watcher, cid: str, prefix: str, count: int) -> list[str]:
    """The app's texts starting with ``prefix`` once there are ``count`` of them."""

    def found():
        texts = [t for t in watcher.texts(cid) if t.startswith(prefix)]
        return texts if len(texts) >= count else None

    return await eventually(found, what=f"{count} x {prefix!r}")


async def view(person, cid: str) -> dict:
    status, launched = await person.api.post(f"/api/v1/conversations/{cid}/apps/{APP}/launch")
    assert status == 200, launched
    status, body = await person.api.post(
        "/api/v1/webviews/call", json={"token": launched["token"], "name": "locale"}
    )
    assert status == 200, body
    return body["result"]


async def test_apps_see_the_invokers_locale(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    from gateway.app import create_app

    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", jobs_interval=0.05)
    server = await aiohttp_server(create_app(config))
    _world_readable(APPS_DIR / APP)
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    server.app[MINIAPPS].apps[APP] = apps[APP]
    ann, bea = await people(base_url(server), 2)
    try:
        cid = await group(ann, [bea], "Locales")
        status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
        assert status == 201, body
        await set_locale(ann, "de-DE")

        # commands: each person's own; none chosen → en
        await command(ann, cid, "/where", "w1")
        assert await answer(bea, cid, "locale:", 1) == ["locale: de-DE"]
        await command(bea, cid, "/where", "w2")
        assert await answer(bea, cid, "locale:", 2) == ["locale: de-DE", "locale: en"]

        # web views: who opened it
        assert await view(ann, cid) == {"locale": "de-DE"}
        assert await view(bea, cid) == {"locale": "en"}

        # a change applies to the next invocation (nothing cached)
        await set_locale(bea, "ja-JP")
        await command(bea, cid, "/where", "w3")
        assert (await answer(bea, cid, "locale:", 3))[2] == "locale: ja-JP"
        assert await view(bea, cid) == {"locale": "ja-JP"}

        # timers: the locale of who scheduled it, as it is when it fires
        await command(bea, cid, "/later 0.2", "l1")
        assert await answer(bea, cid, "timer locale:", 1) == ["timer locale: ja-JP"]
        await command(ann, cid, "/later 0.2", "l2")
        texts = await answer(bea, cid, "timer locale:", 2)
        assert texts == ["timer locale: ja-JP", "timer locale: de-DE"]

        # cleared: back to en
        await set_locale(ann, None)
        await command(ann, cid, "/where", "w4")
        assert (await answer(bea, cid, "locale:", 4))[3] == "locale: en"
    finally:
        await close_all([ann, bea])
