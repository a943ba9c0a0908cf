"""What an operator does with mini-programs from the admin panel: list them with their process
status, switch one off and on (on every node, kept across restarts).

The gateway checks the admin role before any of this runs. A change is written to the admin
audit (``messaging.actions.admin.record``) after it succeeded, like every other admin action.
"""

from __future__ import annotations

from typing import Any, Protocol

from messaging.actions.admin import check_reason, record
from messaging.context import Messaging
from storage.errors import AppError


class AdminHost(Protocol):
    """The part of the mini-program host an admin drives (``MiniappHost`` has it)."""

    @property
    def apps(self) -> dict[str, Any]: ...

    @property
    def degraded(self) -> bool: ...

    def catalogue(self) -> list[dict[str, Any]]: ...

    def status(self) -> dict[str, dict[str, Any]]: ...

    async def set_enabled(self, app_id: str, enabled: bool, by: str, reason: str) -> bool: ...


def get_miniapps(host: AdminHost) -> dict[str, Any]:
    """The catalogue, each app with ``enabled`` and its process status (None: not started on
    this node), and whether the sandbox isolates apps."""
    status = host.status()
    return {
        "miniapps": [{**app, "process": status.get(app["id"])} for app in host.catalogue()],
        "sandbox": "degraded" if host.degraded else "isolated",
    }


async def do_set_app_enabled(
    host: AdminHost,
    messaging: Messaging,
    admin_id: str,
    app_id: str,
    enabled: bool,
    reason: object,
) -> dict[str, Any]:
    text = check_reason(reason)
    if app_id not in host.apps:
        raise AppError("app_not_found", "no such mini-program", status=404)
    if not await host.set_enabled(app_id, enabled, admin_id, text):
        state = "enabled" if enabled else "disabled"
        raise AppError(f"already_{state}", f"this mini-program is already {state}", status=409)
    action = "miniapp.enable" if enabled else "miniapp.disable"
    await record(messaging, admin_id, action, {"app_id": app_id}, text)
    return next(a for a in get_miniapps(host)["miniapps"] if a["id"] == app_id)
