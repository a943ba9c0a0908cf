"""Streaming messages through the platform: two real gateway nodes sharing MongoDB and Redis,
the ``streamer`` test app in a real sandboxed process on each, real Socket.IO clients on both
nodes. A stream started and appended quickly converges to its final text for every member on
both nodes, with ``message.stream`` events at most one per 300 ms (counted over the run), never
the same text twice; a device connecting mid-stream reads the current text (history, sync) and
then gets the rest; after the stop history, sync and search hold the final text only; the stop
is always delivered — with appends still buffered, from the other node, by the idle sweep, after
a recall; appends through both nodes are all kept; bad input is refused with its code and
changes nothing. The ``ai`` runner's interface (``host.streams``) is exercised here too."""

from __future__ import annotations

import asyncio
import itertools
import time
from urllib.parse import urlencode

import pytest

from gateway.keys import MINIAPPS
from miniapps.host.registry import discover
from miniapps.host.store.message_streams import COLLECTION as STREAMS
from miniapps.host.streams import FLUSH_INTERVAL
from sdk._capability_services import STREAM_TEXT_MAX
from storage.mongo import now_ms
from tests.conftest import base_url, node_configs, start_nodes
from tests.helpers import eventually
from tests.messaging.chat_helpers import Person, close_all, group, person
from tests.miniapps.conftest import APPS_DIR
from tests.miniapps.test_capabilities import _world_readable

pytestmark = pytest.mark.timeout(120)

APP = "streamer"


@pytest.fixture
async def world(aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path):
    """(hosts, ann, bea, cat, cid): two nodes; ann on node A, bea and cat on node B, in a
    group that has the streamer app (ann's commands run it on node A)."""
    configs = node_configs(mongo_url, mongo_db_name, tmp_path, redis_url)
    servers = await start_nodes(aiohttp_server, configs)
    _world_readable(APPS_DIR)
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    for server in servers:
        server.app[MINIAPPS].apps.update(apps)
    urls = [base_url(server) for server in servers]
    ann = await person(urls[0])
    bea, cat = await person(urls[1]), await person(urls[1])
    try:
        cid = await group(ann, [bea, cat], "Streams")
        status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
        assert status == 201, body
        yield [server.app[MINIAPPS] for server in servers], ann, bea, cat, cid
    finally:
        await close_all([ann, bea, cat])


def answers(who: Person) -> list[str]:
    return [
        d["text"]
        for name, d in who.socket.events
        if name == "miniapp.ephemeral" and d.get("app_id") == APP and "text" in d
    ]


async def run(who: Person, cid: str, text: str) -> str:
    """``who`` runs ``/stream …``; the app's private answer without its ``streamer: ``."""
    before = len(answers(who))
    ack = await who.socket.call(
        "message.send",
        {"conversation_id": cid, "client_msg_id": f"c{time.monotonic_ns()}", "text": text},
        timeout=10,
    )
    assert ack == {"ok": True, "routed_to": {"app_id": APP}}, ack
    (answer,) = (await eventually(lambda: answers(who)[before:], what=f"the answer to {text}"))[:1]
    return answer.removeprefix("streamer: ")


async def start(who: Person, cid: str, text: str = "") -> str:
    answer = await run(who, cid, f"/stream start {text}".rstrip())
    assert answer.startswith("started "), answer
    return answer.removeprefix("started ")


def streamed(who: Person, message_id: str) -> list[dict]:
    return [d for d in who.received("message.stream") if d["message_id"] == message_id]


def updates(who: Person, message_id: str) -> list[dict]:
    return [
        d["message"] for d in who.received("message.updated") if d["message"]["id"] == message_id
    ]


def posted(who: Person, message_id: str) -> dict:
    (message,) = [d["message"] for d in who.received() if d["message"]["id"] == message_id]
    return message


async def final(who: Person, message_id: str) -> dict:
    """The stop's ``message.updated`` as ``who`` received it (exactly one)."""
    done = await eventually(
        lambda: [m for m in updates(who, message_id) if m.get("streaming") is False],
        what="the final message",
    )
    assert len(done) == 1, done
    return done[0]


