"""A hostile mini-program speaking the raw protocol (no SDK), for the sandbox tests.

It answers ``initialize``, ``ping`` and ``shutdown``; a ``command`` request runs the attack named
in ``params.args[0]`` (arguments follow) in a thread of its own and answers what happened:
``{"ok": true, ...}`` when the attack worked, ``{"ok": false, "error": "..."}`` when it was
blocked. Some attacks never answer (spin, crash): the host has to deal with them. Every loop is
bounded, so even outside a sandbox it cannot take a machine down.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import signal
import socket
import sys
import threading
import time

MIB = 1024 * 1024
CLONE_NEWUSER = 0x10000000
PTRACE_ATTACH, PTRACE_DETACH = 16, 17

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


def _libc_errno(result: int) -> str:
    """ "ok" when a libc call worked, else the name of its errno."""
    return "ok" if result == 0 else errno.errorcode.get(ctypes.get_errno(), "?")


def unshare() -> dict:
    """A user namespace (root inside it: the first step of most container escapes)."""
    libc = ctypes.CDLL(None, use_errno=True)
    results = {"unshare": _libc_errno(libc.unshare(CLONE_NEWUSER))}
    # The raw clone() with CLONE_NEWUSER; a child (if the filter let it through) leaves at once.
    clone = {"x86_64": 56, "aarch64": 220}.get(os.uname().machine)
    if clone is not None:
        child = libc.syscall(clone, CLONE_NEWUSER | signal.SIGCHLD, 0, 0, 0, 0)
        if child == 0:
            os._exit(0)
        if child > 0:
            os.waitpid(child, 0)
        results["clone"] = "ok" if child > 0 else errno.errorcode.get(ctypes.get_errno(), "?")
    return {"ok": "ok" in results.values(), **results}


def ptrace() -> dict:
    """Attach to a process of our own (the kernel would allow it: same uid, our child)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    child = os.fork()
    if child == 0:
        time.sleep(5)
        os._exit(0)
    try:
        attach = libc.ptrace(PTRACE_ATTACH, child, None, None)
        result = _libc_errno(attach)
        if attach == 0:
            libc.ptrace(PTRACE_DETACH, child, None, None)
        init = _libc_errno(libc.ptrace(PTRACE_ATTACH, 1, None, None))
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    return {"ok": result == "ok" or init == "ok", "child": result, "pid1": init}


def alloc_spread(total_mib: str, children: str) -> dict:
    """Allocate ``total_mib`` across ``children`` processes, each under any per-process limit;
    each child holds its memory a moment. Reports how the children ended."""
    share = int(total_mib) // int(children)
    pids = []
    for _ in range(int(children)):
        pid = os.fork()
        if pid == 0:
            held = []
            try:
                for _ in range(share // 16):
                    held.append(bytearray(b"\x01") * (16 * MIB))  # touched, so resident
            except MemoryError:
                os._exit(3)
            time.sleep(1)
            os._exit(0)
        pids.append(pid)
    ends = []
    for pid in pids:
        status = os.waitpid(pid, 0)[1]
        ends.append(
            f"signal {os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else f"exit {os.WEXITSTATUS(status)}"
        )
    return {"ok": all(end == "exit 0" for end in ends), "children": ends}


def spin_many(count: str, seconds: str) -> dict:
    """Start ``count`` busy processes, each spinning ``seconds`` (bounded)."""
    started, error, pids = 0, None, []
    for _ in range(int(count)):
        try:
            pid = os.fork()
        except OSError as exc:
            error = exc
            break
        if pid == 0:
            end = time.monotonic() + float(seconds)
            while time.monotonic() < end:
                pass
            os._exit(0)
        pids.append(pid)
        started += 1
    for pid in pids:
        os.waitpid(pid, 0)
    result = {"ok": error is None, "started": started}
    if error is not None:
        result["error"] = f"{type(error).__name__}: {error}"
    return result


def write_big(mib: str) -> dict:
    """One file of ``mib`` MiB in /data."""
    try:
        with open("/data/big" if os.path.isdir("/data") else "big", "wb") as file:
            for _ in range(int(mib)):
                file.write(b"\x01" * MIB)
        return {"ok": True}
    except OSError as exc:
        return failed(exc)


def fill_data(total_mib: str) -> dict:
    """Files of 1 MiB in the working folder (/data) until ``total_mib`` or an error."""
    written = 0
    try:
        for index in range(int(total_mib)):
            with open(f"fill-{index}", "wb") as file:
                file.write(b"\x01" * MIB)
                file.flush()
                os.fsync(file.fileno())
            written += 1
            time.sleep(0.02)  # a steady writer, as an app filling its disk over time would be
        return {"ok": True, "written_mib": written}
    except OSError as exc:
        return {**failed(exc), "written_mib": written}


def log_flood(total_mib: str) -> dict:
    """Write ``total_mib`` of lines to stderr, without blocking: stop after being held back
    (the pipe full) for a couple of seconds in all. Reports how much got out."""
    fcntl.fcntl(2, fcntl.F_SETFL, fcntl.fcntl(2, fcntl.F_GETFL) | os.O_NONBLOCK)
    chunk = (b"x" * 99 + b"\n") * 655  # about 64 KiB of 100-byte lines
    written = held_back = 0
    while written < int(total_mib) * MIB and held_back < 40:
        try:
            written += os.write(2, chunk)
        except BlockingIOError:
            held_back += 1
            time.sleep(0.05)
    return {"ok": written >= int(total_mib) * MIB, "written": written, "held_back": held_back}


def log_notify(count: str) -> dict:
    """``count`` log notifications as fast as possible."""
    for index in range(int(count)):
        send(
            {
                "jsonrpc": "2.0",
                "method": "log",
                "params": {"level": "info", "message": f"spam {index}"},
            }
        )
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
    "unshare": unshare,
    "ptrace": ptrace,
    "alloc_spread": alloc_spread,
    "spin_many": spin_many,
    "write_big": write_big,
    "fill_data": fill_data,
    "log_flood": log_flood,
    "log_notify": log_notify,
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
