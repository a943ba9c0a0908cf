"""A hostile mini-program speaking the raw protocol (no SDK), for the sandbox tests.

It answers ``initialize``, ``ping`` and ``shutdown``; a ``command`` request runs the attack named
in ``params.args[0]`` (arguments follow) in a thread of its own and answers what happened:
``{"ok": true, ...}`` when the attack worked, ``{"ok": false, "error": "..."}`` when it was
blocked. Some attacks never answer (spin, crash): the host has to deal with them. Every loop is
bounded, so even outside a sandbox it cannot take a machine down.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time

_write_lock = threading.Lock()
_waiting: dict[str, list] = {}  # app -> host request id -> [event, response]
_counter = iter(range(1, 1_000_000))


def send(message: dict) -> None:
    data = json.dumps(message) + "\n"
    with _write_lock:
        sys.stdout.write(data)
        sys.stdout.flush()


def failed(exc: BaseException) -> dict:
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def read_file(path: str) -> dict:
    try:
        with open(path, "rb") as file:
            return {"ok": True, "content": file.read(200).decode(errors="replace")}
    except OSError as exc:
        return failed(exc)


def write_file(path: str) -> dict:
    try:
        with open(path, "w") as file:
            file.write("pwned")
        return {"ok": True}
    except OSError as exc:
        return failed(exc)


def connect(port: str) -> dict:
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=1):
            return {"ok": True}
    except OSError as exc:
        return failed(exc)


def alloc(mib: str) -> dict:
    chunks = []
    try:
        for _ in range(int(mib)):
            chunks.append(bytearray(1024 * 1024))  # touched: zero-filled
        return {"ok": True, "allocated_mib": len(chunks)}
    except MemoryError as exc:
        allocated = len(chunks)
        chunks.clear()
        return {**failed(exc), "allocated_mib": allocated}


def fork_bomb(limit: str = "2000") -> dict:
    """Fork until refused (at most ``limit`` times); each child tries to fork once more."""
    forked = 0
    error = None
    for _ in range(int(limit)):
        try:
            pid = os.fork()
        except OSError as exc:
            error = exc
            break
        if pid == 0:  # child: one more generation, then linger a little and vanish
            with contextlib.suppress(OSError):
                os.fork()
            time.sleep(3)
            os._exit(0)
        forked += 1
    result = {"ok": error is None, "forked": forked}
    if error is not None:
        result["error"] = f"{type(error).__name__}: {error}"
    return result


def spin() -> dict:
    while True:
        pass


def crash(code: str = "3") -> dict:
    sys.stderr.write("crashing on purpose\n")
    sys.stderr.flush()
    os._exit(int(code))


def whoami() -> dict:
    with open("/proc/self/status") as file:
        status = file.read()
    cap_eff = status.split("CapEff:")[1].split()[0]
    pids = [name for name in os.listdir("/proc") if name.isdigit()]
    return {
        "ok": True,
        "uid": os.getuid(),
        "cwd": os.getcwd(),
        "home": os.environ.get("HOME"),
        "root": sorted(os.listdir("/")),
        "cap_eff": cap_eff,
        "visible_pids": len(pids),
    }


def environ() -> dict:
    return {"ok": True, "env": dict(os.environ)}


def sleep(seconds: str) -> dict:
    time.sleep(float(seconds))
    return {"ok": True}


def capability(method: str, text: str = "hello") -> dict:
    """Call the host (app -> host request) and return its answer."""
    request_id = f"a{next(_counter)}"
    slot: list = [threading.Event(), None]
    _waiting[request_id] = slot
    send(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": method,
            "params": {"call_id": "c-test", "text": text},
        }
    )
    if not slot[0].wait(5):
        return {"ok": False, "error": "no answer from the host"}
    return {"ok": True, "response": slot[1]}


def garbage() -> dict:
    with _write_lock:
        sys.stdout.write("this is not json\n")
        sys.stdout.flush()
    return {"ok": True}


ATTACKS = {
    "read_file": read_file,
    "write_file": write_file,
    "connect": connect,
    "alloc": alloc,
    "fork_bomb": fork_bomb,
    "spin": spin,
    "crash": crash,
    "whoami": whoami,
    "environ": environ,
    "sleep": sleep,
    "capability": capability,
    "garbage": garbage,
}


def run(request_id, args: list[str]) -> None:
    try:
        result = ATTACKS[args[0]](*args[1:])
    except BaseException as exc:  # report, never die of an attack that failed
        result = failed(exc)
    send({"jsonrpc": "2.0", "id": request_id, "result": result})


def main() -> None:
    for line in sys.stdin:
        message = json.loads(line)
        method = message.get("method")
        request_id = message.get("id")
        if method is None:  # a response to one of our capability requests
            slot = _waiting.pop(request_id, None)
            if slot is not None:
                slot[1] = message
                slot[0].set()
        elif method == "initialize":
            send({"jsonrpc": "2.0", "id": request_id, "result": {"protocol": 1, "ready": True}})
        elif method == "shutdown":
            send({"jsonrpc": "2.0", "id": request_id, "result": {}})
            os._exit(0)
        elif method == "fail":
            error = {"code": -32000, "message": "version mismatch", "data": {"code": "conflict"}}
            send({"jsonrpc": "2.0", "id": request_id, "error": error})
        elif method == "command":
            args = message["params"]["args"]
            threading.Thread(target=run, args=(request_id, args), daemon=True).start()
        else:
            send({"jsonrpc": "2.0", "id": request_id, "result": {}})


if __name__ == "__main__":
    main()
