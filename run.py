"""Composition root: read config, build the app, serve until SIGINT/SIGTERM.

    python run.py [--host H] [--port P] [--data-dir D]
    python run.py [--data-dir D] create-admin USERNAME   # give an account the admin role
    python run.py [--data-dir D] seed-demo               # demo people, a group, apps' data
    python run.py [--data-dir D] backup FILE             # the embedded data dir, while running
    python run.py [--data-dir D] restore FILE            # stop Aetherial first

With nothing configured it starts the embedded MongoDB-compatible server under ./var and keeps
everything on this machine; see README.md for the environment variables of production.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from gateway.app import create_app
from messaging.store.users import Users
from storage.config import Config
from storage.errors import ConfigError
from storage.logs import configure_logging
from storage.mongo import open_database

log = logging.getLogger("aetherial")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run.py", description="Start the Aetherial platform.")
    parser.add_argument("--host", help="bind address (default: AETHERIAL_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: AETHERIAL_PORT or 8080)")
    parser.add_argument("--data-dir", type=Path, help="local state (default: AETHERIAL_DATA_DIR)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    make_admin = commands.add_parser(
        "create-admin",
        help="give an existing account the admin role (for /admin)",
        description="Give an existing account the admin role, in the configured database.",
    )
    make_admin.add_argument("username", help="the account's username (any letter case)")
    make_admin.add_argument(
        "--data-dir", type=Path, default=argparse.SUPPRESS, help="as above, after the command"
    )
    seed = commands.add_parser(
        "seed-demo",
        help="create demo people, a group with the apps and each app's sample data",
        description="Start the platform here, create the demo (again: changes nothing) and stop.",
    )
    seed.add_argument(
        "--data-dir", type=Path, default=argparse.SUPPRESS, help="as above, after the command"
    )
    for name, summary in (
        ("backup", "write the embedded database and local files into FILE (.tar.gz)"),
        ("restore", "replace the data dir with a backup (stop Aetherial first)"),
    ):
        archive = commands.add_parser(name, help=summary, description=summary + ".")
        archive.add_argument("file", type=Path, metavar="FILE", help="the backup file")
        archive.add_argument(
            "--data-dir", type=Path, default=argparse.SUPPRESS, help="as above, after the command"
        )
    return parser.parse_args(argv)


async def create_admin(config: Config, username: str) -> int:
    """Set ``role: "admin"`` on the account, through the same database the gateway opens."""
    async with open_database(config) as database:
        users = Users(database.db)
        user = await users.get_user_by_login(username.strip().lower())
        if user is None or "@" in username:
            print(f"no account with the username {username!r}", file=sys.stderr)
            return 1
        if user.get("role") == "admin":
            print(f"{user['username']} is already an administrator")
            return 0
        await users.update_user(user["_id"], {"role": "admin"})
    print(f"{user['username']} is now an administrator: sign in at /admin")
    return 0


async def seed_demo(config: Config) -> int:
    from gateway.demo import SeedError, seed_demo

    try:
        lines = await seed_demo(config)
    except SeedError as exc:
        print(f"seed-demo failed: {exc}", file=sys.stderr)
        return 1
    print("Demo ready — start it with `make run` and sign in as any of:")
    for line in lines:
        print(f"  {line}")
    return 0


def backup_or_restore(config: Config, command: str, file: Path) -> int:
    """0 done, 1 failed, 2 bad input or configuration; one line on stderr when not done."""
    from storage import backup

    try:
        summary = (backup.backup if command == "backup" else backup.restore)(config, file)
    except backup.BackupError as exc:
        print(f"{command} failed: {exc}", file=sys.stderr)
        return exc.exit_code
    print(summary)
    return 0


async def serve(config: Config) -> None:
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        # Inside the try: a start-up that is refused halfway (the sandbox check, an unreachable
        # database) still closes what it had opened, the embedded MongoDB server included.
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        host = f"[{config.host}]" if ":" in config.host else config.host
        print(f"Aetherial is running on http://{host}:{config.port}  (Ctrl-C to stop)", flush=True)
        await stop.wait()
        print("Shutting down...", flush=True)
    finally:
        await runner.cleanup()


def loop_factory(config: Config) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """``EVENT_LOOP``: uvloop unless told otherwise or not installed. Measured in issue 22: the
    gateway's time goes to per-packet tasks, timers and socket writes, all cheaper on libuv."""
    if config.event_loop != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {
        name: value
        for name, value in (("host", args.host), ("port", args.port), ("data_dir", args.data_dir))
        if value is not None
    }
    try:
        config = Config.from_env(**overrides)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config)  # LOG_LEVEL, LOG_FORMAT (text|json), secrets masked
    if args.command in ("backup", "restore"):  # before the mkdir: backup creates no data dir
        return backup_or_restore(config, args.command, args.file)
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # keys, database, app data
    if args.command == "create-admin":
        return asyncio.run(create_admin(config, args.username))
    if args.command == "seed-demo":
        return asyncio.run(seed_demo(config))
    try:
        with asyncio.Runner(loop_factory=loop_factory(config)) as runner:
            runner.run(serve(config))
    except ConfigError as exc:  # settings that only start-up can judge (the sandbox)
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
