"""``storage.find`` past the first 1000 documents, through the real host on the embedded
nx-27017 (or ``MONGODB_URL``), page for page against the simulator: a collection of 2 500
documents read in key order in batches (``AppStorage.iter_items``), every match seen exactly
once by following ``next`` — also when a page is cut short by the scan budget — sorted pages
over the whole collection, and ``collection_too_large`` past the sort cap.

The budgets are lowered with ``monkeypatch`` where a test needs them crossed (``sdk.filters``
reads them per call, for the host and the simulator alike); tests/sdk/test_find_scan.py
crosses the real ones in the simulator."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

import sdk.filters
from miniapps.host.store.app_storage import doc_id, text_of
from sdk.simulator import Simulator

CONTRACT = Path(__file__).resolve().parent / "apps" / "contract"  # declares the index c.n
COUNT = 2500


def value(i: int) -> dict[str, Any]:
    # n: 500 values, 5 documents each (ties are ordered by key); hot: a few, all along.
    return {"i": i, "n": (i * 37) % 500, "hot": i % 97 == 0}


KEYS = [f"k{i:05d}" for i in range(COUNT)]
# Matches before, around and well after the 1000th key.
FILTER = {"$or": [{"hot": True}, {"i": {"$gte": 995, "$lt": 1005}}, {"i": 2499}]}
MATCHES = [key for i, key in enumerate(KEYS) if i % 97 == 0 or 995 <= i < 1005 or i == 2499]


async def fill_host(call) -> None:
    """2 500 documents straight into the store's collection, in one ``insert_many`` (the
    fields ``AppStorage.put_value`` writes; writing them one by one takes seconds here)."""
    docs = []
    for i, key in enumerate(KEYS):
        text = text_of(value(i))
        docs.append(
            {
                "_id": doc_id("contract", "c", key),
                "app_id": "contract",
                "collection": "c",
                "key": key,
                "value": text,
                "size": len(text.encode()) + len(key.encode()),
                "counters": {},
                "updated_at": 1,
                "version": 1,
            }
        )
    random.Random(7).shuffle(docs)  # stored in no particular order: the reads order them
    await call.host.storage.collection.insert_many(docs)
    # What the host reads back is what storage.put would have stored.
    assert await call("storage.get", {"collection": "c", "key": "k01234"}) == (
        "ok",
        {"value": value(1234), "version": 1},
    )


async def simulator() -> tuple[Simulator, Any, Any]:
    sim = Simulator(CONTRACT)
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    for i in range(COUNT):
        put = {"collection": "c", "key": KEYS[i], "value": value(i)}
        assert await sim.call_capability(ann, chat, "storage.put", put) == ("ok", {"version": 1})
    return sim, ann, chat


async def pages(call, params: dict) -> list[dict]:
    """Every page of a find, following ``next`` until it is None."""
    answers, after = [], None
    while True:
        outcome, page = await call("storage.find", {**params, "after": after})
        assert outcome == "ok", page
        answers.append(page)
        after = page["next"]
        if after is None:
            return answers
        assert len(answers) < 1000, "next never became None"


def keys_of(answers: list[dict]) -> list[str]:
    return [item["key"] for page in answers for item in page["items"]]


@pytest.fixture
async def both(host_capability):
    """``[host_call, sim_call]`` over the same 2 500 documents."""
    await fill_host(host_capability)
    sim, ann, chat = await simulator()

    async def sim_call(method: str, params: dict):
        return await sim.call_capability(ann, chat, method, params)

    return [host_capability, sim_call]


async def test_paging_by_key_sees_every_match_once_past_the_first_thousand(both, monkeypatch):
    host, sim = both
    params = {"collection": "c", "filter": FILTER, "limit": 7}
    answers = await pages(host, params)
    assert keys_of(answers) == MATCHES  # each once, in key order, the 2500th included
    assert all(len(page["items"]) == 7 for page in answers[:-1])
    assert answers[-1]["items"][-1] == {"key": "k02499", "value": value(2499), "version": 1}
    assert await pages(sim, params) == answers  # the same pages, the same cursors

    # A page cut by the scan budget has a next (maybe with no item), and the next call goes on.
    monkeypatch.setattr(sdk.filters, "FIND_SCAN_MAX", 300)
    params = {"collection": "c", "filter": {"i": {"$in": [5, 1001, 1002, 2498]}}, "limit": 10}
    answers = await pages(host, params)
    assert keys_of(answers) == ["k00005", "k01001", "k01002", "k02498"]
    # 2500 documents, 300 a call: 9 calls, most of them cut by the budget with nothing found.
    assert [len(page["items"]) for page in answers] == [1, 0, 0, 2, 0, 0, 0, 0, 1]
    assert all(page["next"] is not None for page in answers[:-1])
    assert await pages(sim, params) == answers
    # A page full before the budget ends where its last item is; the budget then cuts the next.
    _, first = await host("storage.find", {"collection": "c", "limit": 2})
    assert [item["key"] for item in first["items"]] == ["k00000", "k00001"]
    params = {"collection": "c", "filter": {"i": 2000}, "after": first["next"]}
    outcome, page = await host("storage.find", params)
    assert (outcome, page["items"]) == ("ok", [])
    assert await sim("storage.find", params) == ("ok", page)
    outcome, page = await host("storage.find", {**params, "after": page["next"]})
    assert (outcome, page["items"]) == ("ok", [])  # k00302 to k00601: still nothing

    # The host reads by key range in growing batches (100, 200, 400, then 500 documents), and
    # no further than the call needs.
    storage, reads = host.host.storage, []
    find = storage.collection.find

    def counting_find(query, *args, **kwargs):
        reads.append(query.get("key"))
        return find(query, *args, **kwargs)

    monkeypatch.setattr(storage.collection, "find", counting_find)
    walk = storage.iter_items("contract", "c", after=None, limit=COUNT + 1)
    assert [item["key"] async for item in walk] == KEYS
    starts = ["k00099", "k00299", "k00699", "k01199", "k01699", "k02199"]
    assert reads == [None, *({"$gt": key} for key in starts)]
    reads.clear()
    assert (await host("storage.find", {"collection": "c", "limit": 3}))[0] == "ok"
    assert reads == [None]


async def test_sorted_pages_order_every_match_of_the_collection(both, monkeypatch):
    host, sim = both
    params = {
        "collection": "c",
        "filter": {"n": {"$gte": 300}},
        "sort": {"field": "n", "order": "desc"},
        "limit": 100,
    }
    answers = await pages(host, params)  # each page reads the whole collection
    expected = sorted(
        ((value(i)["n"], key) for i, key in enumerate(KEYS) if value(i)["n"] >= 300),
        reverse=True,
    )
    assert len(expected) == 1000 and expected[0] == (499, "k02027")
    assert min(k for _, k in expected) < "k01000" < max(k for _, k in expected)
    assert keys_of(answers) == [key for _, key in expected]  # ties by key, descending too
    assert await pages(sim, params) == answers
    ascending = {**params, "sort": {"field": "n"}, "limit": 7}
    outcome, page = await host("storage.find", ascending)
    assert [item["key"] for item in page["items"]] == [key for _, key in expected[::-1][:7]]
    assert await sim("storage.find", ascending) == (outcome, page)

    # A cursor is opaque and checked: tampered, or given for another sort, it is refused.
    _, page = await host("storage.find", {"collection": "c", "limit": 1})
    sorted_params = {"collection": "c", "sort": {"field": "n"}, "limit": 1}
    _, sorted_page = await host("storage.find", sorted_params)
    assert page["next"] and sorted_page["next"]
    for params in (
        {"collection": "c", "after": page["next"][:-3]},
        {"collection": "c", "after": "garbage"},
        {"collection": "c", "after": sorted_page["next"]},  # given for another sort
        {**sorted_params, "after": page["next"]},
        {**sorted_params, "sort": {"field": "n", "order": "desc"}, "after": sorted_page["next"]},
    ):
        assert await host("storage.find", params) == ("error", "invalid_params"), params

    # Past the sort cap the call is refused, never answered in a wrong order.
    params = {"collection": "c", "sort": {"field": "n"}, "limit": 5}
    monkeypatch.setattr(sdk.filters, "FIND_SORT_MAX", COUNT)  # exactly the collection: fine
    outcome, page = await host("storage.find", params)
    assert outcome == "ok" and len(page["items"]) == 5, page
    assert await sim("storage.find", params) == (outcome, page)
    monkeypatch.setattr(sdk.filters, "FIND_SORT_MAX", COUNT - 1)
    assert await host("storage.find", params) == ("error", "collection_too_large")
    assert await sim("storage.find", params) == ("error", "collection_too_large")
    # Unsorted, the same collection still pages (the scan budget is another one).
    outcome, page = await host("storage.find", {"collection": "c", "filter": {"i": 2499}})
    assert (outcome, [item["key"] for item in page["items"]]) == ("ok", ["k02499"])
