"""The simulator applies the host's rules: permissions, consent, membership, versions, storage."""

from __future__ import annotations

import asyncio

import pytest

from sdk import (
    App,
    Conflict,
    InvalidParams,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    Reply,
    ScopeDenied,
)
from sdk.errors import SignatureError
from sdk.manifest import capabilities
from sdk.simulator import AppCallError, HostRefused, Simulator

MANIFEST = {
    "id": "probe",
    "name": "Probe",
    "version": "1.0.0",
    # a probe app that may call every capability
    "permissions": capabilities(),
    "commands": [{"name": "probe", "description": "run a probe"}],
    "events": {"emits": ["probe.done"], "accepts": ["shop.order_paid", "ai.completed"]},
    "http": {"allowed_domains": ["api.example.com"]},
}


def make(steps, *, manifest=None, **kwargs):
    """A simulator for an app whose /probe runs ``steps(ctx)`` and records what it returned or
    raised in ``outcomes``."""
    app = App("probe")
    outcomes = []

    @app.command("probe")
    async def probe(ctx):
        try:
            outcomes.append(await steps(ctx))
        except Exception as exc:
            outcomes.append(exc)

    @app.action("ok")
    async def ok(ctx):
        return Reply(ephemeral=f"pressed {ctx.value}")

    @app.event("shop.order_paid")
    async def paid(ctx):
        await ctx.emit("probe.done", {"order": ctx.payload["order"]})

    sim = Simulator(app, manifest=manifest or MANIFEST, **kwargs)
    alice, bob = sim.user("alice"), sim.user("bob")
    chat = sim.conversation(members=[alice, bob])
    return sim, alice, bob, chat, outcomes


async def run(steps, **kwargs):
    sim, alice, _bob, chat, outcomes = make(steps, **kwargs)
    await sim.command(alice, chat, "/probe")
    return outcomes[-1], sim, chat


async def test_a_permission_missing_from_the_manifest():
    manifest = {**MANIFEST, "permissions": ["messages.send_card"]}
    outcome, sim, _ = await run(lambda ctx: ctx.send_text("hi"), manifest=manifest)
    assert isinstance(outcome, PermissionDenied) and outcome.code == "permission_denied"
    assert sim.calls[-1] == {
        "method": "messages.send_text",
        "ok": False,
        "error": "permission_denied",
    }


async def test_a_reply_needs_the_permissions_of_what_it_does():
    app = App("probe")

    @app.command("probe")
    async def probe(ctx):
        return Reply(text="hello")

    sim = Simulator(app, manifest={**MANIFEST, "permissions": []})
    alice = sim.user("alice")
    chat = sim.conversation(members=[alice])
    with pytest.raises(PermissionDenied):
        await sim.command(alice, chat, "/probe")


async def test_a_refused_scope_is_scope_denied_and_granted_gives_the_profile():
    outcome, _, _ = await run(lambda ctx: ctx.get_profile(), consent={"users.profile": False})
    assert isinstance(outcome, ScopeDenied) and outcome.code == "scope_denied"
    sim, alice, _, chat, outcomes = make(lambda ctx: ctx.get_profile())
    await sim.command(alice, chat, "/probe")
    assert outcomes[-1] == {"id": alice.id, "display_name": "Alice", "avatar_url": None}
    sim.set_consent(alice, "users.profile", False)  # revoked
    await sim.command(alice, chat, "/probe")
    assert isinstance(outcomes[-1], ScopeDenied)


async def test_a_stale_version_is_a_conflict():
    async def steps(ctx):
        state = await ctx.get_group_state()
        assert (state.version, state.state) == (0, {})
        version = await ctx.set_group_state({"n": 1}, expected_version=0)
        assert version == 1
        return await ctx.set_group_state({"n": 2}, expected_version=0)

    outcome, sim, chat = await run(steps)
    assert isinstance(outcome, Conflict)
    assert sim.group_state(chat) == {"n": 1} and sim.group_state_version(chat) == 1


async def test_group_state_is_limited_to_64_kib():
    outcome, _, _ = await run(lambda ctx: ctx.set_group_state({"x": "a" * 70_000}, 0))
    assert isinstance(outcome, QuotaExceeded)


