"""Sends ``storage.find`` with a ~800 KB filter of 100,000 ``$or`` clauses, 4 at a time, for two
seconds (inside the 3 s deadline of its invocation), then says how they were answered."""

import asyncio
import time
from collections import Counter

from sdk import App, HostError

app = App("flooder")

HOSTILE = {"$or": [{"a": 1}] * 100_000}
SECONDS = 2.0
AT_ONCE = 4


@app.command("flood")
async def flood(ctx):
    answers = Counter()
    end = time.monotonic() + SECONDS

    async def worker():
        while time.monotonic() < end:
            try:
                # Straight to the host: the SDK helper would refuse it before sending.
                await ctx.call("storage.find", collection="things", filter=HOSTILE)
                answers["ok"] += 1
            except HostError as exc:
                answers[exc.code] += 1

    await asyncio.gather(*(worker() for _ in range(AT_ONCE)))
    summary = " ".join(f"{code}={count}" for code, count in sorted(answers.items()))
    await ctx.send_text(f"flooder: {summary}")
