"""A failing subscription, its retry, dead letter and rotated secret, and a failing source,
written through the real stores: what the health pages' tests and screenshots show."""

from __future__ import annotations

import time

import redis

from relay.core.ids import new_id
from relay.core.models import Attempt, Source
from relay.delivery.jobs import retry_queue_for
from relay.settings import Settings
from relay.store import Store
from relay.store.health import SentOutcome
from relay.store.retry_queue import RetryRequest

LAST_RESPONSE = '{"error": "database is read-only"}'


async def make_failing(
    store: Store, settings: Settings, subscription_id: str, event_id: str
) -> None:
    """One success 20 min ago, then three failures: failing since 10 min ago, one retry in
    5 min, one dead letter, and a rotation whose previous secret signs for another hour."""
    now = time.time()
    steps = ((now - 1200, 200), (now - 600, 500), (now - 300, 503), (now - 60, 503))
    for at, status in steps:
        attempt = Attempt(new_id("att"), event_id, subscription_id, 1, at, status, None, None, 80)
        await store.attempts.record_many([attempt])
        outcome = SentOutcome(subscription_id, at, attempt.is_delivered, f"HTTP {status}")
        await store.health.record([outcome], now=at, disable_after_s=settings.disable_after_s)
    with redis.Redis.from_url(settings.require_redis_url()) as client:
        retry_queue_for(settings, client).schedule(
            [RetryRequest(event_id, subscription_id, 2, 300)]
        )
    await store.dead_letters.add(
        event_id=event_id,
        subscription_id=subscription_id,
        attempts=4,
        last_error="HTTP 503",
        last_status_code=503,
        failed_at=now - 30,
        last_response=LAST_RESPONSE,
    )
    await store.subscriptions.rotate_secret(subscription_id, overlap_s=3600, now=now)


async def make_failing_source(store: Store, source: Source) -> None:
    """The source's polls fail since 5 min ago; the next one is in 2 min."""
    now = time.time()
    _, version = await store.sources.get_versioned(source.id)
    await store.sources.record_failure(
        source.id,
        version=version,
        error="MC5 status 3: wrong username or password",
        failures=4,
        next_poll_at=now + 120,
        now=now - 300,
    )
