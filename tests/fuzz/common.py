"""What the REST and Socket.IO fuzz tests share: the example budget, a gateway configured so that
fuzzing reaches the handlers, a small world of real ids to aim at, and a log watcher."""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, settings

from gateway.keys import MESSAGING
from tests.conftest import make_config
from tests.helpers import ApiClient

# Examples per operation (REST) or event (Socket.IO) and per generation mode. CI runs the default;
# FUZZ_EXAMPLES=200 make test PYTEST_ARGS="-m fuzz -s" digs deeper.
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
# The suite's 120 s per test would cut a deep run short: allow time in proportion.
FUZZ_TIMEOUT = 120 + 5 * FUZZ_EXAMPLES

# The codes any route or event may answer besides the ones it declares: authentication, the
# transport (errors.py), validation (validation.py), rate limits and unavailable domains.
GENERIC_CODES = frozenset(
    {
        "missing_token",
        "invalid_token",
        "token_expired",
        "session_revoked",
        "account_suspended",
        "not_admin",
        "invalid_json",
        "missing_field",
        "wrong_type",
        "unknown_field",
        "invalid_field",
        "bad_request",
        "not_found",
        "method_not_allowed",
        "body_too_large",
        "unsupported_media_type",
        "rate_limited",
        "http_error",
    }
)


def fuzz_settings(examples: int) -> settings:
    """Bounded and reproducible (derandomized: CI sees the same examples every run; set
    FUZZ_RANDOM=1 to explore), no example database written into the work tree."""
    return settings(
        max_examples=max(1, examples),
        deadline=None,
        database=None,
        derandomize=os.environ.get("FUZZ_RANDOM") != "1",
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        print_blob=False,
    )


def fuzz_config(mongo_url, mongo_db_name, tmp_path, **overrides):
    """Limits high enough that fuzzing reaches the handlers (429 is still a documented answer)."""
    return make_config(
        mongo_url,
        mongo_db_name,
        tmp_path / "var",
        send_rate_max=1_000_000,
        login_max_failures=1_000_000,
        login_max_attempts_per_address=1_000_000,
        **overrides,
    )


class ErrorLogWatcher(logging.Handler):
    """Collects every ERROR (or worse) record from any logger while installed on the root."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> ErrorLogWatcher:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger().removeHandler(self)

    def describe(self) -> list[str]:
        out = []
        for record in self.records:
            text = f"{record.name}: {record.getMessage()}"
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            out.append(text)
        return out


@dataclass
class World:
    """Real people, a group with messages and a direct chat: ids the fuzzer aims at."""

    me: ApiClient
    friend: ApiClient
    admin: ApiClient
    ids: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    usernames: dict[str, str] = field(default_factory=dict)

    async def close(self) -> None:
        for client in (self.me, self.friend, self.admin):
            await client.close()


async def build_world(gateway) -> World:
    base = str(gateway.make_url("")).rstrip("/")
    me, friend, admin = ApiClient(base), ApiClient(base), ApiClient(base)
    me_login = await me.signup()
    friend_login = await friend.signup()
    admin_login = await admin.signup()
    # run.py create-admin does exactly this: set the role in the database.
    await gateway.app[MESSAGING].users.collection.update_one(
        {"_id": admin_login["user"]["id"]}, {"$set": {"role": "admin"}}
    )
    world = World(me, friend, admin)
    world.tokens = {
        "me": me_login["access_token"],
        "friend": friend_login["access_token"],
        "admin": admin_login["access_token"],
    }
    world.usernames = {
        "me": me_login["user"]["username"],
        "friend": friend_login["user"]["username"],
        "admin": admin_login["user"]["username"],
    }
    friend_id = friend_login["user"]["id"]
    status, body = await me.post(
        "/api/v1/conversations",
        json={
            "type": "group",
            "title": "fuzz",
            "member_ids": [friend_id, admin_login["user"]["id"]],
        },
    )
    assert status == 201, body
    group_id = body["conversation"]["id"]
    status, body = await me.post(
        "/api/v1/conversations", json={"type": "direct", "user_id": friend_id}
    )
    assert status in (200, 201), body
    direct_id = body["conversation"]["id"]
    message_ids = []
    for n in range(3):
        status, body = await me.post(
            f"/api/v1/conversations/{group_id}/messages",
            json={"client_msg_id": f"fuzz-{n}", "text": f"hello {n}"},
        )
        assert status in (200, 201), body
        message_ids.append(body["message"]["id"])
    world.ids = {
        "me_id": me_login["user"]["id"],
        "friend_id": friend_id,
        "admin_id": admin_login["user"]["id"],
        "group_id": group_id,
        "direct_id": direct_id,
        "message_id": message_ids[0],
    }
    return world


@dataclass
class Tally:
    """What was tried and what came back, printed at the end (run with -s to see it)."""

    what: str
    tried: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_code: Counter = field(default_factory=Counter)
    targets: set = field(default_factory=set)

    def note(self, target: str, status, code: str | None) -> None:
        self.tried += 1
        self.targets.add(target)
        self.by_status[status] += 1
        if code:
            self.by_code[code] += 1

    def report(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.by_status.items(), key=str))
        codes = ", ".join(f"{k} {v}" for k, v in self.by_code.most_common(12))
        return (
            f"[fuzz] {self.what}: {self.tried} tried over {len(self.targets)} targets "
            f"(FUZZ_EXAMPLES={FUZZ_EXAMPLES}); outcomes {{{statuses}}}; top codes: {codes}"
        )
