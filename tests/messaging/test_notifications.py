"""The notification center: each source kind, the feed and its unread count, marks read across
devices, mute, sync for an offline device, bad input, and many notifications at once."""

from __future__ import annotations

import asyncio

import pytest

from gateway.keys import MESSAGING
from tests.calls.call_helpers import start_call
from tests.conftest import make_config
from tests.helpers import SocketClient, eventually
from tests.messaging.chat_helpers import close_all, direct, group, people
from tests.miniapps.test_capabilities import command, setup
from tests.wallet.wallet_helpers import topup, transfer


@pytest.fixture
def config(mongo_url, mongo_db_name, tmp_path):
    # Calls ring briefly so a missed call happens within the test.
    return make_config(mongo_url, mongo_db_name, tmp_path / "var", call_ring_timeout=1.0)


def base_of(gateway) -> str:
    return str(gateway.make_url("")).rstrip("/")


def notes(someone, kind: str | None = None) -> list[dict]:
    return [
        d["notification"]
        for n, d in someone.socket.events
        if n == "notification.new" and (kind is None or d["notification"]["kind"] == kind)
    ]


async def feed(someone, query: str = "") -> dict:
    status, body = await someone.api.get(f"/api/v1/notifications{query}")
    assert status == 200, body
    return body


async def test_mentions_and_replies(gateway):
    ann, bea, cy = await people(base_of(gateway), 3)
    try:
        cid = await group(ann, [bea, cy], "Trip")
        asked = await ann.send(cid, "who brings the tent?", "m1", mentions=[bea.user_id])
        (mention,) = await eventually(lambda: notes(bea, "mention"))
        assert mention["title"].endswith("mentioned you in Trip")
        assert mention["body"] == "who brings the tent?"
        assert (mention["conversation_id"], mention["seq"]) == (cid, asked["seq"])
        assert mention["actor_id"] == ann.user_id and mention["read"] is False
        await cy.send(cid, "I do", "r1", reply_to=asked["id"])
        (reply,) = await eventually(lambda: notes(ann, "reply"))
        assert reply["title"].endswith("replied to you in Trip") and reply["body"] == "I do"
        # Nobody is notified of their own message; cy was neither mentioned nor replied to.
        await ann.send(cid, "me myself", "m2", mentions=[ann.user_id])
        await ann.send(cid, "sync point", "m3", mentions=[bea.user_id])
        await eventually(lambda: len(notes(bea, "mention")) == 2)
        assert notes(ann, "mention") == [] and notes(cy) == []
        body = await feed(bea)
        assert [n["id"] for n in body["notifications"]] == [n["id"] for n in notes(bea)][::-1]
        assert body["unread"] == 2 and body["next_before"] is None
    finally:
        await close_all([ann, bea, cy])


async def test_friend_request_missed_call_and_money_received(gateway):
    ann, bea = await people(base_of(gateway), 2)
    try:
        status, body = await ann.api.post(
            "/api/v1/contacts/requests", json={"user_id": bea.user_id, "message": "hi, it's ann"}
        )
        assert status == 201, body
        (request,) = await eventually(lambda: notes(bea, "friend_request"))
        assert request["actor_id"] == ann.user_id and request["body"] == "hi, it's ann"
        assert request["title"].endswith("wants to be your friend")

        cid = await direct(ann, bea)
        call_id = await start_call(ann, cid, "audio")
        (missed,) = await eventually(lambda: notes(bea, "missed_call"), timeout=15)
        assert missed["title"].startswith("Missed call from") and missed["conversation_id"] == cid
        assert notes(ann, "missed_call") == []  # the caller missed nothing
        assert call_id

        await topup(ann, 5000)
        status, body = await transfer(ann, bea, cid, 1250, note="for the tent")
        assert status == 201, body
        (money,) = await eventually(lambda: notes(bea, "money_received"))
        assert money["title"].endswith("sent you 12.50 USD") and money["body"] == "for the tent"
        assert money["conversation_id"] == cid and money["actor_id"] == ann.user_id
        assert (await feed(bea))["unread"] == 3
    finally:
        await close_all([ann, bea])


