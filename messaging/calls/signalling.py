"""WebRTC signalling between a participant and the media relay: offer/answer, ICE candidates.

The client offers (its own tracks) and gets the relay's answer in the ack; the relay offers
back (``call.offer`` to that device) whenever other participants' tracks are added, and the
client answers with ``call.answer``. Bad SDP or candidates are refused with a clear error and
change nothing: the call and the participant's existing connection go on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from messaging.calls.lifecycle import check_call, check_joined, check_live
from messaging.calls.media import SignallingError
from storage.errors import AppError

if TYPE_CHECKING:
    from messaging.calls.service import CallService


def _refused(exc: SignallingError) -> AppError:
    return AppError(exc.code, exc.message, status=400)


async def do_offer(
    service: CallService, user_id: str, session_id: str | None, call_id: str, sdp: str
) -> dict:
    call, _ = await check_call(service, call_id, user_id)
    participant = await check_joined(service, call, user_id)
    session = session_id or participant.get("session_id") or ""
    try:
        answer = await service.media.handle_offer(call_id, user_id, session, sdp)
    except SignallingError as exc:
        raise _refused(exc) from None
    # Read again after the connection is in place: if they left (or the call ended) meanwhile,
    # the leave may have closed their media before this connection existed, so close it here;
    # otherwise whoever takes them out later closes it.
    call = await service.calls.get_call(call_id)
    participant = await service.participants.get(call_id, user_id)
    still_in = participant is not None and participant["state"] == "joined"
    if call is None or call["state"] == "ended" or not still_in:
        await service.media.remove(call_id, user_id)
        if call is not None:
            check_live(call)
        raise AppError("not_in_call", "you are not in this call; accept it first", status=409)
    # This device now carries the participant's media (a reconnect, or another device).
    await service.participants.set_session(call_id, user_id, session)
    service.hosted.add(call_id)
    return {"answer": {"type": "answer", "sdp": answer}}


async def do_answer(service: CallService, user_id: str, call_id: str, sdp: str) -> dict:
    call, _ = await check_call(service, call_id, user_id)
    await check_joined(service, call, user_id)
    try:
        await service.media.handle_answer(call_id, user_id, sdp)
    except SignallingError as exc:
        raise _refused(exc) from None
    return {}


async def do_ice(
    service: CallService, user_id: str, call_id: str, candidate: dict[str, Any]
) -> dict:
    call, _ = await check_call(service, call_id, user_id)
    await check_joined(service, call, user_id)
    try:
        await service.media.handle_ice(call_id, user_id, candidate)
    except SignallingError as exc:
        raise _refused(exc) from None
    return {}
