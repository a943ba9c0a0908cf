"""The crypto exchange's matching engine alone: orders/s and latency per submit, in process.

    .venv/bin/python bench/crypto_match.py [--orders 50000] [--seed 7] [--max-resting 400]

A seeded stream of ``--orders`` orders on BTC/USDT (the design's pair: tick 0.01, lot 0.00001,
0.1 % / 0.2 % fees) from 200 traders around a mid price that random-walks: 70 % limit GTC a few
ticks either side of the mid (so the book fills and crosses), 8 % limit IOC, 2 % limit FOK,
10 % market (half of them with a fresh reference price, so some fill against the house), 10 %
cancels of a random earlier order. Each call is timed with ``perf_counter_ns``; submits/s is
the number of orders over the sum of their submit times (the bench's own bookkeeping between
calls is left out, and the pre-built stream is frozen out of the garbage collector's passes).
Prints submits/s and cancels/s with p50/p99/max µs per call, trades (book and house), how
orders ended and the peak book size, twice:

1. **engine**: ``engine.submit``/``engine.cancel`` on a ``Book`` kept in memory;
2. **engine + JSON**: what the storage layer does per order on top of matching — read the book
   from its stored JSON (``Book.from_json``), match, write it back (``Book.to_json``,
   ``json.dumps``) — without the store's round trips.

The book is capped at ``--max-resting`` resting orders (400, as the stored document is): GTC
remainders beyond it expire (``book_full``), counted below. Nothing is asserted about the
figures; the exit code is 1 only if the two runs disagree (same stream → same events).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import random
import statistics
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "miniapps" / "crypto"))

import engine

SPEC = engine.PairSpec(
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    tick=Decimal("0.01"),
    lot=Decimal("0.00001"),
    min_notional=Decimal("5"),
    maker_fee=Decimal("0.001"),
    taker_fee=Decimal("0.002"),
)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def stream(count: int, seed: int) -> list[tuple]:
    """The orders: ("submit", Order, reference price) or ("cancel", order id, user)."""
    rng = random.Random(seed)
    mid = 60_000.0
    placed: list[tuple[str, str]] = []
    actions: list[tuple] = []
    for n in range(count):
        mid = max(1_000.0, mid * (1 + rng.gauss(0, 0.0002)))
        user = f"trader-{rng.randrange(200):03d}"
        kind = rng.random()
        if kind < 0.10 and placed:
            order_id, owner = placed[rng.randrange(len(placed))]
            actions.append(("cancel", order_id, owner))
            continue
        side = rng.choice(("buy", "sell"))
        amount = Decimal(rng.randrange(10, 5_000)) * SPEC.lot  # 0.0001 … 0.05 BTC
        order_id = f"o-{n:012x}"
        reference = None
        if kind < 0.20:
            order = engine.Order(order_id, user, side, "market", amount, None)
            if rng.random() < 0.5:
                reference = Decimal(f"{mid:.2f}")
            else:
                cap = mid * (1.002 if side == "buy" else 0.998)
                order.price_cap = Decimal(f"{cap:.2f}")
        else:
            # Limit prices a few ticks either side of the mid; buys mostly under it.
            offset = rng.gauss(-15 if side == "buy" else 15, 12) * 0.01 * mid / 1_000
            price = Decimal(f"{mid + offset:.2f}")
            tif = "GTC" if kind < 0.90 else ("IOC" if kind < 0.98 else "FOK")
            order = engine.Order(order_id, user, side, "limit", amount, price, tif)
            if tif == "GTC":
                placed.append((order_id, user))
        actions.append(("submit", order, reference))
    return actions


def fresh(order: engine.Order) -> engine.Order:
    return engine.Order(**vars(order))


def run(actions: list[tuple], *, through_json: bool) -> dict:
    book = engine.Book(SPEC)
    stored = json.dumps(book.to_json())
    latencies: dict[str, list[float]] = {"submit": [], "cancel": []}
    outcomes: Counter[str] = Counter()
    peak = 0
    digest = hashlib.sha256()
    gc.collect()
    gc.freeze()  # the pre-built stream is not the engine's garbage: keep it out of GC passes
    for action in actions:
        if action[0] == "submit":
            order = fresh(action[1])
        t0 = time.perf_counter_ns()
        if through_json:
            book = engine.Book.from_json(SPEC, json.loads(stored))
        try:
            if action[0] == "submit":
                events = engine.submit(book, order, reference_price=action[2])
            else:
                events = engine.cancel(book, action[1], action[2])
        except engine.EngineError as exc:
            events = []
            outcomes[f"refused ({exc.code})"] += 1
        if through_json:
            stored = json.dumps(book.to_json(), separators=(",", ":"))
        latencies[action[0]].append((time.perf_counter_ns() - t0) / 1000)
        peak = max(peak, len(book))
        for event in events:
            digest.update(repr(event).encode())
            if event.kind == "trade":
                outcomes["house fills" if event.trade.house else "book trades"] += 1
            elif event.reason:
                outcomes[f"{event.status} ({event.reason})"] += 1
    gc.unfreeze()
    return {
        "latencies": latencies,
        "outcomes": outcomes,
        "peak": peak,
        "digest": digest.hexdigest(),
        "stored_bytes": len(json.dumps(book.to_json(), separators=(",", ":"))),
    }


def report(title: str, result: dict) -> None:
    print(f"\n{title}")
    for kind, lat in result["latencies"].items():
        print(
            f"  {kind + 's/s':<20} {len(lat) / (sum(lat) / 1e6):,.0f}   µs per {kind}: "
            f"p50 {statistics.median(lat):.1f}, p99 {percentile(lat, 99):.1f}, "
            f"max {max(lat):.1f}"
        )
    print(f"  peak book size       {result['peak']} resting orders")
    print(f"  book at the end      {result['stored_bytes']:,} bytes as JSON")
    for name, value in sorted(result["outcomes"].items()):
        print(f"  {name:<28} {value:,}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-resting", type=int, default=400)
    args = parser.parse_args()
    global SPEC
    SPEC = engine.PairSpec(**{**vars(SPEC), "max_resting": args.max_resting})

    actions = stream(args.orders, args.seed)
    submits = sum(1 for a in actions if a[0] == "submit")
    print(
        f"{len(actions):,} calls ({submits:,} orders, {len(actions) - submits:,} cancels), "
        f"seed {args.seed}, max {args.max_resting} resting"
    )
    plain = run(actions, through_json=False)
    report("engine (book in memory)", plain)
    stored = run(actions, through_json=True)
    report("engine + JSON (book read from and written back to JSON per call)", stored)
    if plain["digest"] != stored["digest"]:
        print("\nthe two runs disagree: the JSON round trip changed the matching")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
