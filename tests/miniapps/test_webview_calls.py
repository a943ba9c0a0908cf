"""Hosted web views that call their app, through a real gateway: the ``viewer`` test app (its page
in ``tests/miniapps/apps/viewer/web/``, its ``@app.view`` handlers in a real sandboxed process).
Launch → the page served by the gateway with its CSP → ``POST /api/v1/webviews/call`` answered
by the app for the launch's user and chat; and the refusals: files outside ``web/``, bad or
borrowed launch tokens, unknown views, oversize params, an app that fails.

Also ``messages.update_card`` with ``conversation_id``: a card updated from another chat, and
refused for someone else's card or a chat without the app."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from yarl import URL

from gateway.keys import MINIAPPS
from messaging.actions import cards
from miniapps.host.registry import discover
from miniapps.host.webviews import PAGE_CSP
from sdk.protocol import VIEW_PARAMS_MAX_BYTES
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, group, people
from tests.miniapps.conftest import APPS_DIR
from tests.miniapps.test_capabilities import _world_readable

pytestmark = pytest.mark.timeout(120)

APP = "viewer"


def add_apps(gateway, folder: Path = APPS_DIR) -> None:
    _world_readable(folder)
    apps, refused = discover(folder)
    assert not refused, refused
    gateway.app[MINIAPPS].apps.update(apps)


@pytest.fixture
async def world(gateway):
    """(ann, bea, carol, cid): ann and bea in a group that has the viewer; carol outside."""
    add_apps(gateway)
    ann, bea, carol = await people(str(gateway.make_url("")).rstrip("/"), 3)
    try:
        cid = await group(ann, [bea], "List")
        status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
        assert status == 201, body
        yield ann, bea, carol, cid
    finally:
        await close_all([ann, bea, carol])


async def launch(person, cid: str) -> dict:
    status, body = await person.api.post(f"/api/v1/conversations/{cid}/apps/{APP}/launch")
    assert status == 200, body
    return body


async def call(person, token: str, name: str, params=None) -> tuple[int, dict]:
    body = {"token": token, "name": name}
    if params is not None:
        body["params"] = params
    return await person.api.post("/api/v1/webviews/call", json=body)


async def get_raw(base: str, path: str) -> aiohttp.ClientResponse:
    """GET ``path`` exactly as written (no client-side normalisation of ``..`` or ``%2F``)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(URL(base + path, encoded=True)) as response,
    ):
        await response.read()
        return response


async def test_the_launched_page_is_served_with_its_policy(gateway, world):
    ann, _, _, cid = world
    base = str(gateway.make_url("")).rstrip("/")
    launched = await launch(ann, cid)
    url = urlsplit(launched["url"])
    assert (url.scheme, url.netloc, url.path) == ("", "", f"/miniapps/{APP}/web/index.html")
    assert parse_qs(url.query) == {"token": [launched["token"]]}
    async with aiohttp.ClientSession() as session:  # no bearer: the page is public
        async with session.get(base + launched["url"]) as response:
            page = await response.text()
            assert response.status == 200, page
            assert response.content_type == "text/html"
            assert response.headers["Content-Security-Policy"] == PAGE_CSP
            assert response.headers["Cache-Control"] == "no-cache"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "X-Frame-Options" not in response.headers  # the chat frames it
        assert '<script src="/static/vendor/bridge.js">' in page
        async with session.get(f"{base}/miniapps/{APP}/web/app.js") as response:
            assert response.status == 200
            assert response.content_type in ("text/javascript", "application/javascript")
            assert "bridge.call(" in await response.text()
        async with session.get(f"{base}/miniapps/{APP}/web/style.css") as response:
            assert response.status == 200 and response.content_type == "text/css"


