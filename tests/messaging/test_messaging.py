"""The messaging core through a real gateway and real Socket.IO clients: ordering, exactly-once,
concurrency, sync after a gap, multi-device, edits/recalls/reactions, membership."""

from __future__ import annotations

import asyncio

from tests.helpers import SocketClient
from tests.messaging.chat_helpers import close_all, direct, group, people, person, settle


def seqs_of(person, conversation_id) -> list[int]:
    return [
        d["message"]["seq"]
        for d in person.received()
        if d["message"]["conversation_id"] == conversation_id
    ]


async def test_direct_chat_everyone_gets_everything_once_in_order(api):
    alice, bob = await people(api.base_url, 2)
    try:
        cid = await direct(alice, bob)
        assert await direct(bob, alice) == cid  # one per pair, from either side
        for i in range(5):
            await (alice if i % 2 == 0 else bob).send(cid, f"m{i}")
        await settle([alice, bob], cid, 5)
        for p in (alice, bob):
            assert p.texts(cid) == [f"m{i}" for i in range(5)]
            assert seqs_of(p, cid) == [1, 2, 3, 4, 5]
    finally:
        await close_all([alice, bob])


async def test_group_of_ten(api):
    everyone = await people(api.base_url, 10)
    try:
        cid = await group(everyone[0], everyone[1:])
        for i, p in enumerate(everyone):
            await p.send(cid, f"hello from {i}")
        await settle(everyone, cid, 10)
        expected = [f"hello from {i}" for i in range(10)]
        for p in everyone:
            assert p.texts(cid) == expected
            seqs = seqs_of(p, cid)
            assert seqs == sorted(set(seqs)) and seqs == list(range(1, len(seqs) + 1))
    finally:
        await close_all(everyone)


async def test_retried_client_msg_id_is_one_message(api, gateway):
    from gateway.keys import DATABASE

    alice, bob = await people(api.base_url, 2)
    laptop = await alice.connect_device()
    try:
        cid = await direct(alice, bob)
        first = await alice.socket.call(
            "message.send", {"conversation_id": cid, "client_msg_id": "same", "text": "hi"}
        )
        again = await alice.socket.call(
            "message.send", {"conversation_id": cid, "client_msg_id": "same", "text": "hi"}
        )
        assert first["ok"] and again["ok"]
        assert first["duplicate"] is False and again["duplicate"] is True
        assert again["message"]["id"] == first["message"]["id"]
        # the same id from two devices at once, several times over
        payload = {"conversation_id": cid, "client_msg_id": "race", "text": "once"}
        acks = await asyncio.gather(
            *[(alice.socket if i % 2 else laptop).call("message.send", payload) for i in range(10)]
        )
        assert all(a["ok"] for a in acks)
        assert len({a["message"]["id"] for a in acks}) == 1
        assert sum(not a["duplicate"] for a in acks) == 1
        db = gateway.app[DATABASE].db
        assert await db.messages.count_documents({"conversation_id": cid}) == 2
        await settle([bob], cid, 2)
        await asyncio.sleep(0.2)
        assert bob.texts(cid) == ["hi", "once"]
    finally:
        await laptop.close()
        await close_all([alice, bob])


async def test_twenty_concurrent_senders_see_one_identical_gap_free_history(api):
    everyone = await people(api.base_url, 20)
    try:
        cid = await group(everyone[0], everyone[1:])
        per_person = 5
        await asyncio.gather(
            *[p.send(cid, f"{i}-{n}") for i, p in enumerate(everyone) for n in range(per_person)]
        )
        total = 20 * per_person
        await settle(everyone, cid, total)
        reference = [
            (d["message"]["seq"], d["message"]["id"])
            for d in everyone[0].received()
            if d["message"]["type"] == "text"
        ]
        assert [s for s, _ in reference] == sorted(s for s, _ in reference)
        for p in everyone:
            mine = [
                (d["message"]["seq"], d["message"]["id"])
                for d in p.received()
                if d["message"]["type"] == "text"
            ]
            assert mine == reference
        all_seqs = seqs_of(everyone[0], cid)  # includes the group_created system message
        assert all_seqs == list(range(1, total + 2))
        status, history = await everyone[3].api.get(
            f"/api/v1/conversations/{cid}/messages?after=0&limit=100"
        )
        assert status == 200
        assert [m["seq"] for m in history["messages"]] == list(range(1, 101))
    finally:
        await close_all(everyone)


