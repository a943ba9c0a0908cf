"""Make one app timer fire several times at once across gateway nodes, for the end-to-end tests
of "exactly once however many firings race".

A node fires a timer only after winning its claim, so two firings of one timer at once happen
only when a firing outlives its lease and another node takes it over (or a firing is retried
after its work but before it was recorded done). That is played here, deterministically: the
app's own timer is claimed as a node claims it (``AppTimers.claim``) and made due now; ``copies``
of it under other ids stand for the retried and taken-over firings (attempt 2, same payload);
each is fired through ``TimerFiring._fire`` — what a node runs once it holds a claim: invoke the
app's handler in that node's sandboxed process, then record done or retry — alternately on each
node, all at once. Claimed, under a live lease, none of them is touched by the nodes' own scans.
"""

from __future__ import annotations

import asyncio
import secrets

from gateway.keys import MINIAPPS
from miniapps.host.store.app_timers import AppTimers
from miniapps.host.timers import LEASE_MS, TimerFiring
from storage.mongo import now_ms


async def fire_racing(nodes, db, timer: dict, copies: int) -> int:
    """Fire ``timer`` (its stored document, pending) now, ``copies`` + 1 times at once, half on
    each of ``nodes``; the epoch ms it was made due at."""
    store, now = AppTimers(db), now_ms()
    token = secrets.token_hex(12)
    assert await store.claim(timer, token, now + LEASE_MS)
    await db["app_timers"].update_one(
        {"_id": timer["_id"]}, {"$set": {"due_at": now, "run_at": now}}
    )
    firings = [({**timer, "due_at": now}, token)]
    for n in range(1, copies + 1):
        copy = {
            **timer,
            "_id": f"{timer['_id']}.race{n}",
            "key": f"{timer['key']}.race{n}",
            "state": "firing",
            "token": secrets.token_hex(12),
            "lease_until": now + LEASE_MS,
            "due_at": now,
            "run_at": now,
            "attempts": 1,
        }
        await db["app_timers"].insert_one(copy)
        firings.append((copy, copy["token"]))
    runners = [TimerFiring(node.app[MINIAPPS]) for node in nodes]
    await asyncio.gather(*(runners[n % 2]._fire(doc, tok) for n, (doc, tok) in enumerate(firings)))
    return now
