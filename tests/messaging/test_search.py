"""Search over a running gateway: messages (who may see what, CJK, emoji, accents, edits,
paging), people, conversations, apps, bad input, and the backfill of older messages."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from gateway.keys import MESSAGING
from messaging.actions import search as search_actions
from tests.helpers import ApiClient
from tests.messaging.chat_helpers import Person, close_all, direct, group, people, person

SEARCH = "/api/v1/search"


async def find(who: Person | ApiClient, q: str, expect: int = 200, **params) -> dict:
    client = who.api if isinstance(who, Person) else who
    status, body = await client.get(f"{SEARCH}?{urlencode({'q': q, **params})}")
    assert status == expect, body
    return body


async def found_texts(who: Person, q: str, **params) -> list[str]:
    body = await find(who, q, **params)
    return [r["message"]["text"] for r in body["results"]]


def js_slice(text: str, start: int, end: int) -> str:
    """What JavaScript's ``text.slice(start, end)`` gives (offsets in UTF-16 code units)."""
    units = text.encode("utf-16-le")
    return units[start * 2 : end * 2].decode("utf-16-le")


# --- languages and scripts ------------------------------------------------------------------


async def test_chinese_japanese_emoji_and_accents_are_found(api):
    alice, bob = await people(api.base_url, 2)
    try:
        cid = await group(alice, [bob])
        await alice.send(cid, "我们明天去北京吃烤鸭")
        await alice.send(cid, "東京で寿司を食べました")
        await alice.send(cid, "ｶﾞｯｺｳ is half-width katakana")
        await alice.send(cid, "上海和海口")
        await bob.send(cid, "party tonight 🎉🎉 bring snacks 👍🏽")
        await bob.send(cid, "Let's meet at the Café Müller")
        await bob.send(cid, "nothing to see here")

        assert await found_texts(bob, "北京") == ["我们明天去北京吃烤鸭"]
        assert await found_texts(bob, "烤鸭") == ["我们明天去北京吃烤鸭"]
        # One character finds it in both (newest first).
        assert await found_texts(bob, "京") == ["東京で寿司を食べました", "我们明天去北京吃烤鸭"]
        assert await found_texts(bob, "京吃") == ["我们明天去北京吃烤鸭"]
        # Both pairs of 上海口 are in 上海和海口, but not the run: not a match.
        assert await found_texts(bob, "上海口") == []
        assert await found_texts(bob, "海口") == ["上海和海口"]
        assert await found_texts(bob, "寿司") == ["東京で寿司を食べました"]
        assert await found_texts(bob, "食べ") == ["東京で寿司を食べました"]
        assert await found_texts(bob, "ガッコウ") == ["ｶﾞｯｺｳ is half-width katakana"]
        assert await found_texts(alice, "🎉") == ["party tonight 🎉🎉 bring snacks 👍🏽"]
        assert await found_texts(alice, "👍") == ["party tonight 🎉🎉 bring snacks 👍🏽"]
        assert await found_texts(alice, "cafe muller") == ["Let's meet at the Café Müller"]
        assert await found_texts(alice, "CAFÉ") == ["Let's meet at the Café Müller"]
        # Words match as prefixes; every word of the query must match.
        assert await found_texts(alice, "snack") == ["party tonight 🎉🎉 bring snacks 👍🏽"]
        assert await found_texts(alice, "snacks museum") == []
        assert await found_texts(alice, "北京 烤鸭") == ["我们明天去北京吃烤鸭"]

        body = await find(bob, "北京")
        (hit,) = body["results"]
        assert hit["type"] == "message" and hit["conversation_id"] == cid
        assert hit["seq"] == hit["message"]["seq"] and hit["message"]["sender_id"] == alice.user_id
        assert [js_slice(hit["snippet"], a, b) for a, b in hit["highlights"]] == ["北京"]
        assert body["next_before"] is None

        (hit,) = (await find(alice, "👍"))["results"]
        # Offsets count UTF-16 code units (🎉 is two); the skin tone stays with its thumb.
        assert [js_slice(hit["snippet"], a, b) for a, b in hit["highlights"]] == ["👍🏽"]
        (hit,) = (await find(alice, "muller"))["results"]
        assert [js_slice(hit["snippet"], a, b) for a, b in hit["highlights"]] == ["Müller"]
    finally:
        await close_all([alice, bob])