async def test_a_non_member_cannot_command_or_press():
    sim, alice, bob, chat, _ = make(
        lambda ctx: ctx.send_card(
            {"title": "t", "buttons": [{"action_id": "ok", "label": "OK", "value": "v"}]}
        )
    )
    await sim.command(alice, chat, "/probe")
    card_id = sim.messages(chat)[0]["id"]
    mallory = sim.user("mallory")
    with pytest.raises(HostRefused) as refused:
        await sim.press(mallory, card_id, "ok")
    assert refused.value.code == "not_member"
    with pytest.raises(HostRefused, match="not_member"):
        await sim.command(mallory, chat, "/probe")
    await sim.press(bob, card_id, "ok")
    assert sim.ephemeral(bob)[-1]["text"] == "pressed v"
    with pytest.raises(HostRefused, match="no_such_button"):
        await sim.press(bob, card_id, "missing")
    with pytest.raises(HostRefused, match="message_not_found"):
        await sim.press(bob, "m-404", "ok")


async def test_commands_are_parsed_like_the_host():
    sim, alice, _, chat, outcomes = make(lambda ctx: asyncio.sleep(0, (ctx.args, ctx.text)))
    await sim.command(alice, chat, '/PROBE@probe "two words" x')
    assert outcomes[-1] == (["two words", "x"], '"two words" x')
    await sim.command(alice, chat, '/probe "unbalanced x')
    assert outcomes[-1] == (['"unbalanced', "x"], '"unbalanced x')
    with pytest.raises(HostRefused, match="unknown_command"):
        await sim.command(alice, chat, "/nope")
    with pytest.raises(HostRefused, match="not_a_command"):
        await sim.command(alice, chat, "probe")


async def test_storage_round_trip_and_filters():
    async def steps(ctx):
        for name, age in (("ann", 31), ("bo", 17), ("cy", 45)):
            await ctx.storage_put("people", name, {"name": name, "age": age, "tags": ["x"]})
        await ctx.storage_delete("people", "cy")
        adults = await ctx.storage_find("people", {"age": {"$gte": 18}})
        either = await ctx.storage_find("people", {"$or": [{"name": "bo"}, {"age": {"$gt": 40}}]})
        tagged = await ctx.storage_find("people", {"tags": "x", "age": {"$not": {"$lt": 20}}})
        return (
            adults,
            either,
            tagged,
            await ctx.storage_get("people", "ann"),
            await ctx.storage_get("people", "cy"),
        )

    (adults, either, tagged, ann, cy), sim, _ = await run(steps)
    assert [item["key"] for item in adults] == ["ann"]
    assert [item["key"] for item in either] == ["bo"]
    assert [item["key"] for item in tagged] == ["ann"]
    assert ann["age"] == 31 and cy is None
    assert set(sim.storage("people")) == {"ann", "bo"}


@pytest.mark.parametrize(
    "query",
    [
        {"$where": "this.age > 1"},
        {"age": {"$function": {}}},
        {"$expr": {"$gt": ["$age", 1]}},
        {"age": {"$regex": ".*"}},
        {"$or": [{"$accumulator": {}}]},
        {"$nor": [{"a": 1}]},
    ],
)
async def test_storage_filters_outside_the_safe_subset_are_refused(query):
    outcome, _, _ = await run(lambda ctx: ctx.storage_find("people", query))
    assert isinstance(outcome, InvalidParams)
    assert "is not allowed" in outcome.message


async def test_storage_quota_and_limits():
    async def steps(ctx):
        await ctx.storage_put("blobs", "a", "x" * 600)
        try:
            await ctx.storage_put("blobs", "b", "x" * 600)
        except QuotaExceeded as exc:
            await ctx.storage_put("blobs", "a", "x" * 700)  # replacing counts the new size only
            return exc
        return None

    outcome, sim, _ = await run(steps, storage_quota_bytes=1000)
    assert isinstance(outcome, QuotaExceeded) and outcome.code == "quota_exceeded"
    assert set(sim.storage("blobs")) == {"a"}
    outcome, _, _ = await run(lambda ctx: ctx.storage_find("c", {}, limit=101))
    assert isinstance(outcome, InvalidParams)
    outcome, _, _ = await run(lambda ctx: ctx.storage_put("bad name!", "k", 1))
    assert isinstance(outcome, InvalidParams)