def shown_text(who: Person, message_id: str) -> str:
    """What a client applying the events by ``version`` shows now."""
    copies = [posted(who, message_id)]
    copies += [{"text": d["text"], "version": d["version"]} for d in streamed(who, message_id)]
    copies += updates(who, message_id)
    return max(copies, key=lambda c: c["version"])["text"]


def check_stream_events(events: list[dict], final_text: str) -> None:
    """Each member's ``message.stream`` events: seq and version growing, the text growing,
    each a prefix of the final text, never the same text twice."""
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    versions = [e["version"] for e in events]
    assert versions == sorted(versions) and len(set(versions)) == len(versions), versions
    texts = [e["text"] for e in events]
    assert len(set(texts)) == len(texts), "a text was sent twice"
    for shorter, longer in itertools.pairwise(texts):
        assert longer.startswith(shorter) and len(longer) > len(shorter)
    assert all(final_text.startswith(t) for t in texts)


async def history(who: Person, cid: str) -> list[dict]:
    status, body = await who.api.get(f"/api/v1/conversations/{cid}/messages")
    assert status == 200, body
    return body["messages"]


async def search(who: Person, q: str) -> list[str]:
    status, body = await who.api.get(f"/api/v1/search?{urlencode({'q': q, 'type': 'messages'})}")
    assert status == 200, body
    return [hit["message"]["id"] for hit in body["results"] if hit["type"] == "message"]


@pytest.mark.xdist_group("heavy")  # two nodes, a sandboxed app each
async def test_every_member_on_both_nodes_converges_throttled(world):
    _hosts, ann, bea, cat, cid = world
    count, gap_ms = 40, 30
    expected = "".join(f"w{i} " for i in range(count))
    began = time.monotonic()
    answer = await run(ann, cid, f"/stream whole {count} {gap_ms} w")
    assert answer == f"stopped {expected}"
    finals: dict[str, dict] = {}
    message_id = next(
        d["message"]["id"]
        for d in ann.received()
        if d["message"]["sender_id"] == f"app:{APP}" and d["message"].get("streaming")
    )
    for who in (ann, bea, cat):
        finals[who.username] = await final(who, message_id)
    elapsed = time.monotonic() - began
    for who in (ann, bea, cat):
        first = posted(who, message_id)
        assert first["streaming"] is True and first["type"] == "text" and first["text"] == ""
        done = finals[who.username]
        assert done["text"] == expected and done["streaming"] is False
        events = streamed(who, message_id)
        check_stream_events(events, expected)
        # At most one per 300 ms: every event was sent between the command and the stop.
        assert 1 <= len(events) <= elapsed / FLUSH_INTERVAL + 1, (len(events), elapsed)
        assert shown_text(who, message_id) == expected
    # Every member got the same events (node B's through Redis).
    assert [e["text"] for e in streamed(bea, message_id)] == [
        e["text"] for e in streamed(ann, message_id)
    ]
    print(
        f"\n{count} appends over {count * gap_ms} ms: {len(streamed(ann, message_id))} "
        f"message.stream events in {elapsed:.2f} s "
        f"({len(streamed(ann, message_id)) / elapsed:.2f}/s)"
    )


