"""Shared fixtures: one embedded MongoDB server per test session (or a real one via MONGODB_URL),
a fresh database per test, and real Redis servers on free ports."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from storage.config import Config
from storage.embedded_mongo import EmbeddedMongo
from tests import processes
from tests.helpers import ApiClient

IN_CI = os.environ.get("CI", "").lower() == "true"
RUN_TOKEN = pytest.StashKey[str]()


def require(condition: bool, why: str) -> None:
    """Skip when a part is missing locally; under CI=true a missing part is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required for CI but missing: {why}")
    pytest.skip(why)


# --- no process outlives the run ----------------------------------------------------------------


def pytest_sessionstart(session: pytest.Session) -> None:
    """Mark the run: every process it starts inherits ``AETHERIAL_TEST_RUN=<uuid>`` (unless given
    a scrubbed environment), so the check at the end finds those that left the process tree."""
    token = uuid.uuid4().hex
    os.environ[processes.MARK] = token
    session.stash[RUN_TOKEN] = token


@pytest.hookimpl(trylast=True)  # after the runner's own sessionfinish has torn fixtures down
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run when a process it started is still alive; kill those."""
    token = session.stash.get(RUN_TOKEN, None)
    if token is None or not sys.platform.startswith("linux"):
        return
    left = processes.left_running(os.getpid(), token)
    if not left:
        return
    stubborn = processes.kill(left)
    if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"pid {pid}: {command or '?'}" for pid, command in left.items()]
    if stubborn:
        lines.append(f"could not kill: {stubborn}")
    header = (
        f"{len(left)} process(es) started by this test run still alive at its end "
        "(killed now; a test or fixture must stop what it starts, in a finally or a teardown)"
    )
    if reporter is None:
        print("\n".join(["LEFT RUNNING: " + header, *lines]), file=sys.stderr)
        return
    reporter.write_sep("=", "processes left running", red=True)
    reporter.write_line(header, red=True)
    for line in lines:
        reporter.write_line("  " + line, red=True)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def mongo_url(tmp_path_factory) -> AsyncIterator[str]:
    """A MongoDB URL for the whole session: MONGODB_URL when set, else an embedded nx-27017."""
    if os.environ.get("MONGODB_URL"):
        yield os.environ["MONGODB_URL"]
        return
    server = EmbeddedMongo(tmp_path_factory.mktemp("mongo"))
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


@pytest.fixture
def mongo_db_name() -> str:
    return "t_" + uuid.uuid4().hex[:16]


@pytest.fixture
async def mongo_db(mongo_url, mongo_db_name):
    """A fresh database on the session's server, dropped afterwards."""
    client: AsyncMongoClient = AsyncMongoClient(mongo_url, tz_aware=True)
    try:
        yield client[mongo_db_name]
        await client.drop_database(mongo_db_name)
    finally:
        await client.close()


# --- the gateway, running for real on loopback ------------------------------------------------


def make_config(mongo_url: str | None, db_name: str, data_dir, **overrides) -> Config:
    """A test config: real MongoDB server, a private database, cheap password hashing."""
    values = dict(
        mongodb_url=mongo_url,
        mongodb_db=db_name,
        data_dir=data_dir,
        password_hash_memory_kib=1024,
        password_hash_time_cost=1,
        # Tests run in development (dev top-up, loopback remote apps) and sign many people up
        # from one address; the sign-up limits have their own tests.
        environment="development",
        register_max_per_address=1_000_000,
        register_max_global=10_000_000,
        # Every test logs in from 127.0.0.1, and with Redis the count is shared by the session.
        login_max_attempts_per_address=100_000,
    )
    values.update(overrides)
    return Config.from_env({}, **values)


@pytest.fixture
def config(mongo_url, mongo_db_name, tmp_path) -> Config:
    return make_config(mongo_url, mongo_db_name, tmp_path / "var")


# A gateway's cleanup that has not finished after this many seconds gets its asyncio tasks'
# stacks printed (pytest-timeout's own dump shows only the event loop waiting, never on what).
CLOSE_WATCH = 45.0


async def close_watched(server) -> None:
    """Close a test server; when that takes longer than ``CLOSE_WATCH``, print what every
    asyncio task is waiting on to stderr first (a cleanup hang then names its culprit), and go
    on waiting."""
    closing = asyncio.ensure_future(server.close())
    done, _ = await asyncio.wait({closing}, timeout=CLOSE_WATCH)
    if not done:
        print(f"\nclosing {server!r} is taking over {CLOSE_WATCH:.0f} s; tasks:", file=sys.stderr)
        for task in asyncio.all_tasks():
            task.print_stack(file=sys.stderr)
    await closing


@pytest.fixture
async def aiohttp_server(aiohttp_server):
    """pytest-aiohttp's factory, whose servers this closes first, each under ``close_watched``
    (the plugin's own close afterwards finds them closed)."""
    servers = []

    async def start(app, **kwargs):
        server = await aiohttp_server(app, **kwargs)
        servers.append(server)
        return server

    yield start
    while servers:
        await close_watched(servers.pop())


@pytest.fixture
def sink():
    """A local SMTP server (aiosmtpd) keeping what it receives (tests/messaging/smtp_sink.py)."""
    from tests.messaging.smtp_sink import SmtpSink

    server = SmtpSink()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_config(mongo_url, mongo_db_name, tmp_path, sink) -> Config:
    """The test config with mail sent to ``sink`` and the task loop fast; a module whose gateway
    mails says ``config = smtp_config`` in a fixture of its own."""
    return make_config(
        mongo_url, mongo_db_name, tmp_path / "var", smtp_url=sink.url, jobs_interval=0.1
    )


@pytest.fixture
async def gateway(aiohttp_server, config):
    """A running gateway (aiohttp TestServer on loopback); ``gateway.app`` is the app."""
    from gateway.app import create_app

    return await aiohttp_server(create_app(config))


@pytest.fixture
async def api(gateway):
    client = ApiClient(str(gateway.make_url("")).rstrip("/"))
    try:
        yield client
    finally:
        await client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private redis-server process on a free loopback port. ``kill()`` (SIGKILL, as a crash)
    and ``start()`` again bring it back on the same port, empty."""

    def __init__(self, workdir) -> None:
        require(
            shutil.which("redis-server") is not None,
            "redis-server is not installed (apt-get install redis-server)",
        )
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        """Start it and wait until it answers PING (a listening socket is not yet a server)."""
        import redis

        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.exceptions.RedisError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        self.stop()
                        pytest.fail("redis-server did not start")
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A private redis-server for the session (or REDIS_URL when given)."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server.url
    finally:
        server.stop()


def node_configs(mongo_url, mongo_db_name, tmp_path, redis_url, **extra) -> list[Config]:
    """Configs of two gateways sharing one MongoDB database, one Redis and one JWT key."""
    return [
        make_config(
            mongo_url,
            mongo_db_name,
            tmp_path / name,
            redis_url=redis_url,
            jwt_secret="k" * 40,
            **extra,
        )
        for name in ("a", "b")
    ]


async def start_nodes(aiohttp_server, configs: list[Config]) -> list:
    """Each config's gateway running on loopback: their ``TestServer`` objects."""
    from gateway.app import create_app

    return [await aiohttp_server(create_app(config)) for config in configs]


def base_url(server) -> str:
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def two_nodes(aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path) -> list[str]:
    """Two gateways sharing one MongoDB database, one Redis and one JWT key: their base URLs."""
    configs = node_configs(mongo_url, mongo_db_name, tmp_path, redis_url)
    return [base_url(server) for server in await start_nodes(aiohttp_server, configs)]
