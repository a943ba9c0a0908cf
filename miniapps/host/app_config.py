"""App configuration: the settings a platform administrator sets for a mini-program (a price
feed's API key, a flights API's endpoint), declared in its manifest's ``config``.

The admin reads them back — a secret one only as ``set: true``, never its value — and changes
them with ``do_set_config``; the admin audit records which names changed, never a value. The
app reads the current values through ``app.setup`` (``ctx.config`` in the SDK), over its
private pipe: nothing reaches its environment, another app, or a log line. A change applies
to the next invocation (the runtime asks for them before each handler), on every node.
"""

from __future__ import annotations

from typing import Any

from messaging.actions.admin import record
from messaging.context import Messaging
from miniapps.host.catalogue import Catalogue
from miniapps.host.registry import AppEntry
from sdk._capability_services import CONFIG_VALUE_MAX
from storage.errors import AppError
from storage.mongo import now_ms


def get_config(entry: AppEntry, values: dict[str, str]) -> list[dict[str, Any]]:
    """Each declared setting with ``set``, and its ``value`` unless it is a secret."""
    settings = []
    for item in entry.manifest.get("config", []):
        setting = {**item, "set": item["name"] in values}
        if not item["secret"]:
            setting["value"] = values.get(item["name"])
        settings.append(setting)
    return settings


async def get_app_config(catalogue: Catalogue, app_id: str) -> dict[str, Any]:
    entry = catalogue.check_app(app_id)
    values = await catalogue.app_config.get_values(app_id)
    return {"app_id": app_id, "config": get_config(entry, values)}


async def get_values(catalogue: Catalogue, entry: AppEntry) -> dict[str, str]:
    """What the app itself sees: the values of its declared settings that are set."""
    declared = {item["name"] for item in entry.manifest.get("config", [])}
    if not declared:
        return {}
    values = await catalogue.app_config.get_values(entry.app_id)
    return {name: value for name, value in values.items() if name in declared}


def check_config_update(entry: AppEntry, values: object) -> dict[str, str | None]:
    """``values``: declared name → a string to set, or null to clear. Nothing is written
    unless every entry is valid."""
    if not isinstance(values, dict) or not values:
        raise AppError("invalid_field", "values: an object of setting name → value", status=400)
    declared = {item["name"] for item in entry.manifest.get("config", [])}
    for name, value in values.items():
        if name not in declared:
            raise AppError(
                "unknown_setting",
                f"{entry.app_id} declares no setting {name!r}"
                + (f" (declared: {', '.join(sorted(declared))})" if declared else ""),
                status=400,
            )
        if value is not None and (
            not isinstance(value, str) or not value.strip() or len(value) > CONFIG_VALUE_MAX
        ):
            raise AppError(
                "invalid_field",
                f"values.{name}: a string of 1-{CONFIG_VALUE_MAX} characters, or null to clear",
                status=400,
            )
    return values


async def do_set_config(
    catalogue: Catalogue, messaging: Messaging, admin_id: str, app_id: str, values: object
) -> dict[str, Any]:
    entry = catalogue.check_app(app_id)
    clean = check_config_update(entry, values)
    now = now_ms()
    for name, value in clean.items():
        if value is None:
            await catalogue.app_config.remove_value(app_id, name)
        else:
            await catalogue.app_config.set_value(app_id, name, value, admin_id, now)
    # Which settings changed, never their values (a secret must not land in the audit).
    changed = {"set": sorted(n for n, v in clean.items() if v is not None)}
    changed["cleared"] = sorted(n for n, v in clean.items() if v is None)
    await record(messaging, admin_id, "miniapp.config", {"app_id": app_id, **changed})
    return await get_app_config(catalogue, app_id)
