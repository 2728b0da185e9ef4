from __future__ import annotations

import asyncio
from typing import cast

import pytest
import redis.asyncio

from relay.core.errors import NotFound
from relay.core.models import DeadLetter, Listing
from relay.store.dead_letters import DeadLetterStore
from relay.store.keys import Keys
from relay.store.stream import DeliveryStream


async def _add(store: DeadLetterStore, n: int = 1) -> DeadLetter:
    return await store.add(
        event_id=f"evt_{n}",
        subscription_id="sub_a",
        attempts=8,
        last_error="HTTP 500",
        last_status_code=500,
        failed_at=1_700_000_000.25 + n,
    )


async def _stream(aredis: redis.asyncio.Redis, keys: Keys) -> list[dict[str, str]]:
    entries = cast("list[tuple[str, dict[str, str]]]", await aredis.xrange(keys.replay_stream))
    return [fields for _, fields in entries]


async def test_dead_letter_reads_back(aredis: redis.asyncio.Redis, keys: Keys) -> None:
    store = DeadLetterStore(redis=aredis, keys=keys)
    added = await store.add(
        event_id="evt_1",
        subscription_id="sub_a",
        attempts=8,
        last_error=None,
        last_status_code=None,
        failed_at=1_700_000_000.5,
    )
    assert added.id.startswith("dl_")
    assert await store.get(added.id) == added
    with pytest.raises(NotFound):
        await store.get("dl_missing")


async def test_page_lists_newest_first_with_cursor(aredis: redis.asyncio.Redis, keys: Keys) -> None:
    store = DeadLetterStore(redis=aredis, keys=keys)
    added = [await _add(store, n) for n in range(5)]
    first = await store.page(limit=3, cursor=None)
    assert list(first.items) == list(reversed(added))[:3]
    rest = await store.page(limit=3, cursor=first.next_cursor)
    assert list(rest.items) == list(reversed(added))[3:]
    assert rest.next_cursor is None
    empty = DeadLetterStore(redis=aredis, keys=Keys(f"{keys.prefix}empty:"))
    assert (await empty.page(limit=3, cursor=None)) == Listing((), None)


async def test_retry_queues_an_explicit_delivery_and_removes_the_dead_letter(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = DeadLetterStore(redis=aredis, keys=keys)
    dead = await _add(store)
    kept = await _add(store, 2)

    assert await store.retry(dead.id) == dead

    assert await _stream(aredis, keys) == [{"e": "evt_1", "s": "sub_a", "x": "1"}]
    with pytest.raises(NotFound):
        await store.get(dead.id)
    assert list((await store.page(limit=10, cursor=None)).items) == [kept]


async def test_retry_writes_what_the_delivery_queue_publishes(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = DeadLetterStore(redis=aredis, keys=keys)
    dead = await _add(store)
    await store.retry(dead.id)
    await DeliveryStream(redis=aredis, keys=keys).publish(
        dead.event_id, subscription_id=dead.subscription_id, explicit=True
    )
    retried, published = await _stream(aredis, keys)
    assert retried == published


async def test_retry_of_an_unknown_dead_letter_raises_not_found_and_queues_nothing(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = DeadLetterStore(redis=aredis, keys=keys)
    with pytest.raises(NotFound):
        await store.retry("dl_missing")
    assert await aredis.exists(keys.replay_stream) == 0


async def test_concurrent_retries_queue_the_delivery_once(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = DeadLetterStore(redis=aredis, keys=keys)
    dead = await _add(store)
    results = await asyncio.gather(
        *(store.retry(dead.id) for _ in range(10)), return_exceptions=True
    )
    assert results.count(dead) == 1
    assert sum(isinstance(r, NotFound) for r in results) == 9
    assert len(await _stream(aredis, keys)) == 1


async def test_dead_letters_expire_with_their_event_or_the_retention(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = DeadLetterStore(redis=aredis, keys=keys, retention_s=3600)
    await aredis.set(keys.event("evt_1"), "stored", ex=120)
    with_event = await _add(store, 1)
    without_event = await _add(store, 2)
    assert 0 < await aredis.pttl(keys.dead_letter(with_event.id)) <= 120_000
    assert 120_000 < await aredis.pttl(keys.dead_letter(without_event.id)) <= 3_600_000


async def test_expired_dead_letters_leave_the_index(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = DeadLetterStore(redis=aredis, keys=keys)
    oldest, newest = await _add(store, 1), await _add(store, 2)
    await aredis.delete(keys.dead_letter(oldest.id))  # what its TTL does when it runs out

    listing = await store.page(limit=10, cursor=None)

    assert [d.id for d in listing.items] == [newest.id]
    assert await aredis.zrange(keys.dead_letters, 0, -1) == [newest.id]
