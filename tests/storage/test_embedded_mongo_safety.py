"""The embedded MongoDB server has no authentication: it listens on loopback only and keeps its
files in a folder nobody else on the machine can read."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
from pathlib import Path

from storage.embedded_mongo import EmbeddedMongo

ROOT = Path(__file__).resolve().parent.parent.parent


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


async def test_listens_on_loopback_only_with_a_private_folder(tmp_path):
    data_dir = tmp_path / "mongo"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)  # as an existing folder under a permissive umask would be
    server = EmbeddedMongo(data_dir)
    await server.start()
    try:
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert listening_addresses(server.port) == {"0100007F"}  # 127.0.0.1, nothing else
        with socket.create_connection(("127.0.0.1", server.port), timeout=2):
            pass
    finally:
        await server.stop()


def test_run_refuses_a_network_bind_without_an_environment(tmp_path):
    """``AETHERIAL_HOST=0.0.0.0`` with AETHERIAL_ENV unset stops before anything is opened and
    says which of the two to choose."""
    env = {"PATH": "/usr/bin:/bin", "AETHERIAL_HOST": "0.0.0.0"}
    done = subprocess.run(
        [sys.executable, "run.py", "--data-dir", str(tmp_path / "var")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert "AETHERIAL_ENV=production" in done.stderr and "AETHERIAL_ENV=development" in done.stderr
    assert not (tmp_path / "var").exists()
