"""End to end: real Redis, the real dispatcher, real RQ SimpleWorkers, real receivers that
verify every webhook with the `standardwebhooks` library."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis
import redis.asyncio
from rq import Queue
from rq.registry import StartedJobRegistry

from relay.core.events import event_from_message
from relay.core.models import Attempt, Event, Message, Subscription
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.jobs import retry_queue_for
from relay.settings import Settings
from relay.store import Store
from relay.store.keys import DISPATCH_GROUP
from relay.store.retry_queue import RetryRequest
from tests.support import Receiver, wait_until
from tests.workers.crash_harness import children_of
from workers.dispatcher import open_dispatcher, run_dispatcher
from workers.retry_worker import run_retry_worker

ROOT = Path(__file__).resolve().parents[2]
RETENTION_S = 3600


@pytest.fixture
def store(aredis: redis.asyncio.Redis, settings: Settings) -> Store:
    return Store.create(aredis, settings)


@pytest.fixture
async def dispatcher(settings: Settings) -> AsyncIterator[Callable[..., Awaitable[Dispatcher]]]:
    """`await dispatcher(settings?, reclaim_after_s=?)`: a dispatcher to step with
    `run_until_idle()`, closed when the test ends."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_one(custom: Settings | None = None, **kwargs: float) -> Dispatcher:
            return await stack.enter_async_context(open_dispatcher(custom or settings, **kwargs))

        yield open_one


@pytest.fixture
async def running_dispatcher(settings: Settings) -> AsyncIterator[Callable[..., None]]:
    """`running_dispatcher(settings?)` runs `run_dispatcher` in real time as a task until the
    test ends, then stops it as SIGTERM would (the end-to-end tests)."""
    stops: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    def start(custom: Settings | None = None, **kwargs: float) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_dispatcher(custom or settings, stop=stop, **kwargs))
        stops.append((stop, task))

    yield start
    for stop, task in stops:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


async def retries_until(
    settings: Settings, condition: Callable[[], object], *, what: str, timeout_s: float = 20
) -> None:
    """Step the retry queue until `condition()` holds: each step is a real RQ worker in burst
    mode (it moves the due scheduled retries to the queue, then works the queue empty)."""

    async def stepped() -> object:
        await asyncio.to_thread(run_retry_worker, settings, burst=True)
        value = condition()
        return await value if inspect.isawaitable(value) else value

    await wait_until(stepped, what=what, timeout_s=timeout_s)


async def subscribe(
    store: Store, url: str, receiver: Receiver, *, event_types: tuple[str, ...] | None = None
) -> Subscription:
    subscription = await store.subscriptions.create(
        url=url + "/",
        event_types=event_types,
        source_ids=None,
        description=None,
        headers={},
        enabled=True,
        now=time.time(),
    )
    receiver.secret = subscription.secrets[0].value
    return subscription


async def add_events(store: Store, count: int, *, tag: str = "m") -> list[Event]:
    now = time.time()
    events = [
        event_from_message(
            Message(kind="incoming", document_id=f"{tag}{i}", timestamp=int(now), text=f"hi {i}"),
            source_id="src_test",
            created_at_ms=int(now * 1000),
        )
        for i in range(count)
    ]
    await store.events.add(events, retention_s=RETENTION_S)
    return events


async def attempts_of(store: Store, subscription_id: str) -> list[Attempt]:
    listing = await store.attempts.page(subscription_id, limit=100, cursor=None)
    return sorted(listing.items, key=lambda a: (a.at, a.attempt))


async def stream_is_settled(aredis: redis.asyncio.Redis, store: Store) -> bool:
    pending = await aredis.xpending(store.keys.stream, DISPATCH_GROUP)
    return int(pending["pending"]) == 0 and int(await aredis.xlen(store.keys.stream)) == 0


