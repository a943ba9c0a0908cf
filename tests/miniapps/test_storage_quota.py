"""The storage quota on the platform: an app's manifest may set it (``storage.quota_bytes``; the
``bigkeeper`` test app, a real sandboxed process, reports exactly what the simulator reports —
tests/sdk/test_sim_storage_quota.py), an app without it keeps 1 MiB, and the usage the quota is
checked against is a counter (``app_storage_usage``), not a scan: it stays the exact sum of the
documents' sizes under concurrent writes of every kind, and is counted once from the documents
when an app has none yet, however many callers start it at once."""

from __future__ import annotations

import asyncio
import json

import pytest

from miniapps.host.store.app_storage import AppStorage, text_of, value_of
from miniapps.host.store.app_storage_usage import COLLECTION as USAGE
from sdk.errors import QuotaExceeded
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all
from tests.miniapps.conftest import CONTRACT_APP
from tests.miniapps.test_capabilities import command, setup, texts_from
from tests.sdk.test_sim_storage_quota import EXPECTED_REPORT


async def exact_sum(storage: AppStorage, app_id: str) -> int:
    """The bytes of the app's documents computed from their content (key + value JSON), not
    from the stored ``size``s."""
    found = storage.collection.find({"app_id": app_id})
    return sum(
        [len(doc["key"].encode()) + len(text_of(value_of(doc)).encode()) async for doc in found]
    )


async def usage_doc(storage: AppStorage, app_id: str) -> dict | None:
    return await storage.collection.database[USAGE].find_one({"_id": app_id})


async def test_an_app_past_its_manifest_quota_is_refused_and_nothing_is_written(gateway):
    host, people, cid = await setup(gateway, 2, ["bigkeeper"])
    ann, bea = people
    try:
        await command(ann, cid, "/fill")
        (text,) = await eventually(lambda: texts_from(bea, cid, "big: "), 30.0)
        assert json.loads(text.removeprefix("big: ")) == EXPECTED_REPORT
        storage = host.storage
        assert await storage.get_doc("bigkeeper", "blobs", "one-more") is None
        keys = [doc["key"] async for doc in storage.collection.find({"app_id": "bigkeeper"})]
        assert sorted(keys) == ["b0", "b2", "b3", "b4", "b5", "b6"]
        assert await usage_doc(storage, "bigkeeper") == {"_id": "bigkeeper", "bytes": 6 * 20004}
        assert await exact_sum(storage, "bigkeeper") == 6 * 20004
    finally:
        await close_all(people)


async def test_an_app_without_quota_bytes_keeps_one_mib(host_capability):
    call, host = host_capability, host_capability.host
    stored = 0
    while stored < 40:
        put = {"collection": "blobs", "key": f"b{stored:02}", "value": "y" * 60000}
        outcome, _ = await call("storage.put", put)
        if outcome != "ok":
            break
        stored += 1
    assert (outcome, stored) == ("error", 17)  # 17 documents of 60 005 bytes fit in 1 MiB
    call_id = await call.open_call()
    try:
        put = {"collection": "blobs", "key": "b17", "value": "y" * 60000, "call_id": call_id}
        with pytest.raises(QuotaExceeded) as refused:
            await host.serve(CONTRACT_APP, "storage.put", put)
    finally:
        await host.calls.close(call_id, remote=False)
    assert refused.value.message == "this app's storage is limited to 1048576 bytes"
    assert await host.storage.get_doc(CONTRACT_APP, "blobs", "b17") is None
    assert (await usage_doc(host.storage, CONTRACT_APP))["bytes"] == 17 * 60005


async def test_the_usage_stays_exact_under_concurrent_writes(host_capability):
    call, host = host_capability, host_capability.host
    assert await call("storage.put", {"collection": "c", "key": "n", "value": {"n": 9}}) == (
        "ok",
        {"version": 1},
    )
    puts = [
        call("storage.put", {"collection": "c", "key": f"k{i}", "value": "v" * (i * 37 % 500)})
        for i in range(100)
    ]
    deletes = [call("storage.delete", {"collection": "c", "key": f"k{i * 2}"}) for i in range(50)]
    # counters whose digits grow and shrink ("9" → "10" … ), and updates of the same document
    incrs = [
        call("storage.incr", {"collection": "c", "key": "n", "field": "n", "delta": delta})
        for delta in (1, 90, -95, 1000, -1000, 5) * 5
    ]
    updates = [
        call("storage.update", {"collection": "c", "key": "n", "set": {f"s{i}": "x" * i}})
        for i in range(10)
    ]
    mixed = [*puts, *deletes, *incrs, *updates]
    order = sorted(range(len(mixed)), key=lambda i: (i * 7919) % len(mixed))  # interleaved
    answers = await asyncio.gather(*(mixed[i] for i in order))
    codes = {outcome if outcome == "ok" else result for outcome, result in answers}
    assert codes <= {"ok", "limit_reached"}, codes
    stored = await host.storage.collection.count_documents({"app_id": CONTRACT_APP})
    assert 51 <= stored <= 101  # every delete ran, some before the put of its key
    expected = await exact_sum(host.storage, CONTRACT_APP)
    assert await usage_doc(host.storage, CONTRACT_APP) == {"_id": CONTRACT_APP, "bytes": expected}
    assert await host.storage.scan_used(CONTRACT_APP) == expected
    assert await host.storage.get_used(CONTRACT_APP) == expected

    for i in range(100):  # deleting everything takes the usage back to 0
        await call("storage.delete", {"collection": "c", "key": f"k{i}"})
    await call("storage.delete", {"collection": "c", "key": "n"})
    assert await usage_doc(host.storage, CONTRACT_APP) == {"_id": CONTRACT_APP, "bytes": 0}


async def test_the_first_use_counts_the_stored_documents_once(mongo_db):
    """Documents stored before the counter existed are counted by one scan, stored once
    (``$setOnInsert``) even when two "nodes" (two ``AppStorage``) and many writes start at once;
    the writes that follow are added to it."""
    nodes = [AppStorage(mongo_db), AppStorage(mongo_db)]
    await nodes[0].collection.insert_many(
        [
            {
                "_id": f"old|c|k{i}",
                "app_id": "old",
                "collection": "c",
                "key": f"k{i}",
                "value": text_of("o" * i),
                "size": len(f"k{i}") + i + 2,
                "counters": {},
                "version": 1,
            }
            for i in range(200)
        ]
    )
    before = await exact_sum(nodes[0], "old")
    assert await usage_doc(nodes[0], "old") is None

    async def put(i: int) -> None:
        node = nodes[i % 2]
        text = text_of("n" * i)
        await node.put_value("old", "c", f"new{i}", text, len(f"new{i}") + len(text), i)

    async def delete(i: int) -> None:
        await nodes[i % 2].delete_value("old", "c", f"k{i}")

    reads = [nodes[i % 2].get_used("old") for i in range(20)]
    used = await asyncio.gather(
        *reads, *(put(i) for i in range(30)), *(delete(i) for i in range(30))
    )
    assert all(isinstance(value, int) and value >= 0 for value in used[:20])
    expected = await exact_sum(nodes[0], "old")
    assert expected != before
    assert await usage_doc(nodes[0], "old") == {"_id": "old", "bytes": expected}
    assert await nodes[1].get_used("old") == expected
    assert await mongo_db[USAGE].count_documents({}) == 1
    # a third node whose scan was overtaken by writes stores nothing over the count
    late = AppStorage(mongo_db)
    assert await late.usage.add_if_missing("old", before) == expected
    assert await late.get_used("old") == expected