async def test_long_message_snippet_is_a_window_around_the_match(api):
    (alice,) = await people(api.base_url, 1)
    try:
        cid = await group(alice, [])
        text = "filler " * 60 + "the needle is here " + "more " * 60
        await alice.send(cid, text, client_msg_id="long")
        (hit,) = (await find(alice, "needle"))["results"]
        assert hit["message"]["text"] == text
        assert len(hit["snippet"]) < 110 and hit["snippet"].startswith("…")
        assert hit["snippet"].endswith("…")
        assert [js_slice(hit["snippet"], a, b) for a, b in hit["highlights"]] == ["needle"]
    finally:
        await close_all([alice])


# --- who may see what -------------------------------------------------------------------------


async def test_never_before_joined_seq_nor_after_leaving_nor_other_chats(api):
    alice, bob, carol = await people(api.base_url, 3)
    try:
        cid = await group(alice, [bob])
        await alice.send(cid, "secret plan before carol")
        other = await direct(alice, bob)
        await alice.send(other, "secret between alice and bob")
        status, body = await alice.api.post(
            f"/api/v1/conversations/{cid}/members", json={"user_ids": [carol.user_id]}
        )
        assert status == 200, body
        await alice.send(cid, "secret plan after carol joined")

        assert await found_texts(carol, "secret") == ["secret plan after carol joined"]
        assert await found_texts(carol, "secret", conversation_id=cid) == [
            "secret plan after carol joined"
        ]
        assert await found_texts(bob, "secret") == [
            "secret plan after carol joined",
            "secret between alice and bob",
            "secret plan before carol",
        ]
        # Not a member of the direct chat: a clear refusal, not an empty list.
        body = await find(carol, "secret", expect=403, conversation_id=other)
        assert body["error"]["code"] == "not_a_member"

        status, _ = await carol.api.post(f"/api/v1/conversations/{cid}/leave")
        assert status == 204
        assert await found_texts(carol, "secret") == []
        body = await find(carol, "secret", expect=403, conversation_id=cid)
        assert body["error"]["code"] == "not_a_member"
    finally:
        await close_all([alice, bob, carol])


async def test_recalled_and_deleted_for_me_are_not_found_and_edits_are_reindexed(api):
    alice, bob = await people(api.base_url, 2)
    try:
        cid = await group(alice, [bob])
        recalled = await alice.send(cid, "recall this banana")
        hidden = await alice.send(cid, "hide this banana")
        edited = await alice.send(cid, "edit this banana")
        await alice.send(cid, "keep this banana")
        assert len(await found_texts(bob, "banana")) == 4

        ack = await alice.socket.call(
            "message.recall", {"conversation_id": cid, "message_id": recalled["id"]}
        )
        assert ack["ok"], ack
        ack = await bob.socket.call(
            "message.delete", {"conversation_id": cid, "message_id": hidden["id"]}
        )
        assert ack["ok"], ack
        ack = await alice.socket.call(
            "message.edit",
            {"conversation_id": cid, "message_id": edited["id"], "text": "edited into 苹果"},
        )
        assert ack["ok"], ack

        assert await found_texts(bob, "banana") == ["keep this banana"]
        # Deleted for bob only: alice still finds it.
        assert await found_texts(alice, "banana") == ["keep this banana", "hide this banana"]
        assert await found_texts(bob, "苹果") == ["edited into 苹果"]
        assert await found_texts(bob, "edit") == ["edited into 苹果"]
        assert await found_texts(bob, "recall") == []
    finally:
        await close_all([alice, bob])


async def test_searches_of_many_people_at_once_see_only_their_own_chats(api):
    everyone = await people(api.base_url, 8)
    try:
        pairs = [(everyone[i], everyone[i + 1]) for i in range(0, 8, 2)]
        chats = await asyncio.gather(*[group(a, [b], title=f"pair {a.username}") for a, b in pairs])
        await asyncio.gather(
            *[
                a.send(cid, f"shared word kiwi of {a.username}")
                for (a, _), cid in zip(pairs, chats, strict=True)
            ]
        )

        async def check(p: Person, owner: Person) -> None:
            for _ in range(5):
                assert await found_texts(p, "kiwi") == [f"shared word kiwi of {owner.username}"]

        await asyncio.gather(*[check(p, a) for a, b in pairs for p in (a, b)])
    finally:
        await close_all(everyone)


