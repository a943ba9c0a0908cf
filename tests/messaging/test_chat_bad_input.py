"""Bad input on every chat entry point gets a clean error, writes nothing and tells nobody.

Every client -> server Socket.IO event declared in ``gateway/socket_events.py`` is sent payloads
that are malformed (a missing field, a wrong type, not an object, an unknown field, out of bounds)
or that the domain refuses (too long, empty, not a member, unknown message, bad emoji …). Each
must be acked ``{"ok": false, "error": {"code", "message", "details"?}}`` with its documented
code, leave every chat collection exactly as it was, and reach no socket. A non-member gets the
very same ``not_a_member`` error whether the conversation exists or not. The REST conversation
routes get the same treatment, and the limits (message length, group size, per-user send rate,
edit and recall windows, frame size) are checked with their error codes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.app import create_app
from gateway.keys import CONFIG, DATABASE
from gateway.socket_events import socket_api
from tests.conftest import make_config
from tests.helpers import ApiClient, SocketClient

# Every collection a chat action writes to: a refused request leaves each exactly as it was.
CHAT_COLLECTIONS = (
    "conversations",
    "members",
    "messages",
    "reactions",
    "hidden_messages",
    "direct_pairs",
)
UNKNOWN_ID = "0" * 24  # well formed, never issued (ids are ObjectId hex digits)
NULL = (None,)  # python-socketio sends a tuple as the event's arguments: an explicit null
NOTHING = None  # ... and None as no argument at all


# --- people, a small world, and how to watch it ---------------------------------------------


@dataclass
class Person:
    api: ApiClient
    socket: SocketClient
    user_id: str

    async def call(self, event: str, data: Any = NOTHING) -> Any:
        return await self.socket.call(event, data)

    async def send(self, conversation_id: str, text: str) -> str:
        ack = await self.call(
            "message.send",
            {"conversation_id": conversation_id, "client_msg_id": f"c-{text}", "text": text},
        )
        assert ack["ok"], ack
        return ack["message"]["id"]

    async def close(self) -> None:
        await self.socket.close()
        await self.api.close()


async def join(base_url: str, name: str) -> Person:
    api = ApiClient(base_url)
    tokens = await api.signup(name)
    socket = SocketClient()
    await socket.connect(base_url, tokens["access_token"])
    return Person(api, socket, tokens["user"]["id"])


async def open_direct(a: Person, b: Person) -> str:
    status, body = await a.api.post(
        "/api/v1/conversations", json={"type": "direct", "user_id": b.user_id}
    )
    assert status == 201, body
    return body["conversation"]["id"]


async def create_group(owner: Person, others: list[Person]) -> str:
    status, body = await owner.api.post(
        "/api/v1/conversations",
        json={"type": "group", "title": "Team", "member_ids": [p.user_id for p in others]},
    )
    assert status == 201, body
    return body["conversation"]["id"]


async def snapshot(gateway) -> dict[str, list[dict]]:
    db = gateway.app[DATABASE].db
    found = await asyncio.gather(
        *(db[name].find().sort("_id", 1).to_list(None) for name in CHAT_COLLECTIONS)
    )
    return dict(zip(CHAT_COLLECTIONS, found, strict=True))


def base_url_of(server) -> str:
    return str(server.make_url("")).rstrip("/")


@dataclass
class World:
    """alice and bob share a direct chat (``cid``) and a group; bob and carol share a direct chat
    alice is not in (``foreign``).

    In ``cid``: seq 1 ``mine`` (alice's), seq 2 recalled (alice's), seq 3 ``theirs`` (bob's,
    with alice's 👍). alice has read up to seq 2. The group starts with its system message.
    """

    gateway: Any
    alice: Person
    bob: Person
    carol: Person
    cid: str
    group: str
    foreign: str
    mine: str
    recalled: str
    theirs: str
    system: str
    foreign_msg: str
    max_chars: int
    people: list[Person] = field(default_factory=list)

    def valid(self, event: str) -> dict[str, Any]:
        """A payload alice may send: each bad case changes one thing about it."""
        return {
            "message.send": {
                "conversation_id": self.cid,
                "client_msg_id": "fresh-1",
                "type": "text",
                "text": "x" * self.max_chars,  # the longest accepted
                "reply_to": self.theirs,
                "mentions": [self.bob.user_id],
            },
            "message.edit": {
                "conversation_id": self.cid,
                "message_id": self.mine,
                "text": "y" * self.max_chars,
            },
            "message.recall": {"conversation_id": self.cid, "message_id": self.mine},
            "message.delete": {"conversation_id": self.cid, "message_id": self.theirs},
            "reaction.add": {
                "conversation_id": self.cid,
                "message_id": self.theirs,
                "emoji": "🎉",
            },
            "reaction.remove": {
                "conversation_id": self.cid,
                "message_id": self.theirs,
                "emoji": "👍",
            },
            "conversation.read": {"conversation_id": self.cid, "seq": 3},
            "typing": {"conversation_id": self.cid, "typing": True},
            "sync": {"cursors": {self.cid: 0}},
        }[event]

    def by_name(self, name: str) -> Person:
        return {"alice": self.alice, "bob": self.bob, "carol": self.carol}[name]

    async def quiet(self) -> None:
        """Wait until everything emitted so far has reached every socket, using events that go
        out after it on the same sockets: alice's "stopped typing" to bob, bob's to carol."""
        for who, where, watcher in (
            (self.alice, self.cid, self.bob),
            (self.bob, self.foreign, self.carol),
        ):
            before = len([e for e, _ in watcher.socket.events if e == "typing"])
            ack = await who.call("typing", {"conversation_id": where, "typing": False})
            assert ack == {"ok": True, "sent": True}, ack
            await watcher.socket.wait_for("typing", count=before + 1)

    def forget_events(self) -> None:
        for person in self.people:
            person.socket.events.clear()

    def assert_nobody_heard(self) -> None:
        """After ``quiet()``: the sockets got the two "stopped typing" events and nothing else."""
        chat = [(p, [(e, d) for e, d in p.socket.events if e != "presence"]) for p in self.people]
        expected = {
            self.alice.user_id: [],
            self.bob.user_id: [
                (
                    "typing",
                    {"conversation_id": self.cid, "user_id": self.alice.user_id, "typing": False},
                ),
            ],
            self.carol.user_id: [
                (
                    "typing",
                    {"conversation_id": self.foreign, "user_id": self.bob.user_id, "typing": False},
                ),
            ],
        }
        for person, events in chat:
            assert events == expected[person.user_id], f"unexpected events: {events}"

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.people))


async def build_world(gateway) -> World:
    base = base_url_of(gateway)
    alice, bob, carol = await asyncio.gather(*(join(base, n) for n in ("alice", "bob", "carol")))
    cid, foreign, group = await asyncio.gather(
        open_direct(alice, bob), open_direct(bob, carol), create_group(alice, [bob])
    )
    mine = await alice.send(cid, "mine")
    recalled = await alice.send(cid, "oops")
    ack = await alice.call("message.recall", {"conversation_id": cid, "message_id": recalled})
    assert ack["ok"], ack
    theirs = await bob.send(cid, "theirs")
    ack = await alice.call(
        "reaction.add", {"conversation_id": cid, "message_id": theirs, "emoji": "👍"}
    )
    assert ack["ok"], ack
    foreign_msg = await bob.send(foreign, "just between us")
    status, history = await alice.api.get(f"/api/v1/conversations/{group}/messages")
    assert status == 200 and history["messages"][0]["type"] == "system", history
    world = World(
        gateway=gateway,
        alice=alice,
        bob=bob,
        carol=carol,
        cid=cid,
        group=group,
        foreign=foreign,
        mine=mine,
        recalled=recalled,
        theirs=theirs,
        system=history["messages"][0]["id"],
        foreign_msg=foreign_msg,
        max_chars=gateway.app[CONFIG].message_max_chars,
        people=[alice, bob, carol],
    )
    await world.quiet()
    world.forget_events()
    return world


@pytest.fixture
async def world(gateway):
    w = await build_world(gateway)
    try:
        yield w
    finally:
        await w.close()


# --- the cases ------------------------------------------------------------------------------


@dataclass
class Case:
    label: str
    payload: Any
    code: str
    field: str | None = None  # expected details.field, when the error names one
    who: str = "alice"
    same_as: str | None = None  # this error must equal that case's error, byte for byte
    event: str | None = None  # another event than the one being tested


def changed(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``base`` with fields replaced; a value of ``...`` removes the field."""
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not ...}