async def test_cards_are_validated_and_updates_stay_in_their_chat():
    outcome, _, _ = await run(lambda ctx: ctx.send_card({"title": "t", "image": "http://x"}))
    assert isinstance(outcome, InvalidParams) and "image:" in outcome.message

    async def steps(ctx):
        message_id = await ctx.send_card({"title": "v1"})
        await ctx.update_card(message_id, {"title": "v2"})
        return message_id

    sim, alice, _, chat, outcomes = make(steps)
    await sim.command(alice, chat, "/probe")
    card_id = outcomes[-1]
    assert sim.card(card_id) == {"title": "v2"}
    assert [c["title"] for c in sim.card_history(card_id)] == ["v1", "v2"]
    other = sim.conversation(members=[alice])
    sim.app.commands["probe"] = lambda ctx: ctx.update_card(card_id, {"title": "v3"})
    with pytest.raises(AppCallError) as failed:  # the app did not catch NotFound
        await sim.command(alice, other, "/probe")
    assert failed.value.code == NotFound.code


async def test_a_call_id_expires_with_its_invocation():
    kept = []
    _outcome, _sim, _chat = await run(lambda ctx: asyncio.sleep(0, kept.append(ctx)))
    with pytest.raises(InvalidParams, match="expired call_id"):
        await kept[0].send_text("too late")


async def test_events_notifications_and_http():
    sim, alice, bob, chat, _ = make(lambda ctx: ctx.emit("shop.order_paid", {}))
    await sim.deliver_event("shop.order_paid", {"order": "o-1"}, user=alice, conversation=chat)
    assert sim.events_emitted == [
        {
            "name": "probe.done",
            "payload": {"order": "o-1"},
            "user_id": alice.id,
            "conversation_id": chat.id,
        }
    ]
    with pytest.raises(HostRefused, match="event_not_accepted"):
        await sim.deliver_event("shop.refunded", {})
    outcome, _, _ = await run(lambda ctx: ctx.emit("shop.order_paid", {}))
    assert isinstance(outcome, PermissionDenied)

    sim, alice, bob, chat, outcomes = make(lambda ctx: ctx.notify(bob.id, "hi"))
    await sim.command(alice, chat, "/probe")
    assert sim.notifications(bob) == ["hi"]
    bob.notifications = False
    await sim.command(alice, chat, "/probe")
    assert isinstance(outcomes[-1], ScopeDenied)

    sim, alice, _, chat, outcomes = make(lambda ctx: ctx.fetch("https://api.example.com/rate"))
    sim.fake_http("https://api.example.com/rate", body='{"eur": 1.1}')
    await sim.command(alice, chat, "/probe")
    assert outcomes[-1] == {"status": 200, "headers": {}, "body": '{"eur": 1.1}'}
    outcome, _, _ = await run(lambda ctx: ctx.fetch("https://evil.example.org/"))
    assert isinstance(outcome, PermissionDenied)


async def test_app_errors_and_deadlines_surface_as_app_call_errors():
    app = App("probe")

    @app.command("probe")
    async def probe(ctx):
        if ctx.args == ["slow"]:
            await asyncio.sleep(1)
        raise RuntimeError("boom")

    sim = Simulator(app, manifest=MANIFEST, deadline=0.05)
    alice = sim.user("alice")
    chat = sim.conversation(members=[alice])
    with pytest.raises(AppCallError) as failed:
        await sim.command(alice, chat, "/probe")
    assert failed.value.code == "internal_error"
    with pytest.raises(AppCallError, match="timeout"):
        await sim.command(alice, chat, "/probe slow")


async def test_non_json_values_fail_like_on_the_wire():
    outcome, _, _ = await run(lambda ctx: ctx.storage_put("c", "k", {1, 2}))
    assert isinstance(outcome, TypeError)


def test_per_app_ids_and_launch_tokens():
    sim, alice, *_ = make(lambda ctx: None)
    assert alice.id.startswith("u-") and alice.id != sim.user("bob").id
    assert sim.user("alice") is alice
    chat = sim.conversation(members=[alice])
    token = sim.launch_token(alice, chat, ttl=60, now=1000)
    assert sim.verify_launch_token(token, now=1010)["user_id"] == alice.id
    with pytest.raises(SignatureError, match="expired"):
        sim.verify_launch_token(token, now=1060)
    body = b'{"jsonrpc":"2.0"}'
    headers = sim.sign_request(body)
    sim.verify_request(headers, body)
    with pytest.raises(SignatureError, match="replayed"):
        sim.verify_request(headers, body)


def test_a_simulator_needs_the_manifest_of_an_app_object():
    with pytest.raises(TypeError):
        Simulator(App("x"))
    with pytest.warns(UserWarning, match="has no handler"):
        Simulator(App("probe"), manifest=MANIFEST)
