"""The `redis+sentinel://` syntax: what it accepts, and errors that name the variable and
never the password."""

from __future__ import annotations

import pytest

from relay.core.errors import ConfigError
from relay.core.redis_urls import (
    SentinelTarget,
    is_sentinel_url,
    parse_sentinel_url,
    sentinel_url,
)


def test_hosts_service_and_db_are_read() -> None:
    target = parse_sentinel_url("redis+sentinel://10.0.0.1:26379,sentinel-b:26380/relay/3")
    assert target == SentinelTarget(
        sentinels=(("10.0.0.1", 26379), ("sentinel-b", 26380)), service_name="relay", db=3
    )


def test_a_password_with_or_without_a_username_logs_in_to_the_master() -> None:
    bare = parse_sentinel_url("redis+sentinel://:s%40cret@h:26379/relay")
    assert (bare.username, bare.password, bare.db) == (None, "s@cret", 0)
    named = parse_sentinel_url("redis+sentinel://app:pw@h:26379/relay")
    assert (named.username, named.password) == ("app", "pw")


def test_an_ipv6_sentinel_is_written_in_brackets() -> None:
    target = parse_sentinel_url("redis+sentinel://[::1]:26379/relay")
    assert target.sentinels == (("::1", 26379),)


def test_sentinel_url_is_the_inverse_of_parsing() -> None:
    target = SentinelTarget(
        sentinels=(("a", 1), ("::1", 2)), service_name="svc", db=2, password="p@ss:w/rd"
    )
    assert parse_sentinel_url(sentinel_url(target)) == target
    assert is_sentinel_url(sentinel_url(target))
    assert not is_sentinel_url("redis://127.0.0.1:6379/0")


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://:hunter2secret@h:26379",  # no service
        "redis+sentinel://:hunter2secret@h:26379/",
        "redis+sentinel://:hunter2secret@h/relay",  # no port
        "redis+sentinel://:hunter2secret@h:0/relay",
        "redis+sentinel://:hunter2secret@h:26379,/relay",
        "redis+sentinel://:hunter2secret@h:26379/relay/x",
        "redis+sentinel://:hunter2secret@h:26379/relay/1/2",
        "redis+sentinel://:hunter2secret@h:26379/re lay",
    ],
)
def test_a_malformed_url_names_the_variable_not_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_sentinel_url(url)
    assert "REDIS_URL" in str(caught.value)
    assert "hunter2secret" not in str(caught.value)
