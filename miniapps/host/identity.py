"""Who an app is and who it sees.

An app never sees a platform user id: every user it hears of is a per-app id (an HMAC of the app
and the user under a platform key kept in MongoDB), stable for that app, different for each. A
hosted app's own secret (launch tokens, signed events) is derived from the same key; each hosted
app runs as a uid of its own, allocated once and kept in MongoDB.
"""

from __future__ import annotations

import hashlib
import hmac

from miniapps.host.store.app_uids import AppUids
from miniapps.host.store.app_users import AppUsers

UID_ATTEMPTS = 50
# What an app is told for a deleted account, whoever it was: its old per-app id is never
# produced again, so no app can link anything new (an old message it reads) to what it kept.
DELETED_APP_USER = "u-deleted"


class Identity:
    def __init__(
        self, id_key: bytes, app_users: AppUsers, app_uids: AppUids, *, uid_base: int
    ) -> None:
        self._id_key = id_key
        self._uid_base = uid_base  # first uid given to an app (above any system or human one)
        self.app_users = app_users
        self.app_uids = app_uids
        # Deleted accounts (see ``forget``): loaded at start-up, told by the node that deletes.
        self.forgotten: set[str] = set()

    def app_user_id(self, app_id: str, user_id: str) -> str:
        if user_id in self.forgotten:
            return DELETED_APP_USER
        digest = hmac.new(self._id_key, f"{app_id}\0{user_id}".encode(), hashlib.sha256)
        return "u-" + digest.hexdigest()[:24]

    async def app_user(self, app_id: str, user_id: str) -> str:
        """The per-app id, remembered so the app can later name the user back to us."""
        if user_id in self.forgotten:
            return DELETED_APP_USER  # and nothing remembered: it names nobody
        app_user_id = self.app_user_id(app_id, user_id)
        await self.app_users.remember(app_user_id, app_id, user_id)
        return app_user_id

    def forget(self, user_ids: list[str]) -> None:
        """These accounts were deleted: every app sees ``DELETED_APP_USER`` for them from now
        on (their rows in ``app_users`` are deleted by ``miniapps.host.account_data``)."""
        self.forgotten.update(user_ids)

    def hosted_secret(self, app_id: str) -> str:
        return hmac.new(self._id_key, f"launch:{app_id}".encode(), hashlib.sha256).hexdigest()

    async def uid(self, app_id: str) -> int:
        """The app's own uid: claimed under a unique index, so no two apps ever share one."""
        for _ in range(UID_ATTEMPTS):
            uid = await self.app_uids.get_uid(app_id)
            if uid is not None:
                return uid
            highest = await self.app_uids.get_highest()
            await self.app_uids.add_uid(app_id, self._uid_base if highest is None else highest + 1)
        raise RuntimeError(f"could not allocate a uid for {app_id}")
