"""Fixtures for the mini-program tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.keys import MINIAPPS
from miniapps.host.registry import discover
from storage.mongo import now_ms
from tests.messaging.chat_helpers import close_all, group, people

APPS_DIR = Path(__file__).resolve().parent / "apps"
CONTRACT_APP = "contract"


class HostCapability:
    """Capability calls of the ``contract`` test app (granted every permission), answered by a
    running gateway's host inside a live invocation: a member of a group that installed the app
    invoked it, and has granted every scope. ``await call(method, params)`` gives
    ``("ok", result)`` or ``("error", code)``, the shape the simulator's test helper gives."""

    def __init__(self, host: Any, user_id: str, conversation_id: str) -> None:
        self.host = host
        self.conversation_id = conversation_id
        self.platform_user_id = user_id
        self.user_id = host.identity.app_user_id(CONTRACT_APP, user_id)  # what the app sees

    async def open_call(self) -> str:
        await self.host.identity.app_user(CONTRACT_APP, self.platform_user_id)
        return await self.host.calls.open(
            CONTRACT_APP,
            self.platform_user_id,
            self.user_id,
            self.conversation_id,
            0,
            remote=False,
        )

    async def __call__(self, method: str, params: dict) -> tuple[str, Any]:
        call_id = await self.open_call()
        try:
            return "ok", await self.host.serve(CONTRACT_APP, method, {**params, "call_id": call_id})
        except Exception as exc:
            code = getattr(exc, "code", None)
            if not isinstance(code, str):
                raise
            return "error", code
        finally:
            await self.host.calls.close(call_id, remote=False)


@pytest.fixture
async def host_capability(gateway) -> AsyncIterator[HostCapability]:
    host = gateway.app[MINIAPPS]
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    host.apps[CONTRACT_APP] = apps[CONTRACT_APP]
    ann, bea = await people(str(gateway.make_url("")).rstrip("/"), 2)
    try:
        cid = await group(ann, [bea], "Contract")
        status, body = await ann.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": CONTRACT_APP}
        )
        assert status == 201, body
        for scope in ("users.profile", "notifications"):
            await host.consents.set_answer(ann.user_id, CONTRACT_APP, scope, True, now_ms())
        yield HostCapability(host, ann.user_id, cid)
    finally:
        host.apps.pop(CONTRACT_APP, None)
        await close_all([ann, bea])
