"""Client -> server Socket.IO events of calls (registered on ``socket_api``; docs/realtime.md,
"Calls"). Each takes the node's ``CallService`` (``uses=(CALLS,)``); events that act for one
device (start, accept, decline, offer) also get its session id."""

from __future__ import annotations

from gateway.keys import CALLS
from gateway.schemas import obj, string
from gateway.socket_api import ID, socket_api
from messaging.calls import lifecycle, signalling
from messaging.calls.service import CallService

CALL = {"call_id": ID}
SDP = string(64 * 1024, 1)


@socket_api.on(
    "call.start",
    summary="Start a voice or video call in a conversation: the other members' devices ring",
    schema=obj(
        {"conversation_id": ID, "media": {"enum": list(lifecycle.MEDIA)}},
        ["conversation_id", "media"],
    ),
    uses=(CALLS,),
    device=True,
)
async def call_start(calls: CallService, user_id: str, data: dict, session_id: str) -> dict:
    return await lifecycle.do_start(
        calls, user_id, session_id, data["conversation_id"], data["media"]
    )


@socket_api.on(
    "call.accept",
    summary="Answer a ringing call, or join a group call in progress, on this device",
    schema=obj(CALL, ["call_id"]),
    uses=(CALLS,),
    device=True,
)
async def call_accept(calls: CallService, user_id: str, data: dict, session_id: str) -> dict:
    return await lifecycle.do_accept(calls, user_id, session_id, data["call_id"])


@socket_api.on(
    "call.decline",
    summary="Decline a ringing call (your other devices stop ringing)",
    schema=obj(CALL, ["call_id"]),
    uses=(CALLS,),
    device=True,
)
async def call_decline(calls: CallService, user_id: str, data: dict, session_id: str) -> dict:
    return await lifecycle.do_decline(calls, user_id, session_id, data["call_id"])


@socket_api.on("call.leave", summary="Leave a call", schema=obj(CALL, ["call_id"]), uses=(CALLS,))
async def call_leave(calls: CallService, user_id: str, data: dict) -> dict:
    return await lifecycle.do_leave(calls, user_id, data["call_id"])


@socket_api.on(
    "call.end",
    summary="End a call for everyone (direct chats: anyone in it; groups: caller or admins)",
    schema=obj(CALL, ["call_id"]),
    uses=(CALLS,),
)
async def call_end(calls: CallService, user_id: str, data: dict) -> dict:
    return await lifecycle.do_end(calls, user_id, data["call_id"])


@socket_api.on(
    "call.offer",
    summary="Send this device's WebRTC offer to the media relay; the ack carries the answer",
    schema=obj({**CALL, "sdp": SDP}, ["call_id", "sdp"]),
    uses=(CALLS,),
    device=True,
)
async def call_offer(calls: CallService, user_id: str, data: dict, session_id: str) -> dict:
    return await signalling.do_offer(calls, user_id, session_id, data["call_id"], data["sdp"])


@socket_api.on(
    "call.answer",
    summary="Answer the media relay's offer (a call.offer event)",
    schema=obj({**CALL, "sdp": SDP}, ["call_id", "sdp"]),
    uses=(CALLS,),
)
async def call_answer(calls: CallService, user_id: str, data: dict) -> dict:
    return await signalling.do_answer(calls, user_id, data["call_id"], data["sdp"])


@socket_api.on(
    "call.ice",
    summary="Send one ICE candidate (trickle) to the media relay",
    schema=obj(
        {
            **CALL,
            "candidate": obj(
                {
                    "candidate": string(1024),
                    "sdpMid": {"type": ["string", "null"], "maxLength": 64},
                    "sdpMLineIndex": {"type": ["integer", "null"], "minimum": 0, "maximum": 1024},
                    "usernameFragment": {"type": ["string", "null"], "maxLength": 256},
                },
                ["candidate"],
            ),
        },
        ["call_id", "candidate"],
    ),
    uses=(CALLS,),
)
async def call_ice(calls: CallService, user_id: str, data: dict) -> dict:
    return await signalling.do_ice(calls, user_id, data["call_id"], data["candidate"])


@socket_api.on(
    "call.media_state",
    summary="Tell the others your microphone and camera state (mute, camera off)",
    schema=obj(
        {**CALL, "audio": {"type": "boolean"}, "video": {"type": "boolean"}},
        ["call_id", "audio", "video"],
    ),
    uses=(CALLS,),
)
async def call_media_state(calls: CallService, user_id: str, data: dict) -> dict:
    return await lifecycle.do_media_state(
        calls, user_id, data["call_id"], data["audio"], data["video"]
    )
