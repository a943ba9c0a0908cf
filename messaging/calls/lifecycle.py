"""A call's life: start (ringing) → accept (active) → leave / end / decline / ring timeout (ended).

Every step is a conditional single-document update on the ``calls`` document (or an insert
decided by a unique id), so concurrent accepts, hang-ups and timeouts on any node end in one
state; the step's events are emitted after it is stored. Who is in a call is decided by a
seat (``call_seats``: one per person, at most ``CALL_MAX_PARTICIPANTS`` per call), taken by one
insert before the participant is written and released by whoever takes them out. Ending a call
releases the conversation's ``active_calls`` lock and the call's seats, closes its media and
posts its record message.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from messaging.actions.conversations import check_member
from messaging.calls.records import do_record, duration_seconds
from messaging.events import event
from messaging.membership import Membership
from storage.errors import AppError
from storage.mongo import iso, new_id, now_ms

if TYPE_CHECKING:
    # The service runs this module's scans; its actions take the service (which holds the
    # messaging context) explicitly.
    from messaging.calls.service import CallService

log = logging.getLogger(__name__)

MEDIA = ("audio", "video")
STALE_LOCK_MS = 10_000  # a lock without its call document this old is a crashed start


def call_view(call: dict[str, Any], participants: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": call["_id"],
        "conversation_id": call["conversation_id"],
        "media": call["media"],
        "caller_id": call["caller_id"],
        "state": call["state"],
        "created_at": iso(call["created_at"]),
        "answered_at": iso(call.get("answered_at")),
        "ended_at": iso(call.get("ended_at")),
        "outcome": call.get("outcome"),
        "duration_seconds": duration_seconds(call),
        # A call a mini-program started: {app_id, name, title}; None for a person's call.
        "origin": call.get("origin"),
        "participants": [
            {
                "user_id": p["user_id"],
                "state": p["state"],
                "audio": bool(p.get("audio")),
                "video": bool(p.get("video")),
            }
            for p in participants
        ],
    }


async def view_of(service: CallService, call: dict[str, Any]) -> dict[str, Any]:
    return call_view(call, await service.participants.get_all(call["_id"]))


def call_not_found() -> AppError:
    return AppError("call_not_found", "there is no such call", status=404)


async def check_call(service: CallService, call_id: str, user_id: str) -> tuple[dict, Membership]:
    """The call and its conversation's membership, for a member of that conversation."""
    call = await service.calls.get_call(call_id)
    if call is None:
        raise call_not_found()
    membership = await check_member(service.ctx, call["conversation_id"], user_id)
    return call, membership


def check_live(call: dict[str, Any]) -> None:
    if call["state"] == "ended":
        raise AppError("call_ended", "this call has ended", status=409)


async def check_joined(service: CallService, call: dict[str, Any], user_id: str) -> dict[str, Any]:
    check_live(call)
    participant = await service.participants.get(call["_id"], user_id)
    if participant is None or participant["state"] != "joined":
        raise AppError("not_in_call", "you are not in this call; accept it first", status=409)
    return participant


async def _emit(service: CallService, type_: str, audience: dict, payload: dict) -> None:
    await service.ctx.events.emit(event(type_, audience, payload))


async def _stop_ringing_elsewhere(
    service: CallService, user_id: str, session_id: str | None, call_id: str, reason: str
) -> None:
    """Tell the user's other devices to stop ringing (the one that acted knows)."""
    for session in await service.ctx.sessions.get_active_sessions(user_id):
        if session["_id"] != session_id:
            payload = {"call_id": call_id, "reason": reason}
            await _emit(service, "call.ring_stopped", {"session": session["_id"]}, payload)


async def _claim_conversation(
    service: CallService, conversation_id: str, call_id: str, now: int
) -> None:
    active = service.active
    if await active.claim(conversation_id, call_id, now):
        return
    lock = await active.get(conversation_id)
    if lock is not None:
        current = await service.calls.get_call(lock["call_id"])
        stale = (current is not None and current["state"] == "ended") or (
            current is None and now - lock["created_at"] > STALE_LOCK_MS
        )
        if not stale:
            raise AppError(
                "call_busy",
                "this conversation already has a call; join it instead",
                status=409,
                details={"call_id": lock["call_id"]},
            )
        await active.release(conversation_id, lock["call_id"])
    if not await active.claim(conversation_id, call_id, now):
        raise AppError("call_busy", "this conversation already has a call", status=409)


