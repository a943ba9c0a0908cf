"""``notifications.send``: a service message (a text or a card) to one user of the app who opted
in (consent scope ``notifications``). It lands in the user's service chat with the app and in
their notification center (``messaging.actions.service_chats``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from messaging.actions import media as media_actions
from messaging.actions import service_chats
from messaging.events import event
from sdk.errors import NotFound
from storage.mongo import now_ms

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost


async def send(host: MiniappHost, call: Call, params: dict) -> dict:
    user_id = await host.identity.app_users.get_user_id(call.app_id, params["user_id"])
    if user_id is None:
        raise NotFound("no such user")
    await host.consent.check_opted_in(user_id, call.app_id)
    if params.get("card") is not None:  # a refused card image opens no empty service chat
        await media_actions.check_card_image(host.messaging, call.app_id, params["card"])
    name = host.apps_catalogue.apps[call.app_id].manifest["name"]
    conversation, _ = await service_chats.do_open_service_chat(
        host.messaging, user_id, call.app_id, name
    )
    # The app is "installed" in the service chat, so the user's presses on its cards reach it
    # through the ordinary card-press path.
    await host.installs.installs.add_install(
        conversation["_id"], call.app_id, f"app:{call.app_id}", now_ms()
    )
    text, card = params.get("text"), params.get("card")
    message = await service_chats.do_send_service_message(
        host.messaging,
        user_id,
        call.app_id,
        name,
        text=None if card is not None else text,
        card=card,
    )
    # The live event clients had before the notification center (kept for them).
    await host.messaging.events.emit(
        event(
            "miniapp.notification",
            {"user": user_id},
            {"app_id": call.app_id, "text": message["text"]},
        )
    )
    return {}