async def test_a_device_connecting_mid_stream_reads_the_text_then_gets_the_rest(world):
    _hosts, ann, bea, cat, cid = world
    message_id = await start(ann, cid, "Hello")
    assert await run(ann, cid, f"/stream append {message_id} world") == "appended"
    await eventually(
        lambda: any(e["text"] == "Helloworld" for e in streamed(bea, message_id)),
        what="the text so far on node B",
    )
    # Cat's other device, connecting now (node B): history and sync give the current text.
    (kept,) = [m for m in await history(cat, cid) if m["id"] == message_id]
    assert kept["text"] == "Helloworld" and kept["streaming"] is True
    device = await cat.connect_device()
    try:
        seq = kept["seq"]
        answer = await device.call("sync", {"cursors": {cid: seq - 1}})
        (fresh,) = [m for m in answer["conversations"][cid]["messages"] if m["id"] == message_id]
        assert fresh["text"] == "Helloworld" and fresh["streaming"] is True
        # A device that had the message (its cursor past it) gets it as a change.
        answer = await device.call("sync", {"cursors": {cid: seq}})
        (changed,) = answer["conversations"][cid]["updated"]
        assert changed["id"] == message_id and changed["text"] == "Helloworld"

        assert await run(ann, cid, f"/stream append {message_id} again") == "appended"
        await eventually(
            lambda: [
                d
                for n, d in device.events
                if n == "message.stream" and d["text"] == "Helloworldagain"
            ],
            what="the rest on the new device",
        )
        assert await run(ann, cid, f"/stream stop {message_id}") == "stopped Helloworldagain"
        done = await eventually(
            lambda: [
                d["message"]
                for n, d in device.events
                if n == "message.updated" and d["message"]["id"] == message_id
            ],
            what="the stop on the new device",
        )
        assert done[-1]["text"] == "Helloworldagain" and done[-1]["streaming"] is False
        assert done[-1]["version"] > changed["version"]
    finally:
        await device.close()


async def test_history_sync_and_search_hold_the_final_text_only(world):
    _hosts, ann, bea, cat, cid = world
    message_id = await start(ann, cid, "draftword")
    assert await run(ann, cid, f"/stream append {message_id} moredraft") == "appended"
    await eventually(lambda: streamed(cat, message_id), what="a write")
    assert await search(bea, "draftword") == []  # not indexed while it streams
    (kept,) = [m for m in await history(bea, cid) if m["id"] == message_id]
    status, body = await bea.api.get("/api/v1/conversations")
    assert status == 200, body
    assert await run(ann, cid, f"/stream stop {message_id} Finalword answer") == (
        "stopped Finalword answer"
    )
    await final(bea, message_id)
    (done,) = [m for m in await history(bea, cid) if m["id"] == message_id]
    assert done["text"] == "Finalword answer" and done["streaming"] is False
    answer = await bea.socket.call("sync", {"cursors": {cid: kept["seq"] - 1}})
    (synced,) = answer["conversations"][cid]["messages"]
    assert synced["text"] == "Finalword answer" and synced["streaming"] is False
    answer = await bea.socket.call("sync", {"cursors": {cid: kept["seq"]}})
    assert [(m["id"], m["text"]) for m in answer["conversations"][cid]["updated"]] == [
        (message_id, "Finalword answer")
    ]
    assert await search(bea, "finalword") == [message_id]
    assert await search(bea, "draftword") == [] and await search(bea, "moredraft") == []
    # The conversation list shows the final text, not the empty start.
    status, body = await bea.api.get("/api/v1/conversations")
    assert status == 200, body
    (conversation,) = [c for c in body["conversations"] if c["id"] == cid]
    assert conversation["last_message"]["id"] == message_id
    assert conversation["last_message"]["text"] == "Finalword answer"


