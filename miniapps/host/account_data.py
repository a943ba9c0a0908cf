"""The mini-program host's part in leaving with your data (``messaging.actions.data_export`` and
``account_deletion``, which know nothing of apps):

- the export gets ``miniapps/consents.json``: what the person let each app do, and the apps that
  know them (with the per-app id each knows them by);
- deleting the account forgets them here: their rows in ``app_users`` (an app naming that id
  is answered as for nobody) and their consents are deleted, and the host's ``Identity`` will
  never produce their per-app ids again (``DELETED_APP_USER``), so no app can link them anew.
  Every node learns it: from the database at start-up and on a pub/sub reconnect, and over
  pub/sub from the node that deletes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from messaging.context import Messaging
from miniapps.host.store.app_users import AppUsers
from miniapps.host.store.consents import Consents
from storage.mongo import iso

if TYPE_CHECKING:
    from miniapps.host.host import MiniappHost

FORGET_CHANNEL = "identity.forget"
SECTION = "miniapps/consents.json"


def register_export(messaging: Messaging) -> None:
    """The export's ``miniapps/consents.json``, from the database alone (a Celery worker, which
    hosts no apps, builds exports too)."""
    consents, app_users = Consents(messaging.db), AppUsers(messaging.db)

    async def section(user: dict[str, Any]) -> dict[str, bytes]:
        rows = await consents.get_user_consents(user["_id"])
        known = await app_users.get_user_app_ids(user["_id"])
        value = {
            "consents": [
                {
                    "app_id": r["app_id"],
                    "scope": r["scope"],
                    "granted": bool(r["granted"]),
                    "at": iso(r.get("at")),
                }
                for r in rows
            ],
            "apps_that_know_you": sorted(known, key=lambda a: a["app_id"]),
        }
        return {SECTION: json.dumps(value, ensure_ascii=False, indent=1).encode()}

    messaging.export_sections.append(section)


async def attach(host: MiniappHost) -> None:
    """Wire the host in (at start-up, after ``host.load``): the export section, the deletion
    hook, and every deleted account forgotten by this node's ``Identity``."""
    messaging = host.messaging
    identity = host.identity

    async def reload() -> None:
        identity.forget(await messaging.users.get_deleted_ids())

    async def forgotten_elsewhere(message: dict[str, Any]) -> None:
        user_id = message.get("user_id")
        if isinstance(user_id, str):
            identity.forget([user_id])

    async def forget(user: dict[str, Any]) -> None:
        user_id = user["_id"]
        identity.forget([user_id])  # first: nothing new is remembered from now on
        await messaging.pubsub.publish(FORGET_CHANNEL, {"user_id": user_id})
        await identity.app_users.forget_user(user_id)
        await host.consents.delete_user_consents(user_id)

    await reload()
    await messaging.pubsub.subscribe(FORGET_CHANNEL, forgotten_elsewhere)
    messaging.pubsub.on_reconnect(reload)  # what was published while away is lost
    register_export(messaging)
    messaging.deletion_hooks.append(forget)
