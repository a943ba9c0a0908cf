"""``group_state.*``: one versioned document per (app, conversation), pushed live to members."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from messaging.events import event
from sdk.errors import Conflict
from storage.mongo import now_ms

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost


async def get_state(host: MiniappHost, call: Call, params: dict) -> dict:
    version, state = await host.group_state.get_state(call.app_id, call.conversation_id)
    return {"version": version, "state": state}


async def set_state(host: MiniappHost, call: Call, params: dict) -> dict:
    state = params["state"]
    text = json.dumps(state, separators=(",", ":"))
    version = await host.group_state.set_state(
        call.app_id, call.conversation_id, text, params["expected_version"], now_ms()
    )
    if version is None:
        raise Conflict("the group state changed; read it and try again")
    membership = await host.messaging.membership.get(call.conversation_id)
    if membership is not None:
        await host.messaging.events.emit(
            event(
                "miniapp.state",
                {"users": membership.member_ids},
                {
                    "conversation_id": call.conversation_id,
                    "app_id": call.app_id,
                    "version": version,
                    "state": state,
                },
            )
        )
    return {"version": version}
