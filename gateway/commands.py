"""Slash commands: a text that starts with "/" is offered to the conversation's mini-programs
before it is posted. Shared by the two ways to send a message (REST and Socket.IO).

The decision belongs here, in the layer that composes the domains, so messaging never needs to
know that mini-programs exist. The send is checked first exactly as a message would be (member,
text, mentions, blocks, send rate), so a command reaches an app only from someone who could have
posted it.
"""

from __future__ import annotations

from typing import Any

from messaging.actions import messages
from messaging.context import Messaging
from miniapps.host.host import MiniappHost


async def send_message(
    messaging: Messaging, host: MiniappHost, user_id: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """``{"message", "duplicate"}`` as ``messages.do_send``; or ``{"routed_to": {"app_id"}}``
    when the text was a command of an app this conversation has (nothing is posted: the app
    answers with events)."""
    if not payload["text"].startswith("/"):
        return await messages.do_send(messaging, user_id, payload)
    draft = await messages.check_send(messaging, user_id, payload)
    await messages.check_rate(messaging, user_id)
    app_id = await host.route_command(user_id, draft["conversation_id"], draft["text"])
    if app_id is not None:
        return {"routed_to": {"app_id": app_id}}
    return await messages.do_send_draft(messaging, draft)
