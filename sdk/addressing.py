"""Privacy mode: which people's messages reach an app, decided alike by the host
(``miniapps.host.routing``) and the simulator (``sdk._sim_route``).

An app hears a chat message only when it is addressed to it — Telegram's privacy mode for bots:

- ``"mention"``: the message mentions the app's bot, by ``@<app id>`` in its text
  (``@assistant``, a whole word, any case) or ``app:<app id>`` in its ``mentions``;
- ``"reply"``: the message replies to one of the app's own messages;
- ``"direct"``: the message is in the person's service chat with the app.

Anything else said in a chat never reaches it. The app must accept the event
``message.received`` (manifest ``events.accepts``); it gets ``{message, reason}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

MESSAGE_RECEIVED = "message.received"  # the event an addressed message is (events.accepts)
BOT_PREFIX = "app:"  # an app's bot: the sender of its messages, mentioned as app:<id>
REASONS = ("mention", "reply", "direct")


def bot_id(app_id: str) -> str:
    """The id an app's messages carry as their sender (``app:<id>``)."""
    return BOT_PREFIX + app_id


def app_of_bot(sender_id: object) -> str | None:
    """The app id of a bot's sender id (``app:poll`` → ``poll``), None for anyone else."""
    if isinstance(sender_id, str) and sender_id.startswith(BOT_PREFIX):
        return sender_id[len(BOT_PREFIX) :] or None
    return None


def split_mentions(mentions: Iterable[str]) -> tuple[list[str], list[str]]:
    """``mentions`` of a message as sent — people (member ids, ``all``) and apps' bots
    (``app:<id>``) — apart: ``(people, app_ids)``. Only people are members a mention is
    checked against; an app is addressed, not notified."""
    people: list[str] = []
    apps: list[str] = []
    for mention in mentions:
        app_id = app_of_bot(mention)
        if app_id is None:
            people.append(mention)
        elif app_id not in apps:
            apps.append(app_id)
    return people, apps


@cache
def _mention_pattern(app_id: str) -> re.Pattern[str]:
    # "@assistant" as a whole word: not inside an e-mail address ("me@assistant.io" has a
    # word character before the @) nor a longer name ("@assistant_bot").
    return re.compile(rf"(?<![\w@])@{re.escape(app_id)}(?![\w-])", re.IGNORECASE)


def mentions_app(app_id: str, text: str, app_mentions: Iterable[str] = ()) -> bool:
    """Whether a message mentions ``app_id``'s bot: ``@<app id>`` in ``text`` or the app among
    ``app_mentions`` (the ``app:<id>`` mentions, ids only: ``split_mentions``)."""
    return app_id in app_mentions or bool(_mention_pattern(app_id).search(text or ""))


def reason_for(
    app_id: str,
    *,
    conversation_type: str | None,
    service_app_id: str | None,
    text: str,
    app_mentions: Iterable[str] = (),
    reply_sender: str | None = None,
) -> str | None:
    """Why a person's message reaches ``app_id`` — ``"direct"``, ``"mention"`` or
    ``"reply"`` (in that order of precedence) — or None: it does not (privacy mode).
    ``service_app_id`` is the app of a service chat (None elsewhere), ``reply_sender`` the
    sender id of the message replied to (``app:<id>`` for an app's)."""
    if conversation_type == "service":
        return "direct" if service_app_id == app_id else None
    if mentions_app(app_id, text, app_mentions):
        return "mention"
    if reply_sender is not None and app_of_bot(reply_sender) == app_id:
        return "reply"
    return None
