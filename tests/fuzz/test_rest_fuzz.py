"""Property-based fuzzing of every REST operation in /openapi.json with Schemathesis.

For each operation Schemathesis generates requests from its schema, both valid ones (positive) and
ones that break it (negative: wrong types, missing and unknown fields, out-of-range values, odd
unicode), with random path parameters and with real ids (a group, a friend, a message), signed in
(as an administrator for admin routes) and anonymous. Every answer must be below 500, every 4xx
must carry ``{"error": {"code", "message"}}`` with a code the operation documents (or a generic
one), every body must match the documented schema and content type (Schemathesis' own
conformance checks), and nothing may be logged at ERROR.

The gateway runs on this test's event loop; Hypothesis and Schemathesis drive it synchronously
from a worker thread (``asyncio.to_thread``) so the loop stays free to serve.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import given
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.fuzz.common import (
    FUZZ_EXAMPLES,
    FUZZ_TIMEOUT,
    GENERIC_CODES,
    ErrorLogWatcher,
    Tally,
    build_world,
    fuzz_config,
    fuzz_settings,
)
from tests.helpers import ApiClient
from tests.wallet.fake_stripe import FakeStripe

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(FUZZ_TIMEOUT)]

CONFORMANCE = [response_schema_conformance, content_type_conformance]
_DOCUMENTED = re.compile(r"`error\.code` is one of: (.*)$")


@pytest.fixture
async def config(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    """Card top-ups configured against the local Stripe stand-in, so those routes are reached
    too (unconfigured, they answer 501 stripe_not_configured)."""
    fake = FakeStripe()
    server = await aiohttp_server(fake.app)
    return fuzz_config(
        mongo_url,
        mongo_db_name,
        tmp_path,
        stripe_secret_key="sk_test_" + "f" * 24,
        stripe_webhook_secret="whsec_" + "f" * 32,
        stripe_api_base=str(server.make_url("")).rstrip("/"),
    )


def documented_codes(operation: dict[str, Any]) -> set[str]:
    description = operation["responses"].get("default", {}).get("description", "")
    match = _DOCUMENTED.search(description)
    return {c.strip() for c in match.group(1).split(",")} if match else set()


def check_response(
    label: str, allowed: set[str], response: requests.Response, problems: list[str]
) -> str | None:
    """The error code of the answer (None on success); each broken promise goes to problems."""
    status = response.status_code
    if status >= 500:
        problems.append(f"{label}: {status} {response.text[:500]}")
        return None
    if status < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        problems.append(f"{label}: {status} with a body that is not JSON: {response.text[:300]}")
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
    ):
        problems.append(f"{label}: {status} not in the error shape: {response.text[:300]}")
        return None
    if error["code"] not in allowed:
        problems.append(f"{label}: {status} undocumented code {error['code']!r}: {error}")
    return error["code"]


def fuzz_operation(
    operation,
    *,
    mode: GenerationMode,
    examples: int,
    base_url: str,
    headers: dict[str, str],
    path_parameters: dict[str, str] | None,
    allowed: set[str],
    tally: Tally,
    problems: list[str],
    fresh_headers: Callable[[], dict[str, str]] | None = None,
) -> None:
    """Run one operation in one mode; a failing example ends up in problems, not raised, so one
    run reports every operation that breaks."""
    label = f"{operation.method.upper()} {operation.path}"
    session = requests.Session()
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @fuzz_settings(examples)
    @given(case=strategy)
    def run(case) -> None:
        sent = fresh_headers() if fresh_headers else headers
        response = case.call(base_url=base_url, session=session, headers=sent, timeout=30)
        found: list[str] = []
        code = check_response(label, allowed, response, found)
        tally.note(label, response.status_code, code)
        if not found:  # and the body and content type are the documented ones, success or not
            try:
                case.validate_response(response, checks=CONFORMANCE)
            except FailureGroup as exc:
                found.append(f"{label}: {response.status_code} {str(exc)[:1500]}")
        if found:
            curl = case.as_curl_command(headers=sent)
            raise AssertionError(f"{found[0]}\nrequest: {curl[:1000]}")

    try:
        run()
    except Unsatisfiable:
        # Negative mode with nothing to break (no body, query, or free path parameter).
        assert mode == GenerationMode.NEGATIVE, label
    except AssertionError as exc:
        problems.append(str(exc))
    finally:
        session.close()


# Path parameters that name real things; the others (sessions, transfers, payments...) stay random.
def real_path_parameters(ids: dict[str, str], names: list[str]) -> dict[str, str] | None:
    known = {
        "conversation_id": ids["group_id"],
        "user_id": ids["friend_id"],
        "message_id": ids["message_id"],
        "seq": "1",
        "app_id": "poll",
        "scope": "users.profile",
    }
    chosen = {name: known[name] for name in names if name in known}
    return chosen or None


@pytest.mark.xdist_group("heavy")  # CPU-heavy: never beside another heavy test
async def test_every_rest_operation_survives_fuzzing(gateway, api):
    world = await build_world(gateway)
    base_url = str(gateway.make_url("")).rstrip("/")
    status, document = await api.get("/openapi.json")
    assert status == 200
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(ops) for ops in document["paths"].values())

    # logout ends the session it is called with: it gets a throwaway session each time.
    async def new_session_token() -> str:
        device = ApiClient(base_url)
        try:
            return (await device.login(world.usernames["me"]))["access_token"]
        finally:
            await device.close()

    loop = asyncio.get_running_loop()
    me_token = world.tokens["me"]

    def fresh_logout_headers() -> dict[str, str]:
        token = asyncio.run_coroutine_threadsafe(new_session_token(), loop).result(30)
        return {"Authorization": f"Bearer {token}"}

    def fuzz_all(tally: Tally, problems: list[str]) -> None:
        for operation in operations:
            raw = document["paths"][operation.path][operation.method.lower()]
            allowed = documented_codes(raw) | GENERIC_CODES
            names = re.findall(r"{(\w+)}", operation.path)
            signed_in = "security" in raw
            token = world.tokens["admin" if "/admin/" in operation.path else "me"]
            headers = {"Authorization": f"Bearer {token}"} if signed_in else {}
            is_logout = operation.path == "/api/v1/auth/logout"
            runs = [(GenerationMode.POSITIVE, None), (GenerationMode.NEGATIVE, None)]
            real = real_path_parameters(world.ids, names)
            if real:
                runs += [(GenerationMode.POSITIVE, real), (GenerationMode.NEGATIVE, real)]
            for mode, path_parameters in runs:
                fuzz_operation(
                    operation,
                    mode=mode,
                    examples=FUZZ_EXAMPLES,
                    base_url=base_url,
                    headers=headers,
                    path_parameters=path_parameters,
                    allowed=allowed,
                    tally=tally,
                    problems=problems,
                    fresh_headers=fresh_logout_headers if is_logout else None,
                )
            if signed_in:  # anonymous: refused before anything else happens
                fuzz_operation(
                    operation,
                    mode=GenerationMode.POSITIVE,
                    examples=max(1, FUZZ_EXAMPLES // 2),
                    base_url=base_url,
                    headers={},
                    path_parameters=real,
                    allowed=allowed,
                    tally=tally,
                    problems=problems,
                )

    tally, problems = Tally("REST requests"), []
    try:
        with ErrorLogWatcher() as errors:
            await asyncio.to_thread(fuzz_all, tally, problems)
        # Our own token still works: the fuzzer did not sign us out or break the account.
        assert (await world.me.get("/api/v1/me", token=me_token))[0] == 200
    finally:
        await world.close()
    print("\n" + tally.report())
    assert len(tally.targets) == len(operations)
    assert not problems, "\n\n".join(problems[:30])
    assert not errors.records, "\n\n".join(errors.describe()[:10])