WRONG_VALUES: dict[str, list[Any]] = {
    "string": [42, None, ["x"], {"x": "y"}],
    "integer": ["3", 1.5, True, None, [3]],
    "boolean": ["true", 1, None],
    "object": [[], "cursors", None],
    "array": ["x", {"0": "x"}, None],
}


def schema_cases(event: str, valid: dict[str, Any]) -> list[Case]:
    """Malformed payloads derived from the event's declared schema."""
    schema = socket_api.events[event].schema
    cases = [
        Case("no payload at all", NOTHING, "wrong_type", ""),
        Case("an explicit null", NULL, "wrong_type", ""),
        Case("a string", "hello", "wrong_type", ""),
        Case("a list", [valid], "wrong_type", ""),
        Case("a number", 42, "wrong_type", ""),
        Case("an unknown field", {**valid, "extra": 1}, "unknown_field", "extra"),
        Case(
            "a misspelt field", {**valid, "conversationId": "x"}, "unknown_field", "conversationId"
        ),
    ]
    for name in schema.get("required", []):
        cases.append(Case(f"without {name}", changed(valid, **{name: ...}), "missing_field", name))
    for name, spec in schema["properties"].items():
        for value in WRONG_VALUES.get(spec.get("type"), []):
            cases.append(
                Case(f"{name} = {value!r}", changed(valid, **{name: value}), "wrong_type", name)
            )
        if spec.get("minLength", 0) >= 1:
            cases.append(Case(f"empty {name}", changed(valid, **{name: ""}), "invalid_field", name))
        if spec.get("type") == "string" and spec.get("maxLength", 1 << 30) <= 1024:
            too_long = "x" * (spec["maxLength"] + 1)
            cases.append(
                Case(
                    f"{name} past its length",
                    changed(valid, **{name: too_long}),
                    "invalid_field",
                    name,
                )
            )
    return cases