async def test_the_stop_is_always_delivered(world):
    (host_a, host_b), ann, bea, cat, cid = world
    # Appends still buffered when the stop comes (no gap): they are in the final text.
    answer = await run(ann, cid, "/stream whole 30 0 q")
    expected = "".join(f"q{i} " for i in range(30))
    assert answer == f"stopped {expected}"
    message_id = posted_stream(ann)
    for who in (ann, bea, cat):
        assert (await final(who, message_id))["text"] == expected

    # Stopped from the other node while this one holds appends: node A's runner hears it.
    message_id = await start(ann, cid, "Runner")
    heard: list[str] = []
    host_a.streams.on_stop(message_id, heard.append)
    await host_a.streams.append(message_id, " one")
    await host_a.streams.append(message_id, " two")
    assert await host_b.streams.stop(message_id) is True
    for who in (ann, bea, cat):
        done = await final(who, message_id)
        assert done["text"].startswith("Runner") and done["streaming"] is False
    await eventually(lambda: heard == [message_id], what="node A hears the stop")
    assert await host_a.streams.is_stopped(message_id) and await host_b.streams.is_stopped(
        message_id
    )
    with pytest.raises(Exception) as refused:
        await host_a.streams.append(message_id, " three")
    assert refused.value.code == "not_streaming"
    assert await host_a.streams.stop(message_id) is False
    assert await run(ann, cid, f"/stream stop {message_id}") == "error not_streaming"

    # Left idle for 10 minutes: the sweep (any node) stops it.
    message_id = await start(ann, cid, "Idle")
    db = host_b.messaging.db
    assert await host_b.streams.stop_idle() == 0  # just started: not idle
    await db[STREAMS].update_one({"_id": message_id}, {"$set": {"touched_at": now_ms() - 601_000}})
    assert await host_b.streams.stop_idle() == 1
    for who in (ann, bea, cat):
        assert (await final(who, message_id))["text"] == "Idle"
    assert await run(ann, cid, f"/stream append {message_id} late") == "error not_streaming"

    # Recalled by the group's owner while it streams: it stops, blank.
    message_id = await start(ann, cid, "Oops")
    recalled = await ann.socket.call(
        "message.recall", {"conversation_id": cid, "message_id": message_id}
    )
    assert recalled["ok"], recalled
    assert await run(ann, cid, f"/stream append {message_id} more") in (
        "appended",  # taken before its write found it recalled
        "error not_streaming",
    )
    done = await final(bea, message_id)
    assert done["recalled"] and done["text"] == ""
    assert await host_a.streams.is_stopped(message_id)
    assert await run(ann, cid, f"/stream append {message_id} more") == "error not_streaming"
    # … also when the next write comes through a node that never held it.
    message_id = await start(ann, cid, "Oops again")
    recalled = await ann.socket.call(
        "message.recall", {"conversation_id": cid, "message_id": message_id}
    )
    assert recalled["ok"], recalled
    with pytest.raises(Exception) as refused:
        await host_b.streams.append(message_id, " more")
    assert refused.value.code == "not_streaming"
    done = await final(cat, message_id)
    assert done["recalled"] and done["text"] == ""
    assert await db[STREAMS].count_documents({}) == 0  # no stream left open


def posted_stream(who: Person) -> str:
    """The id of the latest streaming message ``who`` saw posted."""
    return [
        d["message"]["id"]
        for d in who.received()
        if d["message"]["sender_id"] == f"app:{APP}" and "streaming" in d["message"]
    ][-1]


async def test_appends_through_both_nodes_are_all_kept(world):
    (host_a, host_b), ann, bea, cat, cid = world
    message_id = await start(ann, cid)
    pieces_a = [f"a{i} " for i in range(25)]
    pieces_b = [f"b{i} " for i in range(25)]

    async def feed(host, pieces):
        for piece in pieces:
            await host.streams.append(message_id, piece)
            await asyncio.sleep(0.01)

    await asyncio.gather(feed(host_a, pieces_a), feed(host_b, pieces_b))
    # Each node writes what it holds; then the stop (node A's pending included).
    await eventually(
        lambda: (
            any(all(p in e["text"] for p in pieces_a + pieces_b) for e in streamed(bea, message_id))
            or None
        ),
        what="every piece written",
        timeout=10,
    )
    assert await host_a.streams.stop(message_id) is True
    done = await final(cat, message_id)
    text = done["text"]
    assert sorted(text.split()) == sorted(p.strip() for p in pieces_a + pieces_b), text
    # Each node's pieces in the order it appended them.
    assert [t for t in text.split() if t.startswith("a")] == [p.strip() for p in pieces_a]
    assert [t for t in text.split() if t.startswith("b")] == [p.strip() for p in pieces_b]


