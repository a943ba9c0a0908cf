"""Celery workers run the wallet's due jobs: the gateway only enqueues them (TASKS_BACKEND=celery).

The end-to-end test runs a real ``celery -A gateway.worker worker`` process against the test's
MongoDB database and a real redis-server, and checks the worker's work (and its events, emitted
through Redis) from the gateway's side, as a client sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gateway import keys
from gateway.app import create_app
from storage.config import Config
from storage.errors import ConfigError
from storage.tasks import WALLET_DUE_JOBS, CeleryQueue, InProcessQueue, make_task_queue
from tests.conftest import make_config, require
from tests.helpers import ApiClient, eventually
from tests.messaging.chat_helpers import close_all, direct, people
from tests.wallet.wallet_helpers import check_ledger
from wallet.store.accounts import user_account

ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "w" * 40


def celery_binary() -> str | None:
    local = Path(sys.executable).with_name("celery")
    return str(local) if local.exists() else shutil.which("celery")


def worker_env(**settings: str) -> dict[str, str]:
    """The test process's environment without any Aetherial setting, plus ``settings``."""
    ours = {s.metadata["env"] for s in Config.__dataclass_fields__.values()}
    env = {k: v for k, v in os.environ.items() if k not in ours}
    env.update(settings)
    return env


def celery_worker_env(
    mongo_url: str, mongo_db_name: str, redis_url: str, data_dir: Path, **extra: str
) -> dict[str, str]:
    """A worker's environment beside a test gateway with ``TASKS_BACKEND=celery``: the same
    database, broker and JWT key, development mode, its own data dir; plus ``extra``."""
    return worker_env(
        MONGODB_URL=mongo_url,
        MONGODB_DB=mongo_db_name,
        REDIS_URL=redis_url,
        TASKS_BACKEND="celery",
        JWT_SECRET=JWT_SECRET,
        AETHERIAL_ENV="development",
        AETHERIAL_DATA_DIR=str(data_dir),
        **extra,
    )