async def test_each_matching_subscriber_gets_each_event_once(
    settings: Settings,
    store: Store,
    aredis: redis.asyncio.Redis,
    serve_app: Callable[..., str],
    dispatcher: Callable[..., Awaitable[Dispatcher]],
) -> None:
    everything, sent_only, late = Receiver(), Receiver(), Receiver()
    await subscribe(store, serve_app(everything.app()), everything)
    await subscribe(store, serve_app(sent_only.app()), sent_only, event_types=("message.sent",))
    events = await add_events(store, 30)
    await subscribe(store, serve_app(late.app()), late)  # created after the events

    assert await (await dispatcher()).run_until_idle() == 30

    assert await stream_is_settled(aredis, store)
    assert sorted(everything.ids()) == sorted(e.id for e in events)
    assert all(r.verified for r in everything.received)
    assert sent_only.received == [] and late.received == []


async def test_a_running_dispatcher_delivers_events_added_while_it_waits(
    store: Store,
    aredis: redis.asyncio.Redis,
    serve_app: Callable[..., str],
    running_dispatcher: Callable[..., None],
) -> None:
    receiver = Receiver()
    await subscribe(store, serve_app(receiver.app()), receiver)
    running_dispatcher()
    events = await add_events(store, 5)

    await wait_until(lambda: len(receiver.received) >= 5, what="5 deliveries")
    await wait_until(lambda: stream_is_settled(aredis, store), what="stream settled")
    assert sorted(receiver.ids()) == sorted(e.id for e in events)


async def test_500_500_200_makes_three_attempts_with_one_webhook_id(
    settings: Settings,
    store: Store,
    serve_app: Callable[..., str],
    dispatcher: Callable[..., Awaitable[Dispatcher]],
) -> None:
    receiver = Receiver(statuses=[500, 500], default=200)
    subscription = await subscribe(store, serve_app(receiver.app()), receiver)
    (event,) = await add_events(store, 1)
    await (await dispatcher()).run_until_idle()
    assert len(receiver.received) == 1

    await retries_until(
        settings, lambda: _count(attempts_of(store, subscription.id), 3), what="three recorded"
    )

    assert receiver.ids() == [event.id] * 3
    assert all(r.verified for r in receiver.received)
    attempts = await attempts_of(store, subscription.id)
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 500), (2, 500), (3, 200)]
    assert (await store.dead_letters.page(limit=10, cursor=None)).items == ()


async def test_410_disables_subscription_and_drops_pending_retries(
    settings: Settings,
    store: Store,
    aredis: redis.asyncio.Redis,
    serve_app: Callable[..., str],
    dispatcher: Callable[..., Awaitable[Dispatcher]],
) -> None:
    slow_retries = settings.replace(retry_schedule_s=(60.0, 60.0))
    receiver = Receiver(statuses=[500, 410], default=200)
    subscription = await subscribe(store, serve_app(receiver.app()), receiver)
    stepped = await dispatcher(slow_retries)
    (first,) = await add_events(store, 1, tag="a")
    await stepped.run_until_idle()
    assert await _count(attempts_of(store, subscription.id), 1)  # the 500
    (second,) = await add_events(store, 1, tag="b")
    await stepped.run_until_idle()  # the 410: the first event's retry is made due now

    await retries_until(
        slow_retries,
        lambda: _count(attempts_of(store, subscription.id), 3),
        what="the dropped retry recorded",
    )

    assert not (await store.subscriptions.get(subscription.id)).enabled
    assert "410 Gone" in ((await store.subscriptions.get(subscription.id)).disabled_reason or "")
    attempts = await attempts_of(store, subscription.id)
    by_event = {(a.event_id, a.attempt): a for a in attempts}
    assert by_event[(first.id, 1)].status_code == 500
    assert by_event[(second.id, 1)].status_code == 410
    dropped = by_event[(first.id, 2)]
    assert dropped.error == "dropped: subscription disabled after 410 Gone"
    assert dropped.status_code is None
    assert receiver.ids() == [first.id, second.id]  # the dropped retry was never sent
    assert int(await aredis.zcard(store.keys.rq_scheduled)) == 0


