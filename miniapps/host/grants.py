"""What a conversation lets an app read beyond what is addressed to it (privacy mode): today the
grant ``messages.read_history``, which ``messages.history`` needs.

A group's owner and admins grant it (in a direct chat either person, in a service chat its one
person), for one app in one chat, and take it back at any time. Every member sees who did: a
system message in the chat ("Ann let Assistant read this chat's history") and the event
``conversation.app_grant``. A grant lasts while the app stays installed: an app removed and
added again must be granted again (a grant older than the install does not count).
"""

from __future__ import annotations

from typing import Any

from messaging.actions.conversations import check_member
from messaging.actions.system import post_system
from messaging.context import Messaging
from messaging.events import event
from miniapps.host.catalogue import Catalogue
from miniapps.host.registry import AppEntry
from miniapps.host.store.conversation_grants import ConversationGrants
from sdk._capability_services import HISTORY_GRANT
from storage.errors import AppError
from storage.mongo import iso, now_ms

GRANTS = (HISTORY_GRANT,)  # what may be granted
GRANT_NEEDS = {HISTORY_GRANT: "messages.history"}  # the capability each grant is for
# The system message each change posts (messaging.actions.system templates).
SYSTEM_EVENTS = {True: "app_history_granted", False: "app_history_revoked"}


def grant_view(grant: dict[str, Any]) -> dict[str, Any]:
    return {
        "conversation_id": grant["conversation_id"],
        "app_id": grant["app_id"],
        "grant": grant["grant"],
        "granted_by": grant["granted_by"],
        "granted_at": iso(grant["granted_at"]),
    }


class GrantDesk:
    def __init__(
        self, messaging: Messaging, catalogue: Catalogue, grants: ConversationGrants
    ) -> None:
        self.messaging = messaging
        self.catalogue = catalogue
        self.grants = grants

    async def check_granter(
        self, user_id: str, conversation_id: str, app_id: object, grant: str, *, granting: bool
    ) -> AppEntry:
        """May ``user_id`` grant (or revoke) ``grant`` to ``app_id`` in this conversation?
        ``invalid_field`` (no such grant), ``not_a_member``, ``app_not_found``; to grant, the
        app must also be on and installed here (``app_disabled``, ``app_not_installed``) and
        use what it is granted (``not_requested``); ``not_allowed`` for a group member who is
        not its owner or an admin."""
        if grant not in GRANTS:
            raise AppError(
                "invalid_field",
                f"{grant!r} is not a grant (only {', '.join(GRANTS)})",
                details={"field": "grant"},
            )
        membership = await check_member(self.messaging, conversation_id, user_id)
        entry = self.catalogue.check_app(app_id)
        if granting:
            entry = await self.catalogue.check_active(entry.app_id, conversation_id)
            if GRANT_NEEDS[grant] not in entry.permissions:
                raise AppError(
                    "not_requested",
                    f"{entry.manifest['name']} does not read chat history (no "
                    f"{GRANT_NEEDS[grant]} in its permissions)",
                    status=409,
                )
        if membership.type == "group" and not membership.is_admin(user_id):
            raise AppError(
                "not_allowed",
                "only the owner and admins let an app read a group's history",
                status=403,
            )
        return entry

    async def do_grant(
        self, user_id: str, conversation_id: str, app_id: object, grant: str
    ) -> dict[str, Any]:
        """Grant it (idempotent: granting again keeps the first grant and tells nobody)."""
        entry = await self.check_granter(user_id, conversation_id, app_id, grant, granting=True)
        doc, created = await self.grants.add_grant(
            conversation_id, entry.app_id, grant, user_id, now_ms()
        )
        if created:
            await self._announce(user_id, conversation_id, entry, grant, granted=True)
        return grant_view(doc)

    async def do_revoke(self, user_id: str, conversation_id: str, app_id: object, grant: str):
        entry = await self.check_granter(user_id, conversation_id, app_id, grant, granting=False)
        if not await self.grants.remove_grant(conversation_id, entry.app_id, grant):
            raise AppError("grant_not_found", "this chat has not granted that", status=404)
        await self._announce(user_id, conversation_id, entry, grant, granted=False)

    async def get_grants(self, user_id: str, conversation_id: str, app_id: object) -> list[dict]:
        """The grants ``app_id`` has in this conversation (any member may look)."""
        await check_member(self.messaging, conversation_id, user_id)
        entry = self.catalogue.check_app(app_id)
        return [
            grant_view(g)
            for g in await self.grants.get_grants(conversation_id, entry.app_id)
            if await self._current(g)
        ]

    async def has_grant(self, conversation_id: str, app_id: str, grant: str) -> bool:
        found = await self.grants.get_grant(conversation_id, app_id, grant)
        return found is not None and await self._current(found)

    async def _current(self, grant: dict[str, Any]) -> bool:
        # Made since the app was (last) added: removing an app ends what it was granted.
        install = await self.catalogue.installs.get_install(
            grant["conversation_id"], grant["app_id"]
        )
        return install is not None and grant["granted_at"] >= install["added_at"]

    async def _announce(
        self, user_id: str, conversation_id: str, entry: AppEntry, grant: str, *, granted: bool
    ) -> None:
        """Every member sees who let which app read the chat, or stopped it: a system message
        (kept in the history) and ``conversation.app_grant`` for clients showing the grants."""
        name = entry.manifest["name"]
        await post_system(
            self.messaging,
            conversation_id,
            user_id,
            SYSTEM_EVENTS[granted],
            title=name,
            app_id=entry.app_id,
        )
        membership = await self.messaging.membership.get(conversation_id)
        audience = membership.member_ids if membership is not None else [user_id]
        await self.messaging.events.emit(
            event(
                "conversation.app_grant",
                {"users": audience},
                {
                    "conversation_id": conversation_id,
                    "app_id": entry.app_id,
                    "app_name": name,
                    "grant": grant,
                    "granted": granted,
                    "by": user_id,
                },
            )
        )