class Worker:
    """A real Celery worker process; its log goes to a file (no pipe to fill up)."""

    def __init__(self, env: dict[str, str], log_path: Path, pool: str = "solo") -> None:
        binary = celery_binary()
        require(binary is not None, "celery is not installed (pip install 'celery[redis]')")
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [
                binary, "-A", "gateway.worker", "worker", f"--pool={pool}",
                "-c", "1" if pool == "solo" else "2",
                "--loglevel=info", "-n", f"test-{uuid.uuid4().hex[:8]}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def stop(self, timeout: float = 60.0) -> int:
        """Warm shutdown (SIGTERM, as docker stop sends); SIGKILL if it does not exit within the
        grace docker-compose gives the worker (``stop_grace_period: 60s``: a prefork child may be
        finishing a tick on a loaded machine — 20 s was seen to be too short). Then
        SIGKILL whatever is left in its session (prefork children): it runs in a session of its
        own, so a straggler would escape the test run's process tree."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                await asyncio.to_thread(self.process.wait, 10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()
        return self.process.returncode


# -- choosing the backend ----------------------------------------------------------------------


async def test_make_task_queue_picks_the_backend_by_config(tmp_path):
    default = make_task_queue(Config.from_env({}, data_dir=tmp_path))
    assert isinstance(default, InProcessQueue)
    await default.close()

    config = Config.from_env(
        {}, data_dir=tmp_path, tasks_backend="celery", redis_url="redis://127.0.0.1:1/0"
    )
    queue = make_task_queue(config)
    try:
        assert isinstance(queue, CeleryQueue)
        conf = queue.app.conf
        assert conf.broker_url == "redis://127.0.0.1:1/0"
        assert conf.task_acks_late and conf.task_reject_on_worker_lost
        assert conf.worker_prefetch_multiplier == 1
        assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    finally:
        await queue.close()

    with pytest.raises(ConfigError, match="REDIS_URL"):
        Config.from_env({"TASKS_BACKEND": "celery"}, data_dir=tmp_path)


async def test_in_process_queue_runs_the_registered_task_and_refuses_unknown_ones():
    queue = InProcessQueue()
    calls = []

    async def handler(prune: bool) -> None:
        calls.append(prune)

    queue.register(WALLET_DUE_JOBS, handler)
    assert await queue.enqueue(WALLET_DUE_JOBS, {"prune": True}, once_per=0.1)
    assert await queue.enqueue(WALLET_DUE_JOBS, {"prune": False}, once_per=0.1)
    assert calls == [True, False]  # once_per spaces ticks between nodes; in-process runs each
    with pytest.raises(LookupError, match="no task named"):
        await queue.enqueue("aetherial.nothing")


async def test_celery_queue_sends_one_tick_per_period_for_all_nodes(redis_url, tmp_path):
    import redis.asyncio as redis

    config = Config.from_env({}, data_dir=tmp_path, tasks_backend="celery", redis_url=redis_url)
    node_a, node_b = make_task_queue(config), make_task_queue(config)
    client = redis.Redis.from_url(redis_url)
    name = f"aetherial.test.{uuid.uuid4().hex}"  # a name no worker serves
    try:
        before = await client.llen("aetherial")
        assert await node_a.enqueue(name, {"prune": False}, once_per=30)
        assert not await node_b.enqueue(name, {"prune": False}, once_per=30)
        assert await node_b.enqueue(name, {"n": 1})  # not a tick: always sent
        assert await client.llen("aetherial") == before + 2
    finally:
        # Take our two messages back out of the shared queue.
        for raw in await client.lrange("aetherial", 0, -1):
            if name.encode() in raw:
                await client.lrem("aetherial", 0, raw)
        await client.aclose()
        await node_a.close()
        await node_b.close()


# -- a real worker -----------------------------------------------------------------------------


async def test_worker_refuses_to_start_without_mongodb_url(redis_url, tmp_path):
    worker = Worker(
        worker_env(REDIS_URL=redis_url, TASKS_BACKEND="celery", AETHERIAL_DATA_DIR=str(tmp_path)),
        tmp_path / "worker.log",
    )
    try:
        code = await asyncio.to_thread(worker.process.wait, 60)
    finally:
        await worker.stop()
    assert code != 0
    assert "MONGODB_URL: required for the Celery worker" in worker.log()


# solo: what the tests and a small deployment use; prefork: docker-compose's worker (each child
# process opens its own loop and connections after the fork).
@pytest.mark.parametrize("pool", ["solo", "prefork"])
async def test_worker_returns_an_expired_transfer_and_its_events_reach_the_sender(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path, pool
):
    config = make_config(
        mongo_url,
        mongo_db_name,
        tmp_path / "gateway",
        redis_url=redis_url,
        jwt_secret=JWT_SECRET,
        tasks_backend="celery",
        jobs_interval=0.2,
        transfer_expiry=1,
    )
    server = await aiohttp_server(create_app(config))
    base = str(server.make_url("")).rstrip("/")
    alice, bob = await people(base, 2)
    chat = await direct(alice, bob)
    status, body = await alice.api.post(
        "/api/v1/wallet/dev-topup", json={"amount": 5000, "currency": "USD"}
    )
    assert status == 200, body
    status, body = await alice.api.post(
        "/api/v1/wallet/transfers",
        json={
            "to_user_id": bob.user_id,
            "amount": 1250,
            "currency": "USD",
            "conversation_id": chat,
            "idempotency_key": "k1",
        },
    )
    assert status == 201, body
    transfer_id = body["transfer"]["id"]
    card = await eventually(
        lambda: [m["message"] for m in alice.received() if m["message"]["type"] == "transfer"],
        what="the transfer card",
    )
    card_id = card[0]["id"]

    async def transfer_status(api: ApiClient = alice.api) -> str:
        status, body = await api.get(f"/api/v1/wallet/transfers/{transfer_id}")
        assert status == 200, body
        return body["transfer"]["status"]

    # Due, but with TASKS_BACKEND=celery the gateway only enqueues: nothing runs it yet.
    await asyncio.sleep(1.6)
    assert await transfer_status() == "pending"

    worker = Worker(
        celery_worker_env(
            mongo_url,
            mongo_db_name,
            redis_url,
            tmp_path / "worker-var",
        ),
        tmp_path / "worker.log",
        pool,
    )

    async def returned_or_worker_gone() -> bool:
        return worker.process.poll() is not None or await transfer_status() == "returned"

    try:
        try:
            await eventually(
                returned_or_worker_gone, timeout=60, what="the worker returning the transfer"
            )
            assert worker.process.poll() is None, "the worker exited"
            assert await transfer_status() == "returned"
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- worker log ---\n{worker.log()[-4000:]}") from None
        status, body = await alice.api.get("/api/v1/wallet")
        assert status == 200, body
        assert [(b["currency"], b["amount"]) for b in body["balances"]] == [("USD", 5000)]

        # The worker's events went out through Redis to the gateway's rooms.
        refund = await eventually(
            lambda: [b for b in alice.received("wallet.balance") if b["change"] == 1250],
            what="wallet.balance from the worker",
        )
        assert refund[0]["amount"] == 5000 and refund[0]["kind"] == "transfer_return"

        def returned_card(person) -> list:
            return [
                u["message"]
                for u in person.received("message.updated")
                if u["message"]["id"] == card_id and "buttons" not in u["message"]["card"]
            ]

        for person in (alice, bob):
            updated = await eventually(
                lambda person=person: returned_card(person), what="the card redrawn"
            )
            fields = {f["label"]: f["value"] for f in updated[-1]["card"]["fields"]}
            assert fields["Status"] == "Returned to the sender"
        await eventually(
            lambda: "'returned_transfers': 1" in worker.log(), what="the task's log line"
        )
    finally:
        code = await worker.stop()
        await close_all([alice, bob])
    assert worker.process.poll() is not None
    assert code == 0, worker.log()[-4000:]
    assert "Traceback" not in worker.log(), worker.log()[-4000:]
    # Ticks ran side by side (prefork children, a backlog): the money still moved once.
    alice_api = ApiClient(base)
    await alice_api.login(alice.username)
    status, body = await alice_api.get("/api/v1/wallet")
    await alice_api.close()
    assert [(b["currency"], b["amount"]) for b in body["balances"]] == [("USD", 5000)]
    balances = await check_ledger(server.app[keys.DATABASE].db)
    assert balances[user_account(alice.user_id, "USD")] == 5000