def _already_in_call(other: str) -> AppError:
    return AppError(
        "already_in_call",
        "you are in another call; leave it first",
        status=409,
        details={"call_id": other},
    )


def _check_not_in_call(user_id: str, in_calls: dict[str, str]) -> None:
    """One call at a time per person (a quick read; ``take_seat`` is what decides)."""
    other = in_calls.get(user_id)
    if other is not None:
        raise _already_in_call(other)


async def _seat_is_stale(service: CallService, seat: dict[str, Any], now: int) -> bool:
    """A seat left by a crash: its call ended, or its holder never became (or is no longer) a
    participant and the seat is older than any join in progress."""
    call = await service.calls.get_call(seat["call_id"])
    if call is not None and call["state"] == "ended":
        return True
    if now - seat["taken_at"] <= STALE_LOCK_MS:
        return False
    if call is None:
        return True
    participant = await service.participants.get(seat["call_id"], seat["_id"])
    return participant is None or participant["state"] != "joined"


async def take_seat(service: CallService, call_id: str, user_id: str, now: int) -> None:
    """Seat a person in a call: one insert that unique indexes decide (``call_seats``), so at
    most ``CALL_MAX_PARTICIPANTS`` people are in a call and a person is in one call, whatever
    accepts and starts race on any node. Raises ``call_full``, ``already_in_call`` or
    ``already_joined`` (this call, another device)."""
    limit = service.ctx.config.call_max_participants
    stale_removed = 0
    seat = 0
    taken = await service.seats.taken(call_id)
    while seat < limit:
        if seat in taken:
            seat += 1
            continue
        if await service.seats.take(call_id, seat, user_id, now):
            return
        held = await service.seats.get(user_id)
        if held is None:
            seat += 1  # someone else took this seat: try the next one
            continue
        if stale_removed < 3 and await _seat_is_stale(service, held, now):
            await service.seats.release_stale(held)
            stale_removed += 1
            continue  # the same seat again
        if held["call_id"] == call_id:
            raise AppError("already_joined", "you are in this call on another device", status=409)
        raise _already_in_call(held["call_id"])
    raise AppError(
        "call_full",
        "this call is full",
        status=409,
        details={"limit": limit},
    )


async def do_start(
    service: CallService, user_id: str, session_id: str | None, conversation_id: str, media: str
) -> dict:
    membership = await check_member(service.ctx, conversation_id, user_id)
    others = [m for m in membership.member_ids if m != user_id]
    if not others:
        raise AppError("nobody_to_call", "nobody else is in this conversation", status=409)
    if membership.type == "direct" and await service.ctx.blocks.is_blocked_either_way(
        user_id, others[0]
    ):
        raise AppError("blocked", "you cannot call this user", status=403)
    now = now_ms()
    in_calls = await service.participants.get_in_calls([user_id, *others])
    _check_not_in_call(user_id, in_calls)
    # People already in another call are not rung (WeChat's "busy"); with nobody left: busy.
    others = [m for m in others if m not in in_calls]
    if not others:
        raise AppError(
            "user_busy",
            "the person you are calling is in another call"
            if membership.type == "direct"
            else "everyone else is in another call",
            status=409,
        )
    call_id = new_id()
    await _claim_conversation(service, conversation_id, call_id, now)
    try:
        await take_seat(service, call_id, user_id, now)
    except BaseException:
        await service.active.release(conversation_id, call_id)
        raise
    call = {
        "_id": call_id,
        "conversation_id": conversation_id,
        "conversation_type": membership.type,
        "media": media,
        "caller_id": user_id,
        "state": "ringing",
        "created_at": now,
        "ring_expires_at": now + int(service.ctx.config.call_ring_timeout * 1000),
        "heartbeat_at": now,
    }
    try:
        await service.calls.add_call(call)
        await service.participants.join(call_id, user_id, session_id, media, now)
    except BaseException:
        await service.seats.release(call_id, user_id)
        await service.active.release(conversation_id, call_id)
        raise
    service.hosted.add(call_id)
    view = await view_of(service, call)
    await _emit(service, "call.ring", {"users": others}, {"call": view})
    await record(service, call, final=False)  # "Video call started" in the chat
    return {"call": view}


