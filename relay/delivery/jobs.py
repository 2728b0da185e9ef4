"""The RQ retry jobs. Jobs carry ids only; each run reloads the events and the subscription.

`drain_retries(subscription_id)` attempts every due retry of one subscription, a batch at a
time, with up to the subscription's slots in flight, and settles each batch in one round of
writes (store/retry_queue.py explains the queue). It stops after DRAIN_BUDGET_S and queues
its continuation behind the other subscriptions' drains, so a big backlog takes turns.

The worker (workers/retry_worker.py) hands its settings, Redis client and `JobRunner` to the
jobs it runs with `job_context`: the runner keeps one event loop (in a thread of its own, so
several job threads share it), one async Redis client and one pooled HTTP session for every
job of the process, so a retry costs what a first attempt does. A job run by a plain `rq
worker` builds all of them from the environment, per job.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import redis
from redis.asyncio import Redis

from relay.core.errors import NotFound
from relay.core.health import OPERATOR_SUBSCRIPTION_ID
from relay.core.limits import longest_timeout_s
from relay.core.models import Event, Subscription
from relay.core.retry import RetryPolicy
from relay.delivery.deliverer import AttemptResult, Deliverer
from relay.delivery.outcomes import OutcomeHandler, Settled, dropped_attempt, operator_target
from relay.delivery.throttle import Throttle
from relay.event_loops import loop_factory
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis, sync_redis
from relay.store.keys import Keys
from relay.store.limits import Admission
from relay.store.retry_queue import Claimed, RetryQueue, RetryRequest

log = logging.getLogger("relay.jobs")
T = TypeVar("T")

DRAIN_BATCH = 200  # due deliveries claimed, attempted and settled together
DRAIN_BUDGET_S = 5.0  # then the drain's continuation waits its turn behind other drains
FOLLOW_S = 1.0  # a drain waits this long for its subscription's next retry (RQ has seconds)
LEASE_MARGIN_S = 30.0  # a claimed delivery counts as running at most this past its timeout


@dataclass(slots=True)
class JobResources:
    """What an attempt needs, built once per event loop."""

    client: Redis
    store: Store
    retries: RetryQueue
    outcomes: OutcomeHandler
    deliverer: Deliverer
    throttle: Throttle
    slots: int  # deliveries of one subscription in flight at once (subscriber_concurrency)
    lease_s: float  # how long a claimed delivery may count as running
    operator: Subscription | None = None  # the in-memory target of operator events
    stopping: threading.Event = field(default_factory=threading.Event)  # drains end early

    @classmethod
    async def open(
        cls, settings: Settings, rq_redis: redis.Redis, *, stopping: threading.Event | None = None
    ) -> JobResources:
        client = async_redis(settings.require_redis_url())
        store = Store.create(client, settings)
        retries = retry_queue_for(settings, rq_redis)
        outcomes = OutcomeHandler(
            store=store,
            retries=retries,
            policy=RetryPolicy(settings.retry_schedule_s),
            rng=random.Random(),
            clock=time.time,
            disable_after_s=settings.disable_after_s,
        )
        deliverer = Deliverer(store=store, settings=settings)
        await deliverer.start()
        throttle = Throttle(
            limiter=store.limits, timeout_for=deliverer.timeout_for, rng=random.Random()
        )
        return cls(
            client,
            store,
            retries,
            outcomes,
            deliverer,
            throttle,
            settings.subscriber_concurrency,
            longest_timeout_s(settings.delivery_timeout_s) + LEASE_MARGIN_S,
            operator_target(settings),
            stopping or threading.Event(),
        )

    async def aclose(self) -> None:
        try:
            await self.deliverer.close()
        finally:
            await self.client.aclose()


class JobRunner:
    """Runs jobs' coroutines on one long-lived event loop, in a thread of its own, with one
    set of `JobResources` opened on first use and shared by every job (from any thread)
    until `close`."""

    def __init__(self, settings: Settings, rq_redis: redis.Redis) -> None:
        self._settings = settings
        self._rq_redis = rq_redis
        self._loop = loop_factory(settings.event_loop)()
        self._thread = threading.Thread(target=self._loop.run_forever, name="jobs", daemon=True)
        self._thread.start()
        self._opening: asyncio.Lock | None = None
        self.resources: JobResources | None = None
        self.stopping = threading.Event()  # set on a stop request: running drains end early

    def run(self, work: Callable[[JobResources], Awaitable[T]]) -> T:
        """Run `work` on the loop and wait for it. The wait wakes every 0.2 s, so a job
        timeout (RQ's TimerDeathPenalty raises in this thread) interrupts it; the work is then
        cancelled."""
        future = asyncio.run_coroutine_threadsafe(self._run(work), self._loop)
        try:
            while not future.done():
                concurrent.futures.wait([future], timeout=0.2)
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def _run(self, work: Callable[[JobResources], Awaitable[T]]) -> T:
        if self.resources is None:
            if self._opening is None:
                self._opening = asyncio.Lock()
            async with self._opening:
                if self.resources is None:
                    self.resources = await JobResources.open(
                        self._settings, self._rq_redis, stopping=self.stopping
                    )
        return await work(self.resources)

    def close(self) -> None:
        try:
            if self.resources is not None:
                resources, self.resources = self.resources, None
                asyncio.run_coroutine_threadsafe(resources.aclose(), self._loop).result(30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()


@dataclass(frozen=True, slots=True)
class JobContext:
    settings: Settings
    rq_redis: redis.Redis  # the worker's bytes client, reused to schedule the next attempt
    runner: JobRunner | None = None  # the worker's loop and pools; None: one set per job


_context: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "relay_job_context", default=None
)


@contextlib.contextmanager
def job_context(context: JobContext) -> Iterator[None]:
    """Jobs run inside this block use `context`."""
    token = _context.set(context)
    try:
        yield
    finally:
        _context.reset(token)


def retry_queue_for(settings: Settings, rq_redis: redis.Redis) -> RetryQueue:
    """The retry queue as every producer configures it."""
    return RetryQueue(
        redis=rq_redis,
        keys=Keys(settings.key_prefix),
        job_timeout_s=longest_timeout_s(settings.delivery_timeout_s) + 30,
        state_ttl_s=int(sum(settings.retry_schedule_s) * 1.5) + 86400,
    )


@contextlib.contextmanager
def _job_resources() -> Iterator[tuple[Settings, redis.Redis]]:
    """The settings and the bytes Redis client a job runs with: its worker's (`job_context`),
    or, under a plain `rq worker`, built from the environment and closed afterwards."""
    context = _context.get()
    if context is not None:
        yield context.settings, context.rq_redis
        return
    settings = Settings.from_env()
    client = sync_redis(settings.require_redis_url())
    try:
        yield settings, client
    finally:
        client.close()


def drain_retries(subscription_id: str) -> str:
    """RQ job: attempt the subscription's due retries (see the module docstring)."""
    context = _context.get()
    if context is not None and context.runner is not None:
        return context.runner.run(lambda r: drain(r, subscription_id))
    with _job_resources() as (settings, client):
        return asyncio.run(_drain_once(settings, client, subscription_id))


async def _drain_once(settings: Settings, rq_redis: redis.Redis, subscription_id: str) -> str:
    resources = await JobResources.open(settings, rq_redis)
    try:
        return await drain(resources, subscription_id)
    finally:
        await resources.aclose()


async def drain(
    resources: JobResources, subscription_id: str, *, budget_s: float = DRAIN_BUDGET_S
) -> str:
    """Attempt the subscription's due retries for up to `budget_s`, a batch at a time; then
    schedule its next drain (at once behind the queue when more is due). Returns a summary."""
    states, retries = resources.store.retry_states, resources.retries
    lease_s = resources.lease_s
    give_up = time.monotonic() + budget_s

    def should_stop() -> bool:
        return time.monotonic() >= give_up or resources.stopping.is_set()

    tally: dict[str, int] = {}
    while not should_stop():
        claimed = await states.claim_due(
            subscription_id, now=time.time(), lease_s=lease_s, limit=DRAIN_BATCH
        )
        if not claimed:  # a retry due within a second is waited for here, not rescheduled
            due_s = await states.next_due(subscription_id)
            wait_s = None if due_s is None else due_s - time.time()
            if wait_s is None or wait_s > FOLLOW_S or time.monotonic() + wait_s >= give_up:
                break
            await asyncio.sleep(max(0.0, wait_s))
            continue
        for outcome in await _attempt_batch(resources, subscription_id, claimed, should_stop):
            tally[outcome] = tally.get(outcome, 0) + 1
    next_due = await states.finish_drain(subscription_id)
    if next_due is not None:
        await asyncio.to_thread(retries.schedule_drain, subscription_id, next_due, now=time.time())
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(tally.items())) or "nothing due"


