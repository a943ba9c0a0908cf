"""The catalogue: which mini-programs exist on this server and which an admin switched off.

Hosted apps are discovered from their folders at start-up (``registry.discover``); remote apps
join when registered (``remote.Remote``). The set of disabled apps lives in MongoDB and every
node reloads it when any node changes it (pub/sub ``miniapps.disabled``).
"""

from __future__ import annotations

from miniapps.host.registry import AppEntry
from miniapps.host.store.app_config import AppConfigStore
from miniapps.host.store.app_roles import AppRoles
from miniapps.host.store.disabled_apps import DisabledApps
from miniapps.host.store.installs import Installs
from sdk.addressing import MESSAGE_RECEIVED
from storage.errors import AppError
from storage.mongo import now_ms
from storage.pubsub import PubSub

DISABLED_CHANNEL = "miniapps.disabled"  # "an admin switched an app on or off": reload the set


class Catalogue:
    def __init__(
        self, apps: dict[str, AppEntry], disabled_apps: DisabledApps, installs: Installs
    ) -> None:
        self.apps = apps
        self.disabled_apps = disabled_apps
        self.installs = installs
        # Apps an admin switched off (loaded by ``load_disabled``, kept fresh across nodes).
        self.disabled: set[str] = set()
        self._pubsub: PubSub | None = None
        # What an admin set up per app: settings (``app_config``) and people's roles.
        db = installs.collection.database
        self.app_config = AppConfigStore(db)
        self.app_roles = AppRoles(db)

    def views(self, sandbox: str) -> list[dict]:
        return [
            {
                **entry.view(),
                "sandbox": sandbox,
                "enabled": app_id not in self.disabled and entry.unavailable is None,
                **self.flags(app_id),
            }
            for app_id, entry in self.apps.items()
        ]

    def flags(self, app_id: str) -> dict[str, bool]:
        """What a client offers for an app: "Chat" (``takes_messages``: it accepts
        ``message.received``, so ``POST /api/v1/miniapps/{id}/chat`` opens a service chat one
        can write in) and a "Read history" switch (``wants_history``: it uses
        ``messages.history``, which needs the chat's grant ``messages.read_history``)."""
        entry = self.apps.get(app_id)
        if entry is None:
            return {"takes_messages": False, "wants_history": False}
        accepts = (entry.manifest.get("events") or {}).get("accepts") or []
        return {
            "takes_messages": MESSAGE_RECEIVED in accepts,
            "wants_history": "messages.history" in entry.permissions,
        }

    def unavailable(self) -> dict[str, str]:
        """Apps that cannot run on this server, each with its reason (``/readyz``)."""
        return {a: e.unavailable for a, e in self.apps.items() if e.unavailable is not None}

    def check_app(self, app_id: object) -> AppEntry:
        entry = self.apps.get(app_id) if isinstance(app_id, str) else None
        if entry is None:
            raise AppError("app_not_found", "no such mini-program", status=404)
        return entry

    def check_enabled(self, entry: AppEntry) -> None:
        if entry.unavailable is not None:
            raise AppError(
                "app_unavailable",
                f"{entry.manifest['name']} cannot run on this server ({entry.unavailable})",
                status=503,
            )
        if entry.app_id in self.disabled:
            raise AppError(
                "app_disabled",
                f"{entry.manifest['name']} is disabled by the administrator",
                status=403,
            )

    async def check_active(self, app_id: str, conversation_id: str) -> AppEntry:
        """The app, when it may act in this conversation now: it exists, an admin has not
        switched it off, and the conversation has it installed."""
        entry = self.check_app(app_id)
        self.check_enabled(entry)
        if not await self.installs.is_installed(conversation_id, app_id):
            raise AppError(
                "app_not_installed", "this conversation does not have that app", status=404
            )
        return entry

    # --- switched off by an admin ---------------------------------------------------------

    async def load_disabled(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub
        self.disabled = await self.disabled_apps.get_app_ids()
        await pubsub.subscribe(DISABLED_CHANNEL, self._on_disabled_message)
        # A switch published while this node's subscriber was away is lost: re-read them all.
        pubsub.on_reconnect(self._reload_disabled)

    async def set_enabled(self, app_id: str, enabled: bool, by: str, reason: str) -> bool:
        """Switch an app on or off on every node; True when that changed something."""
        self.check_app(app_id)
        if enabled:
            changed = await self.disabled_apps.enable(app_id)
        else:
            changed = await self.disabled_apps.disable(app_id, by, reason, now_ms())
        await self._on_disabled_message({})
        if self._pubsub is not None:
            await self._pubsub.publish(DISABLED_CHANNEL, {"app_id": app_id})
        return changed

    async def _on_disabled_message(self, message: dict) -> None:
        await self._reload_disabled()

    async def _reload_disabled(self) -> None:
        self.disabled = await self.disabled_apps.get_app_ids()
