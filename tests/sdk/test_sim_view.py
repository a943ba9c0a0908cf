"""``sim.view``: a web view's page calling its app (``@app.view``), and ``ctx.update_card`` with
``conversation_id`` — in the simulator, with the host's rules."""

from __future__ import annotations

import asyncio
import json

import pytest

from sdk import App, ManifestError, NotFound, ViewError, load_manifest, validate_manifest
from sdk.protocol import VIEW_PARAMS_MAX_BYTES, VIEW_RESULT_MAX_BYTES
from sdk.simulator import AppCallError, HostRefused, Simulator

MANIFEST = {
    "id": "viewer",
    "name": "Viewer",
    "version": "1.0.0",
    "permissions": [
        "storage.get",
        "storage.put",
        "messages.send_card",
        "messages.update_card",
    ],
    "commands": [{"name": "order", "description": "post an order card"}],
    "events": {"emits": [], "accepts": []},
}


def make(**kwargs):
    app = App("viewer")

    @app.view("items")
    async def items(ctx):
        added = ctx.params.get("add")
        listed = await ctx.storage_get("lists", ctx.conversation_id) or []
        if added:
            listed.append(added)
            await ctx.storage_put("lists", ctx.conversation_id, listed)
        return {"items": listed, "by": ctx.user_id, "view": ctx.view_name, "kind": ctx.kind}

    @app.view("fail")
    async def fail(ctx):
        raise ViewError("out_of_stock", f"only {ctx.params.get('left', 0)} left")

    @app.view("crash")
    async def crash(ctx):
        raise RuntimeError("boom")

    @app.view("huge")
    async def huge(ctx):
        return {"blob": "x" * VIEW_RESULT_MAX_BYTES}

    @app.view("not_a_dict")
    async def not_a_dict(ctx):
        return ["a", "list"]

    @app.view("nothing")
    async def nothing(ctx):
        return None

    @app.view("post")
    async def post(ctx):
        return {"message_id": await ctx.send_card({"title": ctx.params["title"]})}

    @app.view("slow")
    async def slow(ctx):
        await asyncio.sleep(10)

    @app.command("order")
    async def order(ctx):
        await ctx.send_card({"title": "order: paid"})

    sim = Simulator(app, manifest=MANIFEST, **kwargs)
    alice, bob = sim.user("alice"), sim.user("bob")
    chat = sim.conversation(members=[alice, bob])
    return sim, alice, bob, chat


async def test_a_view_answers_the_page_with_its_dict_and_uses_capabilities():
    sim, alice, bob, chat = make()
    assert await sim.view(alice, chat, "items") == {
        "items": [],
        "by": alice.id,
        "view": "items",
        "kind": "view",
    }
    await sim.view(alice, chat, "items", {"add": "mug"})
    answer = await sim.view(bob, chat, "items", {"add": "cup"})
    assert answer["items"] == ["mug", "cup"] and answer["by"] == bob.id
    assert sim.storage("lists") == {chat.id: ["mug", "cup"]}
    assert await sim.view(alice, chat, "nothing") == {}
    # A card posted from a view lands in the chat the view was opened from.
    posted = await sim.view(alice, chat, "post", {"title": "from the page"})
    assert sim.messages(chat)[-1] == {
        "id": posted["message_id"],
        "type": "card",
        "card": {"title": "from the page"},
    }


async def test_a_view_error_reaches_the_caller_with_its_code_and_message():
    sim, alice, _, chat = make()
    with pytest.raises(ViewError) as refused:
        await sim.view(alice, chat, "fail", {"left": 2})
    assert (refused.value.code, refused.value.message) == ("out_of_stock", "only 2 left")


async def test_an_unknown_view_is_refused_with_unknown_view():
    sim, alice, _, chat = make()
    with pytest.raises(ViewError) as refused:
        await sim.view(alice, chat, "nope")
    assert refused.value.code == "unknown_view"


async def test_a_failing_app_is_an_app_call_error_not_a_view_error():
    sim, alice, _, chat = make(deadline=0.2)
    for name in ("crash", "huge", "not_a_dict"):
        with pytest.raises(AppCallError) as failed:
            await sim.view(alice, chat, name)
        assert failed.value.code == "internal_error", name
    with pytest.raises(AppCallError) as failed:
        await sim.view(alice, chat, "slow")
    assert failed.value.code == "timeout"