async def do_start_for_app(
    service: CallService,
    conversation_id: str,
    ring_ids: list[str] | None,
    media: str,
    origin: dict[str, Any],
    started_by: str | None = None,
) -> dict:
    """A call a mini-program starts (``calls.start``): its caller is the app's bot
    (``app:<id>``), which never joins; ``ring_ids`` (default: every member) ring and each joins
    by accepting (``do_accept``), so nobody is put in a call without a tap. The same rules as a
    person's call: one call per conversation (``call_busy``), people in another call are not
    rung (all of them: ``user_busy``), at most the seats of a call join. ``origin``
    (``{app_id, name, title}``) is in the call object and its ring; the app is told
    ``call.started`` / ``call.ended`` through ``service.app_events``. ``started_by``: the user
    whose invocation of the app started it (kept for those events, never shown)."""
    membership = await service.ctx.membership.get(conversation_id)
    if membership is None:
        raise AppError("not_found", "there is no such conversation", status=404)
    members = list(membership.member_ids)
    if ring_ids is None:
        ring_ids = members
    elif any(u not in members for u in ring_ids):
        raise AppError("not_a_member", "a participant is not a member of this conversation")
    if not ring_ids:
        raise AppError("nobody_to_call", "nobody is in this conversation", status=409)
    in_calls = await service.participants.get_in_calls(ring_ids)
    ring_ids = [u for u in ring_ids if u not in in_calls]
    if not ring_ids:
        raise AppError("user_busy", "everyone to call is in another call", status=409)
    now = now_ms()
    call_id = new_id()
    await _claim_conversation(service, conversation_id, call_id, now)
    call = {
        "_id": call_id,
        "conversation_id": conversation_id,
        "conversation_type": membership.type,
        "media": media,
        "caller_id": f"app:{origin['app_id']}",
        "origin": origin,
        "ring_ids": ring_ids,
        "started_by": started_by,
        "state": "ringing",
        "created_at": now,
        "ring_expires_at": now + int(service.ctx.config.call_ring_timeout * 1000),
        "heartbeat_at": now,
    }
    try:
        await service.calls.add_call(call)
    except BaseException:
        await service.active.release(conversation_id, call_id)
        raise
    service.hosted.add(call_id)
    view = await view_of(service, call)
    await _emit(service, "call.ring", {"users": ring_ids}, {"call": view})
    await record(service, call, final=False)
    return {"call": view}


async def _tell_app(service: CallService, name: str, call: dict[str, Any], extra: dict) -> None:
    """``call.started`` / ``call.ended`` to the app that started ``call`` (none for people's
    calls); a failure to deliver is logged, never the call's problem."""
    if not call.get("origin") or service.app_events is None:
        return
    try:
        await service.app_events(name, call, extra)
    except Exception:
        log.exception("telling the app about call %s failed", call["_id"])


async def do_accept(
    service: CallService, user_id: str, session_id: str | None, call_id: str
) -> dict:
    call, membership = await check_call(service, call_id, user_id)
    check_live(call)
    existing = await service.participants.get(call_id, user_id)
    if existing is not None and existing["state"] == "joined":
        if existing.get("session_id") == session_id:
            return {"call": await view_of(service, call)}  # a retry
        raise AppError("already_joined", "you are in this call on another device", status=409)
    now = now_ms()
    await take_seat(service, call_id, user_id, now)
    try:
        joined = await service.participants.join(call_id, user_id, session_id, call["media"], now)
    except BaseException:
        await service.seats.release(call_id, user_id)
        raise
    if joined is None:
        await service.seats.release(call_id, user_id)
        raise AppError("already_joined", "you are in this call on another device", status=409)
    answered = None
    if call["state"] == "ringing":
        answered = await service.calls.answer(call_id, now)
        if answered is not None:
            await record(service, answered, final=False)  # "in progress"
            await _tell_app(service, "call.started", answered, {"user_id": user_id})
    # Read after the seat and the join: if the call is live now, whoever ends it later also
    # releases them (``finish``); if it ended meanwhile, we undo them ourselves.
    call = answered or await service.calls.get_call(call_id)
    if call is None or call["state"] == "ended":
        await service.participants.leave(call_id, user_id, now)
        await service.seats.release(call_id, user_id)
        raise AppError("call_ended", "this call has ended", status=409)
    service.hosted.add(call_id)
    await _emit(
        service,
        "call.participant_joined",
        {"users": membership.member_ids},
        {"call_id": call_id, "conversation_id": call["conversation_id"], "user_id": user_id},
    )
    await _stop_ringing_elsewhere(service, user_id, session_id, call_id, "answered_elsewhere")
    return {"call": await view_of(service, call)}


