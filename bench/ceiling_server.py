"""The stack's ceiling: a bare python-socketio broadcast server, no auth and no persistence.

    python bench/ceiling_server.py --port P [--host 127.0.0.1] [--exit-after SECONDS]

It speaks the part of Aetherial's real-time API that ``bench/chat_load.py`` uses, on the same
stack (aiohttp + python-socketio AsyncServer), and nothing else:

- connect with ``auth={"room": "<group id>"}``: the socket joins that room (no token check);
- ``message.send {"conversation_id", "client_msg_id", "text"}`` builds a message of the same shape
  as Aetherial's ``message_view``, emits ``message.new {"message"}`` to the room (the sender's own
  socket included, as Aetherial does) and acks ``{"ok": true, "message", "duplicate": false}``.

What Aetherial adds on top (authentication, membership checks, rate limits, the group-commit
write to MongoDB before the ack, fan-out to per-user rooms) is what the benchmark weighs against
this. SIGTERM or SIGINT stops it. Run with no arguments (as ``make bench`` runs every
bench/*.py) it only prints how it is used and exits: ``chat_load.py`` starts it with ``--port``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal
import sys
import time
from datetime import UTC, datetime

import socketio
from aiohttp import web


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_app() -> web.Application:
    sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)
    app = web.Application()
    sio.attach(app)
    seqs: dict[str, itertools.count] = {}
    ids = itertools.count(1)

    @sio.event
    async def connect(sid: str, environ: dict, auth: object = None) -> bool:
        room = auth.get("room") if isinstance(auth, dict) else None
        if not isinstance(room, str) or not room:
            return False
        await sio.save_session(sid, {"room": room, "user": str(auth.get("user", sid))})
        await sio.enter_room(sid, room)
        return True

    @sio.on("message.send")
    async def send(sid: str, data: object = None) -> dict:
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            return {"ok": False, "error": {"code": "invalid_field", "message": "bad payload"}}
        session = await sio.get_session(sid)
        room = session["room"]
        seq = next(seqs.setdefault(room, itertools.count(1)))
        message = {
            "id": f"{next(ids):024x}",
            "conversation_id": room,
            "seq": seq,
            "sender_id": session["user"],
            "client_msg_id": data.get("client_msg_id"),
            "type": "text",
            "text": data["text"],
            "reply_to": None,
            "mentions": [],
            "mention_all": False,
            "created_at": _iso_now(),
            "edited_at": None,
            "recalled": False,
            "version": 1,
            "reactions": [],
        }
        await sio.emit("message.new", {"message": message}, room=room)
        return {"ok": True, "message": message, "duplicate": False}

    return app


async def serve(host: str, port: int, exit_after: float | None) -> None:
    runner = web.AppRunner(build_app(), access_log=None, handle_signals=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        print(f"ceiling server is running on http://{host}:{port}", flush=True)
        started = time.monotonic()
        while not stop.is_set():
            timeout = 1.0 if exit_after is None else exit_after - (time.monotonic() - started)
            if timeout <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(timeout, 1.0))
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument(
        "--exit-after",
        type=float,
        default=None,
        help="stop by itself after this many seconds (default: serve until SIGTERM/SIGINT)",
    )
    args = parser.parse_args(argv)
    if args.port is None:
        # Run bare (as `make bench` does with every bench/*.py): a short self-check, not a server
        # left running forever.
        print("ceiling_server.py is started by bench/chat_load.py; pass --port to serve by hand.")
        return 0
    try:
        asyncio.run(serve(args.host, args.port, args.exit_after))
    except OSError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
