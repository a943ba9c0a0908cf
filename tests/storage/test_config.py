"""Configuration: each kind of bad value stops start-up with a message naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.config import Config, settings
from storage.errors import ConfigError


def test_defaults_are_embedded_development():
    config = Config.from_env({})
    assert config.environment == "development"
    assert config.embedded_mongo and config.redis_url is None and config.jwt_secret is None
    assert config.port == 8080 and config.data_dir == Path("var")


def test_values_are_parsed():
    config = Config.from_env(
        {
            "AETHERIAL_PORT": "9000",
            "TRUST_PROXY": "yes",
            "MONGODB_URL": "mongodb://db:27017",
            "REDIS_URL": "redis://r:6379/1",
            "AETHERIAL_DATA_DIR": "/srv/a",
            "CORS_ORIGINS": "*",
            "REDIS_UNRELATED": "ignored",
        }
    )
    assert config.port == 9000 and config.trust_proxy is True
    assert not config.embedded_mongo and config.redis_url == "redis://r:6379/1"
    assert config.data_dir == Path("/srv/a") and config.cors_allowed == "*"


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("AETHERIAL_PORT", "eighty"),
        ("AETHERIAL_PORT", "70000"),
        ("TRUST_PROXY", "maybe"),
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
        }
    )
    assert config.environment == "production"


def test_every_setting_is_documented_with_a_variable():
    names = [s["env"] for s in settings()]
    assert len(names) == len(set(names))
    assert all(s["doc"] for s in settings())
