"""Per-subscription delivery control end to end: real Redis, real dispatchers (two at once
where it matters), real RQ workers, real receivers on loopback that time every request."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import cast

import pytest
import redis.asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.core.models import Subscription
from relay.delivery.jobs import retry_queue_for
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import sync_redis
from relay.store.retry_queue import RetryRequest
from tests.delivery.test_dispatcher import add_events, attempts_of, retries_until
from tests.support import Receiver
from workers.dispatcher import open_dispatcher, run_dispatcher
from workers.retry_worker import run_retry_worker


@pytest.fixture
def store(aredis: redis.asyncio.Redis, settings: Settings) -> Store:
    return Store.create(aredis, settings)


@dataclass
class Timing:
    """A receiver that records when each request arrived and how many were in flight."""

    delay_s: float = 0.0
    arrivals: list[float] = field(default_factory=list)  # time.monotonic()
    ids: list[str] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            await request.body()
            with self._lock:
                self.arrivals.append(time.monotonic())
                self.ids.append(request.headers.get("webhook-id", ""))
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
            finally:
                with self._lock:
                    self.in_flight -= 1
            return Response(status_code=204)

        return Starlette(routes=[Route("/", receive, methods=["POST"])])


async def limited(store: Store, url: str, **limits: float | None) -> Subscription:
    return await store.subscriptions.create(
        url=url + "/",
        event_types=None,
        source_ids=None,
        description=None,
        headers={},
        enabled=True,
        now=time.time(),
        **limits,  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def two_dispatchers(settings: Settings, store: Store) -> AsyncIterator[set[str]]:
    """Two dispatchers running in real time on the same stream; yields the names of the
    consumers seen holding entries (sampled from Redis), to show both took part."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run_dispatcher(settings, stop=stop)) for _ in range(2)]
    holders: set[str] = set()

    async def sample() -> None:
        while not stop.is_set():
            holders.update(await store.stream.holders())
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    try:
        await until_running(store, 2)
        yield holders
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, sampler), timeout=30)


