"""Running the hostile app (``tests/miniapps/hostile_app.py``) in real sandboxes, for tests.

``Sandboxes`` starts apps from a copy of the hostile app in a temporary "installed apps" folder
beside a host data dir like ``./var`` (a JWT key and database files the apps must not reach);
on exit it stops them all and checks that no process of theirs is left.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from miniapps.host.sandbox import AppProcess, SandboxConfig
from tests.conftest import require

HOSTILE = Path(__file__).parents[1] / "hostile_app.py"
HAS_BWRAP = shutil.which("bwrap") is not None


def needs_bwrap() -> None:
    require(HAS_BWRAP, "bubblewrap (bwrap) is not installed (apt-get install bubblewrap)")


def leftovers(app: AppProcess, pid: int | None) -> list[int]:
    """Processes of the app still alive: the one we started, its session, its uid's."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            uid = os.stat(f"/proc/{name}").st_uid
            state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
            session = os.getsid(int(name))
        except OSError:
            continue
        mine = int(name) == pid or session == pid or (app.uid is not None and uid == app.uid)
        if state != "Z" and mine:
            found.append(int(name))
    return found


async def attack(app: AppProcess, *args: str, timeout: float | None = None) -> dict:
    """Run one named attack of the hostile app and return what it reports."""
    return await app.call("command", {"command": "attack", "args": list(args)}, timeout=timeout)


class Sandboxes:
    """Hostile apps started for one test (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.host_var = root / "var"
        (self.host_var / "mongo").mkdir(parents=True)
        (self.host_var / "jwt.key").write_text("super-secret-jwt-key")
        (self.host_var / "mongo" / "aetherial.db").write_text("SQLite format 3 users passwords")
        self.app_dir = root / "apps" / "hostile"
        self.app_dir.mkdir(parents=True)
        shutil.copy(HOSTILE, self.app_dir / "hostile_app.py")
        # Installed apps are world-readable; pytest's temp dirs are 0700.
        self.app_dir.chmod(0o755)
        (self.app_dir / "hostile_app.py").chmod(0o644)
        self.apps: list[AppProcess] = []

    def data_dir(self, app_id: str) -> Path:
        return self.host_var / "miniapps" / app_id

    def make(
        self, app_id: str = "hostile", *, config: SandboxConfig | None = None, **options: Any
    ) -> AppProcess:
        """An app not started yet; ``options`` are ``SandboxConfig`` fields unless ``config``
        is given, plus ``on_request`` and ``uid``."""
        on_request = options.pop("on_request", None)
        uid = options.pop("uid", None)
        if config is None:
            defaults = dict(backoff_initial=0.1, backoff_max=0.4, call_timeout=3.0)
            config = SandboxConfig(**{**defaults, **options})
        app = AppProcess(
            app_id,
            self.app_dir,
            self.data_dir(app_id),
            config=config,
            on_request=on_request,
            argv=[sys.executable, "{app_dir}/hostile_app.py"],
            uid=uid,
        )
        self.apps.append(app)
        return app

    async def start(self, app_id: str = "hostile", **options: Any) -> AppProcess:
        app = self.make(app_id, **options)
        await app.start()
        return app

    async def close(self) -> None:
        for app in self.apps:
            pid = app.status.pid
            await app.stop()
            assert app.status.state == "stopped"
            assert leftovers(app, pid) == []
            assert app.cgroup is None  # removed on stop
