"""Wallet throughput and latency: concurrent transfers and red-packet grabs against `run.py`,
beside the durable messages/s of the same server in the same run.

    .venv/bin/python bench/wallet_load.py [--clients 50] [--transfers 1000] [--packets 20]
        [--messages 2000] [--baseline REV]

Starts Aetherial on the embedded store (as `make run` does), signs up ``--clients`` people in one
group and tops them up; then (1) every client sends transfers to random others, each as soon as
its previous answer came back (``--transfers`` in all), (2) ``--packets`` red packets of 10
shares are dropped one after the other and every client grabs each at once, and (3) the same
clients send ``--messages`` text messages to the group over REST the same way (each answered once
durable). Prints transfers/s, grab attempts/s, messages/s with p50/p99 request latency and the
server's CPU, and the ratio transfers/s ÷ messages/s (issue 22's goal: ≥ 0.5).

``--baseline REV`` (e.g. ``HEAD``: the last commit, without the working tree's changes) checks
REV out into a temporary ``git worktree``, runs the same scenario against its server first and
this checkout's right after (same machine, same interpreter), prints both and removes the
worktree. Nothing is asserted about the figures; the exit code is 1 only when a transfer failed
or a share was not paid.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._servers import ROOT, cpu_seconds, descendants, start_aetherial

PASSWORD = "Correct-horse-9"
START_BALANCE = 10**7


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def latency_text(values: list[float]) -> str:
    return f"p50 {statistics.median(values):.1f} ms, p99 {percentile(values, 99):.1f} ms"


def server_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) or 0.0 for p in [pid, *descendants(pid)])


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base, self.token, self.id = session, base, "", ""

    async def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.session.request(method, self.base + path, json=body, headers=headers) as r:
            return r.status, await r.json() if r.content_type == "application/json" else {}

    async def timed(self, latencies: list[float], method: str, path: str, body=None) -> int:
        started = time.perf_counter()
        status, _ = await self.call(method, path, body)
        latencies.append((time.perf_counter() - started) * 1000)
        return status

    async def signup(self, name: str) -> None:
        account = {"username": name, "email": f"{name}@bench.local", "password": PASSWORD}
        await self.call("POST", "/api/v1/auth/register", account)
        login = {"login": name, "password": PASSWORD}
        _, body = await self.call("POST", "/api/v1/auth/login", login)
        self.token, self.id = body["access_token"], body["user"]["id"]


async def setup(session: aiohttp.ClientSession, base: str, count: int) -> tuple[list[Client], str]:
    clients = [Client(session, base) for _ in range(count)]
    stamp = int(time.time())
    await asyncio.gather(*[c.signup(f"w{stamp}x{i}") for i, c in enumerate(clients)])
    members = [c.id for c in clients[1:]]
    _, body = await clients[0].call(
        "POST", "/api/v1/conversations", {"type": "group", "title": "bench", "member_ids": members}
    )
    topup = {"amount": START_BALANCE, "currency": "USD"}
    await asyncio.gather(*[c.call("POST", "/api/v1/wallet/dev-topup", topup) for c in clients])
    return clients, body["conversation"]["id"]


async def transfers(clients: list[Client], chat: str, total: int, pid: int) -> dict:
    rng = random.Random(1)
    latencies: list[float] = []
    statuses: list[int] = []

    async def sender(i: int) -> None:
        for n in range(total // len(clients)):
            to = rng.choice([c for c in clients if c is not clients[i]])
            body = {
                "to_user_id": to.id,
                "amount": rng.randint(1, 999),
                "currency": "USD",
                "conversation_id": chat,
                "idempotency_key": f"b{i}-{n}",
            }
            path = "/api/v1/wallet/transfers"
            statuses.append(await clients[i].timed(latencies, "POST", path, body))

    cpu0, wall0 = server_cpu(pid), time.perf_counter()
    await asyncio.gather(*[sender(i) for i in range(len(clients))])
    wall, cpu = time.perf_counter() - wall0, server_cpu(pid) - cpu0
    failures = sum(s != 201 for s in statuses)
    print(
        f"transfers: {len(statuses)} by {len(clients)} clients in {wall:.1f} s = "
        f"{len(statuses) / wall:.0f}/s; latency {latency_text(latencies)}; failures {failures}; "
        f"server CPU {cpu / wall * 100:.0f}% of a core"
    )
    return {
        "failures": failures,
        "transfers/s": len(statuses) / wall,
        "transfer p50": statistics.median(latencies),
        "transfer p99": percentile(latencies, 99),
    }


async def red_packets(clients: list[Client], chat: str, packets: int, pid: int) -> dict:
    latencies: list[float] = []
    paid = 0
    cpu0, wall0 = server_cpu(pid), time.perf_counter()
    for k in range(packets):
        _, body = await clients[k % len(clients)].call(
            "POST",
            "/api/v1/wallet/red-packets",
            {"conversation_id": chat, "total": 10_000, "count": 10, "currency": "USD",
             "idempotency_key": f"p{k}"},
        )  # fmt: skip
        path = f"/api/v1/wallet/red-packets/{body['red_packet']['id']}/claim"
        grabs = await asyncio.gather(*[c.timed(latencies, "POST", path) for c in clients])
        paid += sum(status == 200 for status in grabs)
    wall, cpu = time.perf_counter() - wall0, server_cpu(pid) - cpu0
    print(
        f"red packets: {packets} x 10 shares, {len(clients)} grabbers at once: {paid} shares "
        f"paid of {len(latencies)} attempts in {wall:.1f} s = {len(latencies) / wall:.0f} "
        f"attempts/s; latency {latency_text(latencies)}; server CPU {cpu / wall * 100:.0f}%"
    )
    return {
        "unpaid": packets * 10 - paid,
        "grabs/s": len(latencies) / wall,
        "grab p50": statistics.median(latencies),
        "grab p99": percentile(latencies, 99),
    }


async def messages(clients: list[Client], chat: str, total: int, pid: int) -> dict:
    """Durable messages/s of the same server: REST sends, each answered once stored (the
    message writer's group commit), each client sending as soon as its previous one was."""
    latencies: list[float] = []
    statuses: list[int] = []

    async def sender(i: int) -> None:
        for n in range(total // len(clients)):
            body = {"client_msg_id": f"m{i}-{n}", "text": f"message {n} from {i}"}
            path = f"/api/v1/conversations/{chat}/messages"
            statuses.append(await clients[i].timed(latencies, "POST", path, body))

    cpu0, wall0 = server_cpu(pid), time.perf_counter()
    await asyncio.gather(*[sender(i) for i in range(len(clients))])
    wall, cpu = time.perf_counter() - wall0, server_cpu(pid) - cpu0
    failures = sum(s not in (200, 201) for s in statuses)
    print(
        f"messages: {len(statuses)} by {len(clients)} clients in {wall:.1f} s = "
        f"{len(statuses) / wall:.0f}/s; latency {latency_text(latencies)}; failures {failures}; "
        f"server CPU {cpu / wall * 100:.0f}% of a core"
    )
    return {
        "messages/s": len(statuses) / wall,
        "message p50": statistics.median(latencies),
        "message p99": percentile(latencies, 99),
    }


async def scenario(base: str, args: argparse.Namespace, pid: int) -> dict:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        clients, chat = await setup(session, base, args.clients)
        figures = await transfers(clients, chat, args.transfers, pid)
        figures.update(await red_packets(clients, chat, args.packets, pid))
        if args.messages:
            figures.update(await messages(clients, chat, args.messages, pid))
            figures["ratio"] = figures["transfers/s"] / figures["messages/s"]
            print(f"transfers/s ÷ messages/s = {figures['ratio']:.2f} (goal ≥ 0.5)")
        return figures


def run_server(root: Path, args: argparse.Namespace, name: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="aetherial-wallet-bench-") as tmp:
        server = start_aetherial(Path(tmp), root, name)
        try:
            print(f"-- {name} ({root})")
            return asyncio.run(scenario(server.url, args, server.pid))  # type: ignore[attr-defined]
        finally:
            server.stop()


def with_baseline(rev: str, args: argparse.Namespace) -> dict[str, dict]:
    """REV's server first, then this checkout's, back to back; the worktree is removed after."""
    tree = Path(tempfile.mkdtemp(prefix="aetherial-baseline-"))
    tree.rmdir()  # git worktree add wants to create it
    git = ["git", "-C", str(ROOT)]
    subprocess.run([*git, "worktree", "add", "--detach", str(tree), rev], check=True)
    try:
        return {
            f"before ({rev})": run_server(tree, args, "baseline"),
            "after (working tree)": run_server(ROOT, args, "aetherial"),
        }
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=False)


def print_table(results: dict[str, dict]) -> None:
    names = list(results)
    keys = [k for k in results[names[0]] if k not in ("failures", "unpaid")]
    print(f"{'':16}" + "".join(f"{n:>24}" for n in names))
    for key in keys:
        unit = "" if "/s" in key or key == "ratio" else " ms"
        cells = "".join(f"{results[n].get(key, float('nan')):>21.2f}{unit:3}" for n in names)
        print(f"{key:16}{cells}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--transfers", type=int, default=1000)
    parser.add_argument("--packets", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000, help="0: no messages phase")
    parser.add_argument("--baseline", metavar="REV", help="also run REV's server (git worktree)")
    args = parser.parse_args()
    if args.baseline:
        results = with_baseline(args.baseline, args)
    else:
        results = {"this checkout": run_server(ROOT, args, "aetherial")}
    print_table(results)
    bad = any(r["failures"] or r["unpaid"] for r in results.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
