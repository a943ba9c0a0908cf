"""The sandbox runtime: ``python -m sdk.runtime <app dir>`` runs a hosted mini-program.

It loads and validates the manifest, imports the entry file, then speaks PROTOCOL.md over
stdin/stdout: one JSON object per line, through ``sdk.protocol.Peer`` (several host requests
handled at once, app → host capability calls with string ids ``"a1"``, ``"a2"`` … awaiting
their responses). Only protocol
lines reach stdout (an app's ``print`` goes to stderr, like its logs). ``shutdown`` answers
``{}`` and exits; so does the end of stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO

from sdk.app import App
from sdk.errors import DeadlineExceeded, InvalidParams, SDKError, host_error
from sdk.loader import load_app
from sdk.protocol import MAX_LINE_BYTES, PROTOCOL_VERSION, Peer, RpcError, answer, encode

log = logging.getLogger("sdk.runtime")

CAPABILITY_TIMEOUT = 30.0  # seconds a capability call waits for the host's answer
SHUTDOWN_GRACE = 1.5  # seconds in-flight requests may finish after shutdown


class _LineReader:
    """Reads lines from a file descriptor in a daemon thread (``os.read``: no buffer lock, so
    interpreter exit never waits on it) and hands them to the event loop; None marks the end."""

    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._fd = fd
        self._loop = loop
        threading.Thread(target=self._run, name="protocol-reader", daemon=True).start()

    def _put(self, line: bytes | None) -> None:
        self._loop.call_soon_threadsafe(self.queue.put_nowait, line)

    def _run(self) -> None:
        buffer = b""
        discarding = False
        try:
            while True:
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if discarding:
                        discarding = False
                        continue
                    self._put(line)
                if len(buffer) > MAX_LINE_BYTES:
                    log.error("the host sent a line over %d bytes; ignored", MAX_LINE_BYTES)
                    buffer, discarding = b"", True
            if buffer.strip() and not discarding:
                self._put(buffer)
        except (OSError, RuntimeError):  # stdin broken, or the loop closed under us
            pass
        with contextlib.suppress(RuntimeError):
            self._put(None)


class Runtime:
    """One app speaking the protocol over a pair of byte streams, through a ``Peer``: this
    class moves lines and answers ``initialize``/``shutdown``; the peer owns request ids,
    pending answers and the serving of the host's requests."""

    def __init__(self, app: App, manifest: dict[str, Any], input_fd: int, output: BinaryIO):
        self.app = app
        self.manifest = manifest
        self._input_fd = input_fd
        self._output = output
        self._initialized = False
        self.app_secret: str | None = None
        self._stopping = asyncio.Event()
        self.peer = Peer(self._send, self._serve, id_prefix="a", name="runtime")

    # --- the transport: one JSON object per line ------------------------------------------

    async def _send(self, message: dict[str, Any]) -> None:
        # encode() refuses a line over MAX_LINE_BYTES before anything is written.
        self._output.write(encode(message))
        self._output.flush()

    def _receive(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.error("ignored a line that is not JSON: %.80r", line)
            return
        if not isinstance(message, dict):
            log.error("ignored a line that is not a JSON object: %.80r", line)
            return
        self.peer.receive(message)

    # --- app -> host ----------------------------------------------------------------------

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send a capability request to the host and wait for its answer."""
        try:
            result = await self.peer.request(method, params, timeout=CAPABILITY_TIMEOUT)
        except ValueError as exc:  # the request cannot travel (over the line limit)
            raise InvalidParams(str(exc)) from None
        except TimeoutError:
            raise DeadlineExceeded(f"the host did not answer {method}") from None
        except RpcError as exc:
            raise host_error(exc.code, exc.message, exc.data) from None
        return result if isinstance(result, dict) else {}

    # --- host -> app ----------------------------------------------------------------------

    async def _serve(self, method: str, params: dict[str, Any]) -> Any:
        if method == "initialize":
            return self._initialize(params)
        if method == "shutdown":
            self._stopping.set()
            return {}
        if not self._initialized and method != "ping":
            raise RpcError("invalid_params", "initialize comes first")
        body = await answer(self.app, method, params, self)
        if "error" in body:  # answer() already mapped the failure to a code and a message
            error = body["error"]
            raise RpcError(error["data"]["code"], error["message"])
        return body["result"]

    def _initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("protocol") != PROTOCOL_VERSION:
            raise RpcError("invalid_params", f"this runtime speaks protocol {PROTOCOL_VERSION}")
        if params.get("app_id") not in (None, self.manifest["id"]):
            raise RpcError(
                "invalid_params", f"this is {self.manifest['id']}, not {params['app_id']}"
            )
        self._initialized = True
        # The app's own secret, to verify signed host events (payment.succeeded …); it comes
        # over this private pipe, never through argv or the environment.
        secret = params.get("secret")
        self.app_secret = secret if isinstance(secret, str) and secret else None
        return {"protocol": PROTOCOL_VERSION, "ready": True}

    async def run(self) -> int:
        """Serve until ``shutdown`` or the end of input; the process exit status."""
        reader = _LineReader(self._input_fd, asyncio.get_running_loop())
        stop = asyncio.create_task(self._stopping.wait())
        while True:
            next_line = asyncio.create_task(reader.queue.get())
            done, _ = await asyncio.wait({next_line, stop}, return_when=asyncio.FIRST_COMPLETED)
            if stop in done:
                next_line.cancel()
                # In-flight requests, the shutdown's own answer among them, may finish.
                if self.peer.serving:
                    await asyncio.wait(set(self.peer.serving), timeout=SHUTDOWN_GRACE)
                break
            line = next_line.result()
            if line is None:
                stop.cancel()
                break
            if line.strip():
                self._receive(line)
        self.peer.fail_pending(ConnectionError("the host closed the protocol"))
        await self.peer.close()
        return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m sdk.runtime <app dir>``."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if len(argv) != 1:
        print("usage: python -m sdk.runtime <app dir>", file=sys.stderr)
        return 2
    # Keep the real stdout for protocol lines only; anything else printed goes to stderr.
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    try:
        # The host validated the folder when it registered the app; here the folder may be
        # mounted under another name (``/app`` in the sandbox), so its name is not checked.
        app, manifest = load_app(Path(argv[0]), check_folder_name=False)
    except SDKError as exc:
        log.error("cannot start: %s", exc)
        return 1
    for problem in app.check_against_manifest(manifest):
        log.warning("%s", problem)
    runtime = Runtime(app, manifest, sys.stdin.fileno(), protocol_out)
    return asyncio.run(runtime.run())


if __name__ == "__main__":
    sys.exit(main())
