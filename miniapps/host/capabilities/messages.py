"""``messages.*``: an app's texts and cards in the invocation's conversation, and ephemeral
replies to the person who invoked it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from messaging.actions import cards
from messaging.actions import media as media_actions

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost


async def send_text(host: MiniappHost, call: Call, params: dict) -> dict:
    view = await cards.do_post_app_text(
        host.messaging, call.conversation_id, call.app_id, params["text"]
    )
    return {"message_id": view["id"]}


async def send_card(host: MiniappHost, call: Call, params: dict) -> dict:
    view = await cards.do_post_card(
        host.messaging, call.conversation_id, call.app_id, params["card"]
    )
    return {"message_id": view["id"]}


async def reply_ephemeral(host: MiniappHost, call: Call, params: dict) -> dict:
    if "card" in params:
        card = params["card"]
        # Nothing is stored for an ephemeral card: its image (a media id of this app's) is
        # signed now, for the one person who sees it.
        media_ids = await media_actions.check_card_image(host.messaging, call.app_id, card)
        if media_ids:
            doc = await host.messaging.media.get_media(media_ids[0])
            card = {**card, "image": media_actions.media_view(host.messaging, doc)["url"]}
        content = {"card": card}
    else:
        content = {"text": params["text"]}
    await host.invoker.ephemeral(call.user_id, call.conversation_id, call.app_id, content)
    return {}


async def update_card(host: MiniappHost, call: Call, params: dict) -> dict:
    await cards.do_update_card(
        host.messaging, call.conversation_id, call.app_id, params["message_id"], params["card"]
    )
    return {}
