"""The hostile mini-program suite: each test runs one attack in a real bubblewrap sandbox and
checks it is blocked, that the host stays up, and that another app keeps answering calls.

Outcomes only, never timings: the attack failed (or the app was killed, with the reason), the
host's log was not flooded, the bystander app still answers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import pytest

from miniapps.host.sandbox import AppCrashed, AppProcess
from miniapps.host.sandbox.watchdog import folder_usage
from tests.miniapps.hostile import Sandboxes, attack, needs_bwrap

# The hostile app runs under one uid, and the teardown checks that no process of that uid is left:
# two copies at once (two xdist workers) would see each other's. One group: one worker.
pytestmark = pytest.mark.xdist_group("sandbox")

MIB = 1024 * 1024


@pytest.fixture
async def sandboxes(tmp_path):
    needs_bwrap()
    apps = Sandboxes(tmp_path)
    yield apps
    await apps.close()


@pytest.fixture
async def bystander(sandboxes) -> AppProcess:
    """Another app on the same host, which must go on answering whatever the attacker does."""
    return await sandboxes.start("bystander")


async def host_is_fine(bystander: AppProcess) -> None:
    """The other app answers and the host can still start processes."""
    assert (await attack(bystander, "whoami"))["ok"]
    probe = await asyncio.create_subprocess_exec("true")
    assert await asyncio.wait_for(probe.wait(), 5) == 0


async def wait_for(condition, what: str, within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.05)


async def test_cannot_connect_to_gateway_mongodb_or_redis(sandboxes, bystander):
    listeners = []
    try:
        for _ in ("gateway", "mongodb", "redis"):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            listeners.append(sock)
        app = await sandboxes.start()
        for sock in listeners:
            port = sock.getsockname()[1]
            socket.create_connection(("127.0.0.1", port), timeout=1).close()  # the host can
            result = await attack(app, "connect", str(port))
            assert result["ok"] is False
            assert "refused" in result["error"] or "unreachable" in result["error"]
    finally:
        for sock in listeners:
            sock.close()
    await host_is_fine(bystander)


async def test_cannot_read_proc_1_environ(sandboxes, bystander, monkeypatch):
    monkeypatch.setenv("JWT_SECRET", "jwt-secret-value")
    app = await sandboxes.start()
    for path in ("/proc/1/environ", f"/proc/{os.getpid()}/environ", "/proc/self/environ"):
        result = await attack(app, "read_file", path)
        # Its own PID namespace: /proc/1 is bubblewrap's init (root's, unreadable, and started
        # with an empty environment); the host's pid does not exist there.
        assert not result["ok"] or "jwt-secret-value" not in result["content"], path
    await host_is_fine(bystander)


async def test_cannot_read_the_data_dir_or_database_files(sandboxes, bystander):
    app = await sandboxes.start()
    var = sandboxes.host_var
    for path in (var / "jwt.key", var / "mongo" / "aetherial.db", var, "/etc/shadow"):
        result = await attack(app, "read_file", str(path))
        assert result["ok"] is False, path
        assert "NotFound" in result["error"] or "Permission" in result["error"]
    await host_is_fine(bystander)


async def test_cannot_read_another_apps_data(sandboxes, bystander):
    first = await sandboxes.start("first")
    second = await sandboxes.start("second")
    for app in (first, second):
        assert (await attack(app, "write_file", "/data/secret.txt"))["ok"]
    for app, other in ((first, "second"), (second, "first")):
        other_dir = sandboxes.data_dir(other)
        for path in (other_dir / "secret.txt", f"/data/../{other}/secret.txt"):
            result = await attack(app, "read_file", str(path))
            assert result["ok"] is False, path
    await host_is_fine(bystander)


async def test_fork_bomb(sandboxes, bystander):
    app = await sandboxes.start(processes=16)
    try:
        result = await attack(app, "fork_bomb", "2000", timeout=10)
        assert result["ok"] is False and result["forked"] < 16
    except AppCrashed:  # or the watchdog killed the whole sandbox
        assert app.status.last_exit_reason.startswith("process_limit")
    await host_is_fine(bystander)


@pytest.mark.parametrize("limits", ["auto", "fallback"])
async def test_allocate_2_gib(sandboxes, bystander, limits):
    # Each process may map 1 GiB, so only the limit of the app as a whole can stop 2 GiB
    # spread over 8 processes: the cgroup's OOM killer, or the watchdog's sum of RSS.
    app = await sandboxes.start(
        memory_bytes=256 * MIB, address_space_bytes=1024 * MIB, limits=limits,
        watchdog_interval=0.05,
    )  # fmt: skip
    for args in (("alloc", "2048"), ("alloc_spread", "2048", "8")):
        await wait_for(lambda: app.status.state == "running", "restarted")
        try:
            result = await attack(app, *args, timeout=20)
            # A child was killed by the OOM killer (or hit its own address-space limit).
            assert result["ok"] is False, result
        except AppCrashed:  # or the app itself: by the OOM killer or by the watchdog
            assert app.status.last_exit_reason.startswith("memory_limit"), app.status
    await host_is_fine(bystander)


async def test_fill_data_past_its_quota(sandboxes, bystander):
    app = await sandboxes.start(
        data_bytes=8 * MIB, file_bytes=4 * MIB, data_check_interval=0.1, max_crashes=50
    )
    big = await attack(app, "write_big", "16")
    assert big["ok"] is False and "too large" in big["error"]  # RLIMIT_FSIZE
    try:
        result = await attack(app, "fill_data", "64", timeout=20)
        assert result["ok"] is False  # finished before the watchdog looked: killed next
    except AppCrashed:
        pass
    await wait_for(lambda: app.status.state == "failed", "refused to restart into a full /data")
    assert app.status.last_exit_reason.startswith("disk_quota"), app.status
    used, _ = folder_usage(sandboxes.data_dir("hostile"), 10_000)
    assert used < 64 * MIB  # stopped long before it wrote everything
    await host_is_fine(bystander)


async def test_write_1_gb_of_logs(sandboxes, bystander, caplog):
    caplog.set_level(logging.INFO, logger="miniapps.host.sandbox")
    app = await sandboxes.start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    try:
        flood = asyncio.create_task(attack(app, "log_flood", "1024", timeout=60))
        while not flood.done():  # the other app is served all along
            assert (await attack(bystander, "whoami"))["ok"]
            await asyncio.sleep(0.1)
        result = flood.result()
        notes = await attack(app, "log_notify", "5000")
    finally:
        ticking.cancel()
    assert ticks > 0
    assert result["ok"] is False and result["held_back"] > 0  # back-pressure on the app
    assert result["written"] < 1024 * MIB
    assert notes["ok"]
    lines = result["written"] // 100
    logged = [r for r in caplog.records if "app hostile stderr:" in r.getMessage()]
    noted = [r for r in caplog.records if "spam " in r.getMessage()]
    assert len(logged) < lines / 10 and len(noted) < 5000 / 10  # the host log is not flooded
    summaries = " ".join(r.getMessage() for r in caplog.records if "dropped" in r.getMessage())
    assert "stderr lines dropped" in summaries

    def summarised() -> bool:
        return any("log notifications dropped" in r.getMessage() for r in caplog.records)

    await wait_for(summarised, "a summary of the dropped notifications")
    assert app.status.state == "running"
    await host_is_fine(bystander)


async def test_spin_40_busy_processes(sandboxes, bystander):
    app = await sandboxes.start(processes=16, cpu_cores=1.0)
    try:
        result = await attack(app, "spin_many", "40", "2", timeout=20)
        assert result["ok"] is False and result["started"] < 16  # the app as a whole is capped
        if app.cgroup is not None:
            # and held to one core: the kernel's quota is in force. (Whether it throttled this
            # run depends on what else the machine runs: on two busy cores, 16 spinners may get
            # less than one core, so nr_throttled is not asserted.)
            assert app.cgroup.cpu_cores() == 1.0
    except AppCrashed:
        assert app.status.last_exit_reason.startswith(("process_limit", "cpu_limit"))
    await host_is_fine(bystander)


async def test_unshare_a_user_namespace(sandboxes, bystander):
    app = await sandboxes.start()
    result = await attack(app, "unshare")
    assert result == {"ok": False, "unshare": "EPERM", "clone": "EPERM"}
    await host_is_fine(bystander)


async def test_ptrace_a_process(sandboxes, bystander):
    app = await sandboxes.start()
    result = await attack(app, "ptrace")
    assert result == {"ok": False, "child": "EPERM", "pid1": "EPERM"}
    await host_is_fine(bystander)


async def test_two_nodes_copies_of_one_app_on_one_machine_do_not_kill_each_other(sandboxes):
    # Two gateway nodes on one machine each run the app, as the same uid (kept in MongoDB): one
    # copy stopping (or being killed and swept) must leave the other's processes alone.
    first = await sandboxes.start("twin", uid=299_990)
    second = await sandboxes.start("twin", uid=299_990)
    assert (await attack(second, "whoami"))["ok"]
    await first.stop()
    assert (await attack(second, "whoami"))["ok"]
    assert second.status.restarts == 0
    await second.stop()  # before the fixture's check that nothing of the uid is left