# --- paging ---------------------------------------------------------------------------------


async def test_pages_with_before_cover_every_match_once_newest_first(api):
    alice, bob = await people(api.base_url, 2)
    try:
        cid = await group(alice, [bob])
        other = await group(bob, [alice], title="Other")
        for i in range(5):
            await alice.send(cid, f"mango number {i}")
            await bob.send(other, f"mango other {i}")
        # Sent at once: these land in one commit batch and share created_at.
        await asyncio.gather(*[alice.send(cid, f"mango burst {i}") for i in range(6)])
        await alice.send(cid, "no fruit here")

        seen: list[tuple[str, int]] = []
        before = None
        pages = 0
        while True:
            params = {"limit": 4, **({"before": before} if before else {})}
            body = await find(bob, "mango", **params)
            assert len(body["results"]) <= 4
            seen += [(r["conversation_id"], r["seq"]) for r in body["results"]]
            pages += 1
            before = body["next_before"]
            if before is None:
                break
        assert pages == 4
        assert len(seen) == len(set(seen)) == 16
        created = []
        for conversation_id, seq in seen:
            status, hist = await bob.api.get(
                f"/api/v1/conversations/{conversation_id}/messages?after={seq - 1}&limit=1"
            )
            assert status == 200, hist
            created.append(hist["messages"][0]["created_at"])
        assert created == sorted(created, reverse=True)

        only = await find(bob, "mango", conversation_id=other, limit=50)
        assert [r["message"]["text"] for r in only["results"]] == [
            f"mango other {i}" for i in reversed(range(5))
        ]
    finally:
        await close_all([alice, bob])


# --- bad input ------------------------------------------------------------------------------


async def test_bad_input_gets_a_clear_error(api):
    (alice,) = await people(api.base_url, 1)
    try:
        cases = [
            ("", {}, "invalid_field", "query.q"),
            ("   ", {}, "invalid_field", "query.q"),
            ("?!…", {}, "invalid_field", "query.q"),
            ("x" * 201, {}, "invalid_field", "query.q"),
            ("ok", {"type": "files"}, "invalid_field", "query.type"),
            ("ok", {"limit": 0}, "invalid_field", "query.limit"),
            ("ok", {"limit": 51}, "invalid_field", "query.limit"),
            ("ok", {"limit": "many"}, "wrong_type", "query.limit"),
            ("ok", {"before": "yesterday"}, "invalid_field", "query.before"),
            ("ok", {"before": "m.x.1.c"}, "invalid_field", "query.before"),
            ("ok", {"type": "people", "before": "m.1.1.c"}, "invalid_field", "query.before"),
            ("ok", {"type": "people", "conversation_id": "c"}, "invalid_field", None),
            ("ok", {"sort": "new"}, "unknown_field", "query.sort"),
        ]
        for q, params, code, field in cases:
            body = await find(alice, q, expect=400, **params)
            assert body["error"]["code"] == code, (q, params, body)
            if field:
                assert body["error"]["details"]["field"] == field, (q, params, body)
            assert body["error"]["message"]
        status, body = await alice.api.get(SEARCH)
        assert status == 400 and body["error"]["code"] == "missing_field"
        status, body = await alice.api.get(f"{SEARCH}?q=hello", token="")
        assert status == 401
        # The longest accepted query and the largest page are fine.
        await find(alice, "y" * 200, limit=50)
    finally:
        await close_all([alice])


# --- people, conversations, apps ------------------------------------------------------------


async def _befriend(a: Person, b: Person) -> None:
    status, body = await a.api.post("/api/v1/contacts/requests", json={"user_id": b.user_id})
    assert status == 201, body
    status, body = await b.api.post(f"/api/v1/contacts/requests/{a.user_id}/accept")
    assert status == 200, body


