"""What the browser tests of the built-in apps share: a group where one person holds the app's
role, and calling one of the app's views as its page does."""

from __future__ import annotations

from typing import Any

from gateway.keys import MESSAGING, MINIAPPS
from tests.helpers import ApiClient
from tests.web.test_chat_browser import befriend


async def call_app_view(
    rest: ApiClient, app_id: str, token: str, cid: str, name: str, params: dict | None = None
) -> Any:
    """Call one of ``app_id``'s views as the page does (``Aetherial.call``): launch the web view
    in ``cid`` for the token's owner, then ``POST /api/v1/webviews/call``."""
    status, launch = await rest.post(
        f"/api/v1/conversations/{cid}/apps/{app_id}/launch", token=token
    )
    assert status in (200, 201), launch
    status, body = await rest.post(
        "/api/v1/webviews/call",
        json={"token": launch["token"], "name": name, "params": params or {}},
        token=token,
    )
    assert status == 200, (name, status, body)
    return body["result"]


async def role_group(
    rest: ApiClient, app, app_id: str, role: str, member: str, staff: str, title: str
) -> tuple[dict, dict, str]:
    """``member`` and ``staff``, friends; ``staff`` an admin (in the database) who gives
    themself the app's ``role``; their group ``title`` with the app → ``(member, staff, id)``."""
    person, holder = await befriend(rest, member, staff)
    token = holder["access_token"]
    await app[MESSAGING].users.collection.update_one(
        {"_id": holder["user"]["id"]}, {"$set": {"role": "admin"}}
    )
    status, body = await rest.post(
        f"/api/v1/admin/miniapps/{app_id}/roles/{role}/users/{holder['user']['id']}", token=token
    )
    assert status in (200, 201), body
    status, body = await rest.post(
        "/api/v1/conversations",
        json={"type": "group", "title": title, "member_ids": [person["user"]["id"]]},
        token=token,
    )
    assert status == 201, body
    group = body["conversation"]["id"]
    status, body = await rest.post(
        f"/api/v1/conversations/{group}/apps", json={"app_id": app_id}, token=token
    )
    assert status in (200, 201), body
    return person, holder, group


def serve_test_app(app, app_id: str) -> None:
    """Load the test app ``app_id`` (tests/miniapps/apps/) into the browser tests' gateway."""
    from miniapps.host.registry import discover
    from tests.miniapps.test_capabilities import APPS_DIR, _world_readable

    _world_readable(APPS_DIR)
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    app[MINIAPPS].apps[app_id] = apps[app_id]


async def app_group(rest: ApiClient, owner: dict, member: dict, title: str, app_id: str) -> str:
    """A group ``title`` of ``owner`` with ``member``, with the app ``app_id`` added → its id."""
    status, body = await rest.post(
        "/api/v1/conversations",
        json={"type": "group", "title": title, "member_ids": [member["user"]["id"]]},
        token=owner["access_token"],
    )
    assert status == 201, body
    cid = body["conversation"]["id"]
    status, body = await rest.post(
        f"/api/v1/conversations/{cid}/apps", json={"app_id": app_id}, token=owner["access_token"]
    )
    assert status == 201, body
    return cid