def not_member_cases(valid: dict[str, Any], w: World, **also: Any) -> list[Case]:
    """Unknown and foreign conversations, also with otherwise bad content: one same answer."""
    foreign_ref = {"message_id": w.foreign_msg} if "message_id" in valid else {}
    cases = [
        Case("unknown conversation", changed(valid, conversation_id=UNKNOWN_ID), "not_a_member"),
        Case(
            "foreign conversation",
            changed(valid, conversation_id=w.foreign, **foreign_ref),
            "not_a_member",
            same_as="unknown conversation",
        ),
        Case(
            "foreign conversation, own message id",
            changed(valid, conversation_id=w.foreign),
            "not_a_member",
            same_as="unknown conversation",
        ),
    ]
    for label, bad in also.items():
        cases.append(
            Case(
                f"foreign conversation and {label}",
                changed(valid, conversation_id=w.foreign, **foreign_ref, **bad),
                "not_a_member",
                same_as="unknown conversation",
            )
        )
    return cases


def message_ref_cases(valid: dict[str, Any], w: World) -> list[Case]:
    return [
        Case("unknown message", changed(valid, message_id=UNKNOWN_ID), "message_not_found"),
        Case(
            "a message of another conversation",
            changed(valid, message_id=w.foreign_msg),
            "message_not_found",
        ),
        Case(
            "a message of my other conversation",
            changed(valid, message_id=w.system),
            "message_not_found",
        ),
    ]


def emoji_cases(valid: dict[str, Any]) -> list[Case]:
    return [
        Case(f"emoji {emoji!r}", changed(valid, emoji=emoji), "invalid_emoji", "emoji")
        for emoji in ("thumbsup", "1", "👍 ", " ", "\t", "!" * 17, "👍👍 👍")
    ]


def domain_cases(event: str, w: World) -> list[Case]:
    valid = w.valid(event)
    over = "x" * (w.max_chars + 1)
    if event == "message.send":
        return [
            *not_member_cases(valid, w, huge_text={"text": over}, empty_text={"text": " "}),
            Case("text one past the limit", changed(valid, text=over), "message_too_long", "text"),
            Case(
                "text far past the limit",
                changed(valid, text="x" * 300_000),
                "message_too_long",
                "text",
            ),
            Case(
                "astral characters past the limit",
                changed(valid, text="😀" * (w.max_chars + 1)),
                "message_too_long",
                "text",
            ),
            Case("empty text", changed(valid, text=""), "empty_message", "text"),
            Case(
                "whitespace-only text",
                changed(valid, text=" \n\t\u3000\u00a0 "),
                "empty_message",
                "text",
            ),
            Case("type sticker", changed(valid, type="sticker"), "invalid_field", "type"),
            Case(
                "reply to an unknown message",
                changed(valid, reply_to=UNKNOWN_ID),
                "message_not_found",
                "reply_to",
            ),
            Case(
                "reply to a message of another conversation",
                changed(valid, reply_to=w.foreign_msg),
                "message_not_found",
                "reply_to",
            ),
            Case(
                "mention a non-member",
                changed(valid, mentions=[w.carol.user_id]),
                "invalid_field",
                "mentions",
            ),
            Case(
                "mention an unknown user",
                changed(valid, mentions=[UNKNOWN_ID]),
                "invalid_field",
                "mentions",
            ),
            Case("mention @all in a direct chat", changed(valid, mentions=["all"]), "not_allowed"),
            Case(
                "mention @all as a plain group member",
                changed(valid, conversation_id=w.group, reply_to=..., mentions=["all"]),
                "not_allowed",
                who="bob",
            ),
            Case(
                "51 mentions",
                changed(valid, mentions=[w.bob.user_id] * 51),
                "invalid_field",
                "mentions",
            ),
            Case(
                "101 mentions",
                changed(valid, mentions=[w.bob.user_id] * 101),
                "invalid_field",
                "mentions",
            ),
            Case("an empty mention", changed(valid, mentions=[""]), "invalid_field", "mentions.0"),
            Case(
                "a mention of the wrong type",
                changed(valid, mentions=[7]),
                "wrong_type",
                "mentions.0",
            ),
        ]
    if event == "message.edit":
        return [
            *not_member_cases(valid, w, huge_text={"text": over}),
            *message_ref_cases(valid, w),
            Case("someone else's message", changed(valid, message_id=w.theirs), "not_allowed"),
            Case("a recalled message", changed(valid, message_id=w.recalled), "message_recalled"),
            Case(
                "a system message",
                changed(valid, conversation_id=w.group, message_id=w.system),
                "not_allowed",
            ),
            Case("text one past the limit", changed(valid, text=over), "message_too_long", "text"),
            Case(
                "text far past the limit",
                changed(valid, text="x" * 300_000),
                "message_too_long",
                "text",
            ),
            Case("empty text", changed(valid, text=""), "empty_message", "text"),
            Case("whitespace-only text", changed(valid, text="\n \n"), "empty_message", "text"),
        ]
    if event == "message.recall":
        return [
            *not_member_cases(valid, w),
            *message_ref_cases(valid, w),
            Case(
                "someone else's message in a direct chat",
                changed(valid, message_id=w.theirs),
                "not_allowed",
            ),
            Case(
                "a system message",
                changed(valid, conversation_id=w.group, message_id=w.system),
                "not_allowed",
            ),
        ]
    if event == "message.delete":
        return [*not_member_cases(valid, w), *message_ref_cases(valid, w)]
    if event in {"reaction.add", "reaction.remove"}:
        return [
            *not_member_cases(valid, w, bad_emoji={"emoji": "nope"}),
            *message_ref_cases(valid, w),
            *emoji_cases(valid),
            Case("a recalled message", changed(valid, message_id=w.recalled), "not_allowed"),
            Case(
                "a system message",
                changed(valid, conversation_id=w.group, message_id=w.system),
                "not_allowed",
            ),
        ]
    if event == "conversation.read":
        return [
            *not_member_cases(valid, w, past_the_end={"seq": 10**6}),
            Case("negative seq", changed(valid, seq=-1), "invalid_field", "seq"),
        ]
    if event == "typing":
        return not_member_cases(valid, w)
    if event == "sync":
        cid = w.cid
        return [
            Case("negative cursor", {"cursors": {cid: -1}}, "invalid_field", f"cursors.{cid}"),
            Case("string cursor", {"cursors": {cid: "3"}}, "wrong_type", f"cursors.{cid}"),
            Case("fractional cursor", {"cursors": {cid: 2.5}}, "wrong_type", f"cursors.{cid}"),
            Case("null cursor", {"cursors": {cid: None}}, "wrong_type", f"cursors.{cid}"),
            Case("boolean cursor", {"cursors": {cid: True}}, "wrong_type", f"cursors.{cid}"),
            Case(
                "10001 cursors",
                {"cursors": {f"c{i}": 0 for i in range(10_001)}},
                "invalid_field",
                "cursors",
            ),
        ]
    raise AssertionError(f"no domain cases for {event}")


