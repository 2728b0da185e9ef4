"""Throttle.defer_s: when refused deliveries come due again (no I/O: a fixed clock)."""

from __future__ import annotations

import random

import pytest
import redis.asyncio

from relay.core.models import Secret, Subscription
from relay.delivery.throttle import LEASE_RETRY_S, Throttle
from relay.store.keys import Keys
from relay.store.limits import Admission, DeliveryLimiter

NOW = 1_700_000_000.0


def subscription(**limits: float | None) -> Subscription:
    return Subscription(
        id="sub_a",
        url="https://example.com/",
        secrets=(Secret("whsec_x"),),
        created_at=NOW,
        **limits,  # type: ignore[arg-type]
    )


@pytest.fixture
def throttle(aredis: redis.asyncio.Redis, keys: Keys) -> Throttle:
    return Throttle(
        limiter=DeliveryLimiter(redis=aredis, keys=keys),
        timeout_for=lambda _sub: 1.0,
        rng=random.Random(7),
        clock=lambda: NOW,
    )


def test_rate_deferrals_are_spread_one_interval_apart(throttle: Throttle) -> None:
    sub = subscription(rate_limit_per_s=4)
    refused = Admission(False, 1.5, reason="rate")
    delays = [throttle.defer_s(sub, refused) for _ in range(4)]
    assert delays == pytest.approx([1.5, 1.75, 2.0, 2.25])


def test_rate_deferrals_queue_behind_the_subscriptions_retries(throttle: Throttle) -> None:
    sub = subscription(rate_limit_per_s=10)
    refused = Admission(False, 1.2, reason="rate", queued_retries=50)
    assert throttle.defer_s(sub, refused) == pytest.approx(1.2 + 50 * 0.1)


def test_a_refused_lease_is_tried_again_in_a_second_or_two(throttle: Throttle) -> None:
    sub = subscription(concurrency=1)
    refused = Admission(False, 20.0, reason="concurrency")
    delays = [throttle.defer_s(sub, refused) for _ in range(20)]
    assert all(LEASE_RETRY_S[0] <= d <= LEASE_RETRY_S[1] for d in delays)