async def until_running(store: Store, dispatchers: int, *, timeout_s: float = 30) -> None:
    """Until `dispatchers` dispatchers have beaten (they beat once running, then read)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await store.redis.zcard(store.keys.liveness("dispatcher")) >= dispatchers:
                return
            await asyncio.sleep(0.01)


async def publish_one_by_one(store: Store, count: int, *, gap_s: float = 0.03) -> list[str]:
    """Events added one at a time, so blocked dispatchers take turns reading them."""
    ids = []
    for i in range(count):
        (event,) = await add_events(store, 1, tag=f"e{i}-")
        ids.append(event.id)
        await asyncio.sleep(gap_s)
    return ids


async def test_rate_limit_holds_across_two_dispatchers_and_the_retry_queue(
    settings: Settings, store: Store, serve_app: Callable[..., str]
) -> None:
    rate = 4.0
    receiver = Timing()
    subscription = await limited(store, serve_app(receiver.app()), rate_limit_per_s=rate)
    async with two_dispatchers(settings, store) as holders:
        ids = await publish_one_by_one(store, 24)
        await retries_until(
            settings, lambda: len(set(receiver.ids)) == 24, what="24 deliveries", timeout_s=60
        )
    assert len(holders) == 2, holders  # both dispatchers held deliveries of it

    assert sorted(set(receiver.ids)) == sorted(ids)
    arrivals = sorted(receiver.arrivals)
    # GCRA without burst: starts 1/rate apart, so any 1 s window holds at most rate + 1.
    window_s = 1.0
    most = max(sum(1 for t in arrivals if start <= t < start + window_s) for start in arrivals)
    assert most <= rate * window_s + 1, most
    assert arrivals[-1] - arrivals[0] >= (len(arrivals) - 1) / rate - 0.3
    attempts = await attempts_of(store, subscription.id)
    assert all(a.is_delivered for a in attempts)  # waiting was never a failed attempt
    assert (await store.dead_letters.page(limit=10, cursor=None)).items == ()


async def test_concurrency_one_never_has_two_requests_in_flight(
    settings: Settings, store: Store, serve_app: Callable[..., str]
) -> None:
    receiver = Timing(delay_s=0.1)
    subscription = await limited(store, serve_app(receiver.app()), concurrency=1)
    async with two_dispatchers(settings, store) as holders:
        ids = await publish_one_by_one(store, 16, gap_s=0.01)
        await retries_until(
            settings, lambda: len(set(receiver.ids)) == 16, what="16 deliveries", timeout_s=60
        )
    assert len(holders) == 2, holders

    assert sorted(set(receiver.ids)) == sorted(ids)
    assert receiver.most_in_flight == 1
    assert all(a.is_delivered for a in await attempts_of(store, subscription.id))


async def test_timeout_s_fails_a_slow_delivery_and_retries_it_while_a_longer_one_succeeds(
    settings: Settings, store: Store, serve_app: Callable[..., str]
) -> None:
    slow = Receiver(delay_s=2.5)  # longer than the global timeout of these tests (2 s)
    url = serve_app(slow.app())
    short = await limited(store, url, timeout_s=0.3)
    long = await limited(store, url, timeout_s=5)
    (event,) = await add_events(store, 1)
    async with open_dispatcher(settings) as dispatcher:
        await dispatcher.run_until_idle()

    (delivered,) = await attempts_of(store, long.id)
    assert delivered.is_delivered and delivered.duration_ms >= 2500
    (first,) = await attempts_of(store, short.id)
    assert first.error == "timeout after 0.3 s" and first.status_code is None
    assert 250 <= first.duration_ms < 1500

    async def retried() -> bool:
        return len(await attempts_of(store, short.id)) >= 2

    await retries_until(settings, retried, what="the timed-out delivery retried")
    second = (await attempts_of(store, short.id))[1]
    assert (second.event_id, second.attempt, second.error) == (event.id, 2, "timeout after 0.3 s")


async def test_an_unthrottled_subscription_is_not_delayed_by_a_throttled_backlog(
    settings: Settings,
    store: Store,
    aredis: redis.asyncio.Redis,
    serve_app: Callable[..., str],
) -> None:
    throttled, free = Timing(), Timing()
    slow_lane = await limited(store, serve_app(throttled.app()), rate_limit_per_s=1)
    await limited(store, serve_app(free.app()))
    events = await add_events(store, 40)
    async with open_dispatcher(settings) as dispatcher:
        read = await dispatcher.run_until_idle()
    assert read == 40

    assert sorted(free.ids) == sorted(e.id for e in events)
    third = sorted(throttled.arrivals)[2] if len(throttled.arrivals) > 2 else float("inf")
    assert max(free.arrivals) < third  # all 40 arrived before 1/s allowed a third
    # The backlog waits in the retry queue: deferred, not failed, not dropped.
    assert len(throttled.ids) <= 3
    attempts = await attempts_of(store, slow_lane.id)
    assert all(a.is_delivered for a in attempts) and len(attempts) == len(throttled.ids)
    assert int(await aredis.zcard(store.keys.subscription_retries(slow_lane.id))) == 40 - len(
        throttled.ids
    )

    await store.subscriptions.update(slow_lane.id, rate_limit_per_s=None)
    client = sync_redis(settings.require_redis_url())
    try:
        retry_queue_for(settings, client).expedite(slow_lane.id)
    finally:
        client.close()
    await retries_until(
        settings, lambda: len(set(throttled.ids)) == 40, what="the whole backlog delivered"
    )
    assert sorted(set(throttled.ids)) == sorted(e.id for e in events)
    assert (await store.dead_letters.page(limit=10, cursor=None)).items == ()


async def test_a_retry_refused_a_lease_is_deferred_not_attempted(
    settings: Settings,
    store: Store,
    aredis: redis.asyncio.Redis,
    serve_app: Callable[..., str],
) -> None:
    receiver = Timing()
    subscription = await limited(store, serve_app(receiver.app()), concurrency=1)
    (event,) = await add_events(store, 1)
    held = await store.limits.acquire(  # another process's delivery, in flight for a minute
        subscription.id, rate_limit_per_s=None, concurrency=1, lease_s=60, max_wait_s=0
    )
    assert held.admitted
    client = sync_redis(settings.require_redis_url())
    try:
        retries = retry_queue_for(settings, client)
        retries.schedule([RetryRequest(event.id, subscription.id, 2, 0.0)])
        started = time.time()  # it was due before this
        await asyncio.to_thread(run_retry_worker, settings, burst=True)
        scheduled = cast("list[str]", await aredis.zrange(store.keys.rq_scheduled, 0, -1))
        due = await aredis.zscore(store.keys.subscription_retries(subscription.id), event.id)
    finally:
        client.close()

    assert receiver.ids == [] and await attempts_of(store, subscription.id) == []
    assert await store.retry_states.retry_progress(event.id, subscription.id) == 1  # unchanged
    assert due is not None and due > started  # the same attempt again, later
    drains = retries.drain_job_id(subscription.id, 0).removesuffix("0")
    assert scheduled and all(job_id.startswith(drains) for job_id in scheduled)  # for then

    await store.limits.release(subscription.id, held.lease)
    client = sync_redis(settings.require_redis_url())
    try:
        retry_queue_for(settings, client).expedite(subscription.id)
    finally:
        client.close()
    await retries_until(settings, lambda: receiver.ids == [event.id], what="the retry sent")
    (attempt,) = await attempts_of(store, subscription.id)
    assert (attempt.attempt, attempt.is_delivered) == (2, True)
