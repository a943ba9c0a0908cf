"""Manifest and card validation: every error names the field at fault."""

from __future__ import annotations

import json

import pytest

from sdk import Button, Card, CardError, ManifestError, load_manifest, validate_card
from sdk.manifest import capabilities, validate_manifest


def manifest(**changes):
    data = {
        "id": "poll",
        "name": "Poll",
        "version": "1.0.0",
        "description": "Quick polls",
        "permissions": ["messages.send_card", "group_state.get"],
        "commands": [{"name": "poll", "description": "Start a poll", "usage": "/poll q a b"}],
        "events": {"emits": [], "accepts": []},
        "http": {"allowed_domains": []},
        "webview": None,
        "entry": "app.py",
    }
    data.update(changes)
    return data


def error_of(data, **kwargs) -> str:
    with pytest.raises(ManifestError) as caught:
        validate_manifest(data, **kwargs)
    return str(caught.value)


def test_a_valid_manifest_gets_its_defaults():
    result = validate_manifest({"id": "dice", "name": "Dice", "version": "0.1.0"}, "dice")
    assert result["permissions"] == [] and result["commands"] == []
    assert result["events"] == {"emits": [], "accepts": []}
    assert result["entry"] == "app.py" and result["webview"] is None and result["remote"] is None


def test_an_unknown_permission_names_its_index():
    message = error_of(
        manifest(permissions=["messages.send_card", "group_state.get", "messages.teleport"])
    )
    assert message.startswith("permissions[2]: 'messages.teleport' is not one of")


def test_the_id_must_equal_the_folder_name():
    assert error_of(manifest(id="polls"), folder_name="poll") == (
        "id: must equal the folder name 'poll'"
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": "Poll"}, "id:"),
        ({"id": "p"}, "id:"),
        ({"version": "1.0"}, "version:"),
        ({"version": "v1.0.0"}, "version:"),
        ({"commands": [{"name": "Poll", "description": "x"}]}, "commands[0].name:"),
        ({"commands": [{"name": "poll"}]}, "commands[0].description: is required"),
        (
            {"commands": [{"name": "p", "description": "x", "alias": "q"}]},
            "commands[0].alias: unknown field",
        ),
        ({"events": {"emits": ["poll.closed"], "accepts": [3]}}, "events.accepts[0]:"),
        ({"events": {"emits": ["shop.order_paid"]}}, "events.emits[0]: 'shop.order_paid' must"),
        ({"http": {"allowed_domains": ["https://api.example.com"]}}, "http.allowed_domains[0]:"),
        ({"webview": {"entry": "http://example.com/app"}}, "webview.entry:"),
        ({"remote": {"endpoint": "ftp://example.com"}}, "remote.endpoint:"),
        ({"entry": "../evil.py"}, "entry:"),
        ({"permision": []}, "permision: unknown field"),
        ({"permissions": ["http.fetch"]}, "http.allowed_domains: http.fetch needs"),
        ({"permissions": ["group_state.get", "group_state.get"]}, "permissions:"),
    ],
)
def test_each_error_names_its_field(changes, field):
    assert error_of(manifest(**changes)).startswith(field)


def test_a_missing_required_field_is_named():
    data = manifest()
    del data["name"]
    assert error_of(data) == "name: is required"


def test_a_command_declared_twice():
    commands = [{"name": "poll", "description": "a"}, {"name": "poll", "description": "b"}]
    assert error_of(manifest(commands=commands)) == "commands[1].name: 'poll' is declared twice"


def test_several_errors_are_all_reported():
    message = error_of(manifest(id="X", version="one"))
    assert "id:" in message and "version:" in message