EVENTS = sorted(socket_api.events)


COVERED_EVENTS = {
    "message.send",
    "message.edit",
    "message.recall",
    "message.delete",
    "reaction.add",
    "reaction.remove",
    "conversation.read",
    "typing",
    "sync",
    # mini-program events: their bad payloads are in tests/miniapps/test_miniapps_bad_input.py
    "miniapp.action",
    "miniapp.consent",
    # wallet events: their bad payloads are in tests/wallet/test_payments.py
    "payment.confirm",
    "payment.cancel",
    # call events: their bad payloads are in tests/calls/test_call_bad_input.py
    "call.start",
    "call.accept",
    "call.decline",
    "call.leave",
    "call.end",
    "call.offer",
    "call.answer",
    "call.ice",
    "call.media_state",
}


def test_every_declared_event_has_bad_input_cases():
    # A new client -> server event needs its bad payloads here (and its section in the docs).
    assert set(EVENTS) == COVERED_EVENTS


def check_error_ack(ack: Any, code: str, field: str | None) -> str | None:
    """What is wrong with ``ack`` as the error it should be, or None."""
    if not isinstance(ack, dict) or set(ack) != {"ok", "error"} or ack["ok"] is not False:
        return f"not an error ack: {str(ack)[:300]}"
    error = ack["error"]
    if not set(error) <= {"code", "message", "details"}:
        return f"unexpected keys in {error}"
    if error["code"] != code:
        return f"code {error['code']!r}, expected {code!r}: {str(error)[:300]}"
    if not isinstance(error["message"], str) or not error["message"]:
        return f"no human message: {error}"
    if field is not None and (error.get("details") or {}).get("field") != field:
        return f"details.field {(error.get('details') or {}).get('field')!r}, expected {field!r}"
    return None


async def run_cases(world: World, event: str, cases: list[Case]) -> None:
    before = await snapshot(world.gateway)
    problems, acks = [], {}
    for case in cases:
        ack = await world.by_name(case.who).call(case.event or event, case.payload)
        acks[case.label] = ack
        problem = check_error_ack(ack, case.code, case.field)
        if problem is None and case.same_as is not None:
            reference = acks[case.same_as]
            if ack["error"] != reference["error"]:
                problem = f"error {ack['error']} differs from {case.same_as!r}: {reference}"
        if problem:
            problems.append(f"{case.event or event} [{case.label}]: {problem}")
        if await snapshot(world.gateway) != before:
            problems.append(f"{case.event or event} [{case.label}]: wrote to the database")
            before = await snapshot(world.gateway)
    assert not problems, "\n".join(problems)
    await world.quiet()
    world.assert_nobody_heard()
    world.forget_events()


# --- Socket.IO events -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "event", [e for e in EVENTS if not e.startswith(("miniapp.", "payment.", "call."))]
)
async def test_bad_payloads_get_an_error_ack_and_change_nothing(world: World, event: str):
    valid = world.valid(event)
    await run_cases(world, event, [*schema_cases(event, valid), *domain_cases(event, world)])
    # The same payload with nothing wrong is accepted: every case failed for its own reason.
    ack = await world.alice.call(event, valid)
    assert ack["ok"] is True, ack