async def _attempt_batch(
    resources: JobResources,
    subscription_id: str,
    claimed: Sequence[Claimed],
    should_stop: Callable[[], bool],
) -> list[str]:
    """Attempt one claimed batch (at most the subscription's slots at once) and settle it;
    the outcome of each delivery. Once `should_stop()`, no further attempt starts: those
    stay due for the next drain."""
    store, outcomes = resources.store, resources.outcomes
    live = [c for c in claimed if c.attempt is not None]
    outcomes_seen = ["skipped: already settled"] * (len(claimed) - len(live))
    if not live:
        return outcomes_seen
    pairs = [(c.event_id, subscription_id) for c in live]
    try:
        subscription = await _subscription(resources, subscription_id)
    except NotFound:
        await store.retry_states.clear_retries(pairs)
        return outcomes_seen + ["dropped: subscription deleted"] * len(live)
    if not subscription.enabled:
        now = time.time()
        dropped = [
            dropped_attempt(c.event_id, subscription, attempt=c.attempt or 1, now=now) for c in live
        ]
        await store.attempts.record_many(dropped)
        await store.retry_states.clear_retries(pairs)
        return outcomes_seen + ["dropped: subscription disabled"] * len(live)
    events = await store.events.get_many([c.event_id for c in live])
    expired = [
        (c.event_id, subscription_id) for c, e in zip(live, events, strict=True) if e is None
    ]
    if expired:
        await store.retry_states.clear_retries(expired)
        log.warning(
            "retries dropped: events expired",
            extra={"subscription_id": subscription_id, "events": len(expired)},
        )
    slots = asyncio.Semaphore(min(resources.slots, subscription.concurrency or resources.slots))
    deferred: list[RetryRequest] = []
    not_started: list[str] = []

    async def attempt(event: Event, number: int) -> Settled | None:
        async with slots:
            if should_stop():
                not_started.append(event.id)
                return None
            result = await _attempt_within_limits(resources, event, subscription, number)
            if isinstance(result, Admission):
                delay_s = resources.throttle.defer_s(subscription, result)
                deferred.append(RetryRequest(event.id, subscription.id, number, delay_s))
                return None
            return Settled(event, subscription, result)

    settled = await asyncio.gather(
        *(
            attempt(event, c.attempt or 1)
            for c, event in zip(live, events, strict=True)
            if event is not None
        )
    )
    done = [item for item in settled if item is not None]
    await outcomes.settle(done)
    if deferred:
        await asyncio.to_thread(resources.retries.schedule, deferred)
    if not_started:
        await store.retry_states.unclaim(subscription_id, not_started)
    outcomes_seen += ["dropped: event expired"] * len(expired)
    outcomes_seen += [item.result.outcome.value for item in done if item.result is not None]
    outcomes_seen += ["deferred"] * len(deferred)
    outcomes_seen += ["left for the next drain"] * len(not_started)
    return outcomes_seen


