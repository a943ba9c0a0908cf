"""Client -> server Socket.IO events of calls (registered on ``socket_api``; docs/realtime.md,
"Calls"). Events that act for one device (start, accept, decline, offer) get its session id."""

from __future__ import annotations

from gateway.schemas import obj, string
from gateway.socket_events import ID, socket_api
from messaging.calls import lifecycle, signalling
from messaging.context import Messaging
from storage.errors import AppError

CALL = {"call_id": ID}
SDP = string(64 * 1024, 1)


def _calls(ctx: Messaging):
    if ctx.calls is None:
        raise AppError("calls_unavailable", "calls are not running on this server", status=503)
    return ctx


@socket_api.on(
    "call.start",
    summary="Start a voice or video call in a conversation: the other members' devices ring",
    schema=obj(
        {"conversation_id": ID, "media": {"enum": list(lifecycle.MEDIA)}},
        ["conversation_id", "media"],
    ),
    device=True,
)
async def call_start(ctx: Messaging, user_id: str, data: dict, session_id: str) -> dict:
    return await lifecycle.do_start(
        _calls(ctx), user_id, session_id, data["conversation_id"], data["media"]
    )


@socket_api.on(
    "call.accept",
    summary="Answer a ringing call, or join a group call in progress, on this device",
    schema=obj(CALL, ["call_id"]),
    device=True,
)
async def call_accept(ctx: Messaging, user_id: str, data: dict, session_id: str) -> dict:
    return await lifecycle.do_accept(_calls(ctx), user_id, session_id, data["call_id"])


@socket_api.on(
    "call.decline",
    summary="Decline a ringing call (your other devices stop ringing)",
    schema=obj(CALL, ["call_id"]),
    device=True,
)
async def call_decline(ctx: Messaging, user_id: str, data: dict, session_id: str) -> dict:
    return await lifecycle.do_decline(_calls(ctx), user_id, session_id, data["call_id"])


@socket_api.on("call.leave", summary="Leave a call", schema=obj(CALL, ["call_id"]))
async def call_leave(ctx: Messaging, user_id: str, data: dict) -> dict:
    return await lifecycle.do_leave(_calls(ctx), user_id, data["call_id"])


@socket_api.on(
    "call.end",
    summary="End a call for everyone (direct chats: anyone in it; groups: caller or admins)",
    schema=obj(CALL, ["call_id"]),
)
async def call_end(ctx: Messaging, user_id: str, data: dict) -> dict:
    return await lifecycle.do_end(_calls(ctx), user_id, data["call_id"])


@socket_api.on(
    "call.offer",
    summary="Send this device's WebRTC offer to the media relay; the ack carries the answer",
    schema=obj({**CALL, "sdp": SDP}, ["call_id", "sdp"]),
    device=True,
)
async def call_offer(ctx: Messaging, user_id: str, data: dict, session_id: str) -> dict:
    return await signalling.do_offer(_calls(ctx), user_id, session_id, data["call_id"], data["sdp"])


@socket_api.on(
    "call.answer",
    summary="Answer the media relay's offer (a call.offer event)",
    schema=obj({**CALL, "sdp": SDP}, ["call_id", "sdp"]),
)
async def call_answer(ctx: Messaging, user_id: str, data: dict) -> dict:
    return await signalling.do_answer(_calls(ctx), user_id, data["call_id"], data["sdp"])


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
)
async def call_ice(ctx: Messaging, user_id: str, data: dict) -> dict:
    return await signalling.do_ice(_calls(ctx), user_id, data["call_id"], data["candidate"])


@socket_api.on(
    "call.media_state",
    summary="Tell the others your microphone and camera state (mute, camera off)",
    schema=obj(
        {**CALL, "audio": {"type": "boolean"}, "video": {"type": "boolean"}},
        ["call_id", "audio", "video"],
    ),
)
async def call_media_state(ctx: Messaging, user_id: str, data: dict) -> dict:
    return await lifecycle.do_media_state(
        _calls(ctx), user_id, data["call_id"], data["audio"], data["video"]
    )
