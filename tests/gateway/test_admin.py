"""The admin panel's API end to end: every admin route refuses non-admins, suspensions reach open
sockets, reports and moderation, mini-programs switched off and on, stats and the admin audit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from gateway.keys import DATABASE, MESSAGING
from gateway.routes import APIS
from messaging.actions.stats import day_of
from storage.mongo import now_ms
from tests.helpers import PASSWORD, ApiClient, eventually
from tests.messaging.chat_helpers import close_all, group, people

ROOT = Path(__file__).resolve().parents[2]
DUMMY = "0123456789abcdef01234567"


def admin_routes():
    return [r for api in APIS for r in api.routes if r.path.startswith("/api/v1/admin/")]


async def make_admin(gateway, person) -> None:
    await gateway.app[MESSAGING].users.collection.update_one(
        {"_id": person.user_id}, {"$set": {"role": "admin"}}
    )


async def audit_actions(admin) -> list[str]:
    status, body = await admin.api.get("/api/v1/admin/audit")
    assert status == 200, body
    return [e["action"] for e in body["entries"]]


def base_of(gateway) -> str:
    return str(gateway.make_url("")).rstrip("/")


async def test_every_admin_route_refuses_non_admins_and_anonymous(gateway, api):
    routes = admin_routes()
    # the ones this panel needs, and the older ones, all declared admin-only
    paths = {(r.method, r.path) for r in routes}
    assert ("POST", "/api/v1/admin/users/{user_id}/suspend") in paths
    assert ("GET", "/api/v1/admin/wallet/reconciliation") in paths
    assert len(routes) >= 17
    assert all(r.admin for r in routes), [r.path for r in routes if not r.admin]
    await api.signup()
    anonymous = ApiClient(api.base_url)
    try:
        for route in routes:
            path = re.sub(r"{\w+}", DUMMY, route.path)
            body = {} if route.method in {"POST", "PATCH", "PUT"} else None
            status, reply = await anonymous.request(route.method, path, json=body)
            assert status == 401, (route.method, path, reply)
            status, reply = await api.request(route.method, path, json=body)
            assert (status, reply["error"]["code"]) == (403, "not_admin"), (route.path, reply)
    finally:
        await anonymous.close()


async def test_suspend_disconnects_and_refuses_login_until_unsuspended(gateway):
    ann, bob = await people(base_of(gateway), 2)
    try:
        await make_admin(gateway, ann)
        status, body = await ann.api.get(f"/api/v1/admin/users?q={bob.username}")
        assert status == 200 and [u["id"] for u in body["users"]] == [bob.user_id]
        assert body["users"][0]["suspended"] is False and body["users"][0]["role"] == "user"

        # an admin cannot suspend themself; nothing changes
        status, body = await ann.api.post(
            f"/api/v1/admin/users/{ann.user_id}/suspend", json={"reason": "oops"}
        )
        assert (status, body["error"]["code"]) == (409, "cannot_suspend_self")

        status, body = await ann.api.post(
            f"/api/v1/admin/users/{bob.user_id}/suspend", json={"reason": "spam"}
        )
        assert status == 200, body
        assert body["user"]["suspended"] is True and body["user"]["sessions_revoked"] == 1
        (revoked,) = await bob.socket.wait_for("session.revoked")
        assert revoked["reason"] == "suspended"
        await eventually(lambda: not bob.socket.sio.connected, what="bob disconnected")
        status, body = await bob.api.get("/api/v1/me")
        assert status in (401, 403), body
        status, body = await bob.api.post(
            "/api/v1/auth/login", json={"login": bob.username, "password": PASSWORD}
        )
        assert (status, body["error"]["code"]) == (403, "account_suspended")
        status, body = await ann.api.post(
            f"/api/v1/admin/users/{bob.user_id}/suspend", json={"reason": "again"}
        )
        assert (status, body["error"]["code"]) == (409, "already_suspended")

        status, body = await ann.api.post(
            f"/api/v1/admin/users/{bob.user_id}/unsuspend", json={"reason": "appeal"}
        )
        assert status == 200 and body["user"]["suspended"] is False
        await bob.api.login(bob.username)
        status, body = await ann.api.post(f"/api/v1/admin/users/{bob.user_id}/unsuspend", json={})
        assert (status, body["error"]["code"]) == (409, "not_suspended")

        # sessions: listed, one revoked by the admin, its socket disconnected
        socket = await bob.connect_device()
        status, body = await ann.api.get(f"/api/v1/admin/users/{bob.user_id}")
        assert status == 200 and len(body["user"]["sessions"]) == 2
        sid = body["user"]["sessions"][0]["id"]
        status, _ = await ann.api.delete(f"/api/v1/admin/users/{bob.user_id}/sessions/{sid}")
        assert status == 204
        status, body = await ann.api.delete(f"/api/v1/admin/users/{bob.user_id}/sessions/{sid}")
        assert (status, body["error"]["code"]) == (404, "session_not_found")
        status, body = await ann.api.get(f"/api/v1/admin/users/{bob.user_id}")
        assert [s["id"] for s in body["user"]["sessions"]] != [] and sid not in {
            s["id"] for s in body["user"]["sessions"]
        }
        await socket.close()

        actions = await audit_actions(ann)
        assert actions == ["session.revoke", "user.unsuspend", "user.suspend"]
        status, body = await ann.api.get("/api/v1/admin/audit?action=user.suspend")
        (entry,) = body["entries"]
        assert entry["actor"]["id"] == ann.user_id and entry["target"] == {"user_id": bob.user_id}
        assert entry["reason"] == "spam"
    finally:
        await close_all([ann, bob])


async def test_report_hide_and_dismiss(gateway):
    ann, bob, cat, dan = await people(base_of(gateway), 4)
    try:
        await make_admin(gateway, ann)
        cid = await group(bob, [cat], "Moderated")
        fine = await bob.send(cid, "something fine")
        rude = await bob.send(cid, "something rude")
        path = f"/api/v1/conversations/{cid}/messages/{rude['id']}/report"

        status, body = await cat.api.post(path, json={"reason": "insulting"})
        assert status == 201 and body["report"]["status"] == "open", body
        status, body = await cat.api.post(path, json={"reason": "twice"})
        assert (status, body["error"]["code"]) == (409, "already_reported")
        status, body = await bob.api.post(path, json={"reason": "own"})
        assert (status, body["error"]["code"]) == (403, "not_allowed")
        status, body = await dan.api.post(path, json={"reason": "stranger"})
        assert (status, body["error"]["code"]) == (403, "not_a_member")
        status, body = await cat.api.post(path, json={})
        assert body["error"]["code"] == "missing_field"
        status, body = await cat.api.post(
            f"/api/v1/conversations/{cid}/messages/{DUMMY}/report", json={"reason": "x"}
        )
        assert (status, body["error"]["code"]) == (404, "message_not_found")

        status, body = await ann.api.get("/api/v1/admin/reports?status=open")
        (report,) = body["reports"]
        assert report["message"]["text"] == "something rude"
        assert report["reporter"]["username"] == cat.username

        # the admin reads the conversation (recorded) and hides the message
        status, body = await ann.api.get("/api/v1/admin/conversations?q=moder")
        assert [c["id"] for c in body["conversations"]] == [cid]
        assert body["conversations"][0]["member_count"] == 2
        status, body = await ann.api.get(f"/api/v1/admin/conversations/{cid}/messages")
        assert status == 200 and "something rude" in [m["text"] for m in body["messages"]]
        status, body = await ann.api.post(
            f"/api/v1/admin/messages/{cid}/{rude['id']}/hide", json={"reason": "abuse"}
        )
        assert status == 200 and body["reports_resolved"] == 1, body
        assert body["message"]["moderated"] is True and body["message"]["text"] == ""
        for member in (bob, cat):
            got = await eventually(
                lambda m=member: [
                    d["message"]
                    for d in m.received("message.updated")
                    if d["message"]["id"] == rude["id"]
                ]
            )
            assert got[-1]["moderated"] is True and got[-1]["text"] == ""
        assert not [d for d in dan.received("message.updated")]
        status, body = await bob.api.get(f"/api/v1/conversations/{cid}/messages")
        hidden = next(m for m in body["messages"] if m["id"] == rude["id"])
        assert hidden["moderated"] is True and hidden["text"] == ""
        status, body = await cat.api.get(f"/api/v1/conversations/{cid}")
        assert body["conversation"]["last_message"]["text"] == ""  # nor in the chat list
        status, body = await ann.api.get("/api/v1/admin/reports?status=open")
        assert body["reports"] == []
        status, body = await ann.api.get("/api/v1/admin/reports?status=resolved")
        assert [r["id"] for r in body["reports"]] == [report["id"]]
        status, body = await ann.api.post(
            f"/api/v1/admin/messages/{cid}/{rude['id']}/hide", json={"reason": "again"}
        )
        assert (status, body["error"]["code"]) == (409, "already_hidden")
        status, body = await ann.api.post(
            f"/api/v1/admin/messages/{cid}/{DUMMY}/hide", json={"reason": "x"}
        )
        assert (status, body["error"]["code"]) == (404, "message_not_found")
        status, body = await ann.api.post(
            f"/api/v1/admin/messages/{DUMMY}/{rude['id']}/hide", json={"reason": "x"}
        )
        assert (status, body["error"]["code"]) == (404, "conversation_not_found")

        # a report dismissed: the message stays
        status, body = await cat.api.post(
            f"/api/v1/conversations/{cid}/messages/{fine['id']}/report", json={"reason": "meh"}
        )
        second = body["report"]["id"]
        status, body = await ann.api.post(f"/api/v1/admin/reports/{second}/dismiss", json={})
        assert status == 200 and body["report"]["status"] == "dismissed"
        status, body = await ann.api.post(f"/api/v1/admin/reports/{second}/dismiss", json={})
        assert (status, body["error"]["code"]) == (409, "report_closed")
        status, body = await ann.api.post(f"/api/v1/admin/reports/{DUMMY}/dismiss", json={})
        assert (status, body["error"]["code"]) == (404, "report_not_found")
        status, body = await bob.api.get(f"/api/v1/conversations/{cid}/messages")
        assert "something fine" in [m["text"] for m in body["messages"]]

        assert await audit_actions(ann) == ["report.dismiss", "message.hide", "conversation.read"]
    finally:
        await close_all([ann, bob, cat, dan])


async def test_disabled_app_refuses_commands_and_installs(gateway):
    ann, bob = await people(base_of(gateway), 2)
    try:
        await make_admin(gateway, ann)
        cid = await group(ann, [bob], "Polls")
        status, body = await ann.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "poll"}
        )
        assert status == 201, body
        status, body = await ann.api.get("/api/v1/admin/miniapps")
        poll = next(a for a in body["miniapps"] if a["id"] == "poll")
        assert poll["enabled"] is True and body["sandbox"] in {"isolated", "degraded"}

        status, body = await ann.api.post(
            "/api/v1/admin/miniapps/poll/disable", json={"reason": "maintenance"}
        )
        assert status == 200 and body["miniapp"]["enabled"] is False, body
        status, body = await bob.api.get("/api/v1/miniapps")
        assert next(a for a in body["miniapps"] if a["id"] == "poll")["enabled"] is False
        ack = await bob.socket.call(
            "message.send",
            {"conversation_id": cid, "client_msg_id": "p1", "text": '/poll "Lunch?" a b'},
        )
        assert ack == {"ok": True, "routed_to": {"app_id": "poll"}}
        (ephemeral,) = await bob.socket.wait_for("miniapp.ephemeral")
        assert ephemeral["error"] == "app_disabled" and "disabled" in ephemeral["text"]
        other = await group(ann, [bob], "Other")
        status, body = await ann.api.post(
            f"/api/v1/conversations/{other}/apps", json={"app_id": "poll"}
        )
        assert (status, body["error"]["code"]) == (403, "app_disabled")
        status, body = await ann.api.post("/api/v1/admin/miniapps/poll/disable", json={})
        assert (status, body["error"]["code"]) == (409, "already_disabled")
        status, body = await ann.api.post("/api/v1/admin/miniapps/nope/disable", json={})
        assert (status, body["error"]["code"]) == (404, "app_not_found")
        # persisted: another host loading the collection sees it off
        assert await gateway.app[DATABASE].db.disabled_apps.find_one({"_id": "poll"})

        status, body = await ann.api.post("/api/v1/admin/miniapps/poll/enable", json={})
        assert status == 200 and body["miniapp"]["enabled"] is True
        status, body = await ann.api.post("/api/v1/admin/miniapps/poll/enable", json={})
        assert (status, body["error"]["code"]) == (409, "already_enabled")
        ack = await bob.socket.call(
            "message.send",
            {"conversation_id": cid, "client_msg_id": "p2", "text": '/poll "Lunch?" a b'},
        )
        assert ack == {"ok": True, "routed_to": {"app_id": "poll"}}
        await eventually(
            lambda: [d for d in bob.received() if d["message"]["type"] == "card"],
            timeout=20,
            what="the poll card",
        )
        assert await audit_actions(ann) == ["miniapp.enable", "miniapp.disable"]
    finally:
        await close_all([ann, bob])


async def test_stats_count_messages_signups_and_active_users(gateway):
    ann, bob, cat = await people(base_of(gateway), 3)
    try:
        await make_admin(gateway, ann)
        cid = await group(bob, [cat], "Counted")
        for text in ("one", "two", "three"):
            await bob.send(cid, text)
        await cat.send(cid, "four")
        quiet = ApiClient(ann.api.base_url)
        await quiet.register()  # signed up, never signed in: new but not active
        await quiet.close()

        async def counted() -> dict:
            # Message counts are written once a second, off the delivery path.
            _, body = await ann.api.get("/api/v1/admin/stats?days=3")
            return body if body["days"][-1]["messages"] == 4 else {}

        body = await eventually(counted, what="the messages counted")
        assert [d["date"] for d in body["days"]][-1] == day_of(now_ms())
        today = body["days"][-1]
        assert today == {
            "date": day_of(now_ms()),
            "active_users": 3,
            "messages": 4,
            "new_users": 4,
        }
        assert body["days"][0]["messages"] == 0 and len(body["days"]) == 3
        status, body = await ann.api.get("/api/v1/admin/stats")
        assert len(body["days"]) == 14
        for bad, code in (("0", "invalid_field"), ("91", "invalid_field"), ("x", "wrong_type")):
            status, body = await ann.api.get(f"/api/v1/admin/stats?days={bad}")
            assert (status, body["error"]["code"]) == (400, code), (bad, body)
    finally:
        await close_all([ann, bob, cat])


async def test_bad_input_is_refused_and_changes_nothing(gateway):
    ann, bob = await people(base_of(gateway), 2)
    try:
        await make_admin(gateway, ann)
        cases = [
            ("GET", "/api/v1/admin/users?limit=0", None, "invalid_field"),
            ("GET", "/api/v1/admin/users?limit=999", None, "invalid_field"),
            ("GET", "/api/v1/admin/users?before=x", None, "wrong_type"),
            ("GET", "/api/v1/admin/users?colour=red", None, "unknown_field"),
            ("GET", f"/api/v1/admin/users/{DUMMY}", None, "user_not_found"),
            ("GET", "/api/v1/admin/conversations?limit=-1", None, "invalid_field"),
            (
                "GET",
                f"/api/v1/admin/conversations/{DUMMY}/messages",
                None,
                "conversation_not_found",
            ),
            ("GET", "/api/v1/admin/reports?status=maybe", None, "invalid_field"),
            ("GET", "/api/v1/admin/audit?limit=0", None, "invalid_field"),
            ("GET", "/api/v1/admin/miniapps?x=1", None, "unknown_field"),
            ("POST", f"/api/v1/admin/users/{bob.user_id}/suspend", {"reason": 5}, "wrong_type"),
            (
                "POST",
                f"/api/v1/admin/users/{bob.user_id}/suspend",
                {"reason": "x" * 501},
                "invalid_field",
            ),
            ("POST", f"/api/v1/admin/users/{bob.user_id}/suspend", {"why": "x"}, "unknown_field"),
            ("POST", f"/api/v1/admin/users/{bob.user_id}/suspend", [], "wrong_type"),
            ("POST", f"/api/v1/admin/users/{DUMMY}/suspend", {}, "user_not_found"),
            ("POST", f"/api/v1/admin/users/{DUMMY}/unsuspend", {}, "user_not_found"),
            ("DELETE", f"/api/v1/admin/users/{DUMMY}/sessions/{DUMMY}", None, "user_not_found"),
            (
                "DELETE",
                f"/api/v1/admin/users/{bob.user_id}/sessions/{DUMMY}",
                None,
                "session_not_found",
            ),
            ("POST", "/api/v1/admin/messages/a/b/hide", {}, "missing_field"),
            ("POST", "/api/v1/admin/messages/a/b/hide", {"reason": ""}, "invalid_field"),
            ("POST", "/api/v1/admin/reports/x/dismiss", {"reason": 1}, "wrong_type"),
            ("POST", "/api/v1/admin/miniapps/poll/disable", {"reason": []}, "wrong_type"),
        ]
        for method, path, body, code in cases:
            status, reply = await ann.api.request(method, path, json=body)
            assert 400 <= status < 500 and reply["error"]["code"] == code, (path, body, reply)
        status, body = await ann.api.get(f"/api/v1/admin/users/{bob.user_id}")
        assert body["user"]["suspended"] is False and len(body["user"]["sessions"]) == 1
        status, body = await ann.api.get("/api/v1/admin/miniapps")
        assert all(a["enabled"] for a in body["miniapps"])
        assert await audit_actions(ann) == []
    finally:
        await close_all([ann, bob])


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URL", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "run.py", *args],
        cwd=ROOT,
        env={**clean, "LOG_LEVEL": "warning", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_create_admin_command(gateway, api, mongo_url, mongo_db_name, tmp_path):
    user = await api.register("Opal")
    status, body = await api.get(
        "/api/v1/admin/stats", token=(await api.login("opal"))["access_token"]
    )
    assert status == 403
    env = {"MONGODB_URL": mongo_url, "MONGODB_DB": mongo_db_name}
    result = _run(["--data-dir", str(tmp_path / "cli"), "create-admin", "opal"], **env)
    assert result.returncode == 0, result.stderr
    assert "Opal is now an administrator" in result.stdout
    stored = await gateway.app[MESSAGING].users.get_user(user["id"])
    assert stored["role"] == "admin"
    status, body = await api.get("/api/v1/admin/stats")
    assert status == 200, body
    result = _run(["create-admin", "nobody", "--data-dir", str(tmp_path / "cli")], **env)
    assert result.returncode == 1 and "no account" in result.stderr
    # the embedded server, as make run uses it (an empty database: nobody to promote)
    result = _run(["--data-dir", str(tmp_path / "embedded"), "create-admin", "opal"])
    assert result.returncode == 1 and "no account with the username 'opal'" in result.stderr


async def test_across_two_nodes(two_nodes, mongo_db):
    """Switching an app off and suspending a user on node A take effect on node B."""
    base_a, base_b = two_nodes
    (ann,) = await people(base_a, 1)
    (bob,) = await people(base_b, 1)
    try:
        await mongo_db.users.update_one({"_id": ann.user_id}, {"$set": {"role": "admin"}})
        cid = await group(ann, [bob], "Two nodes")
        status, body = await ann.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "poll"}
        )
        assert status == 201, body
        status, body = await ann.api.post("/api/v1/admin/miniapps/poll/disable", json={})
        assert status == 200, body

        async def off_on_b() -> bool:
            _, body = await bob.api.get("/api/v1/miniapps")
            return not next(a for a in body["miniapps"] if a["id"] == "poll")["enabled"]

        await eventually(off_on_b, what="node B sees the app disabled")
        await bob.socket.call(
            "message.send", {"conversation_id": cid, "client_msg_id": "p1", "text": "/poll a b"}
        )
        (ephemeral,) = await bob.socket.wait_for("miniapp.ephemeral")
        assert ephemeral["error"] == "app_disabled"

        status, body = await ann.api.post(f"/api/v1/admin/users/{bob.user_id}/suspend", json={})
        assert status == 200, body
        (revoked,) = await bob.socket.wait_for("session.revoked")
        assert revoked["reason"] == "suspended"
        await eventually(lambda: not bob.socket.sio.connected, what="bob disconnected on node B")
    finally:
        await close_all([ann, bob])
