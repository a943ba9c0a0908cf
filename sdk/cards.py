"""Builders for cards and replies: plain dataclasses that produce PROTOCOL.md's dicts.

They are optional sugar — a handler may return the dicts directly::

    card = Card("Lunch?", text="Vote below", buttons=[Button("vote", "Pizza (2)", value="p:0")])
    return Reply(card=card)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REPLY_KEYS = ("text", "card", "ephemeral", "update_card")


@dataclass
class Button:
    """A card button; pressing it sends the app an ``action`` with ``action_id`` and ``value``.

    ``Button.webview(label, path)`` makes the other kind: a button that opens this app's web
    view in the chat (``opens="webview"``), at ``path`` — never a press the app receives."""

    action_id: str | None
    label: str
    value: str | None = None
    style: str | None = None  # "primary", "secondary" or "danger"
    opens: str | None = None  # "webview": the button opens the posting app's web view
    path: str | None = None  # with opens: a fragment for the web view, e.g. "#product=p-1"

    @classmethod
    def webview(cls, label: str, path: str | None = None, style: str | None = None) -> Button:
        """A button opening this app's web view in the chat. ``path`` (optional, ≤ 200
        characters of ``[A-Za-z0-9_.~%+=&:/,-]`` after a ``#``, e.g. ``"#product=p-123"``) is
        added to the fragment of the page's address, where the page reads it from
        ``location.hash`` beside the host's ``aetherial_*`` parameters."""
        return cls(None, label, style=style, opens="webview", path=path)

    def to_dict(self) -> dict[str, Any]:
        """The button as PROTOCOL.md's dict (unset optional keys left out)."""
        button: dict[str, Any] = {"label": self.label}
        if self.action_id is not None:
            button = {"action_id": self.action_id, **button}
        for key in ("value", "style", "opens", "path"):
            if getattr(self, key) is not None:
                button[key] = getattr(self, key)
        return button


@dataclass
class Field:
    """A labelled value shown on a card."""

    label: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        """The field as PROTOCOL.md's dict."""
        return {"label": self.label, "value": self.value}


@dataclass
class Card:
    """A structured message: title, optional text, fields, image and up to 10 buttons.

    ``image`` is an https URL, or the media id of an image this app uploaded with
    ``ctx.upload_media`` (``media.upload``): members then see a short-lived signed URL in its
    place. Another app's or a user's media id is refused (``invalid_params``)."""

    title: str
    text: str | None = None
    fields: list[Field | dict] = field(default_factory=list)
    image: str | None = None
    buttons: list[Button | dict] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The card as PROTOCOL.md's dict (unset optional keys left out)."""
        card: dict[str, Any] = {"title": self.title}
        if self.text is not None:
            card["text"] = self.text
        if self.fields:
            card["fields"] = [as_dict(f) for f in self.fields]
        if self.image is not None:
            card["image"] = self.image
        if self.buttons:
            card["buttons"] = [as_dict(b) for b in self.buttons]
        return card


@dataclass
class Reply:
    """What a command or action handler answers; each part is shorthand for a capability.

    ``text`` posts a text (``messages.send_text``), ``card`` posts a card
    (``messages.send_card``), ``ephemeral`` shows a text or card to the invoker only
    (``messages.reply_ephemeral``), ``update_card`` replaces a card the app posted
    (``messages.update_card``) — so each needs its permission in the manifest.
    """

    text: str | None = None
    card: Card | dict | None = None
    ephemeral: str | Card | dict | None = None
    update_card: dict | None = None  # {"message_id": …, "card": …}; see Reply.update()

    @classmethod
    def update(cls, message_id: str, card: Card | dict) -> Reply:
        """A reply replacing the card ``message_id`` (one this app posted) with ``card``."""
        return cls(update_card={"message_id": message_id, "card": card})

    def to_dict(self) -> dict[str, Any]:
        """The reply as PROTOCOL.md's dict (unset parts left out)."""
        reply: dict[str, Any] = {}
        if self.text is not None:
            reply["text"] = self.text
        if self.card is not None:
            reply["card"] = as_dict(self.card)
        if self.ephemeral is not None:
            reply["ephemeral"] = as_dict(self.ephemeral)
        if self.update_card is not None:
            reply["update_card"] = {
                "message_id": self.update_card["message_id"],
                "card": as_dict(self.update_card["card"]),
            }
        return reply


def as_dict(value: Any) -> Any:
    """``value.to_dict()`` for the builders above; anything else unchanged."""
    return value.to_dict() if hasattr(value, "to_dict") else value


def normalize_reply(result: Any) -> dict[str, Any]:
    """A handler's return value as the JSON ``Reply`` the host expects: a ``Reply``, a dict with
    only ``text``/``card``/``ephemeral``/``update_card`` keys, or ``None`` (answered ``{}``).
    Raises ``TypeError`` for anything else."""
    if result is None:
        return {}
    if isinstance(result, Reply):
        return result.to_dict()
    if isinstance(result, Card):
        raise TypeError("a handler returned a Card; return Reply(card=...) to post it")
    if not isinstance(result, dict):
        raise TypeError(f"a handler must return a Reply, a dict or None, not {type(result)}")
    unknown = sorted(set(result) - set(REPLY_KEYS))
    if unknown:
        raise TypeError(f"a reply has unknown keys {unknown}; allowed: {list(REPLY_KEYS)}")
    return Reply(**result).to_dict()
