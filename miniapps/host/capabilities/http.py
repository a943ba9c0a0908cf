"""``http.fetch``: outbound HTTP made by the host for the app (see ``miniapps.host.fetch``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from miniapps.host import fetch as outbound
from sdk.errors import host_error

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost


async def fetch(host: MiniappHost, call: Call, params: dict) -> dict:
    try:
        return await outbound.fetch(
            host.apps_catalogue.apps[call.app_id].manifest,
            params,
            allow_internal=host.messaging.config.development,
            resolver=host.resolver,
        )
    except outbound.FetchError as exc:
        raise host_error(exc.code, exc.message) from None
