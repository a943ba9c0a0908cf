"""``ai.*``: the platform's model for every app (``miniapps.host.ai``). ``ai.chat`` answers a
request id at once and the completion runs in the background, its outcome delivered as the
signed host event ``ai.completed``; ``ai.cancel`` stops one of the app's running requests, from
any node. The checks, the budgets and the runner are ``host.ai``'s."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost


async def chat(host: MiniappHost, call: Call, params: dict) -> dict:
    return await host.ai.do_chat(call, params)


async def cancel(host: MiniappHost, call: Call, params: dict) -> dict:
    return await host.ai.do_cancel(call, params)


EFFECTS = {"ai.chat": chat, "ai.cancel": cancel}
