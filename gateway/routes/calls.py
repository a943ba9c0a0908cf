"""Calls over REST: the STUN/TURN servers a client's peer connection should use."""

from __future__ import annotations

from aiohttp import web

from gateway.api import Api
from gateway.keys import CONFIG
from gateway.schemas import obj

api = Api("calls", "Voice and video calls (signalling is on the socket: docs/realtime.md)")

ICE_SERVER = obj(
    {
        "urls": {"type": "array", "items": {"type": "string"}},
        "username": {"type": "string"},
        "credential": {"type": "string"},
    },
    ["urls"],
)


@api.get(
    "/api/v1/calls/ice-servers",
    summary="ICE servers for RTCPeerConnection({iceServers}); empty: host candidates only",
    response=obj({"ice_servers": {"type": "array", "items": ICE_SERVER}}, ["ice_servers"]),
)
async def get_ice_servers(request: web.Request) -> dict:
    return {"ice_servers": [dict(server) for server in request.app[CONFIG].ice_servers]}