async def test_payment_result(gateway):
    _, (ann,), cid = await setup(gateway, 1, ["shopper"])
    try:
        await topup(ann, 5000)
        await command(ann, cid, "/buy order-7 1250")
        asks = await eventually(
            lambda: [d for n, d in ann.socket.events if n == "payment.confirm_required"]
        )
        payment = asks[0]["payment"]
        ack = await ann.socket.call("payment.confirm", {"payment_id": payment["id"]})
        assert ack["ok"], ack
        (result,) = await eventually(lambda: notes(ann, "payment_result"))
        assert result["title"] == "Payment to Shopper: paid"
        assert result["body"] == "12.50 USD · Order order-7" and result["app_id"] == "shopper"
        # Confirming again is no new outcome: no second notification.
        ack = await ann.socket.call("payment.confirm", {"payment_id": payment["id"]})
        assert ack["ok"]
        assert len((await feed(ann))["notifications"]) == 1
    finally:
        await close_all([ann])


async def test_mark_read_one_and_all_across_two_devices(gateway):
    ann, bea = await people(base_of(gateway), 2)
    laptop = await bea.connect_device()
    try:
        cid = await group(ann, [bea], "Pair")
        for i in range(3):
            await ann.send(cid, f"hey {i}", f"h{i}", mentions=[bea.user_id])
        await eventually(lambda: len(notes(bea)) == 3)
        first = notes(bea)[0]
        status, body = await bea.api.post(f"/api/v1/notifications/{first['id']}/read")
        assert status == 200 and body == {"unread": 2}, body
        (told,) = await laptop.wait_for("notification.read")
        assert told["ids"] == [first["id"]] and told["unread"] == 2
        # Again: nothing changes, nobody is told again.
        status, body = await bea.api.post(f"/api/v1/notifications/{first['id']}/read")
        assert status == 200 and body == {"unread": 2}
        status, body = await bea.api.post("/api/v1/notifications/read-all")
        assert status == 200 and body == {"unread": 0}, body
        told = await laptop.wait_for("notification.read", count=2)
        assert told[1]["all"] is True and told[1]["unread"] == 0
        assert len([n for n, _ in laptop.events if n == "notification.read"]) == 2
        listed = (await feed(bea))["notifications"]
        assert [n["read"] for n in listed] == [True, True, True]
    finally:
        await laptop.close()
        await close_all([ann, bea])


async def test_muted_conversation_gives_silent_notifications_and_hooks_see_them(gateway):
    ctx = gateway.app[MESSAGING]
    seen: list[dict] = []

    async def record(notification: dict) -> None:
        seen.append(notification)

    async def broken(notification: dict) -> None:
        raise RuntimeError("push service down")

    ctx.notification_hooks.extend([broken, record])
    ann, bea = await people(base_of(gateway), 2)
    try:
        cid = await group(ann, [bea], "Loud")
        await ann.send(cid, "before mute", "b1", mentions=[bea.user_id])
        # Notifications are derived after the message is stored: mute only once it is there.
        await eventually(lambda: len(notes(bea)) == 1)
        status, body = await bea.api.patch(
            f"/api/v1/conversations/{cid}/settings", json={"muted": True}
        )
        assert status == 200, body
        await ann.send(cid, "after mute", "b2", mentions=[bea.user_id])
        await eventually(lambda: len(notes(bea)) == 2)
        assert [n["silent"] for n in notes(bea)] == [False, True]
        # The hooks ran after each was stored, a failing one did not stop the others.
        await eventually(lambda: len(seen) == 2)
        assert [(n["user_id"], n["silent"]) for n in seen] == [
            (bea.user_id, False),
            (bea.user_id, True),
        ]
        assert seen[1]["id"] == notes(bea)[1]["id"]
    finally:
        ctx.notification_hooks.clear()
        await close_all([ann, bea])


async def test_sync_brings_what_an_offline_device_missed(gateway):
    ann, bea = await people(base_of(gateway), 2)
    phone = await bea.connect_device()
    try:
        cid = await group(ann, [bea], "Day")
        await ann.send(cid, "morning", "d0", mentions=[bea.user_id])
        (seen,) = await phone.wait_for("notification.new")
        await phone.close()
        for i in range(1, 4):
            await ann.send(cid, f"later {i}", f"d{i}", mentions=[bea.user_id])
        await eventually(lambda: len(notes(bea)) == 4)
        phone = SocketClient()
        await phone.connect(bea.api.base_url, bea.token)
        after = seen["notification"]["id"]
        ack = await phone.call("sync", {"cursors": {}, "notifications_after": after})
        assert ack["ok"], ack
        assert [n["body"] for n in ack["notifications"]] == ["later 3", "later 2", "later 1"]
        assert ack["notifications_unread"] == 4 and ack["notifications_too_long"] is False
        # Without a cursor: the newest ones.
        ack = await phone.call("sync", {"cursors": {}})
        assert ack["ok"] and len(ack["notifications"]) == 4
    finally:
        await phone.close()
        await close_all([ann, bea])


