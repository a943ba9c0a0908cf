"""Slash commands: a text that starts with "/" is offered to the conversation's mini-programs
before it is posted. Shared by the two ways to send a message (REST and Socket.IO).

The decision belongs here, in the layer that composes the domains, so messaging never needs to
know that mini-programs exist. The send is checked first exactly as a message would be (member,
text, mentions, blocks, send rate), so a command reaches an app only from someone who could have
posted it.

Privacy mode is decided here too: once a message is stored, the host hands it to the apps it is
addressed to (``MiniappHost.route_message``: a mention of an app's bot — ``@assistant`` in the
text or ``app:assistant`` among the mentions, which are not members and are taken out before
the send is checked — a reply to an app's message, a message in a person's service chat with an
app that takes them). A service chat is read-only unless its app takes its person's messages.
"""

from __future__ import annotations

from typing import Any

from messaging.actions import messages
from messaging.context import Messaging
from miniapps.host.host import MiniappHost
from sdk.addressing import split_mentions


async def send_message(
    messaging: Messaging, host: MiniappHost, user_id: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """``{"message", "duplicate"}`` as ``messages.do_send``; or ``{"routed_to": {"app_id"}}``
    when the text was a command of an app this conversation has (nothing is posted: the app
    answers with events)."""
    people, app_mentions = split_mentions(payload.get("mentions") or [])
    if app_mentions:
        payload = {**payload, "mentions": people}
    service_open = await host.service_app(payload["conversation_id"]) is not None
    if not payload["text"].startswith("/"):
        sent = await messages.do_send(messaging, user_id, payload, service_open=service_open)
    else:
        draft = await messages.check_send(messaging, user_id, payload, service_open=service_open)
        await messages.check_rate(messaging, user_id)
        app_id = await host.route_command(
            user_id,
            draft["conversation_id"],
            draft["text"],
            draft.get("reply_to"),
            payload.get("catch_up_from"),
        )
        if app_id is not None:
            return {"routed_to": {"app_id": app_id}}
        sent = await messages.do_send_draft(messaging, draft)
    if not sent["duplicate"]:  # a retry was routed the first time
        host.route_message(user_id, sent["message"], app_mentions)
    return sent