def retry_delivery(event_id: str, subscription_id: str, attempt: int) -> str:
    """RQ job of relay 0.1 (one delivery per job; new retries are drained): make attempt
    number `attempt` of one delivery unless it is already settled; then schedule the next
    attempt or dead-letter it. Returns what happened."""
    context = _context.get()
    if context is not None and context.runner is not None:
        return context.runner.run(lambda r: _attempt_once(r, event_id, subscription_id, attempt))
    with _job_resources() as (settings, client):
        return asyncio.run(_retry(settings, client, event_id, subscription_id, attempt))


def unpark_deliveries(pairs: list[list[str]]) -> str:
    """RQ job of relay 0.1: hand each parked delivery [event id, subscription id] to the retry
    queue, due now. At least once: a run repeated after a crash may repeat a first attempt
    (same webhook-id), never lose one."""
    requests = [RetryRequest(event_id, sub_id, 1, 0.0) for event_id, sub_id in pairs]
    with _job_resources() as (settings, client):
        retry_queue_for(settings, client).schedule(requests)
    return f"scheduled {len(requests)}"


async def _retry(
    settings: Settings, rq_redis: redis.Redis, event_id: str, subscription_id: str, attempt: int
) -> str:
    resources = await JobResources.open(settings, rq_redis)
    try:
        return await _attempt_once(resources, event_id, subscription_id, attempt)
    finally:
        await resources.aclose()


