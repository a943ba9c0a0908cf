"""``messages.*``: an app's texts and cards in the invocation's conversation (a card also in
another chat that has the app), and ephemeral replies to the person who invoked it (an
ephemeral card with buttons is kept an hour so they can be pressed, and can be updated).
Streaming messages (``messages.stream_start``/``stream_append``/``stream_stop``): a text that
grows while the app writes it, through ``host.streams`` (``miniapps.host.streams``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from messaging.actions import cards
from messaging.actions import media as media_actions
from sdk.errors import NotFound
from storage.errors import AppError
from storage.mongo import now_ms

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
    """A text or a card for the invoker's eyes only. A card with buttons is kept an hour
    (``ephemeral_cards``) so they can be pressed: its ``ephemeral_id`` goes to the app and
    with the event, and the invoker's presses name it as the ``message_id``."""
    if "card" not in params:
        await host.invoker.ephemeral(
            call.user_id, call.conversation_id, call.app_id, {"text": params["text"]}
        )
        return {}
    card = params["card"]
    shown = await _shown_card(host, call.app_id, card)
    if not card.get("buttons"):
        await host.invoker.ephemeral(
            call.user_id, call.conversation_id, call.app_id, {"card": shown}
        )
        return {}
    ephemeral_id = await host.ephemeral_cards.add_card(
        call.user_id, call.conversation_id, call.app_id, card, now_ms()
    )
    await host.invoker.ephemeral(
        call.user_id,
        call.conversation_id,
        call.app_id,
        {"card": shown, "ephemeral_id": ephemeral_id},
    )
    return {"ephemeral_id": ephemeral_id}


async def _shown_card(host: MiniappHost, app_id: str, card: dict) -> dict:
    """The card as its one reader gets it: its image (a media id of this app's) signed now,
    since an ephemeral card is not a message whose views sign it."""
    media_ids = await media_actions.check_card_image(host.messaging, app_id, card)
    if not media_ids:
        return card
    doc = await host.messaging.media.get_media(media_ids[0])
    return {**card, "image": media_actions.media_view(host.messaging, doc)["url"]}


async def update_card(host: MiniappHost, call: Call, params: dict) -> dict:
    """A card this app posted, in the invocation's conversation or in ``conversation_id``:
    another chat that still has the app (a buyer's order card, updated from the seller's press
    in their own chat or from a timer) — a user's service chat with the app counts, it has the
    app installed. A chat without the app answers ``not_found`` like a card that is not there:
    the app learns nothing about chats it is not in.

    ``message_id`` may also be an ephemeral card's id (shown in that conversation, not
    expired): the new card replaces it and is shown again, to its one reader only."""
    conversation_id = params.get("conversation_id") or call.conversation_id
    if conversation_id != call.conversation_id:
        try:
            await host.apps_catalogue.check_active(call.app_id, conversation_id)
        except AppError:
            raise NotFound("this app posted no such card in this conversation") from None
    if await _update_ephemeral(host, call.app_id, conversation_id, params):
        return {}
    await cards.do_update_card(
        host.messaging, conversation_id, call.app_id, params["message_id"], params["card"]
    )
    return {}


async def _update_ephemeral(
    host: MiniappHost, app_id: str, conversation_id: str, params: dict
) -> bool:
    """``messages.update_card`` of an ephemeral card: False when ``message_id`` is not one of
    this app's in ``conversation_id`` (then it may be a posted card)."""
    ephemeral_id, card = params["message_id"], params["card"]
    kept = await host.ephemeral_cards.get_card(ephemeral_id, now_ms())
    if kept is None or kept["app_id"] != app_id or kept["conversation_id"] != conversation_id:
        return False
    shown = await _shown_card(host, app_id, card)  # checks the image before anything is written
    if not await host.ephemeral_cards.update_card(ephemeral_id, app_id, card, now_ms()):
        return False  # expired since
    await host.invoker.ephemeral(
        kept["user_id"], conversation_id, app_id, {"card": shown, "ephemeral_id": ephemeral_id}
    )
    return True


# --- streaming messages ---------------------------------------------------------------------


async def stream_start(host: MiniappHost, call: Call, params: dict) -> dict:
    message_id = await host.streams.start_stream(
        call.app_id, call.conversation_id, params.get("text") or ""
    )
    return {"message_id": message_id}


async def stream_append(host: MiniappHost, call: Call, params: dict) -> dict:
    await host.streams.append_as(
        call.app_id, call.conversation_id, params["message_id"], params["text"]
    )
    return {}


async def stream_stop(host: MiniappHost, call: Call, params: dict) -> dict:
    text = await host.streams.stop_as(
        call.app_id, call.conversation_id, params["message_id"], params.get("text")
    )
    return {"text": text}


EFFECTS = {
    "messages.stream_start": stream_start,
    "messages.stream_append": stream_append,
    "messages.stream_stop": stream_stop,
}
