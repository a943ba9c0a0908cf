"""``events.emit``: the host delivers a declared event to every other app that accepts it.

Apps never call each other, and each recipient sees only its own per-app id for the user. Only
apps that the conversation has installed, and that are on, receive it (the invoker checks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sdk.capabilities import check_emit

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost


async def emit(host: MiniappHost, call: Call, params: dict) -> dict:
    name, payload = params["name"], params["payload"]
    check_emit(host.apps_catalogue.apps[call.app_id].manifest, name, call.depth)
    for entry in await host.installs.get_active(call.conversation_id):
        accepts = entry.manifest.get("events", {}).get("accepts", [])
        if entry.app_id != call.app_id and name in accepts:
            host.invoker.invoke_later(
                entry,
                call.user_id,
                call.conversation_id,
                "event",
                {"name": name, "payload": payload},
                depth=call.depth + 1,
            )
    return {}
