"""The protocol over an app's pipes: whole JSON lines in and out, handed to ``sdk.protocol.Peer``.

A line longer than ``MAX_LINE_BYTES`` or one that is not a JSON object is a protocol error: the
app is killed. Reading is paced (``logs.Pacer``) because every line is parsed on the event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from miniapps.host.sandbox.errors import AppCrashed
from miniapps.host.sandbox.logs import Pacer
from sdk.protocol import MAX_LINE_BYTES, Peer, encode

Kill = Callable[[str], Awaitable[None]]


def sender(proc: asyncio.subprocess.Process, app_id: str) -> Callable[[dict], Awaitable[None]]:
    """The ``send`` of the app's peer: one line on its stdin, waiting while the pipe is full;
    ``AppCrashed`` once the app is gone, ``ValueError`` for a message over the line limit."""

    async def send(message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        data = encode(message)
        try:
            proc.stdin.write(data)
            await proc.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise AppCrashed(f"app {app_id} is gone: {exc}") from None

    return send


async def read_messages(stdout: asyncio.StreamReader, peer: Peer, pacer: Pacer, kill: Kill) -> None:
    """Feed every line of the app's stdout to ``peer`` until it ends or breaks the protocol."""
    while True:
        try:
            line = await stdout.readline()
        except (ValueError, asyncio.LimitOverrunError):
            await kill(f"protocol_error: a line of more than {MAX_LINE_BYTES} bytes")
            return
        if not line:
            return
        await pacer.pace(len(line))
        try:
            message = json.loads(line)
            if not isinstance(message, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            await kill(f"protocol_error: bad line ({exc}): {line[:100]!r}")
            return
        peer.receive(message)
