"""Which apps a conversation has: group owners and admins choose a group's apps; either member
of a direct chat may. Every member's devices hear of a change (``conversation.apps``)."""

from __future__ import annotations

from messaging.actions.conversations import check_member
from messaging.context import Messaging
from messaging.events import event
from miniapps.host.catalogue import Catalogue
from miniapps.host.registry import AppEntry
from storage.errors import AppError
from storage.mongo import now_ms


class InstallDesk:
    def __init__(self, messaging: Messaging, catalogue: Catalogue) -> None:
        self.messaging = messaging
        self.catalogue = catalogue
        self.installs = catalogue.installs

    async def check_chooser(self, user_id: str, conversation_id: str, app_id: object):
        membership = await check_member(self.messaging, conversation_id, user_id)
        entry = self.catalogue.check_app(app_id)
        if membership.type == "group" and not membership.is_admin(user_id):
            raise AppError(
                "not_allowed", "only the owner and admins choose a group's apps", status=403
            )
        return membership, entry

    async def _announce(self, membership, conversation_id: str) -> None:
        app_ids = await self.installs.get_app_ids(conversation_id)
        await self.messaging.events.emit(
            event(
                "conversation.apps",
                {"users": membership.member_ids},
                {"conversation_id": conversation_id, "app_ids": app_ids},
            )
        )

    async def do_install(self, user_id: str, conversation_id: str, app_id: object) -> dict:
        membership, entry = await self.check_chooser(user_id, conversation_id, app_id)
        self.catalogue.check_enabled(entry)
        await self.installs.add_install(conversation_id, entry.app_id, user_id, now_ms())
        await self._announce(membership, conversation_id)
        return entry.view()

    async def do_uninstall(self, user_id: str, conversation_id: str, app_id: object) -> None:
        membership, entry = await self.check_chooser(user_id, conversation_id, app_id)
        if not await self.installs.remove_install(conversation_id, entry.app_id):
            raise AppError(
                "app_not_installed", "this conversation does not have that app", status=404
            )
        await self._announce(membership, conversation_id)

    async def get_installed(self, user_id: str, conversation_id: str) -> list[dict]:
        await check_member(self.messaging, conversation_id, user_id)
        ids = await self.installs.get_app_ids(conversation_id)
        return [self.catalogue.apps[a].view() for a in ids if a in self.catalogue.apps]

    async def get_active(self, conversation_id: str) -> list[AppEntry]:
        """The apps of this conversation that exist and are on, oldest install first."""
        ids = await self.installs.get_app_ids(conversation_id)
        return [
            self.catalogue.apps[a]
            for a in ids
            if a in self.catalogue.apps and a not in self.catalogue.disabled
        ]
