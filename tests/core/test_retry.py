from __future__ import annotations

import random

import pytest

from relay.core.retry import MAX_RETRY_AFTER_S, Outcome, RetryPolicy, classify, parse_retry_after

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_delivered(status: int) -> None:
    assert classify(status) is Outcome.DELIVERED


def test_410_is_gone() -> None:
    assert classify(410) is Outcome.GONE


@pytest.mark.parametrize("status", [None, 100, 301, 302, 400, 404, 409, 429, 500, 503])
def test_everything_else_including_no_response_is_failed(status: int | None) -> None:
    assert classify(status) is Outcome.FAILED


def test_delays_follow_the_schedule_within_20_percent_jitter() -> None:
    policy = RetryPolicy(schedule_s=(5.0, 300.0, 1800.0))
    rng = random.Random(1)
    for attempt, base in enumerate(policy.schedule_s, start=1):
        for _ in range(200):
            delay = policy.next_delay_s(attempt=attempt, rng=rng)
            assert delay is not None
            assert base * 0.8 <= delay <= base * 1.2


def test_jitter_spreads_delays_rather_than_repeating_one_value() -> None:
    policy = RetryPolicy(schedule_s=(100.0,))
    rng = random.Random(7)
    delays = {policy.next_delay_s(attempt=1, rng=rng) for _ in range(50)}
    assert len(delays) == 50


def test_schedule_length_is_the_number_of_retries_after_the_first_attempt() -> None:
    policy = RetryPolicy(schedule_s=(1.0, 2.0, 3.0))
    rng = random.Random(0)
    assert policy.max_attempts == 4
    assert policy.next_delay_s(attempt=3, rng=rng) is not None
    assert policy.next_delay_s(attempt=4, rng=rng) is None
    assert policy.next_delay_s(attempt=0, rng=rng) is None


def test_empty_schedule_means_no_retry() -> None:
    policy = RetryPolicy(schedule_s=())
    assert policy.max_attempts == 1
    assert policy.next_delay_s(attempt=1, rng=random.Random(0)) is None


def test_retry_after_is_a_lower_bound_on_the_delay() -> None:
    policy = RetryPolicy(schedule_s=(5.0,))
    rng = random.Random(3)
    assert policy.next_delay_s(attempt=1, rng=rng, retry_after_s=120.0) == 120.0
    short = policy.next_delay_s(attempt=1, rng=rng, retry_after_s=1.0)
    assert short is not None and 4.0 <= short <= 6.0


def test_retry_after_does_not_extend_an_exhausted_schedule() -> None:
    policy = RetryPolicy(schedule_s=(5.0,))
    assert policy.next_delay_s(attempt=2, rng=random.Random(0), retry_after_s=10.0) is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), (" 7 ", 7.0), ("0", 0.0)],
)
def test_retry_after_delta_seconds(header: str, seconds: float) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_retry_after_http_date_is_relative_to_now() -> None:
    assert parse_retry_after("Tue, 14 Nov 2023 22:15:20 GMT", now=NOW) == 120.0


def test_retry_after_date_in_the_past_means_no_wait() -> None:
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now=NOW) == 0.0


def test_retry_after_is_capped_at_a_day() -> None:
    assert parse_retry_after("999999999", now=NOW) == MAX_RETRY_AFTER_S
    assert parse_retry_after("9" * 5000, now=NOW) == MAX_RETRY_AFTER_S
    assert parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", now=NOW) == MAX_RETRY_AFTER_S
    assert parse_retry_after("60", now=NOW, cap_s=30.0) == 30.0


@pytest.mark.parametrize(
    "header", [None, "", "soon", "-5", "1.5", "²", "Tue, 99 Nov 2023 25:61:00 GMT", "0x10"]
)
def test_garbage_retry_after_is_ignored(header: str | None) -> None:
    assert parse_retry_after(header, now=NOW) is None
