from __future__ import annotations

import asyncio

import pytest
import uvloop

from relay.core.errors import ConfigError
from relay.event_loops import loop_factory, loop_name
from relay.settings import DEFAULT_RETRY_SCHEDULE_S, Settings


def test_defaults_match_the_interface() -> None:
    s = Settings.from_env({})
    assert s.key_prefix == "relay:"
    assert (s.api_host, s.api_port) == ("127.0.0.1", 8080)
    assert s.mc5_base_url == "https://mc5.smartmessagingservices.net"
    assert s.poll_interval_s == 2.0
    assert s.start_from is None
    assert (
        s.retry_schedule_s == DEFAULT_RETRY_SCHEDULE_S == (5, 300, 1800, 7200, 18000, 36000, 36000)
    )
    assert s.delivery_timeout_s == 15.0
    assert s.allow_private_targets is False


def test_several_admin_tokens_are_all_kept() -> None:
    s = Settings.from_env({"RELAY_ADMIN_TOKEN": "old, new ,"})
    assert s.admin_tokens == ("old", "new")


def test_a_weak_admin_token_is_refused_without_naming_it() -> None:
    s = Settings.from_env({"RELAY_ADMIN_TOKEN": "strong-token-0123456789,short1"})
    with pytest.raises(ConfigError) as refused:
        s.require_admin_tokens()
    assert "RELAY_ALLOW_WEAK_TOKENS=true" in str(refused.value)
    assert "short1" not in str(refused.value)


def test_a_weak_admin_token_is_warned_about_when_allowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {"RELAY_ADMIN_TOKEN": "a", "RELAY_ALLOW_WEAK_TOKENS": "true"}
    assert Settings.from_env(env).require_admin_tokens() == ("a",)
    assert "shorter than 16 characters" in caplog.text


def test_a_16_character_admin_token_is_accepted() -> None:
    assert Settings.from_env({"RELAY_ADMIN_TOKEN": "x" * 16}).require_admin_tokens()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RELAY_API_PORT", "http"),
        ("RELAY_API_PORT", "70000"),
        ("RELAY_POLL_INTERVAL", "-1"),
        ("RELAY_POLL_INTERVAL", "nan"),
        ("RELAY_START_FROM", "yesterday"),
        ("RELAY_RETRY_SCHEDULE", "5,x"),
        ("RELAY_DELIVERY_TIMEOUT", "0"),
        ("RELAY_ALLOW_PRIVATE_TARGETS", "maybe"),
        ("MC5_BASE_URL", "ftp://example.com"),
        ("RELAY_KEY_PREFIX", "has space"),
        ("RELAY_LOG_LEVEL", "LOUD"),
        ("RELAY_AUTH_FAILURES_PER_MINUTE", "0"),
        ("RELAY_TRUSTED_PROXIES", "10.0.0.1,proxy.internal"),
        ("RELAY_EVENT_LOOP", "trio"),
    ],
)
def test_bad_value_is_refused_with_the_variable_name(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_start_from_accepts_now_and_epoch_seconds() -> None:
    assert Settings.from_env({"RELAY_START_FROM": "now"}).start_from is None
    assert Settings.from_env({"RELAY_START_FROM": "1366624769"}).start_from == 1366624769


def test_missing_redis_url_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        Settings.from_env({}).require_redis_url()


def test_auth_limit_and_trusted_proxies_are_read() -> None:
    settings = Settings.from_env(
        {"RELAY_AUTH_FAILURES_PER_MINUTE": "5", "RELAY_TRUSTED_PROXIES": "10.0.0.1, 10.1.0.0/16"}
    )
    assert settings.auth_failures_per_minute == 5
    assert settings.trusted_proxies == ("10.0.0.1", "10.1.0.0/16")
    assert Settings.from_env({}).auth_failures_per_minute == 20


def test_a_sentinel_redis_url_is_kept_and_validated_at_start() -> None:
    url = "redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/relay/1"
    assert Settings.from_env({"REDIS_URL": url}).redis_url == url
    with pytest.raises(ConfigError, match="REDIS_URL"):
        Settings.from_env({"REDIS_URL": "redis+sentinel://127.0.0.1:26379"})


def test_relay_redis_sentinels_and_the_service_build_the_sentinel_url() -> None:
    settings = Settings.from_env(
        {"RELAY_REDIS_SENTINELS": "s1:26379, s2:26379", "RELAY_REDIS_SENTINEL_SERVICE": "relay"}
    )
    assert settings.redis_url == "redis+sentinel://s1:26379,s2:26379/relay/0"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"RELAY_REDIS_SENTINELS": "s1:26379"}, "RELAY_REDIS_SENTINEL_SERVICE"),
        ({"RELAY_REDIS_SENTINEL_SERVICE": "relay"}, "RELAY_REDIS_SENTINELS"),
        ({"RELAY_REDIS_SENTINELS": "s1", "RELAY_REDIS_SENTINEL_SERVICE": "r"}, "SENTINELS"),
        (
            {
                "REDIS_URL": "redis://127.0.0.1:6379/0",
                "RELAY_REDIS_SENTINELS": "s1:26379",
                "RELAY_REDIS_SENTINEL_SERVICE": "relay",
            },
            "not both",
        ),
    ],
)
def test_incomplete_sentinel_settings_are_refused_naming_the_variable(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


def test_disable_window_and_operator_webhook_settings() -> None:
    assert Settings.from_env({}).disable_after_s == 432000
    assert Settings.from_env({}).operator_webhook_url is None
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw9YfTQjyl0Qw="
    chosen = Settings.from_env(
        {
            "RELAY_DISABLE_AFTER": "60",
            "RELAY_OPERATOR_WEBHOOK_URL": "https://ops.example.com/hooks",
            "RELAY_OPERATOR_WEBHOOK_SECRET": secret,
        }
    )
    assert (chosen.disable_after_s, chosen.operator_webhook_url) == (
        60,
        "https://ops.example.com/hooks",
    )
    assert secret not in repr(chosen)
    with pytest.raises(ConfigError, match="RELAY_OPERATOR_WEBHOOK_SECRET"):
        Settings.from_env({"RELAY_OPERATOR_WEBHOOK_URL": "https://ops.example.com/hooks"})
    with pytest.raises(ConfigError, match="RELAY_OPERATOR_WEBHOOK_SECRET"):
        Settings.from_env({"RELAY_OPERATOR_WEBHOOK_SECRET": "plain"})
    with pytest.raises(ConfigError, match="RELAY_DISABLE_AFTER"):
        Settings.from_env({"RELAY_DISABLE_AFTER": "0"})


def test_the_event_loop_is_uvloop_by_default_and_asyncio_on_request() -> None:
    assert Settings.from_env({}).event_loop == "auto"
    assert loop_factory(Settings.from_env({}).event_loop) is uvloop.new_event_loop
    chosen = Settings.from_env({"RELAY_EVENT_LOOP": " AsyncIO "}).event_loop
    assert loop_factory(chosen) is asyncio.new_event_loop
    loop = loop_factory("uvloop")()
    try:
        assert loop_name(loop) == "uvloop"
    finally:
        loop.close()
