"""Service storage through the real host (issue 14): versions, conditional updates, bounded
counters under concurrency, unique fields, sorted pages — on the embedded nx-27017 (or
``MONGODB_URL``), through ``host.serve`` as a sandboxed app's calls arrive (the ``contract`` app
declares the indexes ``c.n`` and ``u.email`` unique)."""

from __future__ import annotations

import asyncio
from collections import Counter


async def test_two_hundred_concurrent_decrements_of_fifty_leave_exactly_fifty_sold(
    host_capability,
):
    call = host_capability
    assert await call(
        "storage.put", {"collection": "c", "key": "stock", "value": {"left": 50}}
    ) == (
        "ok",
        {"version": 1},
    )
    decrement = {"collection": "c", "key": "stock", "field": "left", "delta": -1}
    answers = await asyncio.gather(*(call("storage.incr", decrement) for _ in range(200)))
    outcomes = Counter(a[1] if a[0] == "error" else "ok" for a in answers)
    assert outcomes == {"ok": 50, "limit_reached": 150}
    values = sorted(result["value"] for outcome, result in answers if outcome == "ok")
    assert values == list(range(50))  # each unit sold once
    _, stored = await call("storage.get", {"collection": "c", "key": "stock"})
    assert stored == {"value": {"left": 0}, "version": 51}


async def test_concurrent_updates_at_one_version_let_exactly_one_win(host_capability):
    call = host_capability
    await call("storage.put", {"collection": "c", "key": "seat", "value": {"holder": None}})
    answers = await asyncio.gather(
        *(
            call(
                "storage.update",
                {
                    "collection": "c",
                    "key": "seat",
                    "set": {"holder": f"user-{i}"},
                    "expected_version": 1,
                },
            )
            for i in range(40)
        )
    )
    winners = [i for i, (outcome, _) in enumerate(answers) if outcome == "ok"]
    assert len(winners) == 1
    assert all(a == ("error", "conflict") for i, a in enumerate(answers) if i not in winners)
    _, stored = await call("storage.get", {"collection": "c", "key": "seat"})
    assert stored == {"value": {"holder": f"user-{winners[0]}"}, "version": 2}


async def test_updates_without_a_version_and_counters_lose_nothing(host_capability):
    call = host_capability
    await call("storage.put", {"collection": "c", "key": "mix", "value": {"hits": 0}})
    updates = [
        call("storage.update", {"collection": "c", "key": "mix", "set": {f"f{i}": i}})
        for i in range(15)
    ]
    incrs = [
        call("storage.incr", {"collection": "c", "key": "mix", "field": "hits", "delta": 1})
        for _ in range(15)
    ]
    answers = await asyncio.gather(*updates, *incrs)
    assert all(outcome == "ok" for outcome, _ in answers), answers
    _, stored = await call("storage.get", {"collection": "c", "key": "mix"})
    assert stored["value"] == {"hits": 15, **{f"f{i}": i for i in range(15)}}
    assert stored["version"] == 31


async def test_versions_updates_and_errors(host_capability):
    call = host_capability
    doc = {"collection": "c", "key": "d"}
    assert await call("storage.get", doc) == ("ok", {"value": None, "version": 0})
    assert await call("storage.update", {**doc, "set": {"n": 1}}) == ("error", "not_found")
    assert await call("storage.update", {**doc, "set": {"n": 1}, "upsert": True}) == (
        "ok",
        {"version": 1},
    )
    assert await call("storage.update", {**doc, "set": {"m": 2}, "unset": ["n"]}) == (
        "ok",
        {"version": 2},
    )
    assert await call("storage.update", {**doc, "set": {"x": 1}, "expected_version": 1}) == (
        "error",
        "conflict",
    )
    assert await call("storage.get", doc) == ("ok", {"value": {"m": 2}, "version": 2})
    await call("storage.put", {**doc, "value": [1, 2]})
    assert await call("storage.update", {**doc, "set": {"n": 1}}) == ("error", "invalid_params")
    assert await call("storage.incr", {**doc, "field": "n", "delta": 1}) == (
        "error",
        "invalid_params",
    )