def test_every_protocol_capability_is_a_permission():
    assert set(capabilities()) == {
        "messages.send_text",
        "messages.send_card",
        "messages.reply_ephemeral",
        "messages.update_card",
        "group_state.get",
        "group_state.set",
        "storage.get",
        "storage.put",
        "storage.delete",
        "storage.find",
        "users.profile",
        "notifications.send",
        "events.emit",
        "http.fetch",
        "payments.request",
        "payments.refund",
        "payments.capture",
        "payments.void",
        "payments.payout",
        "payments.request_transfer",
        "media.upload",
        "media.url",
        "storage.update",
        "storage.incr",
        "timers.schedule",
        "timers.cancel",
        "calls.start",
        "notifications.request_subscription",
        "app.setup",
        "credentials.issue",
        "credentials.revoke",
        "webhooks.url",
        "ai.chat",
        "ai.cancel",
        "messages.history",
        "apps.tools",
        "apps.call_tool",
        "messages.stream_start",
        "messages.stream_append",
        "messages.stream_stop",
    }


def test_load_manifest_reads_the_folder(tmp_path):
    folder = tmp_path / "dice"
    folder.mkdir()
    with pytest.raises(ManifestError, match=r"^manifest.json: not found"):
        load_manifest(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match=r"^manifest.json: not valid JSON"):
        load_manifest(folder)
    (folder / "manifest.json").write_text(json.dumps(manifest(id="dice")))
    with pytest.raises(ManifestError, match=r"^entry: file 'app.py' not found"):
        load_manifest(folder)
    (folder / "app.py").write_text("")
    assert load_manifest(folder)["id"] == "dice"


def test_the_poll_manifest_is_valid():
    assert load_manifest("miniapps/poll")["commands"][0]["name"] == "poll"


# --- cards ---------------------------------------------------------------------------------


def card_error(card) -> str:
    with pytest.raises(CardError) as caught:
        validate_card(card)
    return str(caught.value)


def test_a_valid_card_and_the_builders():
    card = Card(
        "Lunch?",
        text="Vote",
        image="https://example.com/a.png",
        buttons=[Button("vote", "Pizza (2)", value="p:0", style="primary")],
    )
    assert validate_card(card) == {
        "title": "Lunch?",
        "text": "Vote",
        "image": "https://example.com/a.png",
        "buttons": [
            {"action_id": "vote", "label": "Pizza (2)", "value": "p:0", "style": "primary"}
        ],
    }
    assert validate_card({"title": "x", "fields": [{"label": "a", "value": "b"}]})


@pytest.mark.parametrize(
    ("card", "field"),
    [
        ({"text": "no title"}, "title: is required"),
        ({"title": "x" * 101}, "title:"),
        ({"title": "t", "text": "x" * 2001}, "text:"),
        ({"title": "t", "image": "http://example.com/a.png"}, "image:"),
        ({"title": "t", "fields": [{"label": "a", "value": "b"}] * 21}, "fields:"),
        ({"title": "t", "buttons": [{"action_id": "a", "label": "b"}] * 11}, "buttons:"),
        ({"title": "t", "buttons": [{"action_id": "a b", "label": "b"}]}, "buttons[0].action_id:"),
        (
            {"title": "t", "buttons": [{"action_id": "a" * 65, "label": "b"}]},
            "buttons[0].action_id:",
        ),
        (
            {"title": "t", "buttons": [{"action_id": "a", "label": "b", "value": "v" * 257}]},
            "buttons[0].value:",
        ),
        (
            {"title": "t", "buttons": [{"action_id": "a", "label": "b", "style": "red"}]},
            "buttons[0].style: 'red' is not one of",
        ),
        ({"title": "t", "buttons": [{"action_id": "a"}]}, "buttons[0].label: is required"),
        ({"title": "t", "colour": "red"}, "colour: unknown field"),
        ("a card", "card:"),
    ],
)
def test_each_card_error_names_its_field(card, field):
    assert card_error(card).startswith(field)


@pytest.mark.parametrize("name", ["call.started", "subscription.granted", "payment.succeeded"])
def test_an_app_cannot_emit_the_hosts_events(name):
    """Even an app whose id is the event's namespace cannot emit what only the host sends."""
    app_id = name.split(".")[0]
    manifest = {
        "id": app_id,
        "name": "Forger",
        "version": "1.0.0",
        "description": "tries to forge host events",
        "permissions": [],
        "commands": [],
        "events": {"emits": [name], "accepts": []},
        "entry": "app.py",
    }
    with pytest.raises(ManifestError, match="only from"):
        validate_manifest(manifest)


