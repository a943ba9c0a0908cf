"""``messages.*``: an app's texts and cards in the invocation's conversation (a card also in
another chat that has the app), and ephemeral replies to the person who invoked it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from messaging.actions import cards
from messaging.actions import media as media_actions
from sdk.errors import NotFound
from storage.errors import AppError

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
    """A card this app posted, in the invocation's conversation or in ``conversation_id``:
    another chat that still has the app (a buyer's order card, updated from the seller's press
    in their own chat or from a timer) — a user's service chat with the app counts, it has the
    app installed. A chat without the app answers ``not_found`` like a card that is not there:
    the app learns nothing about chats it is not in."""
    conversation_id = params.get("conversation_id") or call.conversation_id
    if conversation_id != call.conversation_id:
        try:
            await host.apps_catalogue.check_active(call.app_id, conversation_id)
        except AppError:
            raise NotFound("this app posted no such card in this conversation") from None
    await cards.do_update_card(
        host.messaging, conversation_id, call.app_id, params["message_id"], params["card"]
    )
    return {}
