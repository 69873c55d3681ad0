"""The plugin's configuration and URL forms; no Redis needed (nothing connects at init_app)."""

from __future__ import annotations

from typing import Any

import pytest
from flask_passkey.errors import ConfigurationError
from tests.apps import make_app

from flask_passkey_redis import CONFIG_DEFAULTS, RedisSessionStore
from flask_passkey_redis.connection import parse_url
from flask_passkey_redis.limit_storage import limiter_storage_uri, redis_url_and_timeout


def test_declared_keys_and_defaults_are_filled_into_the_config() -> None:
    app = make_app()
    assert {key: app.config[key] for key in CONFIG_DEFAULTS} == {
        "PASSKEY_REDIS_URL": None,
        "PASSKEY_REDIS_KEY_PREFIX": "flask-passkey:",
        "PASSKEY_REDIS_SOCKET_TIMEOUT": 2.0,
    }


def test_empty_url_means_unset() -> None:
    state = make_app(redis_url="").extensions["passkey"]
    assert not isinstance(state.sessions, RedisSessionStore)


@pytest.mark.parametrize(
    "config",
    [
        {"redis_url": "http://127.0.0.1:6379"},
        {"redis_url": "redis://127.0.0.1:port/0"},
        {"redis_url": 6379},
        {"redis_url": "redis+sentinel://127.0.0.1:26379"},
        {"redis_url": "redis+sentinel://127.0.0.1:26379/mymaster/1"},
        {"redis_url": "redis+cluster://127.0.0.1"},
        {"redis_url": "redis+cluster://127.0.0.1:7000/1"},
        {"redis_url": "redis://127.0.0.1", "redis_key_prefix": ""},
        {"redis_url": "redis://127.0.0.1", "redis_socket_timeout": 0},
        {"redis_url": "redis://127.0.0.1", "redis_socket_timeout": "2"},
        {"redis_url": "redis://127.0.0.1", "redis_socket_timeout": True},
    ],
)
def test_bad_configuration_fails_at_init_app(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="PASSKEY_REDIS_"):
        make_app(**config)


def test_password_is_not_repeated_in_errors() -> None:
    with pytest.raises(ConfigurationError) as raised:
        make_app(redis_url="redis+cluster://:hunter2@127.0.0.1:7000/0")
    assert "hunter2" not in str(raised.value)
    assert "hunter2" not in repr(parse_url("redis+cluster://:hunter2@127.0.0.1:7000"))


def test_redis_url_is_an_unknown_key_without_the_plugin() -> None:
    with pytest.raises(ConfigurationError, match="PASSKEY_REDIS_URL"):
        make_app(load_entry_points=False, redis_url="redis://127.0.0.1")


@pytest.mark.parametrize(
    ("url", "uri"),
    [
        ("redis://127.0.0.1:6379/2", "passkey+redis://127.0.0.1:6379/2?socket_timeout=1.5"),
        (
            "rediss://user:pw@cache.internal:6380/0?socket_timeout=5",
            "passkey+rediss://user:pw@cache.internal:6380/0?socket_timeout=5",
        ),
        (
            "unix:///run/redis.sock?db=1",
            "passkey+unix:///run/redis.sock?db=1&socket_timeout=1.5",
        ),
        (
            "redis+unix:///run/redis.sock",
            "passkey+redis+unix:///run/redis.sock?socket_timeout=1.5",
        ),
        (
            "redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/mymaster",
            "passkey+redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/mymaster?socket_timeout=1.5",
        ),
        (
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7001",
            "passkey+redis+cluster://10.0.0.1:7000,10.0.0.2:7001?socket_timeout=1.5",
        ),
    ],
)
def test_limiter_storage_uri_for_each_url_form(url: str, uri: str) -> None:
    assert limiter_storage_uri(parse_url(url), socket_timeout=1.5) == uri
    # The storage reads back the URL and the timeout (which it hands the client itself).
    sent_timeout = "?socket_timeout=5"
    assert redis_url_and_timeout(uri) == (
        url.removesuffix(sent_timeout),
        5.0 if url.endswith(sent_timeout) else 1.5,
    )
