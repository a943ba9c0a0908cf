"""Roles inside a mini-program: ``merchant``, ``practitioner``, ``instructor`` … — declared in
its manifest's ``roles``, granted to a person by a platform administrator (audited), seen by
the app as the invoker's ``ctx.roles`` (through ``app.setup``). A role the manifest no longer
declares is kept in storage but no longer given to the app.
"""

from __future__ import annotations

from typing import Any

from messaging.actions.admin import record
from messaging.context import Messaging
from miniapps.host.catalogue import Catalogue
from miniapps.host.registry import AppEntry
from storage.errors import AppError
from storage.mongo import iso, now_ms


def declared_roles(entry: AppEntry) -> list[str]:
    return [role["name"] for role in entry.manifest.get("roles", [])]


def check_role(catalogue: Catalogue, app_id: str, role: object) -> AppEntry:
    entry = catalogue.check_app(app_id)
    declared = declared_roles(entry)
    if not isinstance(role, str) or role not in declared:
        raise AppError(
            "unknown_role",
            f"{app_id} declares no role {role!r}"
            + (f" (declared: {', '.join(declared)})" if declared else ""),
            status=404,
        )
    return entry


async def check_grant(
    catalogue: Catalogue, messaging: Messaging, app_id: str, role: object, user_id: str
) -> AppEntry:
    entry = check_role(catalogue, app_id, role)
    if await messaging.users.get_user(user_id) is None:
        raise AppError("user_not_found", "no such user", status=404)
    return entry


async def do_grant_role(
    catalogue: Catalogue,
    messaging: Messaging,
    admin_id: str,
    app_id: str,
    role: str,
    user_id: str,
) -> bool:
    """Give ``user_id`` the role; True when they did not have it (the admin audit says so)."""
    await check_grant(catalogue, messaging, app_id, role, user_id)
    added = await catalogue.app_roles.add_grant(app_id, role, user_id, admin_id, now_ms())
    if added:
        await record(
            messaging,
            admin_id,
            "miniapp.role_grant",
            {"app_id": app_id, "role": role, "user_id": user_id},
        )
    return added


async def do_revoke_role(
    catalogue: Catalogue,
    messaging: Messaging,
    admin_id: str,
    app_id: str,
    role: str,
    user_id: str,
) -> None:
    check_role(catalogue, app_id, role)
    if not await catalogue.app_roles.remove_grant(app_id, role, user_id):
        raise AppError("role_not_granted", "that person does not have this role", status=404)
    await record(
        messaging,
        admin_id,
        "miniapp.role_revoke",
        {"app_id": app_id, "role": role, "user_id": user_id},
    )


async def get_roles(catalogue: Catalogue, messaging: Messaging, app_id: str) -> dict[str, Any]:
    """The declared roles, each with the people who have it."""
    entry = catalogue.check_app(app_id)
    grants = await catalogue.app_roles.get_grants(app_id)
    users = {
        u["_id"]: u for u in await messaging.users.get_users(list({g["user_id"] for g in grants}))
    }
    roles = []
    for role in entry.manifest.get("roles", []):
        members = [
            {
                "id": g["user_id"],
                "username": users.get(g["user_id"], {}).get("username", ""),
                "granted_by": g["by"],
                "granted_at": iso(g["at"]),
            }
            for g in grants
            if g["role"] == role["name"]
        ]
        roles.append({**role, "users": members})
    return {"app_id": app_id, "roles": roles}


async def roles_of(catalogue: Catalogue, entry: AppEntry, user_id: str | None) -> list[str]:
    """The person's roles in the app, only those its manifest declares now."""
    declared = declared_roles(entry)
    if not declared or not user_id:
        return []
    granted = await catalogue.app_roles.get_roles(entry.app_id, user_id)
    return [role for role in granted if role in declared]
