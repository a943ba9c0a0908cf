"""Pure functions that describe the jail of one app: the bubblewrap argv, the environment, the
rlimits, the uid. Nothing here starts a process, so all of it is unit-tested as data.

The view inside bubblewrap: the interpreter, the venv's packages, the ``sdk`` package and the
app, all read-only; a private writable ``/data`` (also the cwd and ``HOME``) and a small
``/tmp``. The network namespace has only its own loopback, so no host port (MongoDB, Redis, the
gateway) is reachable. The environment is rebuilt from scratch.
"""

from __future__ import annotations

import os
import resource
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from miniapps.host.sandbox.config import SandboxConfig

PROJECT_ROOT = Path(__file__).resolve().parents[3]

# Where things appear inside the bubblewrap sandbox.
SANDBOX_APP_DIR = "/app"
SANDBOX_DATA_DIR = "/data"
SANDBOX_LIB_DIR = "/opt/aetherial"  # holds the read-only ``sdk`` package

# Runs inside the sandbox as root with only CAP_SETUID/CAP_SETGID: drop to the app's uid (which
# clears every capability) and exec the app. ``-I -S`` keeps it from reading anything else.
DROP_PRIVILEGES = (
    "import os,sys;u=int(sys.argv[1]);g=int(sys.argv[2]);"
    "os.setgroups([]);os.setgid(g);os.setuid(u);os.execvp(sys.argv[3],sys.argv[3:])"
)

_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_PREFIXES = ("/usr", "/bin", "/sbin", "/lib")  # "/lib" also covers /lib32, /lib64 …


def reachable_by_anyone(path: Path) -> bool:
    """Whether an unrelated unprivileged uid can reach and read ``path`` (every parent o+x)."""
    try:
        path = path.resolve()
        for parent in reversed(path.parents):
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        return bool(os.stat(path).st_mode & stat.S_IROTH)
    except OSError:
        return False


def python_roots() -> list[str]:
    """The directories the interpreter needs: the venv and the real installation it points to."""
    roots = {
        os.path.realpath(sys.prefix),
        os.path.realpath(sys.base_prefix),
        os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
    }
    # The venv's own path may be a symlink; bind it where the argv names it too.
    roots.add(os.path.abspath(sys.prefix))
    # System directories are bound whole; binding them again would only shadow them.
    return sorted(r for r in roots if r != "/" and not r.startswith(_SYSTEM_PREFIXES))


def fallback_uid(app_id: str, config: SandboxConfig) -> int:
    """The uid of an app the caller gave none: unique within this host (``UidRegistry``)."""
    return config.uids.choose(app_id, config.uid_base, config.uid_span)


def rlimits(config: SandboxConfig) -> list[tuple[int, int]]:
    """The per-process limits set before exec. Memory, processes and CPU are also bounded for
    the app as a whole by cgroups or the watchdog; these stay as the per-process floor."""
    return [
        (resource.RLIMIT_AS, config.address_space_bytes or config.memory_bytes),
        (resource.RLIMIT_CPU, config.cpu_seconds),
        (resource.RLIMIT_NOFILE, config.open_files),
        # Counted per uid and ignored for root: it holds because the app runs as its own uid.
        (resource.RLIMIT_NPROC, config.processes),
        # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG.
        (resource.RLIMIT_FSIZE, config.file_bytes),
        (resource.RLIMIT_CORE, 0),
    ]


def app_env(app_id: str, data_dir: Path, *, sandboxed: bool) -> dict[str, str]:
    """The whole environment of the app: nothing of the host's (no URLs, keys, secrets)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": SANDBOX_LIB_DIR if sandboxed else str(PROJECT_ROOT),
        "HOME": SANDBOX_DATA_DIR if sandboxed else str(data_dir),
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "AETHERIAL_APP_ID": app_id,
    }


def bwrap_args(
    app_dir: Path,
    data_dir: Path,
    env: dict[str, str],
    *,
    is_root: bool,
    drop_uid: bool,
    tmp_bytes: int,
    seccomp_fd: int | None,
) -> list[str]:
    """bubblewrap's options (everything between ``bwrap`` and ``--``)."""
    args = ["--die-with-parent", "--new-session"]
    # No user namespace for a root host: a uid mapped to root inside would still be root to
    # the kernel's process accounting. We drop to an unprivileged uid instead.
    if is_root:
        args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        args += ["--unshare-cgroup-try"]
        if drop_uid:
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-all"]
    args += ["--hostname", "app"]
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ("/etc/ld.so.cache", "/etc/localtime"):
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    # /tmp first: the project (and so its venv) may itself live under /tmp, as in a CI
    # checkout; binds made after the tmpfs land on top of it instead of being hidden by it.
    args += ["--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    # bwrap creates missing parents of a mount point with mode 0700, which an unprivileged
    # uid cannot traverse (/root/.pyenv, /work/main/.venv): create them 0755 first.
    made: set[str] = set()
    for target in [*python_roots(), f"{SANDBOX_LIB_DIR}/sdk"]:
        for parent in reversed(Path(target).parents):
            if str(parent) != "/" and str(parent) not in made:
                made.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
    for root in python_roots():
        args += ["--ro-bind", root, root]
    args += ["--ro-bind", str(PROJECT_ROOT / "sdk"), f"{SANDBOX_LIB_DIR}/sdk"]
    args += ["--ro-bind", str(app_dir), SANDBOX_APP_DIR]
    args += ["--bind", str(data_dir), SANDBOX_DATA_DIR]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--chdir", SANDBOX_DATA_DIR, "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    if seccomp_fd is not None:
        # Loaded by bwrap right before it execs the app, after it set up the namespaces (which
        # need the very calls the filter denies).
        args += ["--seccomp", str(seccomp_fd)]
    return args


def command(
    argv: Sequence[str],
    *,
    bwrap: str | None,
    uid: int | None,
    app_dir: Path,
    options: Sequence[str] = (),
) -> list[str]:
    """The full argv: the app's own (``{app_dir}`` filled in), behind the uid-dropping launcher
    when ``uid`` is set, behind bubblewrap and its ``options`` unless degraded."""
    shown_dir = SANDBOX_APP_DIR if bwrap else str(app_dir)
    app_argv = [part.replace("{app_dir}", shown_dir) for part in argv]
    if bwrap is None:
        return app_argv
    if uid is not None:
        python = os.path.realpath(sys.executable)
        app_argv = [python, "-I", "-S", "-c", DROP_PRIVILEGES, str(uid), str(uid), *app_argv]
    return [bwrap, *options, "--", *app_argv]
