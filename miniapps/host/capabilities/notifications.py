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


async def request_subscription(host: MiniappHost, call: Call, params: dict) -> dict:
    """Ask the invoking user, with the host's consent sheet (``miniapp.consent_required``,
    scope ``notifications``), whether this app may send them service messages. Answers at
    once: ``granted`` (already opted in), ``declined`` (they said no: a no is not asked again
    by the app — the user can still opt in from the app's settings) or ``asked``. The answer
    reaches the app later as ``subscription.granted``/``subscription.declined``
    (``deliver_subscription_event``)."""
    answer = await host.consents.get_answer(call.user_id, call.app_id, "notifications")
    if answer is not None:
        return {"status": "granted" if answer else "declined"}
    await host.consent.ask(call.user_id, call.app_id, "notifications")
    return {"status": "asked"}


async def deliver_subscription_event(
    host: MiniappHost, user_id: str, app_id: str, scope: str, granted: bool
) -> None:
    """The user answered ``notifications`` for ``app_id`` (the consent desk's listener): the app
    gets ``subscription.granted`` or ``subscription.declined`` `{user_id}` when its manifest
    ``events.accepts`` it, invoked in the user's service chat with it — opened on a grant (so
    the app can greet them there at once), left alone on a refusal (the app's calls in that
    invocation then find no chat: it cannot message someone who said no)."""
    entry = host.apps_catalogue.apps.get(app_id)
    name = "subscription.granted" if granted else "subscription.declined"
    if scope != "notifications" or entry is None:
        return
    if name not in (entry.manifest.get("events") or {}).get("accepts", []):
        return
    conversation_id = service_chats.service_chat_id(user_id, app_id)
    if granted:
        conversation, _ = await service_chats.do_open_service_chat(
            host.messaging, user_id, app_id, entry.manifest["name"]
        )
        await host.installs.installs.add_install(
            conversation["_id"], app_id, f"app:{app_id}", now_ms()
        )
    payload = {"user_id": await host.identity.app_user(app_id, user_id), "at": now_ms()}
    host.invoker.invoke_later(
        entry,
        user_id,
        conversation_id,
        "event",
        {"name": name, "payload": payload},
        host_event=True,
    )


EFFECTS = {"notifications.request_subscription": request_subscription}
