"""The safe subset of MongoDB query filters that ``storage.find`` accepts (PROTOCOL.md), and an
in-memory matcher for it (the simulator's storage).

Allowed: equality on fields of the value (dotted paths reach inside), ``$eq $ne $gt $gte $lt
$lte $in $nin $exists $not`` on a field, ``$and $or`` combining filters. Never ``$where``,
``$function``, ``$accumulator``, ``$expr`` or any other operator: server-side code and
unbounded expressions stay out of reach of apps.
"""

from __future__ import annotations

from typing import Any

FIELD_OPERATORS = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$not"}
LOGICAL_OPERATORS = {"$and", "$or"}
MAX_DEPTH = 8
MAX_IN_VALUES = 100


class FilterError(ValueError):
    """A filter outside the safe subset; the message names where (``filter.$or[1].age``)."""


def validate_filter(query: Any, *, path: str = "filter", depth: int = 0) -> None:
    """Raise ``FilterError`` unless ``query`` is within the safe subset."""
    if depth > MAX_DEPTH:
        raise FilterError(f"{path}: nested more than {MAX_DEPTH} levels")
    if not isinstance(query, dict):
        raise FilterError(f"{path}: must be an object")
    for key, condition in query.items():
        where = f"{path}.{key}"
        if not isinstance(key, str) or not key:
            raise FilterError(f"{path}: field names must be non-empty strings")
        if key in LOGICAL_OPERATORS:
            if not isinstance(condition, list) or not condition:
                raise FilterError(f"{where}: must be a non-empty list of filters")
            for index, part in enumerate(condition):
                validate_filter(part, path=f"{where}[{index}]", depth=depth + 1)
        elif key.startswith("$"):
            raise FilterError(f"{where}: operator {key} is not allowed")
        else:
            if any(part.startswith("$") or not part for part in key.split(".")):
                raise FilterError(f"{where}: not a valid field path")
            _validate_condition(condition, where, depth + 1)


def _is_operator_object(condition: Any) -> bool:
    return isinstance(condition, dict) and any(
        isinstance(k, str) and k.startswith("$") for k in condition
    )


def _validate_condition(condition: Any, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise FilterError(f"{path}: nested more than {MAX_DEPTH} levels")
    if not _is_operator_object(condition):
        return  # equality with a literal
    for operator, operand in condition.items():
        where = f"{path}.{operator}"
        if operator not in FIELD_OPERATORS:
            raise FilterError(f"{where}: operator {operator} is not allowed")
        if operator in ("$in", "$nin"):
            if not isinstance(operand, list) or len(operand) > MAX_IN_VALUES:
                raise FilterError(f"{where}: must be a list of at most {MAX_IN_VALUES} values")
        elif operator == "$exists":
            if not isinstance(operand, bool):
                raise FilterError(f"{where}: must be true or false")
        elif operator == "$not":
            if not _is_operator_object(operand):
                raise FilterError(f"{where}: must be an operator object such as {{'$gt': 1}}")
            _validate_condition(operand, where, depth + 1)
        elif _is_operator_object(operand):
            raise FilterError(f"{where}: operand must be a value, not an operator")


_MISSING = object()


def _lookup(document: Any, path: str) -> Any:
    value = document
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return True
    return type(a) is type(b) and isinstance(a, str)


def _candidates(value: Any) -> list[Any]:
    # Like MongoDB, a condition on an array field matches the array or any of its elements.
    if isinstance(value, list):
        return [value, *value]
    return [value]


def _equal(value: Any, operand: Any) -> bool:
    if value is _MISSING:
        return operand is None
    return any(
        candidate == operand and isinstance(candidate, bool) == isinstance(operand, bool)
        for candidate in _candidates(value)
    )


def _compare(value: Any, operator: str, operand: Any) -> bool:
    if value is _MISSING:
        return False
    for candidate in _candidates(value):
        if not _comparable(candidate, operand):
            continue
        if (
            (operator == "$gt" and candidate > operand)
            or (operator == "$gte" and candidate >= operand)
            or (operator == "$lt" and candidate < operand)
            or (operator == "$lte" and candidate <= operand)
        ):
            return True
    return False


def _condition_matches(value: Any, condition: Any) -> bool:
    if not _is_operator_object(condition):
        return _equal(value, condition)
    for operator, operand in condition.items():
        if operator == "$eq":
            ok = _equal(value, operand)
        elif operator == "$ne":
            ok = not _equal(value, operand)
        elif operator in ("$gt", "$gte", "$lt", "$lte"):
            ok = _compare(value, operator, operand)
        elif operator == "$in":
            ok = any(_equal(value, item) for item in operand)
        elif operator == "$nin":
            ok = not any(_equal(value, item) for item in operand)
        elif operator == "$exists":
            ok = (value is not _MISSING) == operand
        elif operator == "$not":
            ok = not _condition_matches(value, operand)
        else:  # validate_filter refuses it first
            raise FilterError(f"operator {operator} is not allowed")
        if not ok:
            return False
    return True


def matches(query: dict[str, Any], document: Any) -> bool:
    """Whether ``document`` (a stored value) matches ``query`` (already validated)."""
    for key, condition in query.items():
        if key == "$and":
            ok = all(matches(part, document) for part in condition)
        elif key == "$or":
            ok = any(matches(part, document) for part in condition)
        else:
            ok = _condition_matches(_lookup(document, key), condition)
        if not ok:
            return False
    return True
