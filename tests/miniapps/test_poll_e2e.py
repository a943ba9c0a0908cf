"""The poll mini-program end to end: real gateway, real Socket.IO clients, the app running as a
real sandboxed process through the SDK runtime."""

from __future__ import annotations

import asyncio

from tests.conftest import make_config
from tests.helpers import SocketClient, eventually
from tests.messaging.chat_helpers import close_all, group, people


def cards_of(person, conversation_id) -> list[dict]:
    return [
        d["message"]
        for d in person.received()
        if d["message"]["conversation_id"] == conversation_id and d["message"]["type"] == "card"
    ]


async def latest_card(person, message_id, timeout=10.0) -> dict:
    for _ in range(int(timeout / 0.02)):
        updates = [
            d["message"]
            for name, d in person.socket.events
            if name == "message.updated" and d["message"]["id"] == message_id
        ]
        if updates:
            return max(updates, key=lambda m: m["version"])
        await asyncio.sleep(0.02)
    raise AssertionError("no card update arrived")


async def test_poll_in_a_group_converges_and_survives_restart(aiohttp_server, tmp_path):
    from gateway.app import create_app

    config = make_config(None, "aetherial", tmp_path / "var")
    server = await aiohttp_server(create_app(config))
    port = server.port
    base = str(server.make_url("")).rstrip("/")
    everyone = await people(base, 10)
    owner = everyone[0]
    try:
        cid = await group(owner, everyone[1:], "Lunch crew")
        status, body = await everyone[1].api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "poll"}
        )
        assert status == 403 and body["error"]["code"] == "not_allowed"  # members cannot
        status, body = await owner.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "poll"}
        )
        assert status == 201, body

        ack = await everyone[3].socket.call(
            "message.send",
            {"conversation_id": cid, "client_msg_id": "p1", "text": '/poll "Lunch?" pizza sushi'},
        )
        assert ack == {"ok": True, "routed_to": {"app_id": "poll"}}
        await eventually(lambda: all(cards_of(p, cid) for p in everyone))
        card = cards_of(owner, cid)[0]
        assert card["app_id"] == "poll" and card["sender_id"] == "app:poll"
        assert "Lunch?" in card["card"]["title"] + card["card"].get("text", "")
        votes = [b for b in card["card"]["buttons"] if b["action_id"] != "close"]
        assert len(votes) == 2

        # ten members vote at once, half for each option
        acks = await asyncio.gather(
            *[
                p.socket.call(
                    "miniapp.action",
                    {
                        "conversation_id": cid,
                        "message_id": card["id"],
                        "action_id": votes[i % 2]["action_id"],
                        "value": votes[i % 2].get("value"),
                    },
                )
                for i, p in enumerate(everyone)
            ]
        )
        assert all(a["ok"] for a in acks), acks

        def converged():
            states = []
            for p in everyone:
                seen = [d for name, d in p.socket.events if name == "miniapp.state"]
                if not seen:
                    return False
                states.append(max(seen, key=lambda s: s["version"]))
            versions = {s["version"] for s in states}
            if len(versions) != 1:
                return False
            polls = states[0]["state"]["polls"]
            total = sum(len(poll["votes"]) for poll in polls.values())
            return states[0] if total == 10 else False

        try:
            final = await eventually(converged)
        except AssertionError:
            for p in everyone:
                seen = [d for name, d in p.socket.events if name == "miniapp.state"]
                top_state = max(seen, key=lambda s: s["version"]) if seen else None
                print(
                    "poll state seen by",
                    p.username,
                    len(seen),
                    top_state and top_state["version"],
                    top_state
                    and {k: len(v["votes"]) for k, v in top_state["state"]["polls"].items()},
                    [d for n, d in p.socket.events if n == "miniapp.ephemeral"],
                )
            raise
        poll = next(iter(final["state"]["polls"].values()))
        assert sorted(poll["votes"].values()) == [0] * 5 + [1] * 5
        assert all(v.startswith("u-") for v in poll["votes"])  # per-app ids, never user ids
        assert not {p.user_id for p in everyone} & set(poll["votes"])

        # the app keeps the card in step with the votes: wait until the updates stop, then
        # every member holds the same, latest version of the card
        def versions():
            return [
                max(
                    (
                        d["message"]["version"]
                        for n, d in p.socket.events
                        if n == "message.updated" and d["message"]["id"] == card["id"]
                    ),
                    default=0,
                )
                for p in everyone
            ]

        quiet, last = 0, None
        while quiet < 25:
            await asyncio.sleep(0.02)
            now = versions()
            quiet, last = (quiet + 1, now) if now == last else (0, now)
        assert len(set(last)) == 1 and last[0] > 1
        top = last[0]
        final_card = await latest_card(owner, card["id"])
        counts = [b["label"] for b in final_card["card"]["buttons"] if b["action_id"] != "close"]
        assert all("5" in label for label in counts), counts

        # restart: the poll's state and card are still there, and voting goes on
        await asyncio.gather(*[p.socket.close() for p in everyone])
        await server.close()
        server = await aiohttp_server(create_app(config), port=port)
        for p in everyone[:2]:
            p.socket = SocketClient()
            await p.socket.connect(base, p.token)
        _, history = await owner.api.get(f"/api/v1/conversations/{cid}/messages")
        stored = next(m for m in history["messages"] if m["id"] == card["id"])
        assert stored["version"] == top
        ack = await everyone[1].socket.call(
            "miniapp.action",
            {
                "conversation_id": cid,
                "message_id": card["id"],
                "action_id": votes[0]["action_id"],
                "value": votes[0].get("value"),
            },
        )
        assert ack["ok"], ack
        after = await eventually(
            lambda: [d for n, d in owner.socket.events if n == "miniapp.state"]
        )
        assert after[-1]["version"] > final["version"]
    finally:
        await close_all(everyone)