async def do_decline(
    service: CallService, user_id: str, session_id: str | None, call_id: str
) -> dict:
    call, membership = await check_call(service, call_id, user_id)
    check_live(call)
    if user_id == call["caller_id"]:
        raise AppError("not_allowed", "you started this call: leave or end it", status=403)
    if not await service.participants.decline(call_id, user_id, now_ms()):
        raise AppError("already_answered", "you already answered or declined this call", status=409)
    await _emit(
        service,
        "call.declined",
        {"users": membership.member_ids},
        {"call_id": call_id, "conversation_id": call["conversation_id"], "user_id": user_id},
    )
    await _stop_ringing_elsewhere(service, user_id, session_id, call_id, "declined_elsewhere")
    if call["state"] == "ringing":
        # Everyone who could answer declined: the call is over.
        declined = {
            p["user_id"]
            for p in await service.participants.get_all(call_id)
            if p["state"] == "declined"
        }
        rung = set(call.get("ring_ids") or membership.member_ids)  # an app's call: its ring
        if rung - {call["caller_id"]} <= declined:
            await finish(service, call_id, "declined")
    return {}


async def do_leave(
    service: CallService, user_id: str, call_id: str, *, reason: str = "left"
) -> dict:
    call, _ = await check_call(service, call_id, user_id)
    await check_joined(service, call, user_id)
    await remove_participant(service, call, user_id, reason)
    return {}


async def remove_participant(service: CallService, call: dict, user_id: str, reason: str) -> None:
    """Take someone out of a call (they left, or their connection stayed lost); the call ends
    when its caller leaves before anyone answered, when nobody is left, or, in a direct chat,
    when one person is left."""
    call_id = call["_id"]
    if not await service.participants.leave(call_id, user_id, now_ms()):
        return  # another leave (or the end) took them out: it releases the seat
    await service.seats.release(call_id, user_id)
    await service.media.remove(call_id, user_id)
    membership = await service.ctx.membership.get(call["conversation_id"])
    audience = membership.member_ids if membership else [user_id]
    await _emit(
        service,
        "call.participant_left",
        {"users": audience},
        {
            "call_id": call_id,
            "conversation_id": call["conversation_id"],
            "user_id": user_id,
            "reason": reason,
        },
    )
    call = await service.calls.get_call(call_id) or call
    remaining = await service.participants.count_joined(call_id)
    if call["state"] == "ringing" and user_id == call["caller_id"]:
        await finish(service, call_id, "caller_left")
    elif remaining == 0 or (call["conversation_type"] == "direct" and remaining < 2):
        await finish(service, call_id, "everyone_left")


async def do_end(service: CallService, user_id: str, call_id: str) -> dict:
    call, membership = await check_call(service, call_id, user_id)
    await check_joined(service, call, user_id)
    if (
        membership.type != "direct"
        and user_id != call["caller_id"]
        and not membership.is_admin(user_id)
    ):
        raise AppError(
            "not_allowed",
            "only the caller or a group admin ends a group call; leave it",
            status=403,
        )
    await finish(service, call_id, "hangup")
    return {}


def outcome_of(call: dict[str, Any], reason: str) -> str:
    if call.get("answered_at"):
        return "completed"
    if reason == "declined":
        return "declined"
    if reason in {"hangup", "caller_left", "everyone_left"}:
        return "cancelled"
    return "missed"  # ring timeout, server restart, lost node


