"""The load generator's worker processes: python-socketio clients sending on a fixed schedule."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import signal
import time
from collections import Counter
from typing import Any

from _servers import _die_with_parent

CONNECT_TIMEOUT = 10.0  # one socket's handshake
PHASE_TIMEOUT = 180.0  # a whole worker phase (connecting everyone, closing)
CALL_TIMEOUT = 10.0  # one message.send ack
MAX_INFLIGHT_PER_CLIENT = 50  # past this a client skips its slot (counted) instead of piling up
CONNECT_CONCURRENCY = 25  # per worker
QUIET_AFTER_LAST_RECEIPT = 1.0

# ----------------------------------------------------------------------------------------------
# Load-generator worker processes


def worker_main(conn: Any, worker_id: int, url: str, specs: list[dict], text_chars: int) -> None:
    """Entry point of one load-generator process: obeys commands read from ``conn``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench process stops us
    _die_with_parent(signal.SIGKILL)
    with contextlib.suppress(EOFError, BrokenPipeError, KeyboardInterrupt):
        asyncio.run(_Worker(conn, worker_id, url, specs, text_chars).serve())


class _Worker:
    def __init__(self, conn: Any, worker_id: int, url: str, specs: list[dict], text_chars: int):
        self.conn = conn
        self.worker_id = worker_id
        self.url = url
        self.specs = specs
        self.text_chars = text_chars
        self.clients: list[dict[str, Any]] = []
        self.reset_window(0, 0)

    def reset_window(self, start_ns: int, end_ns: int) -> None:
        self.win_start, self.win_end = start_ns, end_ns
        self.latencies_ms: list[float] = []  # send->receive, copies of messages sent in window
        self.received_total = 0
        self.received_in_window = 0  # copies whose receipt time is in the window
        self.foreign = 0  # message.new we could not parse a send time from
        self.last_receipt = time.monotonic()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            command, args = await loop.run_in_executor(None, self.conn.recv)
            if command == "connect":
                self.conn.send(await self.connect_all())
            elif command == "run":
                self.conn.send(await self.run(**args))
            elif command == "close":
                await self.close_all()
                self.conn.send({"closed": True})
                return

    # --- connecting -------------------------------------------------------------------------

    def on_message_new(self, data: Any = None) -> None:
        now = time.time_ns()
        self.received_total += 1
        self.last_receipt = time.monotonic()
        try:
            sent_ns = int(data["message"]["text"].split(" ", 1)[0])
        except (TypeError, KeyError, ValueError, AttributeError):
            self.foreign += 1
            return
        if self.win_start <= now < self.win_end:
            self.received_in_window += 1
        if self.win_start <= sent_ns < self.win_end:
            self.latencies_ms.append((now - sent_ns) / 1e6)

    async def connect_all(self) -> dict[str, Any]:
        import socketio

        sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
        failures: Counter[str] = Counter()
        started = time.perf_counter()

        async def connect(spec: dict) -> None:
            # handle_sigint=False: a Ctrl-C must not cancel our tasks; the bench process stops us.
            sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
            refused: list[Any] = []
            sio.on("message.new", self.on_message_new)
            sio.on("connect_error", lambda data=None: refused.append(data))
            async with sem:
                try:
                    await asyncio.wait_for(
                        sio.connect(
                            self.url,
                            auth=spec["auth"],
                            transports=["websocket"],
                            wait_timeout=CONNECT_TIMEOUT,
                        ),
                        CONNECT_TIMEOUT + 5,
                    )
                except Exception as exc:
                    reason = refused[0] if refused else f"{type(exc).__name__}: {exc}"
                    failures[str(reason)[:200]] += 1
                    with contextlib.suppress(Exception):
                        await sio.disconnect()
                    return
            self.clients.append({**spec, "sio": sio, "inflight": 0, "seq": 0})

        await asyncio.gather(*(connect(spec) for spec in self.specs))
        return {
            "connected": len(self.clients),
            "failed": sum(failures.values()),
            "failures": dict(failures),
            "seconds": time.perf_counter() - started,
        }

    async def close_all(self) -> None:
        async def close(client: dict) -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client["sio"].disconnect(), 5)

        await asyncio.gather(*(close(c) for c in self.clients))
        self.clients.clear()

    # --- sending ----------------------------------------------------------------------------

    async def run(
        self,
        *,
        start_ns: int,
        warmup: float,
        duration: float,
        rate: float,
        phase: float,
        drain: float,
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        win_start = start_ns + int(warmup * 1e9)
        win_end = win_start + int(duration * 1e9)
        self.reset_window(win_start, win_end)
        stats: dict[str, Any] = {
            "sent": 0,
            "sent_in_window": 0,
            "expected_copies": 0,  # group sizes summed over messages sent in the window
            "acked_ok_in_window": 0,  # acks (ok) received during the window
            "acked_ok_of_window": 0,  # acks (ok) of messages sent in the window, whenever
            "ack_ms": [],  # send->ack of messages sent in the window
            "errors": Counter(),  # ok=false codes, timeouts, exceptions
            "skipped": 0,  # slots skipped because the client had too many acks outstanding
            "lag_ms": [],  # how late the generator fired each slot of the window
        }
        # Interleave groups: consecutive slots come from different groups.
        order = sorted(self.clients, key=lambda c: (c["rank"], c["group"]))
        if not order or rate <= 0:
            return self.report(stats, 0)
        slots = int((warmup + duration) * rate)
        interval = 1.0 / rate
        t0 = loop.time() + (start_ns - time.time_ns()) / 1e9 + phase
        pad = "x" * max(0, self.text_chars)
        pending: set[asyncio.Task] = set()

        async def send(client: dict) -> None:
            client["inflight"] += 1
            client["seq"] += 1
            sent_ns = time.time_ns()
            in_window = win_start <= sent_ns < win_end
            stats["sent"] += 1
            if in_window:
                stats["sent_in_window"] += 1
                stats["expected_copies"] += client["group_size"]
            payload = {
                "conversation_id": client["conversation_id"],
                "client_msg_id": f"b{self.worker_id}-{client['index']}-{client['seq']}",
                "text": f"{sent_ns} {client['index']} {client['seq']} {pad}",
            }
            began = time.perf_counter()
            try:
                ack = await client["sio"].call("message.send", payload, timeout=CALL_TIMEOUT)
            except Exception as exc:
                name = type(exc).__name__
                stats["errors"]["timeout" if "Timeout" in name else name] += 1
                return
            finally:
                client["inflight"] -= 1
            ack_ns = time.time_ns()
            if isinstance(ack, dict) and ack.get("ok"):
                if win_start <= ack_ns < win_end:
                    stats["acked_ok_in_window"] += 1
                if in_window:
                    stats["acked_ok_of_window"] += 1
                    stats["ack_ms"].append((time.perf_counter() - began) * 1000)
            else:
                code = (ack or {}).get("error", {}).get("code") if isinstance(ack, dict) else None
                stats["errors"][f"ok=false:{code or ack!r}"[:80]] += 1

        for k in range(slots):
            due = t0 + k * interval
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if k * interval >= warmup:
                stats["lag_ms"].append(max(0.0, loop.time() - due) * 1000)
            client = order[k % len(order)]
            if client["inflight"] >= MAX_INFLIGHT_PER_CLIENT or not client["sio"].connected:
                stats["skipped"] += 1
                continue
            task = asyncio.create_task(send(client))
            pending.add(task)
            task.add_done_callback(pending.discard)

        # Drain: outstanding acks, then copies still on their way (quiet for a moment).
        deadline = loop.time() + drain
        while pending and loop.time() < deadline:
            await asyncio.sleep(0.02)
        while (
            time.monotonic() - self.last_receipt < QUIET_AFTER_LAST_RECEIPT
            and loop.time() < deadline
        ):
            await asyncio.sleep(0.05)
        unfinished = len(pending)
        for task in list(pending):
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return self.report(stats, unfinished)

    def report(self, stats: dict[str, Any], unfinished: int) -> dict[str, Any]:
        stats["errors"] = dict(stats["errors"])
        return {
            **stats,
            "unfinished": unfinished,
            "latencies_ms": self.latencies_ms,
            "received_total": self.received_total,
            "received_in_window": self.received_in_window,
            "foreign": self.foreign,
            "disconnected": sum(1 for c in self.clients if not c["sio"].connected),
        }


class Workers:
    """The load-generator processes of one scenario; always stopped by ``close``."""

    def __init__(self, url: str, specs: list[dict], count: int, text_chars: int) -> None:
        ctx = mp.get_context("spawn")
        count = max(1, min(count, len(specs)))
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        for w in range(count):
            mine = specs[w::count]
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=worker_main, args=(child, w, url, mine, text_chars), daemon=True
            )
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)
        self.busy = False  # a command was sent and its replies not all collected

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid]

    def ask(self, command: str, args: Any = None, timeout: float = PHASE_TIMEOUT) -> list[dict]:
        self.busy = True
        for conn in self.conns:
            conn.send((command, args or {}))
        return self.collect(timeout)

    def send_all(self, command: str, per_worker_args: list[Any]) -> None:
        self.busy = True
        for conn, args in zip(self.conns, per_worker_args, strict=True):
            conn.send((command, args))

    def collect(self, timeout: float) -> list[dict]:
        self.busy = True
        deadline = time.monotonic() + timeout
        replies = []
        for w, conn in enumerate(self.conns):
            remaining = deadline - time.monotonic()
            if not conn.poll(max(0.0, remaining)):
                raise TimeoutError(
                    f"load-generator worker {w} did not answer within {timeout:.0f}s"
                )
            replies.append(conn.recv())
        self.busy = False
        return replies

    def close(self) -> None:
        """Politely when idle (sockets closed cleanly); interrupted mid-command, at once."""
        polite = not self.busy
        if polite:
            with contextlib.suppress(Exception):
                self.ask("close", timeout=20)
        for proc in self.procs:
            proc.join(2 if polite else 0)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for conn in self.conns:
            conn.close()