UNKNOWN_EVENTS = [
    "message.sendd",
    "MESSAGE.SEND",
    "message",
    "chat.send",
    "message.send ",
    "x" * 500,
]


async def test_unknown_event_names_get_unknown_event(world: World):
    payload = world.valid("message.send")
    await run_cases(
        world,
        "message.send",
        [Case(repr(name), payload, "unknown_event", event=name) for name in UNKNOWN_EVENTS],
    )


async def test_sync_answers_unknown_and_foreign_conversations_alike(world: World):
    ack = await world.alice.call(
        "sync", {"cursors": {world.cid: 3, world.foreign: 0, UNKNOWN_ID: 0}}
    )
    assert ack["ok"], ack
    assert set(ack["conversations"]) == {world.cid, world.group}
    assert sorted(ack["removed"]) == sorted([world.foreign, UNKNOWN_ID])
    assert ack["new_conversation_ids"] == [world.group]
    assert "just between us" not in str(ack)


async def test_send_to_someone_who_blocked_you_is_refused(world: World):
    status, body = await world.bob.api.request(
        "PUT", f"/api/v1/contacts/blocks/{world.alice.user_id}"
    )
    assert status == 204, body
    await world.quiet()
    world.forget_events()
    await run_cases(
        world,
        "message.send",
        [
            Case(
                "send to a blocker",
                changed(world.valid("message.send"), client_msg_id="b1"),
                "blocked",
            )
        ],
    )


async def test_a_frame_past_the_transport_limit_closes_only_that_socket(world: World):
    """Frames over MAX_BODY_BYTES never reach a handler: the server closes that connection
    before any ack is possible (documented in docs/realtime.md); nothing is written."""
    before = await snapshot(world.gateway)
    limit = world.gateway.app[CONFIG].max_body_bytes
    await world.alice.socket.sio.emit(
        "message.send",
        {"conversation_id": world.cid, "client_msg_id": "big", "text": "x" * (limit + 1)},
    )
    for _ in range(250):
        if not world.alice.socket.sio.connected:
            break
        await asyncio.sleep(0.02)
    assert not world.alice.socket.sio.connected
    assert await snapshot(world.gateway) == before
    ack = await world.bob.call("sync", {"cursors": {world.cid: 3}})
    assert ack["ok"] and ack["conversations"][world.cid]["messages"] == []


# --- limits ---------------------------------------------------------------------------------


async def limited_gateway(aiohttp_server, mongo_url, mongo_db_name, tmp_path, **limits):
    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", **limits)
    return await aiohttp_server(create_app(config))


