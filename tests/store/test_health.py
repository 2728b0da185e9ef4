"""Subscription health records: a batch updates them exactly as one outcome at a time would."""

from __future__ import annotations

import redis.asyncio

from relay.store.health import HEALTH_TTL_S, RENEW_EVERY_S, HealthStore, SentOutcome, Transition
from relay.store.keys import Keys

NOW = 1_700_000_100.0


async def _record_all(
    store: HealthStore, batches: list[list[SentOutcome]]
) -> list[tuple[str, Transition]]:
    changes = []
    for batch in batches:
        found = await store.record(batch, now=NOW, disable_after_s=3600)
        changes += [(outcome.subscription_id, transition) for outcome, transition in found]
    return changes


async def test_a_batch_leaves_the_records_and_transitions_of_one_at_a_time(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    failing = [
        SentOutcome("sub_a", 10.0, False, "HTTP 500"),
        SentOutcome("sub_b", 11.0, False, "HTTP 503"),
    ]
    batch = [
        SentOutcome("sub_a", 22.0, True, "HTTP 200"),  # sub_a: deliveries only, out of order
        SentOutcome("sub_b", 20.0, True, "HTTP 200"),  # sub_b: mixed, so kept in order
        SentOutcome("sub_a", 25.0, True, "HTTP 200"),
        SentOutcome("sub_b", 21.0, False, "HTTP 502"),
        SentOutcome("sub_a", 21.0, True, "HTTP 200"),
        SentOutcome("sub_c", 30.0, True, "HTTP 200"),  # sub_c: one, never failed
    ]
    batched_keys, single_keys = Keys(f"{keys.prefix}batched:"), Keys(f"{keys.prefix}single:")
    batched = HealthStore(redis=aredis, keys=batched_keys)
    single = HealthStore(redis=aredis, keys=single_keys)

    batched_changes = await _record_all(batched, [failing, batch])
    single_changes = await _record_all(single, [[outcome] for outcome in failing + batch])

    assert batched_changes == single_changes
    assert ("sub_a", "recovered") in batched_changes
    assert single_changes.count(("sub_b", "failing")) == 2  # failed, recovered, failed again
    for sub_id in ("sub_a", "sub_b", "sub_c"):
        record = await aredis.hgetall(batched_keys.subscription_health(sub_id))
        assert record == await aredis.hgetall(single_keys.subscription_health(sub_id))
    assert await aredis.hget(batched_keys.subscription_health("sub_a"), "last_success_at") == "25.0"


async def test_a_records_ttl_is_renewed_once_a_day_not_on_every_outcome(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = HealthStore(redis=aredis, keys=keys)
    key = keys.subscription_health("sub_a")

    async def record(at: float, *, delivered: bool = True) -> None:
        outcome = SentOutcome("sub_a", at, delivered, "HTTP 500")
        await store.record([outcome], now=at, disable_after_s=5 * 86400)

    await record(NOW)
    assert HEALTH_TTL_S - 5 <= await aredis.ttl(key) <= HEALTH_TTL_S
    await aredis.expire(key, 1000)  # as if the renewal were long ago
    await record(NOW + 60)
    await record(NOW + 120, delivered=False)
    assert 990 <= await aredis.ttl(key) <= 1000  # not renewed within the day...
    assert await aredis.hget(key, "last_failure_at") == repr(NOW + 120)  # ...but written
    await record(NOW + RENEW_EVERY_S)
    assert HEALTH_TTL_S - 5 <= await aredis.ttl(key) <= HEALTH_TTL_S
    assert await aredis.hget(key, "last_success_at") == repr(NOW + RENEW_EVERY_S)
