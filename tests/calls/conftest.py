"""Calls run with a short ring timeout and grace period so the tests stay quick."""

from __future__ import annotations

import pytest

from tests.conftest import make_config


@pytest.fixture
def config(mongo_url, mongo_db_name, tmp_path):
    return make_config(
        mongo_url,
        mongo_db_name,
        tmp_path / "var",
        call_ring_timeout=1.5,
        call_grace_period=0.5,
    )
