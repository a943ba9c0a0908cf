"""``storage.find``'s walk (``sdk.filters.FindScan``) with its real budgets, in the simulator
and on its own: nothing past the first 1000 — or the first ``FIND_SCAN_MAX`` — documents is
lost, a page cut by a budget carries a ``next`` that resumes the scan, a sorted find orders the
whole collection or refuses (``collection_too_large``), and cursors stay opaque and checked.
The host's side, page for page against the simulator: tests/miniapps/test_service_storage_scan.py.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest

import sdk.filters
from sdk.capabilities import FIND_SCAN_MAX, FIND_SORT_MAX
from sdk.filters import MATCH_STEPS_MAX, FilterError, TooManyToSort, select_page
from sdk.simulator import Simulator

CONTRACT = Path(__file__).resolve().parents[1] / "miniapps" / "apps" / "contract"  # index c.n


def world():
    """The ``call`` of a simulated ``contract`` app: ``("ok", result)`` or ``("error", code)``."""
    sim = Simulator(CONTRACT)
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])

    async def call(method: str, **params):
        return await sim.call_capability(ann, chat, method, params)

    return call


async def pages(call, **params) -> list[dict]:
    answers, after = [], None
    while True:
        outcome, page = await call("storage.find", **params, after=after)
        assert outcome == "ok", page
        answers.append(page)
        after = page["next"]
        if after is None:
            return answers
        assert len(answers) < 10_000, "next never became None"


def keys_of(answers: list[dict]) -> list[str]:
    return [item["key"] for page in answers for item in page["items"]]


def walk(items: list[dict], query: dict, limit: int, **sort) -> list[tuple[list[str], bool]]:
    """Every page of ``select_page`` over ``items``: ``[(keys, has_next)]``."""
    answers, after = [], None
    while True:
        page, after = select_page(query, items, limit, after=after, **sort)
        answers.append(([item["key"] for item in page], after is not None))
        if after is None:
            return answers


def test_the_budgets_are_the_documented_ones():
    assert (FIND_SCAN_MAX, FIND_SORT_MAX, MATCH_STEPS_MAX) == (10_000, 20_000, 100_000)


async def test_a_match_past_the_scan_budget_is_reached_through_next():
    call = world()
    count = FIND_SCAN_MAX + 2000
    for i in range(count):
        value = {"i": i, "hot": i in (5, 999, 1000, FIND_SCAN_MAX + 1500)}
        assert (await call("storage.put", collection="c", key=f"k{i:05d}", value=value))[0] == "ok"
    # The first call looks at 10 000 documents, finds three and says more may follow.
    outcome, page = await call("storage.find", collection="c", filter={"hot": True})
    assert [item["key"] for item in page["items"]] == ["k00005", "k00999", "k01000"]
    assert page["next"] is not None
    outcome, rest = await call(
        "storage.find", collection="c", filter={"hot": True}, after=page["next"]
    )
    assert (outcome, [item["key"] for item in rest["items"]], rest["next"]) == (
        "ok",
        ["k11500"],
        None,
    )
    # A rare match past the budget: an empty page with a next, then the match.
    answers = await pages(call, collection="c", filter={"i": count - 1})
    assert [len(page["items"]) for page in answers] == [0, 1]
    assert keys_of(answers) == [f"k{count - 1:05d}"]
    # Every document once, 100 a page, in key order.
    assert keys_of(await pages(call, collection="c")) == [f"k{i:05d}" for i in range(count)]


def test_running_out_of_comparisons_in_key_order_resumes_instead_of_failing():
    # 402 comparisons a document (two $in values against 200 elements and the array itself):
    # about 248 documents a call; the old find refused the whole filter as too costly.
    items = [{"key": f"k{i:04d}", "value": {"tags": list(range(200))}} for i in range(1000)]
    for i in (3, 500, 998):
        items[i]["value"] = {"tags": [-1]}
    answers = walk(items, {"tags": {"$in": [-1, -2]}}, 10)
    assert [keys for keys, _ in answers if keys] == [["k0003"], ["k0500"], ["k0998"]]
    assert len(answers) == 5 and all(more for _, more in answers[:-1])
    # One document that costs every comparison by itself can never be matched: refused.
    heavy = [{"key": "a", "value": {"tags": list(range(2000))}}]
    with pytest.raises(FilterError, match="too costly"):
        select_page({"tags": {"$in": list(range(-60, 0))}}, heavy, 10)
    # Sorted, every match is needed: running out is refused as before.
    with pytest.raises(FilterError, match="too costly"):
        select_page({"tags": {"$in": [-1, -2]}}, items, 10, sort_field="n")


def test_a_sorted_find_orders_up_to_the_cap_and_refuses_past_it():
    rng = random.Random(3)
    items = [
        {"key": f"k{i:05d}", "value": {"n": rng.randrange(1000)}} for i in range(FIND_SORT_MAX)
    ]
    page, after = select_page({"n": {"$gte": 990}}, items, 5, sort_field="n", order="desc")
    expected = sorted(
        ((item["value"]["n"], item["key"]) for item in items if item["value"]["n"] >= 990),
        reverse=True,
    )
    assert [item["key"] for item in page] == [key for _, key in expected[:5]]
    assert after is not None
    items.append({"key": "z", "value": {"n": 1}})
    with pytest.raises(TooManyToSort, match="more than 20000 documents") as refused:
        select_page({"n": {"$gte": 990}}, items, 5, sort_field="n")
    assert refused.value.code == "collection_too_large"
    # Unsorted, the same collection pages on.
    keys = [key for keys, _ in walk(items, {"n": {"$gte": 990}}, 100) for key in keys]
    assert keys == sorted(item["key"] for item in items if item["value"]["n"] >= 990)


async def test_the_simulator_refuses_a_sorted_find_past_the_cap(monkeypatch):
    call = world()
    for i in range(30):
        await call("storage.put", collection="c", key=f"k{i:02d}", value={"n": 30 - i})
    monkeypatch.setattr(sdk.filters, "FIND_SORT_MAX", 30)
    outcome, page = await call("storage.find", collection="c", sort={"field": "n"}, limit=2)
    assert (outcome, [item["key"] for item in page["items"]]) == ("ok", ["k29", "k28"])
    monkeypatch.setattr(sdk.filters, "FIND_SORT_MAX", 29)
    assert await call("storage.find", collection="c", sort={"field": "n"}) == (
        "error",
        "collection_too_large",
    )


@pytest.mark.parametrize("seed", range(6))
def test_pages_give_every_match_once_whatever_the_budgets(seed, monkeypatch):
    """Random collections, filters, limits and budgets: following ``next`` gives exactly the
    brute-force answer, in key order or sorted (ties by key, missing and null first)."""
    rng = random.Random(seed)
    monkeypatch.setattr(sdk.filters, "FIND_SCAN_MAX", rng.choice([1, 2, 7, 50]))
    items = []
    for i in rng.sample(range(10_000), 300):
        value = {"n": rng.choice([None, 1, 2.5, 3, "a", "b", True, [1]]), "g": rng.randrange(4)}
        if rng.random() < 0.1:
            del value["n"]
        items.append({"key": f"k{i:05d}", "value": value})
    items.sort(key=lambda item: item["key"])
    query = {"g": {"$in": rng.sample(range(4), 2)}}
    matched = [item for item in items if item["value"]["g"] in query["g"]["$in"]]
    limit = rng.choice([1, 3, 10, 100])
    keys = [key for keys, _ in walk(items, query, limit) for key in keys]
    assert keys == [item["key"] for item in matched]
    for order in ("asc", "desc"):
        sort = {"sort_field": "n", "order": order}
        ranked = sorted(
            matched,
            key=lambda item: (sdk.filters._type_rank(item["value"].get("n")), item["key"]),
            reverse=order == "desc",
        )
        answers = walk(items, query, limit, **sort)
        assert [key for keys, _ in answers for key in keys] == [item["key"] for item in ranked]
        assert all(len(keys) == limit for keys, _ in answers[:-1])


def test_cursors_are_opaque_and_checked():
    items = [{"key": f"k{i}", "value": {"n": i}} for i in range(5)]
    _, after = select_page({}, items, 2)
    # The key-order cursor keeps the wire format of earlier versions.
    legacy = base64.urlsafe_b64encode(b'[null,"asc",null,"k1"]').decode().rstrip("=")
    assert after == legacy
    assert [item["key"] for item in select_page({}, items, 2, after=legacy)[0]] == ["k2", "k3"]
    _, sorted_after = select_page({}, items, 2, sort_field="n")
    forged = base64.urlsafe_b64encode(json.dumps([None, "asc", 7, "k1"]).encode()).decode()
    for cursor, sort in (
        (after[:-2], {}),
        ("!!!", {}),
        (forged, {}),  # a key-order cursor carries no value
        (sorted_after, {}),
        (after, {"sort_field": "n"}),
        (sorted_after, {"sort_field": "n", "order": "desc"}),
        ("x" * 9000, {}),
    ):
        with pytest.raises(FilterError, match="after:"):
            select_page({}, items, 2, after=cursor, **sort)
