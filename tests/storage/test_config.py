"""Configuration: each kind of bad value stops start-up with a message naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.config import Config, settings
from storage.errors import ConfigError


def test_defaults_are_embedded_and_not_development():
    """Dev conveniences need an explicit AETHERIAL_ENV=development (`make run` sets it)."""
    config = Config.from_env({})
    assert config.environment is None and not config.development and not config.production
    assert not config.dev_topup_enabled
    assert Config.from_env({"AETHERIAL_ENV": "development"}).dev_topup_enabled
    assert config.embedded_mongo and config.redis_url is None and config.jwt_secret is None
    assert config.port == 8080 and config.data_dir == Path("var")


def test_values_are_parsed():
    config = Config.from_env(
        {
            "AETHERIAL_PORT": "9000",
            "TRUSTED_PROXIES": "2",
            "MONGODB_URL": "mongodb://db:27017",
            "REDIS_URL": "redis://r:6379/1",
            "AETHERIAL_DATA_DIR": "/srv/a",
            "CORS_ORIGINS": "*",
            "REDIS_UNRELATED": "ignored",
        }
    )
    assert config.port == 9000 and config.trusted_proxies == 2
    assert not config.embedded_mongo and config.redis_url == "redis://r:6379/1"
    assert config.data_dir == Path("/srv/a") and config.cors_allowed == "*"


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("AETHERIAL_PORT", "eighty"),
        ("AETHERIAL_PORT", "70000"),
        ("TRUSTED_PROXIES", "many"),
        ("TRUSTED_PROXIES", "17"),
        ("SOCKETS_PER_USER", "0"),
        ("MONGODB_URL", "http://db:27017"),
        ("REDIS_URL", "localhost:6379"),
        ("JWT_SECRET", "too-short"),
        ("MONGODB_DB", "bad name!"),
        ("AETHERIAL_ENV", "staging"),
        ("LOG_LEVEL", "loud"),
        ("ACCESS_TOKEN_TTL", "0"),
        ("AETHERIAL_DATA_DIR", " "),
    ],
)
def test_bad_values_name_the_variable(env, value):
    with pytest.raises(ConfigError, match=env):
        Config.from_env({env: value})


def test_production_requires_its_parts():
    with pytest.raises(ConfigError) as info:
        Config.from_env({"AETHERIAL_ENV": "production", "MONGODB_URL": "mongodb://db"})
    assert "REDIS_URL" in str(info.value) and "JWT_SECRET" in str(info.value)
    config = Config.from_env(
        {
            "AETHERIAL_ENV": "production",
            "MONGODB_URL": "mongodb://db",
            "REDIS_URL": "redis://r",
            "JWT_SECRET": "x" * 40,
            "METRICS_PORT": "9100",  # or METRICS_TOKEN: /metrics is never open in production
        }
    )
    assert config.environment == "production"


def test_every_setting_is_documented_with_a_variable():
    names = [s["env"] for s in settings()]
    assert len(names) == len(set(names))
    assert all(s["doc"] for s in settings())


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.org"])
def test_network_bind_needs_an_explicit_environment(host):
    with pytest.raises(ConfigError, match="AETHERIAL_ENV=production") as info:
        Config.from_env({"AETHERIAL_HOST": host})
    assert "AETHERIAL_ENV=development" in str(info.value)
    assert Config.from_env({"AETHERIAL_HOST": host, "AETHERIAL_ENV": "development"}).development


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_bind_needs_no_environment(host):
    assert Config.from_env({"AETHERIAL_HOST": host}).host == host