async def finish(service: CallService, call_id: str, reason: str) -> dict | None:
    """End a live call once (whoever's conditional update wins does the rest)."""
    call = await service.calls.get_call(call_id)
    if call is None or call["state"] == "ended":
        return None
    now = now_ms()
    ended = await service.calls.end(call_id, outcome_of(call, reason), reason, now)
    if ended is None:
        return None
    await service.active.release(ended["conversation_id"], call_id)
    await service.participants.leave_all(call_id, now)
    await service.seats.release_call(call_id)
    await service.media.close_call(call_id)
    service.hosted.discard(call_id)
    message = await record(service, ended)
    membership = await service.ctx.membership.get(ended["conversation_id"])
    if membership is not None:
        view = await view_of(service, ended)
        payload = {"call": view, "reason": reason, "message_id": message and message["id"]}
        await _emit(service, "call.ended", {"users": membership.member_ids}, payload)
    await _tell_app(service, "call.ended", ended, {"reason": reason})
    return ended


async def record(service: CallService, call: dict[str, Any], *, final: bool = True) -> dict | None:
    """Post or redraw the call's message; ``final`` (the call ended) marks it recorded."""
    try:
        message = await do_record(service.ctx, call)
    except Exception:
        # An ended call stays unrecorded and the next scan redraws it (same client_msg_id).
        log.exception("recording call %s failed", call["_id"])
        return None
    if final:
        await service.calls.mark_recorded(call["_id"], message["id"])
    return message


async def do_media_state(
    service: CallService, user_id: str, call_id: str, audio: bool, video: bool
) -> dict:
    call, membership = await check_call(service, call_id, user_id)
    await check_joined(service, call, user_id)
    await service.participants.set_media_state(call_id, user_id, audio, video)
    payload = {"call_id": call_id, "user_id": user_id, "audio": audio, "video": video}
    await _emit(service, "call.media_state", {"users": membership.member_ids}, payload)
    return {}


# --- background: ring timeouts, lost participants and nodes, recovery --------------------------


async def do_expire_rings(service: CallService) -> int:
    """Calls nobody answered in time end as missed; an answered group call stops ringing for
    the members who did not answer. Each call's timeout is taken once, by any node."""
    handled = 0
    for call in await service.calls.get_ring_expired(now_ms()):
        claimed = await service.calls.claim_ring_timeout(call["_id"], now_ms())
        if claimed is None:
            continue
        handled += 1
        if claimed["state"] == "ringing":
            await finish(service, call["_id"], "timeout")
        elif claimed["state"] == "active":
            answered = {p["user_id"] for p in await service.participants.get_all(call["_id"])}
            membership = await service.ctx.membership.get(call["conversation_id"])
            waiting = [
                m for m in (membership.member_ids if membership else []) if m not in answered
            ]
            if waiting:
                payload = {"call_id": call["_id"], "reason": "timeout"}
                await _emit(service, "call.ring_stopped", {"users": waiting}, payload)
    return handled


async def do_remove_dropped(service: CallService) -> int:
    """Participants whose device stayed disconnected past the grace period leave the call."""
    before = now_ms() - int(service.ctx.config.call_grace_period * 1000)
    removed = 0
    for participant in await service.participants.get_dropped_before(before):
        call = await service.calls.get_call(participant["call_id"])
        if call is None or call["state"] == "ended":
            continue
        await remove_participant(service, call, participant["user_id"], "connection_lost")
        removed += 1
    return removed


async def do_end_orphaned(service: CallService, *, heartbeat_before: int | None) -> int:
    """End live calls whose media node is gone (``heartbeat_before``) or, at start-up on a
    single node, every live call left from the previous run; post unrecorded records."""
    ended = 0
    for call in await service.calls.get_live(heartbeat_before=heartbeat_before):
        if call["_id"] in service.hosted:
            continue
        if await finish(service, call["_id"], "server_restart"):
            ended += 1
    for call in await service.calls.get_unrecorded():
        await record(service, call)
    return ended
