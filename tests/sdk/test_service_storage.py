"""Service storage in the simulator (issue 14): versions, ``storage.update`` with
``expected_version``, bounded ``storage.incr``, unique fields and sorted pages — the
``stockkeeper`` test app, the same one tests/miniapps/test_service_storage_e2e.py runs on the
platform, plus each error code through ``call_capability``."""

from __future__ import annotations

import json
from pathlib import Path

from sdk.simulator import Simulator

STOCKKEEPER = Path(__file__).resolve().parents[1] / "miniapps" / "apps" / "stockkeeper"
EXPECTED_REPORT = {
    "desc": ["a", "c", "d", "b"],
    "duplicate": "duplicate_value",
    "limit": "limit_reached",
    "missing": "not_found",
    "pages": [["b", "d", "c"], ["a"]],
    "stale": "conflict",
    "undeclared": "invalid_params",
    "versions": [1, 2],
}


def world():
    sim = Simulator(STOCKKEEPER)
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann, "bea"])
    return sim, ann, chat


def texts(sim, chat):
    return [m["text"] for m in sim.messages(chat) if m["type"] == "text"]


async def test_a_stock_is_sold_down_to_zero_and_no_further():
    sim, ann, chat = world()
    await sim.command(ann, chat, "/stock init 2")
    for _ in range(3):
        await sim.command(ann, chat, "/stock buy")
    assert texts(sim, chat) == [
        "stock: init 2",
        "stock: bought, 1 left",
        "stock: bought, 0 left",
        "stock: not bought limit_reached",
    ]
    assert sim.storage("stock")["mug"] == {"left": 0, "name": "Blue mug"}
    assert sim.storage_version("stock", "mug") == 3


async def test_the_report_shows_versions_unique_fields_and_pages():
    sim, ann, chat = world()
    await sim.command(ann, chat, "/stock report")
    (text,) = texts(sim, chat)
    assert json.loads(text.removeprefix("stock: ")) == EXPECTED_REPORT


async def test_each_error_code_of_update_and_incr():
    sim, ann, chat = world()

    async def call(method, **params):
        return await sim.call_capability(ann, chat, method, params)

    doc = {"collection": "products", "key": "a"}
    assert await call("storage.get", **doc) == ("ok", {"value": None, "version": 0})
    assert await call("storage.update", **doc, set={"sku": "A"}) == ("error", "not_found")
    assert await call("storage.update", **doc, set={"sku": "A"}, upsert=True) == (
        "ok",
        {"version": 1},
    )
    assert await call("storage.update", **doc, set={"n": 1}, expected_version=5) == (
        "error",
        "conflict",
    )
    assert await call("storage.put", collection="products", key="b", value={"sku": "A"}) == (
        "error",
        "duplicate_value",
    )
    assert await call("storage.incr", **doc, field="sku", delta=1) == ("error", "invalid_params")
    assert await call("storage.incr", **doc, field="n", delta=-1) == ("error", "limit_reached")
    assert await call("storage.incr", **doc, field="n", delta=3, max=2) == (
        "error",
        "limit_reached",
    )
    assert await call("storage.incr", **doc, field="n", delta=2, max=2) == (
        "ok",
        {"value": 2, "version": 2},
    )
    assert await call("storage.incr", **doc, field="n", delta=1, min=3, max=2) == (
        "error",
        "invalid_params",
    )
    assert await call("storage.find", collection="products", sort={"field": "n"}) == (
        "error",
        "invalid_params",
    )
    assert await call("storage.find", collection="products", after="garbage") == (
        "error",
        "invalid_params",
    )
    # Nothing refused changed anything.
    assert sim.storage("products") == {"a": {"sku": "A", "n": 2}}
    big = "x" * 70_000
    assert await call("storage.update", **doc, set={"big": big}) == ("error", "quota_exceeded")
    assert await call("storage.incr", collection="c", key="new", field="views", delta=1) == (
        "ok",
        {"value": 1, "version": 1},
    )
