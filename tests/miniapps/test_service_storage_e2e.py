"""Service storage end to end: the ``stockkeeper`` test app, a real sandboxed process, sells a
stock with ``ctx.storage_incr`` while members buy at once — never more than there is — and
reports versioned updates, unique fields and sorted pages exactly as the simulator does
(tests/sdk/test_service_storage.py)."""

from __future__ import annotations

import asyncio
import json

from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all
from tests.miniapps.test_capabilities import command, setup, texts_from
from tests.sdk.test_service_storage import EXPECTED_REPORT


async def test_concurrent_buyers_never_oversell_and_the_report_matches_the_simulator(gateway):
    host, people, cid = await setup(gateway, 3, ["stockkeeper"])
    ann, bea, cem = people
    try:
        await command(ann, cid, "/stock init 4")
        await eventually(lambda: texts_from(bea, cid, "stock: init 4"), 15.0)
        await asyncio.gather(*(command(p, cid, "/stock buy") for p in people * 3))
        replies = await eventually(
            lambda: r if len(r := texts_from(bea, cid, "stock: ")) == 10 else None, 30.0
        )
        bought = sorted(r for r in replies if r.startswith("stock: bought"))
        assert bought == [f"stock: bought, {n} left" for n in range(4)]
        assert replies.count("stock: not bought limit_reached") == 5
        _, stored = await host.storage.get_value("stockkeeper", "stock", "mug")
        assert stored == {"left": 0, "name": "Blue mug"}

        await command(ann, cid, "/stock report")
        (report,) = await eventually(lambda: texts_from(cem, cid, "stock: {"), 15.0)
        assert json.loads(report.removeprefix("stock: ")) == EXPECTED_REPORT
    finally:
        await close_all(people)