# --- icons ---------------------------------------------------------------------------------

PNG_HEAD = b"\x89PNG\r\n\x1a\n"
REMOTE = {"endpoint": "https://apps.example/rpc"}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"icon": "web/icon.svg"}, "icon: 'web/icon.svg': a .png, .jpg, .jpeg or .webp file"),
        ({"icon": "web/icon.gif"}, "icon: 'web/icon.gif': a .png, .jpg, .jpeg or .webp file"),
        ({"icon": "web/icon.PNG"}, "icon: 'web/icon.PNG': a .png, .jpg, .jpeg or .webp file"),
        ({"icon": "web/../app.png"}, "icon: 'web/../app.png': a file directly in web/"),
        ({"icon": "web/img/icon.png"}, "icon: 'web/img/icon.png': a file directly in web/"),
        ({"icon": "web/.icon.png"}, "icon: 'web/.icon.png': a file directly in web/"),
        ({"icon": "icon.png"}, "icon: 'icon.png': a file of web/ (web/icon.png) or an https://"),
        ({"icon": "http://cdn.example/i.png"}, "icon: 'http://cdn.example/i.png': a file of web/"),
        ({"icon": "web/icon.png", "remote": REMOTE}, "icon: a remote app's icon is an https://"),
        ({"icon": 3}, "icon: 3 is not valid"),
    ],
)
def test_a_bad_icon_is_named(changes, expected):
    assert error_of(manifest(**changes)).startswith(expected)


def test_an_icon_is_optional_and_a_remote_app_may_use_https():
    assert validate_manifest(manifest())["icon"] is None
    remote = validate_manifest(manifest(icon="https://cdn.example/poll.webp", remote=REMOTE))
    assert remote["icon"] == "https://cdn.example/poll.webp"
    assert (
        validate_manifest(manifest(icon="web/poll-icon_2.jpeg"))["icon"] == "web/poll-icon_2.jpeg"
    )


def hosted_app(tmp_path, icon, files: dict[str, bytes]):
    folder = tmp_path / "poll"
    (folder / "web").mkdir(parents=True)
    (folder / "app.py").write_text("")
    (folder / "manifest.json").write_text(json.dumps(manifest(icon=icon)))
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def load_error(folder) -> str:
    with pytest.raises(ManifestError) as caught:
        load_manifest(folder)
    return str(caught.value)


def test_a_hosted_apps_icon_must_be_a_small_image_of_its_web_folder(tmp_path):
    folder = hosted_app(tmp_path, "web/icon.png", {})
    assert load_error(folder).startswith("icon: file 'web/icon.png' not found")
    # a symlink leading out of web/ is not a file of web/
    (folder / "secret.png").write_bytes(PNG_HEAD)
    (folder / "web" / "icon.png").symlink_to(folder / "secret.png")
    assert load_error(folder).startswith("icon: file 'web/icon.png' not found")
    (folder / "web" / "icon.png").unlink()
    (folder / "web" / "icon.png").write_bytes(PNG_HEAD + b"\0" * (64 * 1024 - len(PNG_HEAD) + 1))
    assert load_error(folder) == "icon: 'web/icon.png' is 65537 bytes (at most 65536)"
    (folder / "web" / "icon.png").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert load_error(folder) == "icon: 'web/icon.png' is not a PNG image"
    (folder / "web" / "icon.png").write_bytes(PNG_HEAD + b"\0" * (64 * 1024 - len(PNG_HEAD)))
    assert load_manifest(folder)["icon"] == "web/icon.png"


def test_a_hosted_apps_icon_is_not_a_remote_url(tmp_path):
    folder = hosted_app(tmp_path, "https://cdn.example/poll.png", {})
    assert load_error(folder) == "icon: a hosted app's icon is a file of its web/ folder"


def test_the_poll_app_has_its_icon():
    assert load_manifest("miniapps/poll")["icon"] == "web/icon.png"
