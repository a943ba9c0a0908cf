"""``app.setup``: the app's settings (as an administrator set them) and the invoking user's
roles in the app — what the runtime puts in ``ctx.config`` and ``ctx.roles``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from miniapps.host import app_config, roles

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost


async def setup(host: MiniappHost, call: Call, params: dict) -> dict:
    catalogue = host.apps_catalogue
    entry = catalogue.check_app(call.app_id)
    return {
        "config": await app_config.get_values(catalogue, entry),
        "roles": await roles.roles_of(catalogue, entry, call.user_id),
    }


EFFECTS = {"app.setup": setup}
