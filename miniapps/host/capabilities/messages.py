"""``messages.*``: an app's texts and cards in the invocation's conversation, and ephemeral
replies to the person who invoked it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from messaging.actions import cards

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
    content = {"card": params["card"]} if "card" in params else {"text": params["text"]}
    await host.invoker.ephemeral(call.user_id, call.conversation_id, call.app_id, content)
    return {}


async def update_card(host: MiniappHost, call: Call, params: dict) -> dict:
    await cards.do_update_card(
        host.messaging, call.conversation_id, call.app_id, params["message_id"], params["card"]
    )
    return {}
