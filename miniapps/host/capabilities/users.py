"""``users.profile``: the invoking user's name and avatar, after they granted the scope."""

from __future__ import annotations

from typing import TYPE_CHECKING

from messaging.actions.accounts import user_view
from sdk.errors import NotFound

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost


async def profile(host: MiniappHost, call: Call, params: dict) -> dict:
    user = await host.messaging.users.get_user(call.user_id)
    if user is None:
        raise NotFound("the user no longer exists")
    view = user_view(user)
    return {
        "id": call.app_user_id,
        "display_name": view["display_name"],
        "avatar_url": view["avatar_url"],
    }