async def test_only_files_of_the_web_folder_are_served(gateway, world, tmp_path):
    base = str(gateway.make_url("")).rstrip("/")
    refused = [
        f"/miniapps/{APP}/web/",  # the folder itself: no listing
        f"/miniapps/{APP}/web/..%2Fmanifest.json",
        f"/miniapps/{APP}/web/%2E%2E%2Fapp.py",
        f"/miniapps/{APP}/web/..%2F..%2Fwebviewer%2Fmanifest.json",  # another app's folder
        f"/miniapps/{APP}/web/../manifest.json",
        f"/miniapps/{APP}/manifest.json",
        f"/miniapps/{APP}/web/missing.html",
        "/miniapps/webviewer/web/index.html",  # an app without a web folder
        "/miniapps/webviewer/web/..%2Fapp.py",
        "/miniapps/nobody/web/index.html",
    ]
    for path in refused:
        response = await get_raw(base, path)
        assert response.status == 404, path
    # A symlink out of web/ (to the app's own code) is not followed.
    copy = tmp_path / "apps"
    shutil.copytree(APPS_DIR / APP, copy / APP)
    (copy / APP / "web" / "leak.py").symlink_to(copy / APP / "app.py")
    (copy / APP / "web" / ".hidden").write_text("secret")
    (copy / APP / "web" / "sub").mkdir()
    (copy / APP / "web" / "sub" / "page.html").write_text("<p>nested</p>")
    add_apps(gateway, copy)
    for name in ("leak.py", ".hidden", "sub", "sub%2Fpage.html"):
        response = await get_raw(base, f"/miniapps/{APP}/web/{name}")
        assert response.status == 404, name
    assert (await get_raw(base, f"/miniapps/{APP}/web/index.html")).status == 200
    # Switched off by an administrator: its pages are gone too.
    gateway.app[MINIAPPS].apps_catalogue.disabled.add(APP)
    try:
        assert (await get_raw(base, f"/miniapps/{APP}/web/index.html")).status == 404
    finally:
        gateway.app[MINIAPPS].apps_catalogue.disabled.discard(APP)


async def test_the_page_calls_its_app_for_the_launching_user_in_their_chat(gateway, world):
    ann, bea, _, cid = world
    host = gateway.app[MINIAPPS]
    ann_token = (await launch(ann, cid))["token"]
    status, body = await call(ann, ann_token, "items")
    ann_app_id = host.identity.app_user_id(APP, ann.user_id)
    assert (status, body) == (
        200,
        {"result": {"items": [], "user_id": ann_app_id, "conversation_id": cid}},
    )
    status, body = await call(ann, ann_token, "items", {"add": "mug"})
    assert status == 200, body
    assert body["result"]["items"] == [{"name": "mug", "by": ann_app_id}]
    # bea's own view of the same chat reads what the app stored for it.
    bea_token = (await launch(bea, cid))["token"]
    status, body = await call(bea, bea_token, "items", {"add": "cup"})
    assert status == 200, body
    assert [item["name"] for item in body["result"]["items"]] == ["mug", "cup"]
    assert body["result"]["user_id"] == host.identity.app_user_id(APP, bea.user_id)
    # A capability call from the view posts into the chat the view was opened from.
    status, body = await call(ann, ann_token, "announce", {"title": "List updated"})
    assert status == 200, body
    message_id = body["result"]["message_id"]
    found = await eventually(
        lambda: [d for d in bea.received() if d["message"]["id"] == message_id],
        what="the card from the view",
    )
    message = found[0]["message"]
    assert message["conversation_id"] == cid and message["card"]["title"] == "List updated"
    assert message["sender_id"] == f"app:{APP}"


async def test_a_view_error_reaches_the_page_with_its_code(world):
    ann, _, _, cid = world
    token = (await launch(ann, cid))["token"]
    status, body = await call(ann, token, "fail", {"left": 2})
    assert (status, body) == (400, {"error": {"code": "out_of_stock", "message": "only 2 left"}})
    status, body = await call(ann, token, "items", {"add": ""})
    assert status == 400 and body["error"]["code"] == "bad_item"
    status, body = await call(ann, token, "nope")
    assert status == 404 and body["error"]["code"] == "unknown_view"
    status, body = await call(ann, token, "crash")
    assert status == 502 and body["error"]["code"] == "app_error"


async def test_bad_borrowed_or_stale_tokens_are_refused(gateway, world):
    ann, bea, carol, cid = world
    token = (await launch(ann, cid))["token"]
    for bad in ("nonsense", token[:-4] + "AAAA", "x." + token.split(".")[1]):
        status, body = await call(ann, bad, "items")
        assert status == 401 and body["error"]["code"] == "bad_launch_token", bad
    # ann's token, presented by bea (a member of the same chat) or by carol: refused.
    for other in (bea, carol):
        status, body = await call(other, token, "items")
        assert status == 401 and body["error"]["code"] == "bad_launch_token"
        assert "someone else" in body["error"]["message"]
    # No bearer at all.
    status, body = await ann.api.post(
        "/api/v1/webviews/call", json={"token": token, "name": "items"}, token=""
    )
    assert status == 401
    # ann leaves the chat: her token no longer reaches the app there.
    status, body = await ann.api.post(f"/api/v1/conversations/{cid}/leave")
    assert status == 204, body
    status, body = await call(ann, token, "items")
    assert body["error"]["code"] == "not_a_member", (status, body)
    # The app removed from the chat: bea's token is refused too.
    bea_token = (await launch(bea, cid))["token"]
    status, body = await bea.api.delete(f"/api/v1/conversations/{cid}/apps/{APP}")
    assert status == 204, body
    status, body = await call(bea, bea_token, "items")
    assert status == 404 and body["error"]["code"] == "app_not_installed"
    assert gateway.app[MINIAPPS].apps[APP]  # (still in the catalogue)


