"""Delays before the next poll of a failing source."""

from __future__ import annotations

import random

import pytest

from relay.core.backoff import retry_delay_s


class _Fixed(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self._value = value

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self._value


@pytest.mark.parametrize(
    ("failures", "expected_s"), [(1, 1.0), (2, 2.0), (3, 4.0), (7, 64.0), (8, 120.0), (50, 120.0)]
)
def test_transport_backoff_doubles_from_1_s_to_120_s(failures: int, expected_s: float) -> None:
    assert retry_delay_s("backoff", failures=failures, rng=_Fixed(0.5)) == pytest.approx(expected_s)


@pytest.mark.parametrize(
    ("failures", "expected_s"), [(1, 300.0), (2, 600.0), (4, 2400.0), (5, 3600.0), (99, 3600.0)]
)
def test_auth_and_config_backoff_doubles_from_300_s_to_an_hour(
    failures: int, expected_s: float
) -> None:
    assert retry_delay_s("slow", failures=failures, rng=_Fixed(0.5)) == pytest.approx(expected_s)


def test_stop_kinds_are_not_retried() -> None:
    assert retry_delay_s("stop", failures=1, rng=random.Random(1)) is None


def test_jitter_stays_within_20_percent() -> None:
    assert retry_delay_s("backoff", failures=3, rng=_Fixed(0.0)) == pytest.approx(3.2)
    assert retry_delay_s("backoff", failures=3, rng=_Fixed(1.0)) == pytest.approx(4.8)
    rng = random.Random(7)
    delays = [retry_delay_s("slow", failures=1, rng=rng) for _ in range(200)]
    assert all(d is not None and 240 <= d <= 360 for d in delays)
    assert len(set(delays)) > 100


def test_zero_failures_counts_as_the_first() -> None:
    assert retry_delay_s("backoff", failures=0, rng=_Fixed(0.5)) == pytest.approx(1.0)
