"""A card button that opens the posting app's web view (``opens: "webview"``, an optional
``path`` fragment): the builder, and the card check the SDK, the simulator and the host share
(``sdk.manifest.validate_card``, reached by the host through ``sdk.capabilities.check_call``)."""

from __future__ import annotations

import pytest

from sdk import Button, Card, CardError, InvalidParams, validate_card
from sdk.capabilities import check_call


def card_with(*buttons) -> dict:
    return {"title": "Shop", "buttons": list(buttons)}


def card_error(card) -> str:
    with pytest.raises(CardError) as caught:
        validate_card(card)
    return str(caught.value)


def test_the_builder_makes_a_button_without_action_id():
    card = Card(
        "Shop",
        buttons=[
            Button("product.view", "Mug", value="p-1"),
            Button.webview("Open the shop", style="primary"),
            Button.webview("Details", path="#product=p-1"),
        ],
    )
    assert validate_card(card)["buttons"] == [
        {"action_id": "product.view", "label": "Mug", "value": "p-1"},
        {"label": "Open the shop", "style": "primary", "opens": "webview"},
        {"label": "Details", "opens": "webview", "path": "#product=p-1"},
    ]


@pytest.mark.parametrize(
    "path",
    [
        "#product=p-123",
        "#q=red+mug&page=2",
        "#view=/orders/o-1,o-2",
        "#name=%C3%A9t%C3%A9",
        "#" + "a" * 199,  # 200 characters in all
    ],
)
def test_paths_of_the_safe_charset_are_accepted(path):
    button = {"label": "Open", "opens": "webview", "path": path}
    assert validate_card(card_with(button))["buttons"] == [button]


@pytest.mark.parametrize(
    "path",
    [
        "product=p-1",  # not a fragment
        "?product=p-1",  # a query would reach the app's server: fragments only
        "#",
        "#" + "a" * 200,  # 201 characters
        "#a=<script>",
        "#a=b c",
        '#a="b"',
        "#a=b#c",
        "javascript:alert(1)",
        "#a=b\n",
        5,
    ],
)
def test_a_bad_path_is_refused(path):
    message = card_error(card_with({"label": "Open", "opens": "webview", "path": path}))
    assert message.startswith("buttons[0].path: "), message


def test_a_button_is_a_press_or_a_link_never_both():
    both = {"action_id": "product.view", "label": "Open", "opens": "webview"}
    assert card_error(card_with(both)) == "buttons[0]: a button has an action_id or opens, not both"
    with_value = {"label": "Open", "opens": "webview", "value": "p-1"}
    assert card_error(card_with(with_value)) == (
        "buttons[0].value: only a button with an action_id has a value"
    )
    path_on_a_press = {"action_id": "product.view", "label": "Mug", "path": "#product=p-1"}
    assert card_error(card_with({"action_id": "ok", "label": "OK"}, path_on_a_press)) == (
        "buttons[1].path: only a button that opens a web view has a path"
    )
    assert card_error(card_with({"label": "Nothing"})) == (
        "buttons[0].action_id: is required (or opens)"
    )
    # The builder cannot sneak one past either.
    assert "not both" in card_error(Card("Shop", buttons=[Button("x", "Open", opens="webview")]))


@pytest.mark.parametrize("opens", ["url", "https://example.com", "", None, "WEBVIEW"])
def test_an_unknown_opens_value_is_refused(opens):
    message = card_error(card_with({"label": "Open", "opens": opens}))
    assert message.startswith("buttons[0].opens: "), message
    assert "webview" in message


def test_the_host_contract_checks_cards_the_same_way():
    """``check_call`` is what the host (and the simulator) run on every capability call."""
    good = card_with({"label": "Open the shop", "opens": "webview"})
    _, params = check_call("messages.send_card", ["messages.send_card"], {"card": good})
    assert params == {"card": good}
    for bad in (
        {"label": "Open", "opens": "webview", "action_id": "product.view"},
        {"label": "Open", "opens": "browser"},
        {"label": "Open", "opens": "webview", "path": "#a=<b>"},
    ):
        for method, params in (
            ("messages.send_card", {"card": card_with(bad)}),
            ("messages.reply_ephemeral", {"card": card_with(bad)}),
            ("messages.update_card", {"message_id": "m-1", "card": card_with(bad)}),
        ):
            with pytest.raises(InvalidParams, match=r"bad card: buttons\[0\]"):
                check_call(method, [method], params)
