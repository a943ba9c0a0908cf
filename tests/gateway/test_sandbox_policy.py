"""Production never runs mini-programs unsandboxed by accident (gateway.app.check_sandbox).

The real process is tried in tests/test_run.py; this covers every combination of the rule.
"""

from __future__ import annotations

import logging

import pytest

from gateway.app import check_sandbox
from storage.config import Config
from storage.errors import ConfigError

PRODUCTION = {
    "AETHERIAL_ENV": "production",
    "MONGODB_URL": "mongodb://mongo:27017",
    "REDIS_URL": "redis://redis:6379/0",
    "JWT_SECRET": "p" * 40,
    "METRICS_TOKEN": "m" * 40,  # production needs METRICS_TOKEN or METRICS_PORT
}


def test_production_refuses_a_degraded_sandbox_naming_the_way_out():
    with pytest.raises(ConfigError) as refused:
        check_sandbox(Config.from_env(PRODUCTION), degraded=True)
    assert "bubblewrap" in str(refused.value)
    assert "MINIAPPS_ALLOW_UNSANDBOXED=1" in str(refused.value)


def test_production_starts_degraded_only_when_told_to(caplog):
    config = Config.from_env({**PRODUCTION, "MINIAPPS_ALLOW_UNSANDBOXED": "1"})
    assert config.miniapps_allow_unsandboxed
    with caplog.at_level(logging.WARNING, logger="gateway.app"):
        check_sandbox(config, degraded=True)
    assert "sandbox degraded" in caplog.text and "MINIAPPS_ALLOW_UNSANDBOXED" in caplog.text


def test_development_warns_and_starts(caplog):
    with caplog.at_level(logging.WARNING, logger="gateway.app"):
        check_sandbox(Config.from_env({}), degraded=True)
    assert "sandbox degraded" in caplog.text


def test_a_working_sandbox_needs_no_permission(caplog):
    for config in (Config.from_env(PRODUCTION), Config.from_env({})):
        with caplog.at_level(logging.WARNING, logger="gateway.app"):
            check_sandbox(config, degraded=False)
    assert caplog.text == ""


def test_the_setting_is_read_like_the_others():
    assert Config.from_env({}).miniapps_allow_unsandboxed is False
    assert Config.from_env({"MINIAPPS_ALLOW_UNSANDBOXED": "yes"}).miniapps_allow_unsandboxed
    with pytest.raises(ConfigError, match="MINIAPPS_ALLOW_UNSANDBOXED"):
        Config.from_env({"MINIAPPS_ALLOW_UNSANDBOXED": "maybe"})
