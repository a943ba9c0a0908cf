"""``notifications.send``: a note to one user of the app, who must have opted in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from messaging.events import event
from sdk.errors import NotFound

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost


async def send(host: MiniappHost, call: Call, params: dict) -> dict:
    user_id = await host.identity.app_users.get_user_id(call.app_id, params["user_id"])
    if user_id is None:
        raise NotFound("no such user")
    await host.consent.check_opted_in(user_id, call.app_id)
    await host.messaging.events.emit(
        event(
            "miniapp.notification",
            {"user": user_id},
            {"app_id": call.app_id, "text": params["text"]},
        )
    )
    return {}