async def test_reconnect_sync_returns_exactly_the_gap(api):
    alice, bob = await people(api.base_url, 2)
    try:
        cid = await direct(alice, bob)
        for i in range(3):
            await alice.send(cid, f"before {i}")
        await settle([bob], cid, 3)
        last_seen = seqs_of(bob, cid)[-1]
        await bob.socket.close()
        for i in range(4):
            await alice.send(cid, f"while away {i}")
        bob.socket = SocketClient()
        await bob.socket.connect(api.base_url, bob.token)
        sync = await bob.socket.call("sync", {"cursors": {cid: last_seen}})
        assert sync["ok"], sync
        entry = sync["conversations"][cid]
        assert [m["text"] for m in entry["messages"]] == [f"while away {i}" for i in range(4)]
        assert [m["seq"] for m in entry["messages"]] == [4, 5, 6, 7]
        assert entry["too_long"] is False and entry["updated"] == []
        assert entry["conversation"]["unread_count"] == 7
        # a cursor at the end returns nothing new
        sync = await bob.socket.call("sync", {"cursors": {cid: 7}})
        assert sync["conversations"][cid]["messages"] == []
    finally:
        await close_all([alice, bob])


async def test_sync_too_long_and_new_and_removed_conversations(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    from gateway.app import create_app
    from tests.conftest import make_config

    server = await aiohttp_server(
        create_app(make_config(mongo_url, mongo_db_name, tmp_path / "var", sync_max_messages=5))
    )
    base = str(server.make_url("")).rstrip("/")
    alice, bob = await people(base, 2)
    try:
        cid = await direct(alice, bob)
        for i in range(8):
            await alice.send(cid, f"m{i}")
        sync = await bob.socket.call("sync", {"cursors": {cid: 0, "nope" * 6: 0}})
        entry = sync["conversations"][cid]
        assert entry["too_long"] is True
        assert [m["seq"] for m in entry["messages"]] == [4, 5, 6, 7, 8]  # the newest five
        assert sync["removed"] == ["nope" * 6]
        # a conversation the device has never seen is "new", with everything since joining
        gid = await group(alice, [bob], "New one")
        sync = await bob.socket.call("sync", {"cursors": {cid: 8}})
        assert sync["new_conversation_ids"] == [gid]
        assert [m["system"]["event"] for m in sync["conversations"][gid]["messages"]] == [
            "group_created"
        ]
    finally:
        await close_all([alice, bob])


async def test_edits_recalls_reactions_reach_everyone_and_sync(api):
    alice, bob, carol = await people(api.base_url, 3)
    try:
        cid = await group(alice, [bob, carol])
        first = await alice.send(cid, "first")
        second = await bob.send(cid, "second")
        await settle([alice, bob, carol], cid, 2)
        cursor = second["seq"]
        await carol.socket.close()  # carol misses the changes live

        ref = {"conversation_id": cid, "message_id": first["id"]}
        edited = await alice.socket.call("message.edit", {**ref, "text": "first (edited)"})
        assert edited["ok"], edited
        assert edited["message"]["edited_at"] and edited["message"]["version"] == 2
        reacted = await bob.socket.call("reaction.add", {**ref, "emoji": "👍"})
        assert reacted["message"]["reactions"] == [
            {"emoji": "👍", "count": 1, "user_ids": [bob.user_id]}
        ]
        again = await bob.socket.call("reaction.add", {**ref, "emoji": "👍"})  # idempotent
        assert again["message"]["reactions"][0]["count"] == 1
        recalled = await bob.socket.call(
            "message.recall", {"conversation_id": cid, "message_id": second["id"]}
        )
        assert (
            recalled["ok"] and recalled["message"]["recalled"] and recalled["message"]["text"] == ""
        )

        updates = await alice.socket.wait_for("message.updated", count=3)
        assert updates[-1]["message"]["id"] == second["id"]

        carol.socket = SocketClient()
        await carol.socket.connect(api.base_url, carol.token)
        sync = await carol.socket.call("sync", {"cursors": {cid: cursor}})
        updated = {m["id"]: m for m in sync["conversations"][cid]["updated"]}
        assert updated[first["id"]]["text"] == "first (edited)"
        assert updated[first["id"]]["reactions"][0]["count"] == 1
        assert updated[second["id"]]["recalled"] is True
        assert sync["conversations"][cid]["messages"] == []

        removed = await bob.socket.call("reaction.remove", {**ref, "emoji": "👍"})
        assert removed["message"]["reactions"] == []
    finally:
        await close_all([alice, bob, carol])


async def test_recall_rules(api):
    alice, bob = await people(api.base_url, 2)
    try:
        cid = await group(alice, [bob])
        mine = await bob.send(cid, "oops")
        theirs = await alice.send(cid, "owner's")
        denied = await bob.socket.call(
            "message.recall", {"conversation_id": cid, "message_id": theirs["id"]}
        )
        assert denied["error"]["code"] == "not_allowed"
        # the owner may recall anyone's message, any time
        ok = await alice.socket.call(
            "message.recall", {"conversation_id": cid, "message_id": mine["id"]}
        )
        assert ok["ok"] and ok["message"]["recalled"]
        edit = await bob.socket.call(
            "message.edit", {"conversation_id": cid, "message_id": mine["id"], "text": "x"}
        )
        assert edit["error"]["code"] == "message_recalled"
    finally:
        await close_all([alice, bob])


async def test_membership_changes_reach_everyone_and_removed_member_hears_nothing(api):
    alice, bob, carol, dave = await people(api.base_url, 4)
    try:
        cid = await group(alice, [bob, carol])
        status, body = await alice.api.post(
            f"/api/v1/conversations/{cid}/members", json={"user_ids": [dave.user_id]}
        )
        assert status == 200 and body["added"] == [dave.user_id]
        new = await dave.socket.wait_for("conversation.new")
        assert new[0]["conversation"]["id"] == cid
        await alice.send(cid, "welcome dave")
        await settle([dave], cid, 1)

        status, _ = await alice.api.delete(f"/api/v1/conversations/{cid}/members/{carol.user_id}")
        assert status == 204
        removed = await carol.socket.wait_for("conversation.removed")
        assert removed[0] == {"conversation_id": cid, "reason": "removed"}
        await alice.send(cid, "after carol left")
        await settle([bob, dave], cid, 2)
        await asyncio.sleep(0.3)
        assert "after carol left" not in carol.texts(cid)
        denied = await carol.socket.call(
            "message.send", {"conversation_id": cid, "client_msg_id": "x", "text": "hi?"}
        )
        assert denied["error"]["code"] == "not_a_member"
        status, body = await carol.api.get(f"/api/v1/conversations/{cid}/messages")
        assert status == 403 and body["error"]["code"] == "not_a_member"

        events = [
            d["message"]["system"]["event"]
            for d in bob.received()
            if d["message"]["type"] == "system"
        ]
        assert events == ["group_created", "members_added", "member_removed"]
        sync = await bob.socket.call("sync", {"cursors": {cid: 0}})
        assert [
            m["system"]["event"]
            for m in sync["conversations"][cid]["messages"]
            if m["type"] == "system"
        ] == events
        # dave joined later: he sees nothing from before he joined
        status, history = await dave.api.get(f"/api/v1/conversations/{cid}/messages")
        assert history["messages"][0]["system"]["event"] == "members_added"
    finally:
        await close_all([alice, bob, carol, dave])


async def test_roles_rename_leave_and_ownership(api):
    alice, bob, carol = await people(api.base_url, 3)
    try:
        cid = await group(alice, [bob, carol])
        status, body = await bob.api.patch(f"/api/v1/conversations/{cid}", json={"title": "x"})
        assert status == 403 and body["error"]["code"] == "not_allowed"
        status, _ = await alice.api.request(
            "PUT", f"/api/v1/conversations/{cid}/members/{bob.user_id}/role", json={"role": "admin"}
        )
        assert status == 204
        status, body = await bob.api.patch(
            f"/api/v1/conversations/{cid}", json={"title": "  Weekend   trip "}
        )
        assert status == 200 and body["conversation"]["title"] == "Weekend trip"
        updated = await carol.socket.wait_for("conversation.updated")
        assert updated[0] == {"conversation_id": cid, "title": "Weekend trip"}
        # an admin cannot remove the owner
        status, body = await bob.api.delete(f"/api/v1/conversations/{cid}/members/{alice.user_id}")
        assert status == 403
        # the owner leaves: the admin becomes owner
        status, _ = await alice.api.post(f"/api/v1/conversations/{cid}/leave")
        assert status == 204
        status, body = await bob.api.get(f"/api/v1/conversations/{cid}")
        roles = {m["user"]["id"]: m["role"] for m in body["conversation"]["members"]}
        assert roles == {bob.user_id: "owner", carol.user_id: "member"}
        status, _ = await bob.api.post(
            f"/api/v1/conversations/{cid}/owner", json={"user_id": carol.user_id}
        )
        assert status == 204
        _, body = await carol.api.get(f"/api/v1/conversations/{cid}")
        assert body["conversation"]["my_role"] == "owner"
        direct_id = await direct(bob, carol)
        status, body = await bob.api.post(f"/api/v1/conversations/{direct_id}/leave")
        assert status == 400 and body["error"]["code"] == "cannot_leave_direct"
    finally:
        await close_all([alice, bob, carol])


async def test_read_state_unread_and_receipts_across_devices(api):
    alice, bob = await people(api.base_url, 2)
    phone = await bob.connect_device()
    try:
        cid = await group(alice, [bob])
        for i in range(3):
            await alice.send(cid, f"m{i}")
        _, body = await bob.api.get("/api/v1/conversations")
        assert body["conversations"][0]["unread_count"] == 4  # 3 + the group_created message
        _, body = await alice.api.get("/api/v1/conversations")
        assert body["conversations"][0]["unread_count"] == 0  # own messages are read
        ack = await bob.socket.call("conversation.read", {"conversation_id": cid, "seq": 3})
        assert ack == {"ok": True, "conversation_id": cid, "last_read_seq": 3, "unread_count": 1}
        assert (await phone.wait_for("conversation.read"))[0]["unread_count"] == 1
        receipt = await alice.socket.wait_for("message.read")
        assert receipt[0] == {"conversation_id": cid, "user_id": bob.user_id, "seq": 3}
        # read position never moves back, and never past the end
        ack = await bob.socket.call("conversation.read", {"conversation_id": cid, "seq": 1})
        assert ack["last_read_seq"] == 3
        ack = await bob.socket.call("conversation.read", {"conversation_id": cid, "seq": 99})
        assert ack["last_read_seq"] == 4 and ack["unread_count"] == 0
        status, body = await alice.api.get(f"/api/v1/conversations/{cid}/messages/4/reads")
        assert status == 200 and body["readers"] == [{"user_id": bob.user_id, "last_read_seq": 4}]
    finally:
        await phone.close()
        await close_all([alice, bob])


async def test_typing_is_throttled_and_reaches_others_only(api):
    alice, bob, carol = await people(api.base_url, 3)
    try:
        cid = await group(alice, [bob, carol])
        first = await alice.socket.call("typing", {"conversation_id": cid, "typing": True})
        second = await alice.socket.call("typing", {"conversation_id": cid, "typing": True})
        stop = await alice.socket.call("typing", {"conversation_id": cid, "typing": False})
        assert (first["sent"], second["sent"], stop["sent"]) == (True, False, True)
        got = await bob.socket.wait_for("typing", count=2)
        assert [g["typing"] for g in got] == [True, False]
        assert got[0]["user_id"] == alice.user_id
        await carol.socket.wait_for("typing", count=2)
        assert not alice.received("typing")
    finally:
        await close_all([alice, bob, carol])


async def test_multi_device_and_delete_for_me(api):
    alice, bob = await people(api.base_url, 2)
    phone = await alice.connect_device()
    try:
        cid = await direct(alice, bob)
        sent = await alice.send(cid, "from laptop")
        on_phone = await phone.wait_for("message.new")
        assert on_phone[0]["message"]["id"] == sent["id"]
        ack = await alice.socket.call(
            "message.delete", {"conversation_id": cid, "message_id": sent["id"]}
        )
        assert ack == {"ok": True}
        gone = await phone.wait_for("message.deleted")
        assert gone[0] == {"conversation_id": cid, "message_id": sent["id"]}
        _, mine = await alice.api.get(f"/api/v1/conversations/{cid}/messages")
        _, theirs = await bob.api.get(f"/api/v1/conversations/{cid}/messages")
        assert mine["messages"] == []
        assert [m["text"] for m in theirs["messages"]] == ["from laptop"]
        sync = await phone.call("sync", {"cursors": {cid: 1}})
        assert sync["conversations"][cid]["deleted"] == [sent["id"]]
    finally:
        await phone.close()
        await close_all([alice, bob])


async def test_replies_and_mentions(api):
    alice, bob = await people(api.base_url, 2)
    try:
        cid = await group(alice, [bob])
        question = await alice.send(cid, "lunch?")
        answer = await bob.send(cid, "yes!", reply_to=question["id"], mentions=[alice.user_id])
        assert answer["reply_to"] == {
            "id": question["id"],
            "seq": question["seq"],
            "sender_id": alice.user_id,
        }
        assert answer["mentions"] == [alice.user_id]
        everyone = await bob.socket.call(
            "message.send",
            {
                "conversation_id": cid,
                "client_msg_id": "all",
                "text": "hey all",
                "mentions": ["all"],
            },
        )
        assert everyone["error"]["code"] == "not_allowed"  # members cannot @all
        owner_all = await alice.send(cid, "meeting now", mentions=["all"])
        assert owner_all["mention_all"] is True
    finally:
        await close_all([alice, bob])


async def test_conversation_list_is_most_recent_first_and_pages(api):
    me = await person(api.base_url)
    others = await people(api.base_url, 3)
    try:
        ids = [await direct(me, other) for other in others]
        for cid in ids:
            await me.send(cid, "hi")
        _, body = await me.api.get("/api/v1/conversations?limit=2")
        assert [c["id"] for c in body["conversations"]] == [ids[2], ids[1]]
        assert body["conversations"][0]["last_message"]["text"] == "hi"
        assert body["conversations"][0]["peer"]["id"] == others[2].user_id
        _, rest = await me.api.get(f"/api/v1/conversations?limit=2&before={body['next_before']}")
        assert [c["id"] for c in rest["conversations"]] == [ids[0]]
        assert rest["next_before"] is None
    finally:
        await close_all([me, *others])


async def test_blocked_user_cannot_open_a_direct_chat_or_message(api, gateway):
    from gateway.keys import MESSAGING

    alice, bob = await people(api.base_url, 2)
    try:
        cid = await direct(alice, bob)
        await gateway.app[MESSAGING].blocks.add_block(alice.user_id, bob.user_id, 0)
        denied = await bob.socket.call(
            "message.send", {"conversation_id": cid, "client_msg_id": "x", "text": "hi"}
        )
        assert denied["error"]["code"] == "blocked"
        carol = await person(api.base_url)
        await gateway.app[MESSAGING].blocks.add_block(carol.user_id, bob.user_id, 0)
        status, body = await bob.api.post(
            "/api/v1/conversations", json={"type": "direct", "user_id": carol.user_id}
        )
        assert status == 403 and body["error"]["code"] == "blocked"
        await carol.close()
    finally:
        await close_all([alice, bob])


async def test_disconnect_mid_stream_live_plus_sync_is_everything_once(api):
    alice, bob = await people(api.base_url, 2)
    try:
        cid = await direct(alice, bob)
        total = 60

        async def stream():
            for i in range(total):
                await alice.send(cid, f"s{i}")
                await asyncio.sleep(0.005)

        sender = asyncio.create_task(stream())
        while len(bob.texts(cid)) < 10:
            await asyncio.sleep(0.005)
        before = {d["message"]["id"]: d["message"]["seq"] for d in bob.received()}
        cursor = max(before.values())
        assert sorted(before.values()) == list(range(1, cursor + 1))  # gap-free so far
        await bob.socket.close()  # drops while alice keeps sending
        await asyncio.sleep(0.05)
        bob.socket = SocketClient()
        await bob.socket.connect(api.base_url, bob.token)
        sync = await bob.socket.call("sync", {"cursors": {cid: cursor}})
        synced = sync["conversations"][cid]["messages"]
        # the gap, exactly: contiguous from the cursor on, nothing before it
        assert [m["seq"] for m in synced] == list(range(cursor + 1, cursor + 1 + len(synced)))
        await sender
        for _ in range(200):  # what came live after the reconnect completes the picture
            live = {d["message"]["id"]: d["message"]["seq"] for d in bob.received()}
            seen = {**before, **{m["id"]: m["seq"] for m in synced}, **live}
            if len(seen) == total:
                break
            await asyncio.sleep(0.02)
        assert sorted(seen.values()) == list(range(1, total + 1))
        assert [m["text"] for m in synced] == [
            f"s{s - 1}" for s in range(cursor + 1, cursor + 1 + len(synced))
        ]
    finally:
        await close_all([alice, bob])
