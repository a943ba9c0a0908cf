"""Rules of the service-storage capabilities (``storage.update``, ``storage.incr``, sorted and
paged ``storage.find``, unique fields) that need no I/O, shared by the host
(``miniapps/host/capabilities/storage.py``) and the simulator (``sdk/_sim_storage.py``) so both
answer alike, with the same messages.

Indexes are declared in the manifest::

    "storage": {"indexes": [{"collection": "products", "field": "sku", "unique": true},
                            {"collection": "products", "field": "price"}]}

``storage.find`` sorts only by a declared field; a ``unique`` field refuses a second document of
the collection holding the same value (``duplicate_value``; a missing or null value is not
counted, like a sparse unique index).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from sdk.errors import HostError, InvalidParams

COUNTER_LIMIT = 2**53  # a counter stays within ±2^53: exact in JSON and in every client
FIELD_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")  # storage.incr's field
FIELD_NAME_MAX = 256  # characters of a field name in storage.update's set/unset
UPDATE_FIELDS_MAX = 64  # fields of one storage.update (set and unset together)


def limit_reached(message: str) -> HostError:
    return HostError(message, code="limit_reached")


def duplicate_value(collection: str, field: str) -> HostError:
    return HostError(
        f"another document of {collection} already has this {field} (unique)",
        code="duplicate_value",
    )


def declared_indexes(manifest: dict[str, Any], collection: str) -> dict[str, bool]:
    """``{field: unique}`` of the indexes the manifest declares on ``collection``."""
    found: dict[str, bool] = {}
    for index in (manifest.get("storage") or {}).get("indexes", []):
        if index.get("collection") == collection:
            found[index["field"]] = found.get(index["field"], False) or bool(index.get("unique"))
    return found


def unique_fields(manifest: dict[str, Any], collection: str) -> list[str]:
    return sorted(f for f, unique in declared_indexes(manifest, collection).items() if unique)


def check_sort(manifest: dict[str, Any], collection: str, sort: Any) -> tuple[str | None, str]:
    """``(field, order)`` of ``storage.find``'s ``sort`` (``(None, "asc")`` without one);
    ``InvalidParams`` unless the field is declared as an index of the collection."""
    if sort is None:
        return None, "asc"
    field, order = sort.get("field"), sort.get("order", "asc")
    if set(sort) - {"field", "order"} or not isinstance(field, str):
        raise InvalidParams("sort must be {field, order}")
    if order not in ("asc", "desc"):
        raise InvalidParams('sort.order must be "asc" or "desc"')
    if field not in declared_indexes(manifest, collection):
        raise InvalidParams(
            f"sort.field {field[:64]!r} is not an index of {collection} "
            '(declare it in the manifest: "storage": {"indexes": [...]})'
        )
    return field, order


def check_change(params: dict) -> tuple[dict[str, Any], list[str]]:
    """``storage.update``'s ``set`` and ``unset``, checked (``InvalidParams``)."""
    changes = params.get("set") or {}
    removed = params.get("unset") or []
    if len(changes) + len(removed) > UPDATE_FIELDS_MAX:
        raise InvalidParams(f"set and unset may name at most {UPDATE_FIELDS_MAX} fields")
    for name in [*changes, *removed]:
        if not isinstance(name, str) or not 0 < len(name) <= FIELD_NAME_MAX:
            raise InvalidParams(f"field names must be strings of 1-{FIELD_NAME_MAX} characters")
    if set(changes) & set(removed):
        raise InvalidParams("a field cannot be both in set and in unset")
    return changes, removed


def apply_change(value: Any, changes: dict[str, Any], removed: list[str]) -> dict[str, Any]:
    """The stored object ``value`` with top-level fields set and removed (a new dict)."""
    if not isinstance(value, dict):
        raise InvalidParams("storage.update changes objects; this value is not one")
    updated = {k: v for k, v in value.items() if k not in removed}
    updated.update(changes)
    return updated


def check_bounds(params: dict) -> tuple[int, int]:
    """``storage.incr``'s ``(min, max)`` (max defaults to the counter limit)."""
    if not FIELD_PATTERN.match(params["field"]):
        raise InvalidParams(
            "field must be 1-64 characters of [A-Za-z0-9_], not starting with a digit"
        )
    low = params["min"]
    high = COUNTER_LIMIT if params.get("max") is None else params["max"]
    if low > high:
        raise InvalidParams("min must not be greater than max")
    return low, high


def counter_value(value: Any, field: str) -> int:
    """The integer ``field`` of a stored object (0 when absent); ``InvalidParams`` otherwise."""
    if not isinstance(value, dict):
        raise InvalidParams("storage.incr counts in objects; this value is not one")
    current = value.get(field, 0)
    if isinstance(current, bool) or not isinstance(current, int):
        raise InvalidParams(f"{field} is not an integer")
    if not -COUNTER_LIMIT <= current <= COUNTER_LIMIT:
        raise InvalidParams(f"{field} is beyond ±2^53")
    return current


def canonical(value: Any) -> str | None:
    """A digest naming ``value`` for uniqueness (1 and 1.0 alike); None for null/missing."""
    if value is None:
        return None

    def normal(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, dict):
            return {k: normal(v) for k, v in item.items()}
        if isinstance(item, list):
            return [normal(v) for v in item]
        return item

    text = json.dumps(normal(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def field_of(value: Any, field: str) -> Any:
    """``field`` (a dotted path) of a stored value, None when missing."""
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value