async def test_bad_input_changes_nothing(gateway):
    ann, bea = await people(base_of(gateway), 2)
    try:
        cid = await group(ann, [bea], "Bad")
        await ann.send(cid, "ping", "p1", mentions=[bea.user_id])
        (mine,) = await eventually(lambda: notes(bea))
        for path in (
            "/api/v1/notifications/0123456789abcdef01234567/read",  # unknown
            f"/api/v1/notifications/{mine['id']}/read",  # not ann's
            "/api/v1/notifications/not-an-id/read",
        ):
            status, body = await ann.api.post(path)
            assert status == 404 and body["error"]["code"] == "notification_not_found", body
        for query in ("?before=nope", "?limit=0", "?limit=101", "?limit=x", "?sort=asc"):
            status, body = await bea.api.get(f"/api/v1/notifications{query}")
            assert status == 400, (query, body)
            assert body["error"]["code"] in {"invalid_field", "wrong_type", "unknown_field"}
        for bad in ("nope", "0123456789abcdef01234567", mine["id"].upper(), 7):
            ack = await ann.socket.call("sync", {"cursors": {}, "notifications_after": bad})
            assert not ack["ok"], (bad, ack)
        # bea's own cursor is fine for bea, an unknown id is refused for her too
        ack = await bea.socket.call("sync", {"cursors": {}, "notifications_after": mine["id"]})
        assert ack["ok"] and ack["notifications"] == []
        body = await feed(bea)
        assert body["unread"] == 1 and body["notifications"][0]["read"] is False
        assert not [n for n, _ in bea.socket.events if n == "notification.read"]
    finally:
        await close_all([ann, bea])


async def test_paging(gateway):
    ann, bea = await people(base_of(gateway), 2)
    try:
        cid = await group(ann, [bea], "Pages")
        for i in range(5):
            await ann.send(cid, f"n{i}", f"n{i}", mentions=[bea.user_id])
        await eventually(lambda: len(notes(bea)) == 5)
        bodies, before = [], ""
        while True:
            page = await feed(bea, f"?limit=2{before}")
            bodies += [n["body"] for n in page["notifications"]]
            if page["next_before"] is None:
                break
            before = f"&before={page['next_before']}"
        assert bodies == ["n4", "n3", "n2", "n1", "n0"]
    finally:
        await close_all([ann, bea])


async def test_many_notifications_at_once_keep_a_true_unread_count(gateway):
    """Unread is counted from the documents through the (user_id, read) index — no counter to
    drift: 30 senders mention one person at once while she marks some read."""
    everyone = await people(base_of(gateway), 31)
    bea, senders = everyone[0], everyone[1:]
    try:
        cid = await group(senders[0], [bea, *senders[1:]], "Crowd")
        await asyncio.gather(
            *[
                s.send(cid, f"hey {i}", f"c{i}", mentions=[bea.user_id])
                for i, s in enumerate(senders)
            ]
        )
        await eventually(lambda: len(notes(bea)) == 30, timeout=20)
        assert (await feed(bea))["unread"] == 30
        first_ten = [n["id"] for n in notes(bea)[:10]]
        # Ten marks (each twice) and ten new mentions, all at once.
        marks = [bea.api.post(f"/api/v1/notifications/{i}/read") for i in first_ten * 2]
        more = [s.send(cid, f"again {i}", f"a{i}", mentions=[bea.user_id]) for i, s in
                enumerate(senders[:10])]  # fmt: skip
        await asyncio.gather(*marks, *more)
        await eventually(lambda: len(notes(bea)) == 40, timeout=20)
        body = await feed(bea, "?limit=100")
        assert body["unread"] == 30 == sum(not n["read"] for n in body["notifications"])
        assert len({n["id"] for n in body["notifications"]}) == 40
    finally:
        await close_all(everyone)