async def test_send_rate_limit(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    # alice spends exactly 4 chat writes building the world; carol none.
    gateway = await limited_gateway(
        aiohttp_server, mongo_url, mongo_db_name, tmp_path, send_rate_max=4
    )
    world = await build_world(gateway)
    try:
        carol, conversation = world.carol, world.foreign
        # Refused input spends none of the budget.
        for i in range(6):
            ack = await carol.call(
                "message.send",
                {"conversation_id": conversation, "client_msg_id": f"e{i}", "text": " "},
            )
            assert ack["error"]["code"] == "empty_message", ack
        sent = []
        for i in range(4):
            ack = await carol.call(
                "message.send",
                {"conversation_id": conversation, "client_msg_id": f"ok{i}", "text": "hi"},
            )
            assert ack["ok"], ack
            sent.append(ack["message"]["id"])
        await world.quiet()
        world.forget_events()

        over = {"conversation_id": conversation, "client_msg_id": "over", "text": "one more"}
        ref = {"conversation_id": conversation, "message_id": sent[0]}
        await run_cases(
            world, "message.send", [Case("a fifth send", over, "rate_limited", who="carol")]
        )
        # Edits, recalls and reactions share the budget.
        for event, payload in (
            ("message.edit", {**ref, "text": "edited"}),
            ("message.recall", ref),
            ("reaction.add", {**ref, "emoji": "🎉"}),
        ):
            await run_cases(world, event, [Case(event, payload, "rate_limited", who="carol")])
        ack = await carol.call("message.send", over)
        window = gateway.app[CONFIG].send_rate_window
        assert 1 <= ack["error"]["details"]["retry_after"] <= window, ack
        # REST sends are the same writes with the same budget.
        status, body = await carol.api.post(
            f"/api/v1/conversations/{conversation}/messages",
            json={"client_msg_id": "rest", "text": "hi"},
        )
        assert status == 429 and body["error"]["code"] == "rate_limited", body
        db = gateway.app[DATABASE].db
        assert await db.messages.count_documents({"client_msg_id": {"$in": ["over", "rest"]}}) == 0
        # Reading, typing, deleting for oneself and syncing are not limited.
        for event, payload in (
            ("conversation.read", {"conversation_id": conversation, "seq": 5}),
            ("typing", {"conversation_id": conversation, "typing": True}),
            ("message.delete", ref),
            ("sync", {"cursors": {conversation: 0}}),
        ):
            ack = await carol.call(event, payload)
            assert ack["ok"], (event, ack)
        # Everyone has their own budget.
        ack = await world.bob.call(
            "message.send", {"conversation_id": conversation, "client_msg_id": "b", "text": "hi"}
        )
        assert ack["ok"], ack
    finally:
        await world.close()


async def test_edit_and_recall_windows(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    gateway = await limited_gateway(
        aiohttp_server, mongo_url, mongo_db_name, tmp_path, edit_window=0, recall_window=0
    )
    base = base_url_of(gateway)
    alice, bob = [await join(base, name) for name in ("alice", "bob")]
    try:
        cid = await open_direct(alice, bob)
        ref = {"conversation_id": cid, "message_id": await alice.send(cid, "hello")}
        await bob.socket.wait_for("message.new")
        await asyncio.sleep(0.01)  # past a window of 0 seconds
        before = await snapshot(gateway)
        bob.socket.events.clear()
        ack = await alice.call("message.edit", {**ref, "text": "late"})
        assert check_error_ack(ack, "edit_window_passed", None) is None, ack
        ack = await alice.call("message.recall", ref)
        assert check_error_ack(ack, "recall_window_passed", None) is None, ack
        assert await snapshot(gateway) == before
        await alice.call("typing", {"conversation_id": cid, "typing": False})
        await bob.socket.wait_for("typing")
        assert [e for e, _ in bob.socket.events] == ["typing"], bob.socket.events
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_group_size_limit(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    gateway = await limited_gateway(
        aiohttp_server, mongo_url, mongo_db_name, tmp_path, group_max_members=3
    )
    base = base_url_of(gateway)
    alice, bob, carol, dave = [await join(base, n) for n in ("alice", "bob", "carol", "dave")]
    everyone = [alice, bob, carol, dave]
    try:
        before = await snapshot(gateway)
        status, body = await alice.api.post(
            "/api/v1/conversations",
            json={
                "type": "group",
                "title": "Four",
                "member_ids": [bob.user_id, carol.user_id, dave.user_id],
            },
        )
        assert status == 409 and body["error"]["code"] == "group_full", body
        assert body["error"]["details"] == {"limit": 3}
        assert await snapshot(gateway) == before

        # Duplicates and the creator in member_ids do not count twice: three people fit.
        status, body = await alice.api.post(
            "/api/v1/conversations",
            json={
                "type": "group",
                "title": "Three",
                "member_ids": [bob.user_id, bob.user_id, carol.user_id, alice.user_id],
            },
        )
        assert status == 201 and body["conversation"]["member_count"] == 3, body
        gid = body["conversation"]["id"]
        await carol.socket.wait_for("message.new")  # the group_created system message
        before = await snapshot(gateway)
        for person in everyone:
            person.socket.events.clear()

        status, body = await alice.api.post(
            f"/api/v1/conversations/{gid}/members", json={"user_ids": [dave.user_id]}
        )
        assert status == 409 and body["error"]["code"] == "group_full", body
        assert await snapshot(gateway) == before
        # Nobody heard of it: the next thing each member's socket gets is alice's typing.
        await alice.call("typing", {"conversation_id": gid, "typing": False})
        for person in (bob, carol):
            await person.socket.wait_for("typing")
            assert [e for e, _ in person.socket.events] == ["typing"], person.socket.events
        assert dave.socket.events == []
    finally:
        await asyncio.gather(*(p.close() for p in everyone))


# --- REST conversation routes ---------------------------------------------------------------


def fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        return ids[value[1:]]
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


CREATE_CASES = [
    ({}, 400, "missing_field", "type"),
    ({"type": "channel"}, 400, "invalid_field", "type"),
    ({"type": 1}, 400, "invalid_field", "type"),
    ({"type": "direct"}, 400, "missing_field", "user_id"),
    ({"type": "direct", "user_id": 7}, 400, "wrong_type", "user_id"),
    ({"type": "direct", "user_id": None}, 400, "wrong_type", "user_id"),
    ({"type": "direct", "user_id": ""}, 400, "invalid_field", "user_id"),
    ({"type": "direct", "user_id": "$alice"}, 400, "cannot_chat_with_self", None),
    ({"type": "direct", "user_id": UNKNOWN_ID}, 404, "user_not_found", None),
    ({"type": "direct", "user_id": "$bob", "extra": 1}, 400, "unknown_field", "extra"),
    ({"type": "group", "member_ids": ["$bob"]}, 400, "missing_field", "title"),
    ({"type": "group", "title": "T"}, 400, "missing_field", "member_ids"),
    ({"type": "group", "title": " \t ", "member_ids": ["$bob"]}, 400, "invalid_field", "title"),
    ({"type": "group", "title": "x" * 65, "member_ids": ["$bob"]}, 400, "invalid_field", "title"),
    ({"type": "group", "title": 5, "member_ids": ["$bob"]}, 400, "wrong_type", "title"),
    ({"type": "group", "title": "T", "member_ids": "$bob"}, 400, "wrong_type", "member_ids"),
    ({"type": "group", "title": "T", "member_ids": [5]}, 400, "wrong_type", "member_ids.0"),
    ({"type": "group", "title": "T", "member_ids": {"a": 1}}, 400, "wrong_type", "member_ids"),
    (
        {"type": "group", "title": "T", "member_ids": ["$bob", UNKNOWN_ID]},
        404,
        "user_not_found",
        None,
    ),
]


async def test_rest_create_conversation_bad_input(world: World):
    ids = {"alice": world.alice.user_id, "bob": world.bob.user_id}
    before = await snapshot(world.gateway)
    problems = []
    for payload, status, code, field_name in CREATE_CASES:
        got, body = await world.alice.api.post("/api/v1/conversations", json=fill(payload, ids))
        problem = check_error_ack({"ok": False, **(body or {})}, code, field_name)
        if got != status or problem:
            problems.append(f"{payload}: {got} {problem or body}")
    for raw, code in ((b"{nope", "invalid_json"), (b"", "invalid_json"), (b"[]", "wrong_type")):
        got, body = await world.alice.api.post("/api/v1/conversations", data=raw)
        if got != 400 or body["error"]["code"] != code:
            problems.append(f"{raw!r}: {got} {body}")
    got, body = await world.alice.api.post(
        "/api/v1/conversations", json={"type": "direct", "user_id": world.bob.user_id}, token=""
    )
    if got != 401 or body["error"]["code"] != "missing_token":
        problems.append(f"no token: {got} {body}")
    assert not problems, "\n".join(problems)
    assert await snapshot(world.gateway) == before
    await world.quiet()
    world.assert_nobody_heard()


HISTORY_CASES = [
    ("limit=0", "invalid_field", "query.limit"),
    ("limit=101", "invalid_field", "query.limit"),
    ("limit=-5", "invalid_field", "query.limit"),
    ("limit=abc", "wrong_type", "query.limit"),
    ("limit=1.5", "wrong_type", "query.limit"),
    ("limit=", "wrong_type", "query.limit"),
    ("before=abc", "wrong_type", "query.before"),
    ("before=0", "invalid_field", "query.before"),
    ("after=-1", "invalid_field", "query.after"),
    ("after=1e3", "wrong_type", "query.after"),
    ("page=2", "unknown_field", "query.page"),
]


async def test_rest_history_bad_query(world: World):
    problems = []
    for query, code, field_name in HISTORY_CASES:
        got, body = await world.alice.api.get(f"/api/v1/conversations/{world.cid}/messages?{query}")
        problem = check_error_ack({"ok": False, **(body or {})}, code, field_name)
        if got != 400 or problem:
            problems.append(f"{query}: {got} {problem or body}")
    for query, code in (("limit=0", "invalid_field"), ("before=abc", "wrong_type")):
        got, body = await world.alice.api.get(f"/api/v1/conversations?{query}")
        if got != 400 or body["error"]["code"] != code:
            problems.append(f"list {query}: {got} {body}")
    assert not problems, "\n".join(problems)


NON_MEMBER_ROUTES = [
    ("GET", "/api/v1/conversations/{c}", None),
    ("GET", "/api/v1/conversations/{c}/messages", None),
    ("GET", "/api/v1/conversations/{c}/messages?before=2&limit=1", None),
    ("POST", "/api/v1/conversations/{c}/messages", {"client_msg_id": "n", "text": "hi"}),
    ("POST", "/api/v1/conversations/{c}/messages", {"client_msg_id": "n", "text": "x" * 5000}),
    ("PATCH", "/api/v1/conversations/{c}", {"title": "Mine now"}),
    ("PATCH", "/api/v1/conversations/{c}/settings", {"muted": True}),
    ("POST", "/api/v1/conversations/{c}/members", {"user_ids": ["$carol"]}),
    ("POST", "/api/v1/conversations/{c}/leave", None),
    ("DELETE", "/api/v1/conversations/{c}/members/$bob", None),
    ("DELETE", "/api/v1/conversations/{c}/members/$alice", None),
    ("POST", "/api/v1/conversations/{c}/owner", {"user_id": "$alice"}),
    ("GET", "/api/v1/conversations/{c}/messages/1/reads", None),
]


async def test_rest_non_member_learns_nothing(world: World):
    ids = {"alice": world.alice.user_id, "bob": world.bob.user_id, "carol": world.carol.user_id}
    before = await snapshot(world.gateway)
    problems = []
    for method, template, payload in NON_MEMBER_ROUTES:
        answers = []
        for conversation_id in (UNKNOWN_ID, world.foreign):
            path = template.replace("{c}", conversation_id)
            for name, user_id in ids.items():
                path = path.replace(f"${name}", user_id)
            answers.append(await world.alice.api.request(method, path, json=fill(payload, ids)))
        unknown, foreign = answers
        if unknown[0] != 403 or (unknown[1] or {}).get("error", {}).get("code") != "not_a_member":
            problems.append(f"{method} {template} unknown: {unknown}")
        if foreign != unknown:
            problems.append(f"{method} {template}: foreign {foreign} != unknown {unknown}")
    assert not problems, "\n".join(problems)
    assert await snapshot(world.gateway) == before
    await world.quiet()
    world.assert_nobody_heard()


async def test_rest_send_bad_input(world: World):
    path = f"/api/v1/conversations/{world.cid}/messages"
    cases = [
        ({"client_msg_id": "r", "text": "x" * (world.max_chars + 1)}, "message_too_long"),
        ({"client_msg_id": "r", "text": "  "}, "empty_message"),
        ({"text": "hi"}, "missing_field"),
        ({"client_msg_id": "r"}, "missing_field"),
        ({"client_msg_id": "r", "text": 5}, "wrong_type"),
        ({"client_msg_id": "r", "text": "hi", "conversation_id": world.cid}, "unknown_field"),
        ({"client_msg_id": "r", "text": "hi", "reply_to": world.foreign_msg}, "message_not_found"),
    ]
    before = await snapshot(world.gateway)
    problems = []
    for payload, code in cases:
        status, body = await world.alice.api.post(path, json=payload)
        if status not in (400, 403, 404) or body["error"]["code"] != code:
            problems.append(f"{payload}: {status} {body}")
    assert not problems, "\n".join(problems)
    assert await snapshot(world.gateway) == before
    await world.quiet()
    world.assert_nobody_heard()


# --- found by these tests: the server answers internal_error (or leaks a float) -------------


LONE_SURROGATE = "a\ud800b"  # valid JSON ("a\\ud800b"), not valid Unicode: cannot be stored


SURROGATE_CASES = [
    ("message.send", {"text": LONE_SURROGATE}, "text"),
    ("message.send", {"client_msg_id": LONE_SURROGATE}, "client_msg_id"),
    ("message.send", {"mentions": [LONE_SURROGATE]}, None),
    ("message.edit", {"text": LONE_SURROGATE}, "text"),
    ("reaction.add", {"emoji": "\ud83d"}, "emoji"),
    ("typing", {"conversation_id": LONE_SURROGATE}, "conversation_id"),
]


async def test_lone_surrogates_get_a_clean_error(world: World):
    cases = [
        Case(
            f"{name} with a lone surrogate",
            changed(world.valid(event), **change),
            "invalid_field",
            name,
            event=event,
        )
        for event, change, name in SURROGATE_CASES
    ]
    await run_cases(world, "message.send", cases)


async def test_one_bad_message_does_not_fail_other_senders(world: World):
    """Sends to one conversation are written in batches; a message that cannot be stored must
    fail alone, not take the other people's messages of its batch down with it."""
    cid = world.cid

    async def bob_sends(i: int) -> Any:
        return await world.bob.call(
            "message.send", {"conversation_id": cid, "client_msg_id": f"g{i}", "text": f"g{i}"}
        )

    bad = {"conversation_id": cid, "client_msg_id": "bad", "text": LONE_SURROGATE}
    results = await asyncio.gather(
        bob_sends(0),
        bob_sends(1),
        world.alice.call("message.send", bad),
        bob_sends(2),
        bob_sends(3),
    )
    assert [r["ok"] for r in results] == [True, True, False, True, True], results
    assert results[2]["error"]["code"] != "internal_error", results[2]


HUGE_INTEGER_PATHS = [
    "/api/v1/conversations/{c}/messages?before=100000000000000000000",
    "/api/v1/conversations/{c}/messages?after=9223372036854775808",
    "/api/v1/conversations?before=100000000000000000000",
    "/api/v1/conversations/{c}/messages/100000000000000000000/reads",
]


async def test_rest_values_the_database_cannot_store_get_a_clean_error(world: World):
    """Lone surrogates and integers past 64 bits pass JSON parsing but not BSON encoding."""
    before = await snapshot(world.gateway)
    problems = []
    for path, payload in (
        ("/api/v1/conversations", {"type": "direct", "user_id": LONE_SURROGATE}),
        (f"/api/v1/conversations/{world.cid}/messages", {"client_msg_id": "s", "text": "\udfff"}),
    ):
        status, body = await world.alice.api.post(path, json=payload)
        if status != 400 or body["error"]["code"] != "invalid_field":
            problems.append(f"POST {path} {payload!r}: {status} {body}")
    for path in HUGE_INTEGER_PATHS:
        status, body = await world.alice.api.get(path.replace("{c}", world.cid))
        if status != 400 or body["error"]["code"] != "invalid_field":
            problems.append(f"GET {path}: {status} {body}")
    assert not problems, "\n".join(problems)
    assert await snapshot(world.gateway) == before


async def test_read_position_stays_an_integer(world: World):
    """JSON Schema counts 2.0 as an integer; it must not be stored or echoed as a float."""
    ack = await world.alice.call("conversation.read", {"conversation_id": world.cid, "seq": 3.0})
    if ack["ok"]:
        assert type(ack["last_read_seq"]) is int and type(ack["unread_count"]) is int, ack
    else:
        assert ack["error"]["code"] == "wrong_type", ack
    db = world.gateway.app[DATABASE].db
    member = await db.members.find_one({"_id": f"{world.cid}|{world.alice.user_id}"})
    assert type(member["last_read_seq"]) is int, member
    _, body = await world.alice.api.get("/api/v1/conversations")
    for view in body["conversations"]:
        assert type(view["unread_count"]) is int and type(view["last_read_seq"]) is int, view