async def test_always_500_ends_as_dead_letter_and_its_retry_delivers(
    settings: Settings,
    store: Store,
    serve_app: Callable[..., str],
    dispatcher: Callable[..., Awaitable[Dispatcher]],
) -> None:
    receiver = Receiver(default=500)
    subscription = await subscribe(store, serve_app(receiver.app()), receiver)
    stepped = await dispatcher()
    (event,) = await add_events(store, 1)
    await stepped.run_until_idle()
    await retries_until(settings, lambda: _dead_letters(store, 1), what="a dead letter")
    (dead,) = (await store.dead_letters.page(limit=10, cursor=None)).items
    assert (dead.event_id, dead.subscription_id) == (event.id, subscription.id)
    assert dead.attempts == 4 and dead.last_status_code == 500
    assert len(receiver.received) == 4

    receiver.default = 200
    await store.dead_letters.retry(dead.id)
    await stepped.run_until_idle()  # the retry is a first attempt, through the stream

    assert receiver.ids() == [event.id] * 5
    assert receiver.received[-1].verified
    assert await _dead_letters(store, 0)


async def test_hanging_subscriber_does_not_delay_the_others(
    settings: Settings,
    store: Store,
    serve_app: Callable[..., str],
    dispatcher: Callable[..., Awaitable[Dispatcher]],
) -> None:
    narrow = settings.replace(subscriber_concurrency=4)
    hanging, healthy = Receiver(delay_s=2.5), Receiver()
    await subscribe(store, serve_app(hanging.app()), hanging)
    await subscribe(store, serve_app(healthy.app()), healthy)
    stepped = await dispatcher(narrow)
    events = await add_events(store, 40)
    started = time.monotonic()

    await stepped.run_until_idle()

    # Every healthy delivery arrived before the hanging subscriber's first attempts could even
    # time out (2 s): its slots being full never held the others back.
    assert max(r.at for r in healthy.received) - started < narrow.delivery_timeout_s
    assert sorted(healthy.ids()) == sorted(e.id for e in events)
    assert len(hanging.received) <= narrow.subscriber_concurrency


async def test_deliveries_parked_for_a_slow_subscriber_reach_it_through_the_retry_queue(
    settings: Settings,
    store: Store,
    serve_app: Callable[..., str],
    dispatcher: Callable[..., Awaitable[Dispatcher]],
) -> None:
    narrow = settings.replace(subscriber_concurrency=2)
    slow = Receiver(delays_s=[2.5, 2.5])  # its first two requests outlast the 2 s timeout
    subscription = await subscribe(store, serve_app(slow.app()), slow)
    events = await add_events(store, 30)

    # Stepped, the consumer group exists before anything asks about it: waiting a fixed time
    # for a dispatcher task to create it raced (NOGROUP) on a loaded machine.
    await (await dispatcher(narrow)).run_until_idle()
    assert await stream_is_settled(store.redis, store)
    assert len(slow.received) <= narrow.subscriber_concurrency  # the rest were parked

    async def delivered() -> set[str]:
        attempts = await attempts_of(store, subscription.id)
        return {a.event_id for a in attempts if a.status_code == 204}

    expected = {e.id for e in events}
    await retries_until(
        narrow, lambda: _equals(delivered(), expected), what="every event delivered"
    )
    assert set(slow.ids()) == expected


async def test_redelivery_goes_to_one_subscription_with_the_same_webhook_id(
    settings: Settings,
    store: Store,
    serve_app: Callable[..., str],
    dispatcher: Callable[..., Awaitable[Dispatcher]],
) -> None:
    first, second = Receiver(), Receiver()
    target = await subscribe(store, serve_app(first.app()), first)
    await subscribe(store, serve_app(second.app()), second)
    stepped = await dispatcher()
    (event,) = await add_events(store, 1)
    await stepped.run_until_idle()
    assert (len(first.received), len(second.received)) == (1, 1)

    await store.stream.publish(event.id, subscription_id=target.id, explicit=True)
    await stepped.run_until_idle()

    assert first.ids() == [event.id, event.id]
    assert second.ids() == [event.id]
    assert all(r.verified for r in first.received)