async def test_counters_are_bounded_and_created_when_absent(host_capability):
    call = host_capability
    views = {"collection": "c", "key": "views", "field": "count"}
    assert await call("storage.incr", {**views, "delta": 1}) == ("ok", {"value": 1, "version": 1})
    assert await call("storage.incr", {**views, "delta": 1, "max": 2}) == (
        "ok",
        {"value": 2, "version": 2},
    )
    assert await call("storage.incr", {**views, "delta": 1, "max": 2}) == (
        "error",
        "limit_reached",
    )
    assert await call("storage.incr", {**views, "delta": -3}) == ("error", "limit_reached")
    assert await call("storage.incr", {**views, "delta": -3, "min": -1}) == (
        "ok",
        {"value": -1, "version": 3},
    )
    _, stored = await call("storage.get", {"collection": "c", "key": "views"})
    assert stored == {"value": {"count": -1}, "version": 3}
    # A counter in a stored value keeps the value's other fields, and find sees it.
    await call("storage.put", {"collection": "c", "key": "p", "value": {"n": 7, "name": "pen"}})
    await call("storage.incr", {"collection": "c", "key": "p", "field": "n", "delta": -2})
    _, found = await call("storage.find", {"collection": "c", "filter": {"n": 5}})
    assert [(i["key"], i["value"]) for i in found["items"]] == [("p", {"n": 5, "name": "pen"})]
    # A put replaces the counter like any field.
    await call("storage.put", {"collection": "c", "key": "p", "value": {"n": 1}})
    assert await call(
        "storage.incr", {"collection": "c", "key": "p", "field": "n", "delta": 1}
    ) == (
        "ok",
        {"value": 2, "version": 4},
    )


async def test_unique_fields_refuse_a_second_holder_even_concurrently(host_capability):
    call = host_capability
    users = {"collection": "u"}
    assert (await call("storage.put", {**users, "key": "ann", "value": {"email": "a@x"}}))[
        0
    ] == "ok"
    assert await call("storage.put", {**users, "key": "bea", "value": {"email": "a@x"}}) == (
        "error",
        "duplicate_value",
    )
    assert await call("storage.update", {**users, "key": "ann", "set": {"email": "b@x"}}) == (
        "ok",
        {"version": 2},
    )
    # ann let a@x go: bea may take it; ann keeps b@x.
    assert (await call("storage.put", {**users, "key": "bea", "value": {"email": "a@x"}}))[
        0
    ] == "ok"
    assert await call("storage.update", {**users, "key": "ann", "set": {"email": "a@x"}}) == (
        "error",
        "duplicate_value",
    )
    await call("storage.delete", {**users, "key": "bea"})
    assert (await call("storage.update", {**users, "key": "ann", "set": {"email": "a@x"}}))[
        0
    ] == "ok"
    assert await call("storage.incr", {**users, "key": "ann", "field": "email", "delta": 1}) == (
        "error",
        "invalid_params",
    )
    # Many new users racing for one address: exactly one gets it.
    answers = await asyncio.gather(
        *(
            call("storage.put", {**users, "key": f"racer-{i}", "value": {"email": "z@x"}})
            for i in range(30)
        )
    )
    outcomes = Counter(a[1] if a[0] == "error" else "ok" for a in answers)
    assert outcomes == {"ok": 1, "duplicate_value": 29}


async def test_find_sorts_by_a_declared_index_and_pages_with_a_cursor(host_capability):
    call = host_capability
    for i, n in enumerate([5, 3, 9, 1, 7, 3, None]):
        value = {"n": n, "i": i} if n is not None else {"i": i}
        await call("storage.put", {"collection": "c", "key": f"k{i}", "value": value})
    seen, after = [], None
    while True:
        params = {"collection": "c", "sort": {"field": "n"}, "limit": 2, "after": after}
        outcome, page = await call("storage.find", params)
        assert outcome == "ok", page
        seen += [item["key"] for item in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert seen == ["k6", "k3", "k1", "k5", "k0", "k4", "k2"]  # missing first, ties by key
    _, page = await call(
        "storage.find",
        {"collection": "c", "sort": {"field": "n", "order": "desc"}, "filter": {"n": {"$gt": 3}}},
    )
    assert [item["key"] for item in page["items"]] == ["k2", "k4", "k0"]
    assert page["next"] is None
    assert await call("storage.find", {"collection": "c", "sort": {"field": "i"}}) == (
        "error",
        "invalid_params",
    )
    assert await call(
        "storage.find",
        {"collection": "c", "sort": {"field": "n", "order": "desc"}, "after": after or "x"},
    ) == ("error", "invalid_params")


async def test_quota_counts_counters_and_updates(host_capability):
    call = host_capability
    host = host_capability.host
    await call("storage.put", {"collection": "c", "key": "q", "value": {"n": 9}})
    used = await host.storage.get_used("contract")
    await call("storage.incr", {"collection": "c", "key": "q", "field": "n", "delta": 991})
    assert await host.storage.get_used("contract") == used + 3  # "9" -> "1000"
    await call("storage.update", {"collection": "c", "key": "q", "set": {"s": "xy"}})
    assert await host.storage.get_used("contract") == used + 3 + len(',"s":"xy"')