async def test_bad_input_is_refused_and_changes_nothing(world):
    (host_a, _host_b), ann, bea, _cat, cid = world
    message_id = await start(ann, cid, "Keep")
    await asyncio.sleep(FLUSH_INTERVAL)
    seen = len(bea.socket.events)
    # Not a stream of this app here: an unknown id, another chat's stream, another app's.
    assert await run(ann, cid, "/stream append m-404 x") == "error not_found"
    assert await run(ann, cid, "/stream stop m-404") == "error not_found"
    other = await group(ann, [bea], "Elsewhere")
    status, body = await ann.api.post(f"/api/v1/conversations/{other}/apps", json={"app_id": APP})
    assert status == 201, body
    assert await run(ann, other, f"/stream append {message_id} x") == "error not_found"
    assert await run(ann, other, f"/stream stop {message_id}") == "error not_found"
    with pytest.raises(Exception) as refused:
        await host_a.streams.append_as("contract", cid, message_id, "x")
    assert refused.value.code == "not_found"

    # Too long: at the start, an append past the limit in all, a final text.
    assert await run(ann, cid, f"/stream burst {message_id} 1 0 {'x' * 3000}") == "burst done"
    long_piece = "y" * (STREAM_TEXT_MAX - 3000)
    with pytest.raises(Exception) as refused:
        await host_a.streams.append_as(APP, cid, message_id, long_piece)
    assert refused.value.code == "text_too_long"
    with pytest.raises(Exception) as refused:
        await host_a.streams.stop_as(APP, cid, message_id, "z" * (STREAM_TEXT_MAX + 1))
    assert refused.value.code == "text_too_long"
    with pytest.raises(Exception) as refused:
        await host_a.streams.start_stream(APP, cid, "z" * (STREAM_TEXT_MAX + 1))
    assert refused.value.code == "text_too_long"

    # An empty append is not a call the contract accepts.
    app_user = await host_a.identity.app_user(APP, ann.user_id)
    call_id = await host_a.calls.open(APP, ann.user_id, app_user, cid, 0, remote=False)
    try:
        with pytest.raises(Exception) as refused:
            await host_a.serve(
                APP,
                "messages.stream_append",
                {"call_id": call_id, "message_id": message_id, "text": ""},
            )
        assert refused.value.code == "invalid_params"
    finally:
        await host_a.calls.close(call_id, remote=False)

    # Nothing changed: the text is what it was (the one good burst aside), no message posted.
    final_text = "Keep" + "x" * 3000 + "0 "
    await eventually(lambda: shown_text(bea, message_id) == final_text, what="the good burst")
    assert [
        d
        for n, d in bea.socket.events[seen:]
        if n == "message.new" and d["message"]["conversation_id"] == cid
    ] == []
    assert await run(ann, cid, f"/stream stop {message_id}") == f"stopped {final_text}"[:4000]
    assert await run(ann, cid, f"/stream stop {message_id}") == "error not_streaming"
    assert await run(ann, cid, f"/stream append {message_id} x") == "error not_streaming"
    assert (await final(bea, message_id))["text"] == final_text


async def test_time_to_first_visible_text(world):
    """Measured, not asserted on: from the runner's first ``append`` on node A to the
    ``message.stream`` reaching a member on node B (one write, then Redis), and from ``stop``
    to the final ``message.updated`` there."""
    (host_a, _host_b), _ann, bea, _cat, cid = world
    loop = asyncio.get_running_loop()

    async def arrival(predicate) -> float:
        while not predicate():
            await asyncio.sleep(0.001)
        return loop.time()

    first, stops = [], []
    for _ in range(8):
        message_id = await host_a.streams.start_stream(APP, cid)
        began = loop.time()
        await host_a.streams.append(message_id, "Hi")
        seen = await asyncio.wait_for(arrival(lambda m=message_id: streamed(bea, m)), 10)
        first.append(seen - began)
        began = loop.time()
        assert await host_a.streams.stop(message_id)
        done = await asyncio.wait_for(
            arrival(lambda m=message_id: [u for u in updates(bea, m) if not u["streaming"]]), 10
        )
        stops.append(done - began)
        assert shown_text(bea, message_id) == "Hi"
    first.sort()
    stops.sort()
    print(
        f"\nfirst visible text (append on A → message.stream on B): median "
        f"{first[len(first) // 2] * 1000:.1f} ms, max {first[-1] * 1000:.1f} ms; stop → final "
        f"message.updated: median {stops[len(stops) // 2] * 1000:.1f} ms"
    )