async def test_params_are_a_bounded_object(world):
    ann, _, _, cid = world
    token = (await launch(ann, cid))["token"]
    status, body = await call(ann, token, "items", {"add": "x" * VIEW_PARAMS_MAX_BYTES})
    assert status == 413 and body["error"]["code"] == "invalid_params"
    status, body = await call(ann, token, "items", ["not", "an", "object"])
    assert status == 400 and body["error"]["code"] == "wrong_type"
    status, body = await call(ann, token, "x" * 65)
    assert status == 400 and body["error"]["code"] == "invalid_field"
    status, body = await call(ann, token, "items", {"add": "fine"})
    assert status == 200, body


# --- messages.update_card in another conversation ---------------------------------------------


def app_texts(person, cid: str, prefix: str) -> list[str]:
    return [t for t in person.texts(cid) if t.startswith(prefix)]


async def command(person, cid: str, text: str) -> None:
    ack = await person.socket.call(
        "message.send", {"conversation_id": cid, "client_msg_id": text, "text": text}
    )
    assert ack == {"ok": True, "routed_to": {"app_id": APP}}, ack


async def install(person, cid: str) -> None:
    status, body = await person.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
    assert status == 201, body


async def test_update_card_in_another_chat_that_has_the_app(gateway, world):
    ann, bea, carol, buyer_chat = world
    seller_chat = await group(bea, [carol], "Shop desk")
    await install(bea, seller_chat)
    await command(ann, buyer_chat, "/order Blue mug")
    (posted,) = await eventually(lambda: app_texts(ann, buyer_chat, "viewer: order "))
    card_id = posted.rsplit(" ", 1)[1]

    await command(bea, seller_chat, f"/ship {buyer_chat} {card_id}")
    assert await eventually(lambda: app_texts(carol, seller_chat, "viewer: ship")) == [
        "viewer: ship ok"
    ]
    updated = await eventually(
        lambda: [d for d in ann.received("message.updated") if d["message"]["id"] == card_id]
    )
    assert updated[-1]["message"]["card"]["title"] == "shipped"

    # Someone else's card (another app's, or a person's message) in that chat: not_found.
    messaging = gateway.app[MINIAPPS].messaging
    other = await cards.do_post_card(messaging, buyer_chat, "webviewer", {"title": "Trip"})
    plain = await ann.send(buyer_chat, "hello")
    for message_id in (other["id"], plain["id"]):
        await command(bea, seller_chat, f"/ship {buyer_chat} {message_id}")
    # A chat without the app (the viewer removed after it posted there): not_found as well.
    gone_chat = await group(ann, [carol], "No app")
    await install(ann, gone_chat)
    await command(ann, gone_chat, "/order Red mug")
    (posted,) = await eventually(lambda: app_texts(ann, gone_chat, "viewer: order "))
    gone_card = posted.rsplit(" ", 1)[1]
    status, body = await ann.api.delete(f"/api/v1/conversations/{gone_chat}/apps/{APP}")
    assert status == 204, body
    await command(bea, seller_chat, f"/ship {gone_chat} {gone_card}")
    # …and a chat that does not exist.
    await command(bea, seller_chat, f"/ship {'f' * 24} {card_id}")
    outcomes = await eventually(
        lambda: (lambda found: found if len(found) == 5 else None)(
            app_texts(carol, seller_chat, "viewer: ship")
        ),
        what="every /ship answered",
    )
    # (answered in the background: in any order after the first)
    assert outcomes[0] == "viewer: ship ok"
    assert sorted(outcomes[1:]) == ["viewer: ship not_found"] * 4
    assert [d["message"]["id"] for d in ann.received("message.updated")].count(card_id) == 1
    assert not [d for d in carol.received("message.updated") if d["message"]["id"] == gone_card]
