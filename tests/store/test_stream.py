"""The delivery stream's consumer bookkeeping, against a real Redis."""

from __future__ import annotations

import asyncio

import redis.asyncio

from relay.store.keys import DISPATCH_GROUP, Keys
from relay.store.stream import DeliveryStream
from tests.support import wait_until


async def consumer_names(aredis: redis.asyncio.Redis, keys: Keys) -> set[str]:
    consumers = await aredis.xinfo_consumers(keys.stream, DISPATCH_GROUP)
    return {str(c["name"]) for c in consumers}


async def test_idle_consumers_without_entries_are_forgotten_and_holders_are_kept(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    queue = DeliveryStream(redis=aredis, keys=keys)
    assert await queue.forget_idle_consumers(min_idle_ms=0) == 0  # no stream yet
    await queue.ensure_group()
    await queue.publish("evt_a")
    await queue.publish("evt_b")
    done = await queue.read(consumer="finished", count=1, block_ms=10)
    await queue.settle(done=[e.id for e in done], partial={}, keep_s=60)
    await queue.read(consumer="holding", count=1, block_ms=10)  # left unsettled

    assert await queue.forget_idle_consumers(min_idle_ms=60_000) == 0  # not idle long enough

    async def forgot_one() -> bool:
        return await queue.forget_idle_consumers(min_idle_ms=20) == 1

    await wait_until(forgot_one, what="the finished consumer idle for 20 ms and forgotten")
    assert await consumer_names(aredis, keys) == {"holding"}


async def test_a_dead_holders_entries_are_taken_over_once(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    stream = DeliveryStream(redis=aredis, keys=keys)
    assert await stream.holders() == {}  # no group yet
    await stream.ensure_group()
    await stream.publish("evt_a")
    await stream.publish("evt_b")
    held = await stream.read(consumer="dead", count=10, block_ms=None)
    assert await stream.holders() == {"dead": 2}

    taken = await stream.claim_from("dead", consumer="alive", min_idle_ms=0, count=10)
    late = await stream.claim_from("alive", consumer="other", min_idle_ms=60_000, count=10)

    assert [e.event_id for e in taken] == [e.event_id for e in held] == ["evt_a", "evt_b"]
    assert late == []  # just claimed: not idle, so a racing peer gets none of them
    assert await stream.holders() == {"alive": 2}


async def test_a_read_takes_live_entries_first_and_replays_for_at_most_half_the_rest(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    lanes = DeliveryStream(redis=aredis, keys=keys)
    await lanes.ensure_group()
    await lanes.publish_many([(f"evt_r{i}", "sub_a") for i in range(300)])
    for i in range(10):
        await lanes.publish(f"evt_l{i}")

    first = await lanes.read(consumer="c", count=200, block_ms=10)
    live = [e for e in first if not e.is_explicit]
    assert [e.event_id for e in live] == [f"evt_l{i}" for i in range(10)]
    assert len(first) - len(live) == 95  # half of the 190 left
    only_replays = await lanes.read(consumer="c", count=200, block_ms=10)
    assert len(only_replays) == 100 and all(e.is_explicit for e in only_replays)

    await lanes.settle(done=[e.id for e in first + only_replays], partial={}, keep_s=60)
    assert await aredis.xlen(keys.stream) == 0
    assert await aredis.xlen(keys.replay_stream) == 300 - 195
    pending = await aredis.xpending(keys.replay_stream, DISPATCH_GROUP)
    assert int(pending["pending"]) == 0


async def test_a_blocked_read_wakes_for_a_replay(aredis: redis.asyncio.Redis, keys: Keys) -> None:
    lanes = DeliveryStream(redis=aredis, keys=keys)
    await lanes.ensure_group()
    reading = asyncio.ensure_future(lanes.read(consumer="c", count=10, block_ms=10_000))
    await lanes.publish("evt_x", explicit=True)
    (entry,) = await asyncio.wait_for(reading, timeout=5)  # well before the block ends
    assert entry.event_id == "evt_x" and entry.is_explicit


async def test_a_consumer_retakes_only_its_own_entries_it_does_not_know_it_holds(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    stream = DeliveryStream(redis=aredis, keys=keys)
    await stream.ensure_group()
    for event_id in ("evt_known", "evt_lost"):
        await stream.publish(event_id)
    await stream.publish("evt_replay", subscription_id="sub_a", explicit=True)
    read = await stream.read(consumer="me", count=3, block_ms=None)  # a reply it never got
    await stream.publish("evt_other")
    await stream.read(consumer="peer", count=10, block_ms=None)  # a live peer's
    known = {entry.id for entry in read if entry.event_id == "evt_known"}

    assert await stream.claim_orphans("me", known=known, min_idle_ms=60_000, count=10) == []

    async def retaken() -> list[str]:
        found = await stream.claim_orphans("me", known=known, min_idle_ms=20, count=10)
        return sorted(entry.event_id for entry in found)

    found: list[str] = []

    async def some() -> bool:
        found.extend(await retaken())
        return bool(found)

    await wait_until(some, what="the lost entries idle for 20 ms")
    assert found == ["evt_lost", "evt_replay"]  # not the known one, not the peer's
    assert await stream.holders() == {"me": 3, "peer": 1}
