"""``calls.start``: a call a mini-program starts (a telemedicine visit from an appointment card).

The platform's call service (``messaging.calls``) starts it with the app's bot as the caller
and the app named as its ``origin``: the participants' devices ring, and each joins by
answering — the app is never in the call and puts nobody in it. The app then learns
``call.started`` (the first person joined) and ``call.ended`` (outcome, duration) as host events,
signed with its own secret like payment events, when its manifest ``events.accepts`` them.

With ``own_chat`` the call is between people who share no conversation (a doctor and the
patient whose appointment card is in their service chat with the app): the host opens the app's
own group of exactly those people (``messaging.actions.service_chats.do_open_app_chat``, the
same one each time for the same people), installs the app in it so its cards and calls work
there, and starts the call in it. The invoking user must be one of them: an app rings people on
someone's behalf, never strangers on nobody's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from messaging.actions import service_chats
from messaging.calls import lifecycle
from messaging.calls.records import duration_seconds
from sdk._capability_services import check_call_participants, check_own_chat
from sdk.errors import HostError, PermissionDenied, host_error
from sdk.signing import sign_event
from storage.errors import AppError
from storage.mongo import now_ms

if TYPE_CHECKING:
    from messaging.calls.service import CallService
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost

CALL_EVENTS = ("call.started", "call.ended")


def call_service(host: MiniappHost) -> CallService:
    service = host.call_service  # set by the composition root (gateway/app.py calls_ctx)
    if service is None:
        raise HostError("calls are not running on this server", code="internal_error")
    return service


async def start(host: MiniappHost, call: Call, params: dict) -> dict:
    service = call_service(host)
    name = host.apps_catalogue.apps[call.app_id].manifest["name"]
    ring_ids = None
    if params.get("own_chat"):
        # Everyone in the app's chat is rung: exactly the participants.
        conversation_id = await open_own_chat(host, call, params, name)
    else:
        participant_ids = check_call_participants(params.get("participant_ids"))
        conversation_id = params.get("conversation_id") or call.conversation_id
        if conversation_id != call.conversation_id:
            try:
                await host.apps_catalogue.check_active(call.app_id, conversation_id)
            except AppError:
                raise PermissionDenied("this app is not in that conversation") from None
        if participant_ids is not None:
            ring_ids = []
            for app_user_id in participant_ids:
                user_id = await host.identity.app_users.get_user_id(call.app_id, app_user_id)
                if user_id is None:  # nobody this app knows: not a member either
                    raise host_error("not_a_member", "a participant is not a member of this chat")
                ring_ids.append(user_id)
    origin = {"app_id": call.app_id, "name": name, "title": params.get("title")}
    try:
        started = await lifecycle.do_start_for_app(
            service, conversation_id, ring_ids, params["media"], origin, call.user_id or None
        )
    except AppError as exc:
        if exc.code == "call_busy":
            raise host_error("call_in_progress", "this conversation already has a call") from None
        raise
    return {"call_id": started["call"]["id"], "conversation_id": conversation_id}


async def open_own_chat(host: MiniappHost, call: Call, params: dict, app_name: str) -> str:
    """The app's own group of ``participant_ids`` (``check_own_chat``: the invoker among them),
    each a person this app knows (else ``unknown_participant``) and none blocking another
    (``blocked``), opened or found again, with the app installed in it. Returns its id."""
    participant_ids = check_own_chat(params, call.app_user_id if call.user_id else None)
    user_ids = []
    for app_user_id in participant_ids:
        user_id = await host.identity.app_users.get_user_id(call.app_id, app_user_id)
        if user_id is None:
            raise host_error("unknown_participant", "a participant is not a user of this app")
        user_ids.append(user_id)
    await service_chats.check_app_chat(host.messaging, user_ids)
    conversation, _ = await service_chats.do_open_app_chat(
        host.messaging, call.app_id, app_name, params.get("title"), user_ids
    )
    # Installed by the app itself (idempotent): its cards, presses and call events work there.
    await host.installs.installs.add_install(
        conversation["_id"], call.app_id, f"app:{call.app_id}", now_ms()
    )
    return conversation["_id"]


async def deliver_call_event(
    host: MiniappHost, name: str, call_doc: dict[str, Any], extra: dict[str, Any]
) -> None:
    """``call.started`` / ``call.ended`` to the app that started ``call_doc`` (the call
    service's ``app_events``), in the background like every event. Delivered even if the app
    was since removed from the chat: the call it started is its business until it ends."""
    origin = call_doc.get("origin") or {}
    entry = host.apps_catalogue.apps.get(origin.get("app_id"))
    if entry is None or name not in (entry.manifest.get("events") or {}).get("accepts", []):
        return
    app_id = entry.app_id
    # The invocation's user: who joined (started), else who started it, else one rung.
    user_id = extra.get("user_id") or call_doc.get("started_by") or call_doc["ring_ids"][0]
    payload: dict[str, Any] = {
        "call_id": call_doc["_id"],
        "conversation_id": call_doc["conversation_id"],
        "media": call_doc["media"],
        "title": origin.get("title"),
        "at": now_ms(),
    }
    if name == "call.started":
        payload["user_id"] = await host.identity.app_user(app_id, extra["user_id"])
    else:
        payload["outcome"] = call_doc.get("outcome")
        payload["duration_seconds"] = duration_seconds(call_doc)
        payload["reason"] = extra.get("reason")
    payload["signature"] = sign_event(await host.remote.launch_secret(app_id), payload)
    host.invoker.invoke_later(
        entry,
        user_id,
        call_doc["conversation_id"],
        "event",
        {"name": name, "payload": payload},
        host_event=True,
    )


EFFECTS = {"calls.start": start}