async def test_people_contacts_first_then_usernames(api):
    me = await person(api.base_url, "zed_searcher")
    friend = await person(api.base_url, "zz_friend")
    stranger = await person(api.base_url, "zara_stranger")
    blocker = await person(api.base_url, "zara_blocker")
    try:
        status, body = await friend.api.patch("/api/v1/me", json={"display_name": "Zara Lí"})
        assert status == 200, body
        await _befriend(me, friend)
        status, _ = await blocker.api.request("PUT", f"/api/v1/contacts/blocks/{me.user_id}")
        assert status in (200, 201, 204)

        body = await find(me, "zara", type="people")
        assert [r["user"]["id"] for r in body["results"]] == [friend.user_id, stranger.user_id]
        assert all(r["type"] == "person" for r in body["results"])
        # A contact is found by a word of their display name, accents folded; strangers only
        # by username.
        assert [r["user"]["id"] for r in (await find(me, "li", type="people"))["results"]] == [
            friend.user_id
        ]
        assert (await find(stranger, "li", type="people"))["results"] == []
        # Paging.
        first = await find(me, "z", type="people", limit=1)
        assert len(first["results"]) == 1 and first["next_before"]
        rest = await find(me, "z", type="people", before=first["next_before"], limit=50)
        ids = [r["user"]["id"] for r in first["results"] + rest["results"]]
        assert ids == [friend.user_id, stranger.user_id]
    finally:
        await close_all([me, friend, stranger, blocker])


async def test_conversations_by_title_and_peer_name(api):
    alice = await person(api.base_url, "alice_conv")
    bob = await person(api.base_url, "bob_conv")
    carol = await person(api.base_url, "carol_conv")
    try:
        trip = await group(alice, [bob], title="Trip to 北京 ✈️")
        await group(bob, [carol], title="Trip without alice")
        dm = await direct(alice, carol)
        body = await find(alice, "trip", type="conversations")
        assert [r["conversation"]["id"] for r in body["results"]] == [trip]
        assert body["results"][0]["type"] == "conversation"
        assert [
            r["conversation"]["id"]
            for r in (await find(alice, "北京", type="conversations"))["results"]
        ] == [trip]
        assert [
            r["conversation"]["id"]
            for r in (await find(alice, "carol", type="conversations"))["results"]
        ] == [dm]
    finally:
        await close_all([alice, bob, carol])


async def test_apps_by_name_and_description(gateway, api):
    from gateway.keys import MINIAPPS

    catalogue = gateway.app[MINIAPPS].catalogue()
    assert catalogue, "the built-in mini-programs are in the catalogue"
    sample = catalogue[0]
    (alice,) = await people(api.base_url, 1)
    try:
        body = await find(alice, sample["name"], type="apps")
        assert {"type": "app", "app": {k: sample[k] for k in ("id", "name", "description")}} in (
            body["results"]
        )
        assert (await find(alice, "qqqzzzxxx", type="apps"))["results"] == []
        word = sample["description"].split()[0]
        ids = [r["app"]["id"] for r in (await find(alice, word, type="apps"))["results"]]
        assert sample["id"] in ids
    finally:
        await close_all([alice])


# --- messages stored before search existed ----------------------------------------------------


async def test_older_messages_without_terms_are_backfilled(gateway, api, aiohttp_server, config):
    from gateway.app import create_app

    alice, bob = await people(api.base_url, 2)
    try:
        cid = await group(alice, [bob])
        old = await alice.send(cid, "an old 古い message about walnuts")
        ctx = gateway.app[MESSAGING]
        # As stored by a version without search: no search_text at all. (Stored again rather
        # than $unset: nx-27017 refuses to $unset a text-indexed field.)
        stored = await ctx.messages.collection.find_one({"_id": old["id"]})
        del stored["search_text"]
        await ctx.messages.collection.delete_one({"_id": old["id"]})
        await ctx.messages.collection.insert_one(stored)
        assert await found_texts(bob, "walnuts") == []

        # A node starting on this database indexes it in the background.
        second = await aiohttp_server(create_app(config))
        client = ApiClient(str(second.make_url("")).rstrip("/"))
        client.token = bob.token
        try:
            for _ in range(200):
                body = await find(client, "古い walnut")
                if body["results"]:
                    break
                await asyncio.sleep(0.05)
            assert [r["message"]["id"] for r in body["results"]] == [old["id"]]
        finally:
            await client.close()
        assert await search_actions.do_backfill(ctx) == 0  # nothing left to do
    finally:
        await close_all([alice, bob])