async def _subscription(resources: JobResources, subscription_id: str) -> Subscription:
    """The subscription of a retry: the operator's from the settings, others from Redis."""
    if subscription_id == OPERATOR_SUBSCRIPTION_ID:
        if resources.operator is None:
            raise NotFound("operator webhooks are not configured")
        return resources.operator
    return await resources.store.subscriptions.get(subscription_id)


async def _attempt_once(
    resources: JobResources,
    event_id: str,
    subscription_id: str,
    attempt: int,
) -> str:
    store, outcomes = resources.store, resources.outcomes
    progress = await store.retry_states.retry_progress(event_id, subscription_id)
    if progress != attempt - 1:
        return "skipped: already settled"
    pair = [(event_id, subscription_id)]
    try:
        subscription = await _subscription(resources, subscription_id)
    except NotFound:
        await store.retry_states.clear_retries(pair)
        return "dropped: subscription deleted"
    if not subscription.enabled:
        dropped = dropped_attempt(event_id, subscription, attempt=attempt, now=time.time())
        await store.attempts.record_many([dropped])
        await store.retry_states.clear_retries(pair)
        return dropped.error or "dropped"
    (event,) = await store.events.get_many([event_id])
    if event is None:
        await store.retry_states.clear_retries(pair)
        log.warning(
            "retry dropped: event expired",
            extra={"event_id": event_id, "subscription_id": subscription_id},
        )
        return "dropped: event expired"
    result = await _attempt_within_limits(resources, event, subscription, attempt)
    if isinstance(result, Admission):
        delay_s = resources.throttle.defer_s(subscription, result)
        await outcomes.defer(event_id, subscription_id, attempt=attempt, delay_s=delay_s)
        return f"deferred: {result.reason} limit"
    await outcomes.settle([Settled(event, subscription, result)])
    return result.outcome.value


async def _attempt_within_limits(
    resources: JobResources, event: Event, subscription: Subscription, number: int
) -> AttemptResult | Admission:
    """Attempt `number` under the subscription's shared limits: its result, or the admission
    that refused it (the caller defers it)."""
    admission = None
    if subscription.has_shared_limits:
        admission = await resources.throttle.admit(subscription)
        if not admission.admitted:
            return admission
    try:
        return await resources.deliverer.attempt(
            event, subscription, attempt_number=number, now=time.time()
        )
    finally:
        if admission is not None and admission.lease is not None:
            try:
                await resources.throttle.release(subscription, admission)
            except Exception:  # Redis down: the lease expires by itself
                log.exception("lease not released", extra={"subscription_id": subscription.id})
