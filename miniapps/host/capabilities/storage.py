"""``storage.*``: the app's own documents, namespaced by app, within its quota — versioned
(every write moves ``version`` on), with conditional updates, atomic bounded counters, sorted
and paged ``find`` over the fields the manifest declares as indexes, and unique fields.

The rules without I/O are ``sdk._storage_rules``'s and ``sdk.filters``', shared with the
simulator so both answer alike."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from miniapps.host.store.app_storage import size_of, text_of, value_of, version_of
from sdk._capability_table import STORAGE_QUOTA_MESSAGE
from sdk._storage_rules import (
    apply_change,
    canonical,
    check_bounds,
    check_change,
    check_sort,
    counter_value,
    duplicate_value,
    field_of,
    limit_reached,
    unique_fields,
)
from sdk.capabilities import STORAGE_VALUE_MAX_BYTES
from sdk.errors import Conflict, HostError, InvalidParams, NotFound, QuotaExceeded
from sdk.filters import FilterError, FindScan, TooManyToSort
from sdk.manifest import storage_quota
from storage.mongo import now_ms

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost

ATTEMPTS = 50  # read-modify-write rounds of one call before it gives up (conflict)


def _manifest(host: MiniappHost, call: Call) -> dict:
    entry = host.apps_catalogue.apps.get(call.app_id)
    return entry.manifest if entry is not None else {}


def _sized(key: str, value: Any) -> tuple[str, int]:
    text = text_of(value)
    if len(text.encode()) > STORAGE_VALUE_MAX_BYTES:
        raise QuotaExceeded(f"a stored value is limited to {STORAGE_VALUE_MAX_BYTES} bytes")
    return text, len(text.encode()) + len(key.encode())


async def _check_quota(host: MiniappHost, call: Call, previous: int, size: int) -> None:
    """Refuse a write that would take the app past its quota (the manifest's
    ``storage.quota_bytes``, 1 MiB by default): its usage, less the ``previous`` size of the
    document it replaces, plus its ``size``.

    A guard, not an exact limit: the check reads the usage, then the write happens, so writes
    of the same app racing each other can all pass and end a little past the quota together
    (each by at most a value's 64 KiB). The usage they leave is exact all the same."""
    limit = storage_quota(_manifest(host, call))
    if await host.storage.get_used(call.app_id) - previous + size > limit:
        raise QuotaExceeded(STORAGE_QUOTA_MESSAGE.format(limit=limit))


async def _claim_unique(
    host: MiniappHost, app_id: str, fields: list[str], collection: str, key: str, old, new
) -> None:
    """Claim, for ``key``, each unique field's new value (``duplicate_value`` when another
    document has it)."""
    for field in fields:
        digest = canonical(field_of(new, field))
        if digest is None or digest == canonical(field_of(old, field)):
            continue
        now = now_ms()
        holder = await host.storage.unique.claim(app_id, collection, field, digest, key, now)
        if holder is None:
            continue
        doc = await host.storage.get_doc(app_id, collection, holder)
        held = doc is not None and canonical(field_of(value_of(doc), field)) == digest
        if not held and await host.storage.unique.take_over(
            app_id, collection, field, digest, holder, key, now
        ):
            continue
        raise duplicate_value(collection, field)


async def _release_unique(
    host: MiniappHost, app_id: str, fields: list[str], collection: str, key: str, old, new
) -> None:
    """Release the unique values ``key`` held before a write and no longer has."""
    for field in fields:
        digest = canonical(field_of(old, field))
        if digest is not None and digest != canonical(field_of(new, field)):
            await host.storage.unique.release(app_id, collection, field, digest, key)


async def get(host: MiniappHost, call: Call, params: dict) -> dict:
    doc = await host.storage.get_doc(call.app_id, params["collection"], params["key"])
    return {"value": value_of(doc) if doc else None, "version": version_of(doc)}


async def put(host: MiniappHost, call: Call, params: dict) -> dict:
    collection, key, value = params["collection"], params["key"], params["value"]
    text, size = _sized(key, value)
    doc = await host.storage.get_doc(call.app_id, collection, key)
    await _check_quota(host, call, size_of(doc), size)
    old = value_of(doc) if doc else None
    fields = unique_fields(_manifest(host, call), collection)
    await _claim_unique(host, call.app_id, fields, collection, key, old, value)
    version = await host.storage.put_value(call.app_id, collection, key, text, size, now_ms())
    await _release_unique(host, call.app_id, fields, collection, key, old, value)
    return {"version": version}


async def update(host: MiniappHost, call: Call, params: dict) -> dict:
    collection, key = params["collection"], params["key"]
    changes, removed = check_change(params)
    expected = params.get("expected_version")
    fields = unique_fields(_manifest(host, call), collection)
    for _ in range(ATTEMPTS):
        doc = await host.storage.get_doc(call.app_id, collection, key)
        if doc is None and not params["upsert"]:
            raise NotFound(f"no document {key[:64]!r} in {collection}")
        version = version_of(doc)
        if expected is not None and expected != version:
            raise Conflict(f"the document is at version {version}, not {expected}")
        old = value_of(doc) if doc else None
        new = apply_change({} if doc is None else old, changes, removed)
        text, size = _sized(key, new)
        await _check_quota(host, call, size_of(doc), size)
        await _claim_unique(host, call.app_id, fields, collection, key, old, new)
        written = await host.storage.replace_if_version(
            call.app_id, collection, key, version, text, size, now_ms()
        )
        if written is not None:
            await _release_unique(host, call.app_id, fields, collection, key, old, new)
            return {"version": written}
        if expected is not None:
            raise Conflict("the document changed meanwhile; read it and try again")
    raise Conflict("the document keeps changing; try again")


async def incr(host: MiniappHost, call: Call, params: dict) -> dict:
    collection, key, field, delta = (
        params["collection"],
        params["key"],
        params["field"],
        params["delta"],
    )
    low, high = check_bounds(params)
    if field in unique_fields(_manifest(host, call), collection):
        raise InvalidParams(f"{field} is a unique field: change it with storage.update")
    for _ in range(ATTEMPTS):
        done = await host.storage.add_to_counter(
            call.app_id, collection, key, field, delta, low, high, now_ms()
        )
        if done is not None:
            return {"value": done[0], "version": done[1]}
        doc = await host.storage.get_doc(call.app_id, collection, key)
        if doc is None:  # a new counter: {field: 0}, then counted like any other
            if not low <= delta <= high:
                raise limit_reached(f"{field} would be {delta}, outside [{low}, {high}]")
            text, size = _sized(key, {field: 0})
            await _check_quota(host, call, 0, size)
            await host.storage.add_counter(call.app_id, collection, key, field, text, size)
            continue
        counters = doc.get("counters") or {}
        current = counters[field] if field in counters else counter_value(value_of(doc), field)
        if not low <= current + delta <= high:
            raise limit_reached(f"{field} would be {current + delta}, outside [{low}, {high}]")
        if field not in counters:  # its first incr: the field becomes a counter, then retry
            value = value_of(doc)
            value[field] = current
            text = text_of(value)
            size = len(text.encode()) + len(key.encode())
            await host.storage.move_to_counter(doc, field, current, text, size)
    raise Conflict("the document keeps changing; try again")


async def delete(host: MiniappHost, call: Call, params: dict) -> dict:
    collection, key = params["collection"], params["key"]
    doc = await host.storage.delete_value(call.app_id, collection, key)
    if doc is not None:
        fields = unique_fields(_manifest(host, call), collection)
        await _release_unique(host, call.app_id, fields, collection, key, value_of(doc), None)
    return {}


async def find(host: MiniappHost, call: Call, params: dict) -> dict:
    """``storage.find``: the collection read in key order, in batches, by ``sdk.filters``'
    ``FindScan`` — within its budgets, each page's ``next`` resuming where it stopped."""
    collection = params["collection"]
    field, order = check_sort(_manifest(host, call), collection, params.get("sort"))
    try:
        scan = FindScan(
            params["filter"],
            params["limit"],
            sort_field=field,
            order=order,
            after=params.get("after"),
        )
        items = host.storage.iter_items(
            call.app_id, collection, after=scan.start_key, limit=scan.read_max
        )
        async with contextlib.aclosing(items):
            async for item in items:
                if scan.take(item):
                    break
    except FilterError as exc:  # a bad cursor, or one document too costly to match
        raise InvalidParams(str(exc)) from None
    except TooManyToSort as exc:
        raise HostError(str(exc), code=exc.code) from None
    page, after = scan.result()
    return {"items": page, "next": after}


EFFECTS = {"storage.update": update, "storage.incr": incr}
