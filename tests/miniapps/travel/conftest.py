"""Fixtures every travel test may use: ``group`` (the app in the simulator, an empty group chat,
its clock tied to the simulator's) and ``stub`` (the local Duffel stand-in, on loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.miniapps.travel.duffel_stub import DuffelStub
from tests.miniapps.travel.travel_fixtures import Group, open_group


@pytest.fixture
def group(monkeypatch) -> Group:
    return open_group(monkeypatch)


@pytest.fixture
async def stub() -> AsyncIterator[DuffelStub]:
    server = DuffelStub()
    await server.start()
    yield server
    await server.close()