async def test_bad_params_and_outsiders_are_refused_before_the_app_runs():
    sim, alice, _, chat = make()
    carol = sim.user("carol")
    calls_before = len(sim.calls)
    for params in (["not", "an", "object"], "text", {"blob": "x" * VIEW_PARAMS_MAX_BYTES}):
        with pytest.raises(HostRefused) as refused:
            await sim.view(alice, chat, "items", params)  # type: ignore[arg-type]
        assert refused.value.code == "invalid_params"
    for name in ("", "x" * 65):
        with pytest.raises(HostRefused) as refused:
            await sim.view(alice, chat, name)
        assert refused.value.code == "invalid_params"
    with pytest.raises(HostRefused) as refused:
        await sim.view(carol, chat, "items")
    assert refused.value.code == "not_member"
    assert len(sim.calls) == calls_before  # the app never ran


async def test_update_card_in_another_conversation_of_the_app():
    sim, alice, bob, chat = make()
    await sim.command(alice, chat, "/order")
    card_id = sim.messages(chat)[-1]["id"]
    seller_chat = sim.conversation(members=[bob])

    async def mark_shipped(ctx):
        await ctx.update_card(card_id, {"title": "order: shipped"}, conversation_id=chat.id)

    sim.app.commands["order"] = mark_shipped
    await sim.command(bob, seller_chat, "/order")
    assert sim.card(card_id) == {"title": "order: shipped"}

    # Without conversation_id, the card is looked for in the invocation's chat: not there.
    async def wrong_chat(ctx):
        await ctx.update_card(card_id, {"title": "nope"})

    sim.app.commands["order"] = wrong_chat
    with pytest.raises(AppCallError) as failed:
        await sim.command(bob, seller_chat, "/order")
    assert failed.value.code == NotFound.code
    # A conversation the card is not in, or one that does not exist: not_found too.
    for where in (seller_chat.id, "conv-unknown"):
        outcome = await sim.call_capability(
            bob,
            seller_chat,
            "messages.update_card",
            {"message_id": card_id, "card": {"title": "x"}, "conversation_id": where},
        )
        assert outcome == ("error", "not_found")
    assert sim.card(card_id) == {"title": "order: shipped"}


# --- the manifest: a hosted page of the app's web/ folder -------------------------------------


def test_a_webview_entry_is_an_https_url_or_a_file_of_web(tmp_path):
    def manifest(entry, **extra):
        return {**MANIFEST, "webview": {"entry": entry}, **extra}

    assert validate_manifest(manifest("web/index.html"))["webview"] == {"entry": "web/index.html"}
    assert validate_manifest(manifest("https://shop.example/app"))["webview"]
    for bad in (
        "/web/index.html",
        "web/../app.py",
        "web/..",
        "web/.hidden",
        "web/sub/index.html",
        "web/",
        "index.html",
        "http://shop.example/app",
        "web/index.html?tab=1",
    ):
        with pytest.raises(ManifestError, match=r"webview\.entry"):
            validate_manifest(manifest(bad))
    remote = {"endpoint": "https://viewer.example/rpc"}
    with pytest.raises(ManifestError, match="a remote app's web view is an https:// URL"):
        validate_manifest(manifest("web/index.html", remote=remote))

    # Loaded from a folder, the page must exist there (a symlink out of web/ does not count).
    folder = tmp_path / "viewer"
    (folder / "web").mkdir(parents=True)
    (folder / "app.py").write_text("from sdk import App\napp = App('viewer')\n")
    (folder / "manifest.json").write_text(json.dumps(manifest("web/index.html")))
    with pytest.raises(ManifestError, match=r"webview\.entry: file 'web/index\.html' not found"):
        load_manifest(folder)
    (folder / "web" / "index.html").symlink_to(folder / "app.py")
    with pytest.raises(ManifestError, match=r"webview\.entry"):
        load_manifest(folder)
    (folder / "web" / "index.html").unlink()
    (folder / "web" / "index.html").write_text("<p>hi</p>")
    assert load_manifest(folder)["webview"] == {"entry": "web/index.html"}
