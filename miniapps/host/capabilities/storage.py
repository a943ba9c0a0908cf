"""``storage.*``: the app's own documents, namespaced by app, within its quota."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sdk.capabilities import FIND_SCAN_MAX, STORAGE_QUOTA_BYTES
from sdk.errors import InvalidParams, QuotaExceeded
from sdk.filters import FilterError, select
from storage.mongo import now_ms

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost


async def get(host: MiniappHost, call: Call, params: dict) -> dict:
    _, value = await host.storage.get_value(call.app_id, params["collection"], params["key"])
    return {"value": value}


async def put(host: MiniappHost, call: Call, params: dict) -> dict:
    collection, key = params["collection"], params["key"]
    text = json.dumps(params["value"], separators=(",", ":"), allow_nan=False)
    size = len(text.encode()) + len(key.encode())
    previous = await host.storage.get_size(call.app_id, collection, key)
    if await host.storage.get_used(call.app_id) - previous + size > STORAGE_QUOTA_BYTES:
        raise QuotaExceeded(f"this app's storage is limited to {STORAGE_QUOTA_BYTES} bytes")
    await host.storage.put_value(call.app_id, collection, key, text, size, now_ms())
    return {}


async def delete(host: MiniappHost, call: Call, params: dict) -> dict:
    await host.storage.delete_value(call.app_id, params["collection"], params["key"])
    return {}


async def find(host: MiniappHost, call: Call, params: dict) -> dict:
    items = await host.storage.get_items(call.app_id, params["collection"], limit=FIND_SCAN_MAX)
    try:
        return {"items": select(params["filter"], items, params["limit"])}
    except FilterError as exc:  # matching ran out of its comparison budget
        raise InvalidParams(str(exc)) from None
