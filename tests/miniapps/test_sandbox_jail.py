"""The sandbox's pure parts, without starting a process: the jail (bwrap argv, environment,
rlimits, uid), the cgroup plans and their creation on a fake cgroup tree, the throttles of the
log channel, and the watchdog's measures."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

from miniapps.host.sandbox import SandboxConfig, UidConflict, UidRegistry, cgroups, jail, watchdog
from miniapps.host.sandbox.logs import LineGate, TokenBucket

MIB = 1024 * 1024


def options(argv: list[str], name: str) -> list[str]:
    """The values following each ``name`` in ``argv``."""
    return [argv[i + 1] for i, part in enumerate(argv) if part == name]


def test_bwrap_args_isolate_and_pass_the_filter(tmp_path):
    env = jail.app_env("shop", tmp_path / "data", sandboxed=True)
    args = jail.bwrap_args(
        tmp_path / "app",
        tmp_path / "data",
        env,
        is_root=True,
        drop_uid=True,
        tmp_bytes=MIB,
        seccomp_fd=9,
    )
    assert {"--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent"} <= set(args)
    assert options(args, "--seccomp") == ["9"]
    assert options(args, "--cap-add") == ["CAP_SETUID", "CAP_SETGID"]
    assert [str(tmp_path / "data"), "/data"] == args[args.index("--bind") + 1 :][:2]
    assert args[args.index("--chdir") + 1] == "/data" and "--clearenv" in args
    unprivileged = jail.bwrap_args(
        tmp_path / "app", tmp_path / "data", env, is_root=False, drop_uid=False,
        tmp_bytes=MIB, seccomp_fd=None,
    )  # fmt: skip
    assert "--unshare-all" in unprivileged and "--seccomp" not in unprivileged


def test_environment_is_built_from_scratch(tmp_path, monkeypatch):
    monkeypatch.setenv("MONGODB_URL", "mongodb://admin:pw@127.0.0.1/")
    env = jail.app_env("shop", tmp_path, sandboxed=True)
    assert set(env) == {
        "PATH", "PYTHONPATH", "HOME", "TMPDIR", "LANG", "PYTHONDONTWRITEBYTECODE",
        "PYTHONUNBUFFERED", "AETHERIAL_APP_ID",
    }  # fmt: skip
    assert env["HOME"] == "/data" and env["AETHERIAL_APP_ID"] == "shop"
    assert jail.app_env("shop", tmp_path, sandboxed=False)["HOME"] == str(tmp_path)


def test_command_wraps_the_argv(tmp_path):
    argv = ["python", "{app_dir}/main.py"]
    assert jail.command(argv, bwrap=None, uid=None, app_dir=tmp_path) == [
        "python",
        f"{tmp_path}/main.py",
    ]
    full = jail.command(argv, bwrap="/usr/bin/bwrap", uid=201, app_dir=tmp_path, options=["-x"])
    assert full[:3] == ["/usr/bin/bwrap", "-x", "--"]
    assert full[-4:] == ["201", "201", "python", "/app/main.py"]  # behind the uid launcher
    assert jail.DROP_PRIVILEGES in full


def test_rlimits_include_file_size_and_follow_the_config():
    config = SandboxConfig(memory_bytes=100 * MIB, file_bytes=3 * MIB, processes=7)
    limits = dict(jail.rlimits(config))
    assert limits[resource.RLIMIT_FSIZE] == 3 * MIB
    assert limits[resource.RLIMIT_AS] == 100 * MIB
    assert limits[resource.RLIMIT_NPROC] == 7 and limits[resource.RLIMIT_CORE] == 0
    wider = SandboxConfig(memory_bytes=100 * MIB, address_space_bytes=MIB * 1024)
    assert dict(jail.rlimits(wider))[resource.RLIMIT_AS] == 1024 * MIB


def test_fallback_uids_never_collide():
    config = SandboxConfig(uid_base=5000, uid_span=2)
    first = jail.fallback_uid("a", config)
    second = jail.fallback_uid("b", config)
    assert {first, second} == {5000, 5001}
    assert jail.fallback_uid("a", config) == first  # stable for the same app
    with pytest.raises(UidConflict):
        jail.fallback_uid("c", config)  # the span is full: refused, not shared


def test_uid_registry_refuses_a_second_app_or_process():
    registry = UidRegistry()
    one, two = object(), object()
    registry.claim(7000, "shop", one)
    with pytest.raises(UidConflict):
        registry.claim(7000, "poll", two)  # another app's uid
    with pytest.raises(UidConflict):
        registry.claim(7000, "shop", two)  # the same app already runs on it
    registry.release(7000, one)
    registry.claim(7000, "shop", two)
    with pytest.raises(UidConflict):
        registry.claim(7000, "poll", one)  # still the shop's


# --- cgroups -----------------------------------------------------------------------------------


def test_cgroup_plans():
    config = SandboxConfig(memory_bytes=64 * MIB, processes=9, cpu_cores=0.5)
    assert cgroups.v2_settings(config) == {
        "memory.max": str(64 * MIB),
        "memory.swap.max": "0",
        "pids.max": "9",
        "cpu.max": "50000 100000",
    }
    v1 = cgroups.v1_settings(config)
    assert v1["memory"]["memory.limit_in_bytes"] == str(64 * MIB)
    assert list(v1["memory"]) == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    assert v1["pids"] == {"pids.max": "9"} and v1["cpu"]["cpu.cfs_quota_us"] == "50000"


def test_own_cgroups_parses_hybrid_and_unified():
    text = "9:name=systemd:/\n8:pids:/\n4:memory:/jobs/42\n1:cpu,cpuacct:/\n0::/user.slice\n"
    own = cgroups.own_cgroups(text)
    assert own["memory"] == "/jobs/42" and own["cpu"] == own["cpuacct"] == "/"
    assert own[""] == "/user.slice"


def fake_v1(root: Path) -> Path:
    for controller in ("memory", "pids", "cpu"):
        (root / controller / "jobs").mkdir(parents=True)
        (root / controller / "cgroup.procs").write_text("")
        (root / controller / "jobs" / "cgroup.procs").write_text("")
    proc = root / "self_cgroup"
    proc.write_text("8:pids:/\n4:memory:/jobs\n1:cpu,cpuacct:/\n")
    return proc


def test_create_cgroup_v1_on_a_fake_tree(tmp_path):
    proc = fake_v1(tmp_path)
    config = SandboxConfig(limits="cgroup1", processes=5)
    cgroup = cgroups.create_cgroup("shop/../x", config, mount=tmp_path, proc_cgroup=proc)
    assert cgroup is not None and cgroup.mechanism == "cgroup1"
    leaf = cgroup.dirs["pids"].name
    assert leaf.startswith("shop_.._x.") and leaf.endswith(f".{os.getpid()}")
    assert cgroup.dirs["pids"] == tmp_path / "pids" / "aetherial" / leaf
    assert cgroup.dirs["memory"] == tmp_path / "memory" / "jobs" / "aetherial" / leaf
    assert (cgroup.dirs["pids"] / "pids.max").read_text() == "5"
    assert (cgroup.dirs["cpu"] / "cpu.cfs_quota_us").read_text() == "100000"
    for path in cgroup.dirs.values():  # a real cgroup folder empties itself on rmdir
        for file in path.iterdir():
            file.unlink()
    assert cgroup.remove() and not cgroup.dirs["pids"].exists()


def test_create_cgroup_v2_on_a_fake_tree(tmp_path):
    (tmp_path / "host.slice").mkdir()
    (tmp_path / "cgroup.controllers").write_text("memory pids cpu")
    proc = tmp_path / "self_cgroup"
    proc.write_text("0::/host.slice\n")
    config = SandboxConfig(limits="auto", memory_bytes=32 * MIB)
    cgroup = cgroups.create_cgroup("shop", config, mount=tmp_path, proc_cgroup=proc)
    assert cgroup is not None and cgroup.mechanism == "cgroup2"
    leaf = cgroup.dirs[""]
    assert leaf.parent == tmp_path / "host.slice" / "aetherial"
    assert (leaf.parent.parent / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (leaf / "memory.max").read_text() == str(32 * MIB)
    assert (leaf / "cpu.max").read_text() == "100000 100000"


def test_without_cgroups_the_fallback_is_chosen(tmp_path):
    proc = tmp_path / "self_cgroup"
    proc.write_text("0::/\n")  # no controllers file, no v1 hierarchies
    assert cgroups.create_cgroup("shop", SandboxConfig(), mount=tmp_path, proc_cgroup=proc) is None
    forced = SandboxConfig(limits="fallback")
    assert (
        cgroups.create_cgroup("shop", forced, mount=tmp_path, proc_cgroup=fake_v1(tmp_path)) is None
    )
    with pytest.raises(ValueError):
        SandboxConfig(limits="quotas")


# --- the log channel's throttles ---------------------------------------------------------------


def test_token_bucket_paces_and_refills():
    now = [0.0]
    bucket = TokenBucket(rate=100, burst=200, clock=lambda: now[0])
    assert bucket.debit(200) == 0  # the burst
    assert bucket.debit(50) == pytest.approx(0.5)  # in debt: wait half a second
    assert not bucket.try_take(1)
    now[0] = 1.0
    assert bucket.try_take(50) and not bucket.try_take(1)
    now[0] = 100.0
    assert bucket.try_take(200) and not bucket.try_take(1)  # never more than the burst


def test_line_gate_counts_what_it_drops(caplog):
    gate = LineGate(per_second=0.001, burst=3, what="stderr lines", app_id="shop")
    assert [gate.allow() for _ in range(10)] == [True] * 3 + [False] * 7
    gate.report(force=True)
    assert gate.dropped == 7
    assert any("7 stderr lines dropped" in r.getMessage() for r in caplog.records)


# --- the watchdog's measures -------------------------------------------------------------------


def test_cpu_meter_averages_over_its_window():
    meter = watchdog.CpuMeter(window=2.0)
    ticks = watchdog._TICKS
    assert meter.update(0.0, {1: 0}) is None
    assert meter.update(1.0, {1: ticks, 2: ticks}) is None  # two cores for a second
    assert meter.update(2.0, {1: 2 * ticks, 2: 2 * ticks}) == pytest.approx(2.0)
    # Over the last 2 s: two cores, then one (process 2 is gone).
    assert meter.update(3.0, {1: 3 * ticks}) == pytest.approx(1.5)
    assert meter.update(5.0, {1: 3 * ticks}) == pytest.approx(0.0)


def test_folder_usage_and_quota(tmp_path):
    (tmp_path / "a").mkdir()
    for index in range(5):
        (tmp_path / "a" / f"f{index}").write_bytes(b"x" * 100_000)
    (tmp_path / "link").symlink_to("/usr")  # not followed
    used, entries = watchdog.folder_usage(tmp_path, max_entries=100)
    assert used >= 500_000 and entries == 7
    assert watchdog.over_quota(tmp_path, SandboxConfig(data_bytes=10 * MIB)) is None
    assert "MiB" in watchdog.over_quota(tmp_path, SandboxConfig(data_bytes=100_000))
    assert "files" in watchdog.over_quota(tmp_path, SandboxConfig(data_files=3))