async def test_a_retry_queued_before_an_explicit_or_reclaimed_delivery_is_cleared_by_it(
    settings: Settings,
    store: Store,
    aredis: redis.asyncio.Redis,
    serve_app: Callable[..., str],
    dispatcher: Callable[..., Awaitable[Dispatcher]],
) -> None:
    # Fresh entries skip clearing retries (none can exist yet); these two kinds must not.
    receiver = Receiver()
    subscription = await subscribe(store, serve_app(receiver.app()), receiver)
    rq_client = redis.Redis.from_url(settings.require_redis_url())
    retries = retry_queue_for(settings, rq_client)
    stepped = await dispatcher(reclaim_after_s=0.05)
    reclaimed, redelivered = await add_events(store, 2)
    # `reclaimed` is read by a reader that dies at once: pending, and never settled.
    await store.stream.ensure_group()
    await aredis.xreadgroup(DISPATCH_GROUP, "gone", {store.keys.stream: ">"}, count=1)
    await stepped.run_until_idle()  # delivers `redelivered`, finds `reclaimed` not yet idle
    await asyncio.to_thread(
        retries.schedule,
        [RetryRequest(event.id, subscription.id, 2, 600) for event in (redelivered, reclaimed)],
    )
    rq_client.close()
    for event in (redelivered, reclaimed):
        assert await store.retry_states.retry_progress(event.id, subscription.id) == 1

    await store.stream.publish(redelivered.id, subscription_id=subscription.id, explicit=True)
    await wait_until(
        lambda: _stepped_until(stepped, lambda: receiver.ids().count(reclaimed.id) == 1),
        what="the dead reader's entry reclaimed and delivered",
    )
    await stepped.run_until_idle()

    assert receiver.ids().count(redelivered.id) == 2
    for event in (redelivered, reclaimed):
        assert await store.retry_states.retry_progress(event.id, subscription.id) is None
    assert await stream_is_settled(aredis, store)


async def test_kill_9_of_a_dispatcher_mid_delivery_loses_nothing(
    settings: Settings,
    store: Store,
    aredis: redis.asyncio.Redis,
    serve_app: Callable[..., str],
    dispatcher: Callable[..., Awaitable[Dispatcher]],
    record_property: Callable[[str, object], None],
) -> None:
    receiver = Receiver(delay_s=2.0)  # holds the doomed dispatcher's requests open
    await subscribe(store, serve_app(receiver.app()), receiver)
    events = await add_events(store, 5)
    child = spawn(settings, "dispatcher")
    try:
        await wait_until(lambda: len(receiver.received) >= 5, what="the child's attempts")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    killed = time.monotonic()
    receiver.delay_s = 0.0

    # The idle-time reclaim (2 x 10 s + 30 s here) is far off: the dead dispatcher's silence
    # (DEAD_AFTER_S of no beat) is what hands its entries over.
    stepped = await dispatcher()
    await wait_until(
        lambda: _stepped_until(stepped, lambda: len(receiver.received) >= 10),
        what="the dead dispatcher's entries taken over within 10 s",
        timeout_s=10,
    )
    resumed_s = receiver.received[5].at - killed
    record_property("time_to_resume_s", round(resumed_s, 2))

    assert resumed_s < 10
    assert await stream_is_settled(aredis, store)
    assert sorted(set(receiver.ids())) == sorted(e.id for e in events)


