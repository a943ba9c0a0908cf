"""The embedded MongoDB-wire-compatible server (nx-27017) as a supervised child process.

With ``MONGODB_URL`` unset, Aetherial starts nx-27017 on 127.0.0.1 (loopback only: the server has
no authentication) and a free port, with its data under ``DATA_DIR/mongo`` (mode 0700), and talks
to it with the real PyMongo driver. The child must never outlive us: it asks the kernel for
SIGKILL when its parent dies (``PR_SET_PDEATHSIG``), so even a SIGKILL of the gateway takes it
down. Run as ``python -m storage.embedded_mongo`` it is that child.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_PR_SET_PDEATHSIG = 1
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedMongo:
    """Start, wait for and stop one nx-27017 child process."""

    def __init__(self, data_dir: Path, *, port: int | None = None, start_timeout: float = 30.0):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://{LOOPBACK}:{self.port}/"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "nx-27017.log"

    async def start(self) -> None:
        # The database files are readable by nobody else on this machine, whatever the umask,
        # and the server listens on 127.0.0.1 only (see ``main``): it has no authentication.
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(_PROJECT_ROOT),
            "HOME": str(self.data_dir),
        }
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "storage.embedded_mongo",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                    "--parent-pid",
                    str(os.getpid()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=env,
                # Its own process group: a Ctrl-C in the terminal reaches only us, and we stop
                # it after the app has closed its connections.
                start_new_session=True,
            )
        await self._wait_ready()
        log.info("embedded MongoDB (nx-27017) on %s, data in %s", self.url, self.data_dir)

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        client: AsyncMongoClient = AsyncMongoClient(self.url, serverSelectionTimeoutMS=250)
        try:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(
                        f"embedded MongoDB exited with code {self.process.returncode}; "
                        f"see {self.log_path}:\n{self._log_tail()}"
                    )
                try:
                    await client.admin.command("ping")
                    return
                except PyMongoError:
                    if time.monotonic() > deadline:
                        await self.stop()
                        raise RuntimeError(
                            f"embedded MongoDB did not answer within {self.start_timeout:.0f}s; "
                            f"see {self.log_path}"
                        ) from None
                    await asyncio.sleep(0.05)
        finally:
            await client.close()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if process.poll() is None:
            process.kill()
            process.wait()


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL us when the parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)
    _die_with_parent(args.parent_pid)
    # nx-27017 logs every command at INFO; a WARNING root logger keeps it quiet.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    # SIGTERM is our graceful stop: SQLite in WAL mode has every committed write on disk already.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))

    # Run the server loop directly rather than nx-27017's CLI, which writes PID files and
    # installs signal handlers of its own.
    from neosqlite.options import JournalMode
    from nx_27017.daemon import run_server_sync

    run_server_sync(
        argparse.Namespace(
            db_path="memory",
            data_dir=args.data_dir,
            single_db_compat=False,
            host=LOOPBACK,  # never a network address: anyone who can connect can read everything
            port=args.port,
            journal_mode=JournalMode.validate("WAL"),
            fts5_tokenizers=None,
            threaded=False,
        )
    )


if __name__ == "__main__":
    main()
