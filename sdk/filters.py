"""The safe subset of MongoDB query filters that ``storage.find`` accepts (PROTOCOL.md), and an
in-memory matcher for it, used by both the host and the simulator.

Allowed: equality on fields of the value (dotted paths reach inside), ``$eq $ne $gt $gte $lt
$lte $in $nin $exists $not`` on a field, ``$and $or`` combining filters. Never ``$where``,
``$function``, ``$accumulator``, ``$expr``, ``$regex`` or any other operator: server-side code,
regular expressions (catastrophic backtracking) and unbounded expressions stay out of reach.

A filter comes from an app, so checking it must cost little whatever it is: every bound below
is tested while walking, and the walk stops at the first one crossed, so a 1 MiB filter with
100 000 ``$or`` clauses is refused after looking at a handful of nodes. Matching is bounded too:
a validated filter has at most ``MAX_CLAUSES`` clauses, and ``select`` spends at most
``MATCH_STEPS_MAX`` comparisons on one ``storage.find`` whatever the stored values hold.

``FindScan`` is one ``storage.find`` call's walk over a collection, in key order, within a
budget of documents (``FIND_SCAN_MAX``; sorted: the whole collection up to ``FIND_SORT_MAX``):
what it has not looked at, its ``next`` cursor resumes — nothing past a budget is lost.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from typing import Any

from sdk._capability_table import FIND_SCAN_MAX, FIND_SORT_MAX

FIELD_OPERATORS = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$not"}
LOGICAL_OPERATORS = {"$and", "$or"}
MAX_CLAUSES = 256  # field conditions, operators and $and/$or parts, all counted
MAX_DEPTH = 8  # nesting of $and/$or/$not/field conditions
MAX_WIDTH = 64  # parts of one $and/$or
MAX_IN_VALUES = 100  # values of one $in/$nin
MAX_VALUE_DEPTH = 8  # nesting of a literal compared with (an object or list in an equality)
MAX_FIELD_PATH = 256  # characters of a dotted field path
MAX_FILTER_BYTES = 16 * 1024  # the filter's size as JSON text (UTF-8)
MATCH_STEPS_MAX = 100_000  # comparisons one ``select`` may make over all the documents


class FilterError(ValueError):
    """A filter outside the safe subset; the message names where (``filter.$or[1].age``)."""


class _Walk:
    """What a validation has used so far of its bounds."""

    def __init__(self) -> None:
        self.clauses = 0
        self.size = 0

    def clause(self, path: str) -> None:
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise FilterError(f"{path}: a filter may have at most {MAX_CLAUSES} clauses")

    def grow(self, size: int, path: str) -> None:
        self.size += size
        if self.size > MAX_FILTER_BYTES:
            raise FilterError(f"{path}: a filter may be at most {MAX_FILTER_BYTES} bytes of JSON")

    def string(self, text: str, path: str) -> None:
        # len() first: a huge string is refused without encoding it.
        self.grow(len(text) + 2, path)
        self.grow(len(text.encode("utf-8", "surrogatepass")) - len(text), path)


def validate_filter(query: Any, *, path: str = "filter") -> None:
    """Raise ``FilterError`` unless ``query`` is within the safe subset and its bounds
    (``MAX_CLAUSES``, ``MAX_DEPTH``, ``MAX_WIDTH``, ``MAX_IN_VALUES``, ``MAX_VALUE_DEPTH``,
    ``MAX_FIELD_PATH``, ``MAX_FILTER_BYTES``). The cost is bounded by those limits, not by the
    size of ``query``."""
    _check_filter(query, path, 0, _Walk())


def _check_filter(query: Any, path: str, depth: int, walk: _Walk) -> None:
    if depth > MAX_DEPTH:
        raise FilterError(f"{path}: nested more than {MAX_DEPTH} levels")
    if not isinstance(query, dict):
        raise FilterError(f"{path}: must be an object")
    if len(query) > MAX_CLAUSES:  # refused before iterating a huge object
        raise FilterError(f"{path}: a filter may have at most {MAX_CLAUSES} clauses")
    walk.grow(2, path)
    for key, condition in query.items():
        if not isinstance(key, str) or not key:
            raise FilterError(f"{path}: field names must be non-empty strings")
        where = f"{path}.{key[:64]}"
        walk.clause(where)
        walk.string(key, where)
        if key in LOGICAL_OPERATORS:
            if not isinstance(condition, list) or not condition:
                raise FilterError(f"{where}: must be a non-empty list of filters")
            if len(condition) > MAX_WIDTH:
                raise FilterError(f"{where}: at most {MAX_WIDTH} filters")
            for index, part in enumerate(condition):
                walk.clause(f"{where}[{index}]")
                _check_filter(part, f"{where}[{index}]", depth + 1, walk)
        elif key.startswith("$"):
            raise FilterError(f"{where}: operator {key[:64]} is not allowed")
        else:
            if len(key) > MAX_FIELD_PATH:
                raise FilterError(f"{where}: a field path is at most {MAX_FIELD_PATH} characters")
            if any(part.startswith("$") or not part for part in key.split(".")):
                raise FilterError(f"{where}: not a valid field path")
            _check_condition(condition, where, depth + 1, walk)


def _is_operator_object(condition: Any) -> bool:
    return isinstance(condition, dict) and any(
        isinstance(k, str) and k.startswith("$") for k in condition
    )


def _check_condition(condition: Any, path: str, depth: int, walk: _Walk) -> None:
    if depth > MAX_DEPTH:
        raise FilterError(f"{path}: nested more than {MAX_DEPTH} levels")
    if not _is_operator_object(condition):
        _check_literal(condition, path, 0, walk)  # equality with a literal
        return
    if len(condition) > len(FIELD_OPERATORS):  # each operator once at most
        raise FilterError(f"{path}: too many operators")
    walk.grow(2, path)
    for operator, operand in condition.items():
        where = f"{path}.{str(operator)[:64]}"
        if operator not in FIELD_OPERATORS:
            raise FilterError(f"{where}: operator {str(operator)[:64]} is not allowed")
        walk.clause(where)
        walk.string(operator, where)
        if operator in ("$in", "$nin"):
            if not isinstance(operand, list) or len(operand) > MAX_IN_VALUES:
                raise FilterError(f"{where}: must be a list of at most {MAX_IN_VALUES} values")
            _check_literal(operand, where, 0, walk)
        elif operator == "$exists":
            if not isinstance(operand, bool):
                raise FilterError(f"{where}: must be true or false")
            walk.grow(5, where)
        elif operator == "$not":
            if not _is_operator_object(operand):
                raise FilterError(f"{where}: must be an operator object such as {{'$gt': 1}}")
            _check_condition(operand, where, depth + 1, walk)
        elif _is_operator_object(operand):
            raise FilterError(f"{where}: operand must be a value, not an operator")
        else:
            _check_literal(operand, where, 0, walk)


def _check_literal(value: Any, path: str, depth: int, walk: _Walk) -> None:
    """A value compared with: any JSON, within the depth and size bounds."""
    if depth > MAX_VALUE_DEPTH:
        raise FilterError(f"{path}: a value nested more than {MAX_VALUE_DEPTH} levels")
    if isinstance(value, str):
        walk.string(value, path)
    elif isinstance(value, dict):
        # Every entry costs at least a few bytes: refuse a huge object before walking it.
        walk.grow(2 + 4 * len(value), path)
        for key, item in value.items():
            if not isinstance(key, str):
                raise FilterError(f"{path}: object keys must be strings")
            walk.string(key, path)
            _check_literal(item, path, depth + 1, walk)
    elif isinstance(value, list):
        walk.grow(2 + len(value), path)
        for item in value:
            _check_literal(item, path, depth + 1, walk)
    elif value is None or isinstance(value, bool):
        walk.grow(5, path)
    elif isinstance(value, int):
        # str() of a huge int is slow (and refused past 4300 digits): past 18 digits, 20 bytes.
        walk.grow(len(str(value)) if -(10**18) < value < 10**18 else 20, path)
    elif isinstance(value, float):
        walk.grow(len(repr(value)), path)
    else:
        raise FilterError(f"{path}: must be JSON")


class MatchBudgetExceeded(FilterError):
    """Matching ran out of its ``MatchBudget``."""


class MatchBudget:
    """Comparisons left to a ``select`` (``MatchBudgetExceeded`` when they run out)."""

    def __init__(self, steps: int = MATCH_STEPS_MAX) -> None:
        self.steps = steps

    def spend(self) -> None:
        """Count one comparison; ``MatchBudgetExceeded`` past the budget."""
        self.steps -= 1
        if self.steps < 0:
            raise MatchBudgetExceeded(
                "filter: too costly for this collection (more than "
                f"{MATCH_STEPS_MAX} comparisons); narrow it"
            )


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


def _candidates(value: Any, budget: MatchBudget) -> Iterator[Any]:
    # Like MongoDB, a condition on an array field matches the array or any of its elements.
    # A generator, each candidate paid for: a long array costs its length, once, at most.
    budget.spend()
    yield value
    if isinstance(value, list):
        for item in value:
            budget.spend()
            yield item


def _equal(value: Any, operand: Any, budget: MatchBudget) -> bool:
    if value is _MISSING:
        return operand is None
    return any(
        candidate == operand and isinstance(candidate, bool) == isinstance(operand, bool)
        for candidate in _candidates(value, budget)
    )


def _compare(value: Any, operator: str, operand: Any, budget: MatchBudget) -> bool:
    if value is _MISSING:
        return False
    for candidate in _candidates(value, budget):
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


def _condition_matches(value: Any, condition: Any, budget: MatchBudget) -> bool:
    if not _is_operator_object(condition):
        return _equal(value, condition, budget)
    for operator, operand in condition.items():
        if operator == "$eq":
            ok = _equal(value, operand, budget)
        elif operator == "$ne":
            ok = not _equal(value, operand, budget)
        elif operator in ("$gt", "$gte", "$lt", "$lte"):
            ok = _compare(value, operator, operand, budget)
        elif operator == "$in":
            ok = any(_equal(value, item, budget) for item in operand)
        elif operator == "$nin":
            ok = not any(_equal(value, item, budget) for item in operand)
        elif operator == "$exists":
            ok = (value is not _MISSING) == operand
        elif operator == "$not":
            ok = not _condition_matches(value, operand, budget)
        else:  # validate_filter refuses it first
            raise FilterError(f"operator {operator} is not allowed")
        if not ok:
            return False
    return True


def matches(query: dict[str, Any], document: Any, budget: MatchBudget | None = None) -> bool:
    """Whether ``document`` (a stored value) matches ``query`` (already validated). With a
    ``budget``, every comparison is counted against it (``FilterError`` when it runs out)."""
    budget = MatchBudget() if budget is None else budget
    for key, condition in query.items():
        if key == "$and":
            ok = all(matches(part, document, budget) for part in condition)
        elif key == "$or":
            ok = any(matches(part, document, budget) for part in condition)
        else:
            ok = _condition_matches(_lookup(document, key), condition, budget)
        if not ok:
            return False
    return True


def select(query: dict[str, Any], items: Iterable[dict[str, Any]], limit: int) -> list[dict]:
    """The first ``limit`` of ``items`` (``{"key", "value"}``, in key order) whose value
    matches ``query`` (already validated): what ``storage.find`` answers, in the host and in the
    simulator alike. ``FilterError`` when matching would take more than ``MATCH_STEPS_MAX``
    comparisons."""
    budget = MatchBudget()
    found: list[dict] = []
    for item in items:
        if len(found) >= limit:
            break
        if matches(query, item["value"], budget):
            found.append(item)
    return found


# --- paged ``storage.find`` (key order or ``sort`` over a declared index, ``after`` a cursor) ---

SORT_ORDERS = ("asc", "desc")
CURSOR_MAX = 8192  # characters of an ``after`` cursor


def _type_rank(value: Any) -> tuple[int, Any]:
    """A total order over stored values: missing and null, then booleans, numbers, strings,
    and anything else by its JSON text — so documents of mixed types still sort and page."""
    if value is _MISSING or value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    return (4, json.dumps(value, sort_keys=True, separators=(",", ":")))


def encode_cursor(field: str | None, order: str, value: Any, key: str) -> str:
    """The opaque ``after`` cursor that continues a page past the item (``value``, ``key``);
    without a sort field (key order) ``value`` is None and the cursor resumes after ``key``."""
    text = json.dumps([field, order, value, key], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, field: str | None, order: str) -> tuple[Any, str]:
    """``(value, key)`` of a cursor made by ``encode_cursor`` for this very sort;
    ``FilterError`` for anything else (tampered, or made for another sort)."""
    try:
        if len(cursor) > CURSOR_MAX:
            raise ValueError
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        made_for, made_order, value, key = json.loads(text)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise FilterError("after: not a cursor given by storage.find") from None
    if made_for != field or made_order != order or not isinstance(key, str):
        raise FilterError("after: this cursor was given for another sort") from None
    if field is None and value is not None:  # key order: the key alone says where to resume
        raise FilterError("after: not a cursor given by storage.find") from None
    return value, key


class TooManyToSort(ValueError):
    """A sorted ``storage.find`` over a collection of more than ``FIND_SORT_MAX`` documents;
    the host and the simulator answer it with the stable code ``code``."""

    code = "collection_too_large"


def _position(value: Any, key: str) -> tuple:
    return (_type_rank(value), key)


class FindScan:
    """One ``storage.find`` call: a walk over a collection in key order, shared by the host
    (which reads the collection from MongoDB in batches, by ``key > last key``) and the
    simulator (in memory), so both answer alike.

    The caller reads the collection's items ``{"key", "value", "version"}`` in key order,
    from the first key after ``start_key`` (None: from the first key), at most ``read_max`` of
    them, and hands each to ``take`` until it answers True (the walk is over: read no more) or
    the collection ends; ``result()`` is then the answer ``(page, next)``.

    Without a sort field (key order) the walk matches as it goes and stops at ``limit + 1``
    matches, or when it has looked at ``FIND_SCAN_MAX`` documents or spent the
    ``MATCH_STEPS_MAX`` comparisons of its ``MatchBudget`` — whichever comes first. Stopped by
    a budget, it answers the matches it found (maybe fewer than ``limit``, maybe none) with a
    ``next`` cursor that resumes after the last document it looked at in full, so a caller
    that follows ``next`` until it is None sees every match once, in key order. Only a single
    document that costs the whole comparison budget by itself is refused (``FilterError``):
    no call could ever get past it.

    With a sort field, a right answer needs every match: the walk looks at the whole
    collection (``TooManyToSort`` past ``FIND_SORT_MAX`` documents, rather than a wrong order)
    and keeps only the best ``limit + 1`` matches past the cursor ``after``, never all of
    them. Running out of comparisons there is a ``FilterError``, as before.
    """

    def __init__(
        self,
        query: dict[str, Any],
        limit: int,
        *,
        sort_field: str | None = None,
        order: str = "asc",
        after: str | None = None,
    ) -> None:
        self.query = query
        self.limit = limit
        self.sort_field = sort_field
        self.order = order
        self.descending = order == "desc"
        self.start: tuple | None = None  # sorted: the position the page starts after
        self.start_key: str | None = None  # key order: the key reading starts after
        if after is not None:
            value, key = decode_cursor(after, sort_field, order)
            if sort_field is None:
                self.start_key = key
            else:
                self.start = _position(value, key)
        # The budgets are this module's globals, read per call (tests lower them).
        self.look_max = FIND_SCAN_MAX if sort_field is None else FIND_SORT_MAX
        self.read_max = self.look_max + 1  # one more tells whether the collection goes on
        self.looked = 0
        self.last_key: str | None = None  # the last key looked at in full
        self.more = False  # key order: stopped by a budget before the collection's end
        self.budget = MatchBudget()
        self.found: list = []

    def take(self, item: dict[str, Any]) -> bool:
        """Look at the next item in key order; True when the walk is over."""
        if self.looked >= self.look_max:
            if self.sort_field is not None:
                raise TooManyToSort(
                    f"a sorted storage.find orders the whole collection, and this one has more "
                    f"than {FIND_SORT_MAX} documents: find without sort (key order, paged with "
                    "next) and order the results yourself, or keep fewer documents in it"
                )
            self.more = True
            return True
        if self.sort_field is None:
            return self._take_in_key_order(item)
        self._take_sorted(item)
        return False

    def _take_in_key_order(self, item: dict[str, Any]) -> bool:
        try:
            matched = matches(self.query, item["value"], self.budget)
        except MatchBudgetExceeded:
            if self.looked == 0:
                raise  # this one document alone is too costly: no call gets past it
            self.more = True  # resume at this document, with a fresh budget
            return True
        self.looked += 1
        self.last_key = item["key"]
        if matched:
            self.found.append(item)
        return len(self.found) > self.limit  # one more than a page tells one follows

    def _take_sorted(self, item: dict[str, Any]) -> None:
        self.looked += 1
        value = _lookup(item["value"], self.sort_field)
        here = _position(value, item["key"])
        start = self.start
        if start is not None and (here >= start if self.descending else here <= start):
            return
        if not matches(self.query, item["value"], self.budget):
            return
        self.found.append((here, value, item))
        if len(self.found) > 4 * (self.limit + 1):
            self._keep_best()

    def _keep_best(self) -> None:
        self.found.sort(key=lambda entry: entry[0], reverse=self.descending)
        del self.found[self.limit + 1 :]

    def result(self) -> tuple[list[dict], str | None]:
        """``(page, next)``: at most ``limit`` items, and the cursor of what follows (None:
        nothing does)."""
        if self.sort_field is None:
            page = self.found[: self.limit]
            if len(self.found) > self.limit:
                return page, encode_cursor(None, "asc", None, page[-1]["key"])
            if self.more and self.last_key is not None:
                return page, encode_cursor(None, "asc", None, self.last_key)
            return page, None
        self._keep_best()
        page = self.found[: self.limit]
        items = [item for _, _, item in page]
        if len(self.found) <= self.limit:
            return items, None
        _, value, last = page[-1]
        value = None if value is _MISSING else value
        return items, encode_cursor(self.sort_field, self.order, value, last["key"])


def select_page(
    query: dict[str, Any],
    items: Iterable[dict[str, Any]],
    limit: int,
    *,
    sort_field: str | None = None,
    order: str = "asc",
    after: str | None = None,
) -> tuple[list[dict], str | None]:
    """``storage.find`` over ``items`` (``{"key", "value", …}``, the whole collection in key
    order): ``FindScan``'s answer ``(page, next)``, the items before its ``start_key`` left
    out. ``FilterError`` for a bad cursor or a too costly match, ``TooManyToSort``."""
    scan = FindScan(query, limit, sort_field=sort_field, order=order, after=after)
    for item in items:
        if scan.start_key is not None and item["key"] <= scan.start_key:
            continue
        if scan.take(item):
            break
    return scan.result()