async def test_kill_9_of_a_retry_worker_mid_job_loses_nothing(
    settings: Settings,
    store: Store,
    serve_app: Callable[..., str],
    dispatcher: Callable[..., Awaitable[Dispatcher]],
    redis_url: str,
    record_property: Callable[[str, object], None],
) -> None:
    # First attempt 500 (dispatcher); the retry stalls until the worker is killed mid-job.
    receiver = Receiver(statuses=[500], delays_s=[0.0, 4.0], default=200)
    subscription = await subscribe(store, serve_app(receiver.app()), receiver)
    (event,) = await add_events(store, 1)
    await (await dispatcher()).run_until_idle()
    assert await _count(attempts_of(store, subscription.id), 1)
    child = spawn(settings, "worker")
    try:
        await wait_until(lambda: len(receiver.received) >= 2, what="the worker's retry")
        await wait_until(lambda: children_of(child.pid), what="RQ's scheduler process")
        scheduler_pids = set(children_of(child.pid))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    killed = time.monotonic()
    # The scheduler the worker forked does not outlive it.
    await wait_until(lambda: not scheduler_pids & _live_pids(), what="the scheduler to stop")
    client = redis.Redis.from_url(redis_url)
    try:
        registry = StartedJobRegistry(queue=Queue(store.keys.retry_queue, connection=client))
        assert registry.get_job_ids()  # the killed job still looks started
    finally:
        client.close()

    # Its timeout (10 s + 30 s) is far off: the dead worker's silence hands its job back.
    await retries_until(
        settings,
        lambda: _count(attempts_of(store, subscription.id), 2),
        what="the re-run within 10 s",
        timeout_s=10,
    )
    resumed_s = receiver.received[2].at - killed
    record_property("time_to_resume_s", round(resumed_s, 2))

    assert resumed_s < 10
    assert receiver.ids() == [event.id] * 3
    attempts = await attempts_of(store, subscription.id)
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 500), (2, 200)]


async def _stepped_until(dispatcher: Dispatcher, condition: Callable[[], bool]) -> bool:
    """One burst of the dispatcher, then `condition()`."""
    await dispatcher.run_until_idle()
    return condition()


async def _equals(value: Awaitable[set[str]], expected: set[str]) -> bool:
    return await value == expected


def _live_pids() -> set[int]:
    return {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()}


def spawn(settings: Settings, role: str) -> subprocess.Popen[bytes]:
    """A child process running one delivery role with these settings (via the environment)."""
    code = {
        "dispatcher": (
            "import asyncio\n"
            "from relay.settings import Settings\n"
            "from workers.dispatcher import run_dispatcher\n"
            "asyncio.run(run_dispatcher(Settings.from_env(), stop=asyncio.Event()))\n"
        ),
        "worker": (
            "from relay.settings import Settings\n"
            "from workers.retry_worker import run_retry_worker\n"
            "run_retry_worker(Settings.from_env())\n"
        ),
    }[role]
    env = {
        **os.environ,
        "REDIS_URL": settings.require_redis_url(),
        "RELAY_KEY_PREFIX": settings.key_prefix,
        "RELAY_ALLOW_PRIVATE_TARGETS": "true",
        "RELAY_RETRY_SCHEDULE": ",".join(str(s) for s in settings.retry_schedule_s),
        "RELAY_DELIVERY_TIMEOUT": "10",
    }
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
    )


async def _count(attempts: object, expected: int) -> bool:
    return len(await attempts) >= expected  # type: ignore[misc]


async def _dead_letters(store: Store, expected: int) -> bool:
    return len((await store.dead_letters.page(limit=10, cursor=None)).items) == expected


async def test_subscriptions_changed_after_the_index_is_built_route_at_once(
    store: Store,
    serve_app: Callable[..., str],
    dispatcher: Callable[..., Awaitable[Dispatcher]],
) -> None:
    before, after = Receiver(), Receiver()
    old = await subscribe(store, serve_app(before.app()), before)
    stepped = await dispatcher()
    await add_events(store, 1, tag="a")
    await stepped.run_until_idle()  # the index is built with `old` only

    await store.subscriptions.delete(old.id)
    await subscribe(store, serve_app(after.app()), after)
    (second,) = await add_events(store, 1, tag="b")
    await stepped.run_until_idle()

    assert len(before.received) == 1
    assert after.ids() == [second.id]
