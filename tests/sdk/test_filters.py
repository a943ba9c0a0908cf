"""The storage filter subset: what it accepts and matches, and the bounds that keep a hostile
filter cheap to refuse and cheap to run (issue 11: a 1 MiB filter with 100k ``$or`` clauses
stalled the event loop)."""

from __future__ import annotations

import json
import time

import pytest

from sdk.capabilities import check_params
from sdk.errors import InvalidParams
from sdk.filters import (
    MATCH_STEPS_MAX,
    MAX_CLAUSES,
    MAX_DEPTH,
    MAX_FIELD_PATH,
    MAX_FILTER_BYTES,
    MAX_IN_VALUES,
    MAX_WIDTH,
    FilterError,
    matches,
    select,
    validate_filter,
)

DOCS = [
    {"n": 1, "tags": ["a", "b"], "who": {"name": "ann"}},
    {"n": 5, "tags": [], "who": {"name": "ben"}, "done": True},
    {"n": "5", "flag": False},
]


def found(query):
    validate_filter(query)
    return [i for i, doc in enumerate(DOCS) if matches(query, doc)]


def test_the_subset_matches_like_mongodb():
    assert found({}) == [0, 1, 2]
    assert found({"n": 5}) == [1]  # "5" is not 5
    assert found({"n": {"$gte": 1, "$lt": 5}}) == [0]
    assert found({"tags": "a"}) == [0]  # an array matches through its elements
    assert found({"who.name": {"$in": ["ben", "cid"]}}) == [1]
    assert found({"done": {"$exists": False}}) == [0, 2]
    assert found({"flag": 0}) == []  # False is not 0
    assert found({"$or": [{"n": 1}, {"done": True}]}) == [0, 1]
    assert found({"$and": [{"n": {"$gt": 0}}, {"n": {"$not": {"$gt": 3}}}]}) == [0]
    assert found({"n": {"$nin": [1, 5]}}) == [2]


@pytest.mark.parametrize(
    "query",
    [
        {"$where": "sleep(1000)"},
        {"n": {"$regex": "(a+)+$"}},
        {"n": {"$expr": 1}},
        {"$or": []},
        {"$or": {"n": 1}},
        {"n": {"$in": 3}},
        {"n": {"$not": 3}},
        {"n": {"$gt": {"$lt": 1}}},
        {"a..b": 1},
        {"a.$b": 1},
        [],
    ],
)
def test_outside_the_subset(query):
    with pytest.raises(FilterError):
        validate_filter(query)


def _nested(depth: int) -> dict:
    query: dict = {"n": 1}
    for _ in range(depth):
        query = {"$and": [query]}
    return query


def test_each_bound_has_its_refusal():
    validate_filter(_nested(MAX_DEPTH - 1))  # the field condition is a level too
    cases = {
        "nested more than": _nested(MAX_DEPTH),
        f"at most {MAX_WIDTH} filters": {"$or": [{"n": i} for i in range(MAX_WIDTH + 1)]},
        f"at most {MAX_IN_VALUES} values": {"n": {"$in": list(range(MAX_IN_VALUES + 1))}},
        f"at most {MAX_CLAUSES} clauses": {
            "$and": [{f"f{j}": {"$in": [1]} for j in range(5)} for _ in range(MAX_WIDTH)]
        },
        "field path is at most": {"x" * (MAX_FIELD_PATH + 1): 1},
        f"at most {MAX_FILTER_BYTES} bytes": {"n": "x" * MAX_FILTER_BYTES},
        "a value nested more than": {"n": json.loads("[" * 10 + "]" * 10)},
    }
    for expected, query in cases.items():
        with pytest.raises(FilterError, match=expected):
            validate_filter(query)
    validate_filter({"$and": [{f"f{j}": 1 for j in range(2)} for _ in range(MAX_WIDTH)]})


def test_a_hostile_filter_is_refused_without_reading_it_all():
    """The issue's filter: 1 MiB, 100 000 ``$or`` clauses. The check stops at the first bound
    it crosses; the time is printed, not asserted (tests never assert timings)."""
    hostile = {"$or": [{"n": i} for i in range(100_000)]}
    size = len(json.dumps(hostile))
    started = time.perf_counter()
    with pytest.raises(InvalidParams, match="at most 64 filters"):
        check_params("storage.find", {"collection": "c", "filter": hostile})
    elapsed = time.perf_counter() - started
    # Other shapes of the same size: many keys, a long $in, a deep literal, one long string.
    shapes = {
        "100k keys": {f"k{i}": i for i in range(100_000)},
        "100k $in": {"n": {"$in": list(range(100_000))}},
        "1 MiB string": {"n": "x" * (1 << 20)},
        "100k-long literal list": {"n": list(range(100_000))},
        "wide $and of wide $or": {
            "$and": [{"$or": [{"n": i} for i in range(64)]} for _ in range(64)]
        },
    }
    timings = {}
    for label, query in shapes.items():
        started_shape = time.perf_counter()
        with pytest.raises(FilterError):
            validate_filter(query)
        timings[label] = (time.perf_counter() - started_shape) * 1000
    shown = ", ".join(f"{label} {ms:.3f} ms" for label, ms in timings.items())
    print(
        f"\nhostile filter ({size / 1024 / 1024:.2f} MiB, 100000 $or clauses) refused in "
        f"{elapsed * 1000:.3f} ms; {shown}"
    )


def test_matching_is_bounded_whatever_the_stored_values():
    """A validated filter is small, but stored arrays can be long: select() counts every
    comparison and gives up past MATCH_STEPS_MAX instead of running on."""
    query = {"$or": [{"tags": {"$in": [i, i + 1]}} for i in range(64)]}
    validate_filter(query)
    items = [{"key": f"k{i}", "value": {"tags": list(range(-2000, 0))}} for i in range(50)]
    started = time.perf_counter()
    with pytest.raises(FilterError, match="too costly"):
        select(query, items, 100)
    print(
        f"\nan over-budget find gave up after {MATCH_STEPS_MAX} comparisons in "
        f"{(time.perf_counter() - started) * 1000:.1f} ms"
    )
    # Within the budget, select returns the first matches in order, up to the limit.
    easy = [{"key": f"k{i}", "value": {"n": i % 3}} for i in range(10)]
    assert [i["key"] for i in select({"n": 0}, easy, 3)] == ["k0", "k3", "k6"]
