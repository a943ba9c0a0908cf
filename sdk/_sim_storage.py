"""The simulator's ``storage.*``: the app's documents in memory, versioned like the host's
(every write moves ``version`` on, 1 for a new document), with ``storage.update``'s
conditional writes, ``storage.incr``'s bounded counters, unique fields and sorted, paged
``storage.find`` — the rules are ``sdk._storage_rules``' and ``sdk.filters``', the host's own.
Mixed into ``sdk.simulator.Simulator`` (through ``sdk._sim_effects.EffectsMixin``).
"""

from __future__ import annotations

import bisect
import copy
from typing import Any

from sdk._capability_table import STORAGE_QUOTA_MESSAGE
from sdk._sim_world import SimCall
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
from sdk.capabilities import STORAGE_VALUE_MAX_BYTES, json_size
from sdk.errors import Conflict, HostError, InvalidParams, NotFound, QuotaExceeded
from sdk.filters import FilterError, FindScan, TooManyToSort


class _StorageUsage:
    """Each stored document's size (key + JSON value bytes) and their sum, kept up to date by
    every write, so a write's quota check does not measure every document again (which made
    writing n documents cost n² measures)."""

    def __init__(self, storage: dict[str, dict[str, Any]]) -> None:
        self.sizes = {
            (collection, key): len(key.encode()) + json_size(value)
            for collection, items in storage.items()
            for key, value in items.items()
        }
        self.total = sum(self.sizes.values())

    def size(self, collection: str, key: str) -> int:
        return self.sizes.get((collection, key), 0)

    def set(self, collection: str, key: str, size: int | None) -> None:
        """The document's new size (None: deleted)."""
        self.total -= self.sizes.pop((collection, key), 0)
        if size is not None:
            self.sizes[(collection, key)] = size
            self.total += size


class StorageMixin:
    """Versioned documents, counters, unique fields and pages, in memory."""

    # provided by the Simulator
    manifest: dict[str, Any]
    storage_quota_bytes: int
    _storage: dict[str, dict[str, Any]]

    @property
    def _storage_versions(self) -> dict[tuple[str, str], int]:
        versions = self.__dict__.get("_storage_version_table")
        if versions is None:
            versions = self.__dict__["_storage_version_table"] = {}
        return versions

    @property
    def _storage_usage(self) -> _StorageUsage:
        usage = self.__dict__.get("_storage_usage_table")
        if usage is None:
            usage = self.__dict__["_storage_usage_table"] = _StorageUsage(self._storage)
        return usage

    def storage_version(self, collection: str, key: str) -> int:
        """The version of a stored document (0 when there is none)."""
        if key not in self._storage.get(collection, {}):
            return 0
        return self._storage_versions.get((collection, key), 0)

    def _storage_write(self, collection: str, key: str, value: Any) -> int:
        """Check the value's size, the quota and unique fields, then store it; its version."""
        size = json_size(value)
        if size > STORAGE_VALUE_MAX_BYTES:
            raise QuotaExceeded(f"a stored value is limited to {STORAGE_VALUE_MAX_BYTES} bytes")
        items = self._storage.setdefault(collection, {})
        usage = self._storage_usage
        if usage.total - usage.size(collection, key) + len(key.encode()) + size > (
            self.storage_quota_bytes
        ):
            raise QuotaExceeded(STORAGE_QUOTA_MESSAGE.format(limit=self.storage_quota_bytes))
        for field in unique_fields(self.manifest, collection):
            digest = canonical(field_of(value, field))
            if digest is None:
                continue
            for other, stored in items.items():
                if other != key and canonical(field_of(stored, field)) == digest:
                    raise duplicate_value(collection, field)
        items[key] = copy.deepcopy(value)
        usage.set(collection, key, len(key.encode()) + size)
        version = self.storage_version(collection, key) + 1
        self._storage_versions[(collection, key)] = version
        return version

    def _sim_storage_get(self, call: SimCall, params: dict) -> dict:
        collection, key = params["collection"], params["key"]
        value = self._storage.get(collection, {}).get(key)
        return {"value": copy.deepcopy(value), "version": self.storage_version(collection, key)}

    def _sim_storage_put(self, call: SimCall, params: dict) -> dict:
        version = self._storage_write(params["collection"], params["key"], params["value"])
        return {"version": version}

    def _sim_storage_delete(self, call: SimCall, params: dict) -> dict:
        self._storage.get(params["collection"], {}).pop(params["key"], None)
        self._storage_usage.set(params["collection"], params["key"], None)
        self._storage_versions.pop((params["collection"], params["key"]), None)
        return {}

    def _sim_storage_update(self, call: SimCall, params: dict) -> dict:
        collection, key = params["collection"], params["key"]
        changes, removed = check_change(params)
        items = self._storage.get(collection, {})
        if key not in items and not params["upsert"]:
            raise NotFound(f"no document {key[:64]!r} in {collection}")
        version = self.storage_version(collection, key)
        expected = params.get("expected_version")
        if expected is not None and expected != version:
            raise Conflict(f"the document is at version {version}, not {expected}")
        value = apply_change(items.get(key, {}), changes, removed)
        return {"version": self._storage_write(collection, key, value)}

    def _sim_storage_incr(self, call: SimCall, params: dict) -> dict:
        collection, key, field, delta = (
            params["collection"],
            params["key"],
            params["field"],
            params["delta"],
        )
        low, high = check_bounds(params)
        if field in unique_fields(self.manifest, collection):
            raise InvalidParams(f"{field} is a unique field: change it with storage.update")
        items = self._storage.get(collection, {})
        current = counter_value(items[key], field) if key in items else 0
        if not low <= current + delta <= high:
            raise limit_reached(f"{field} would be {current + delta}, outside [{low}, {high}]")
        if key not in items:  # a new counter, like the host's: {field: 0}, then counted
            self._storage_write(collection, key, {field: 0})
            self._storage_versions[(collection, key)] = 0
            items = self._storage[collection]
        items[key][field] = current + delta
        self._storage_usage.set(collection, key, len(key.encode()) + json_size(items[key]))
        version = self.storage_version(collection, key) + 1
        self._storage_versions[(collection, key)] = version
        return {"value": current + delta, "version": version}

    def _sim_storage_find(self, call: SimCall, params: dict) -> dict:
        collection = params["collection"]
        field, order = check_sort(self.manifest, collection, params.get("sort"))
        stored = self._storage.get(collection, {})
        try:
            scan = FindScan(
                params["filter"],
                params["limit"],
                sort_field=field,
                order=order,
                after=params.get("after"),
            )
            # The host's walk: key order, from the first key after the cursor's, at most
            # ``read_max`` documents; values are handed over as they are reached.
            keys = sorted(stored)
            first = 0 if scan.start_key is None else bisect.bisect_right(keys, scan.start_key)
            for key in keys[first : first + scan.read_max]:
                item = {
                    "key": key,
                    "value": stored[key],
                    "version": self.storage_version(collection, key),
                }
                if scan.take(item):
                    break
        except FilterError as exc:
            raise InvalidParams(str(exc)) from None
        except TooManyToSort as exc:
            raise HostError(str(exc), code=exc.code) from None
        page, after = scan.result()
        return {"items": copy.deepcopy(page), "next": after}

    EFFECTS: dict[str, Any] = {
        "storage.get": _sim_storage_get,
        "storage.put": _sim_storage_put,
        "storage.delete": _sim_storage_delete,
        "storage.find": _sim_storage_find,
        "storage.update": _sim_storage_update,
        "storage.incr": _sim_storage_incr,
    }
