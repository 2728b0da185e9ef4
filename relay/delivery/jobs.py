"""The RQ retry job. Jobs carry ids only; each run reloads the event and the subscription.

The worker (workers/retry_worker.py) hands its settings, Redis client and `JobRunner` to the
jobs it runs with `job_context`: the runner keeps one event loop, one async Redis client and
one pooled HTTP session for every job of the process, so a retry costs what a first attempt
does. A job run by a plain `rq worker` builds all of them from the environment, per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import redis
from redis.asyncio import Redis

from relay.core.errors import NotFound
from relay.core.health import OPERATOR_SUBSCRIPTION_ID
from relay.core.limits import longest_timeout_s
from relay.core.models import Subscription
from relay.core.retry import RetryPolicy
from relay.delivery.deliverer import Deliverer
from relay.delivery.outcomes import OutcomeHandler, Settled, dropped_attempt, operator_target
from relay.delivery.throttle import Throttle
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis, sync_redis
from relay.store.keys import Keys
from relay.store.retry_queue import RetryQueue, RetryRequest

log = logging.getLogger("relay.jobs")
T = TypeVar("T")


@dataclass(slots=True)
class JobResources:
    """What an attempt needs, built once per event loop."""

    client: Redis
    store: Store
    outcomes: OutcomeHandler
    deliverer: Deliverer
    throttle: Throttle
    operator: Subscription | None = None  # the in-memory target of operator events

    @classmethod
    async def open(cls, settings: Settings, rq_redis: redis.Redis) -> JobResources:
        client = async_redis(settings.require_redis_url())
        store = Store.create(client, settings)
        outcomes = OutcomeHandler(
            store=store,
            retries=retry_queue_for(settings, rq_redis),
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
        return cls(client, store, outcomes, deliverer, throttle, operator_target(settings))

    async def aclose(self) -> None:
        try:
            await self.deliverer.close()
        finally:
            await self.client.aclose()


class JobRunner:
    """Runs jobs' coroutines on one long-lived event loop of this thread, with one set of
    `JobResources` opened on first use and reused by every job until `close`."""

    def __init__(self, settings: Settings, rq_redis: redis.Redis) -> None:
        self._settings = settings
        self._rq_redis = rq_redis
        self._runner = asyncio.Runner()
        self.resources: JobResources | None = None

    def run(self, work: Callable[[JobResources], Awaitable[T]]) -> T:
        return self._runner.run(self._run(work))

    async def _run(self, work: Callable[[JobResources], Awaitable[T]]) -> T:
        if self.resources is None:
            self.resources = await JobResources.open(self._settings, self._rq_redis)
        return await work(self.resources)

    def close(self) -> None:
        try:
            if self.resources is not None:
                self._runner.run(self.resources.aclose())
                self.resources = None
        finally:
            self._runner.close()


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


def retry_delivery(event_id: str, subscription_id: str, attempt: int) -> str:
    """RQ job: make attempt number `attempt` of one delivery unless it is already settled;
    then schedule the next attempt or dead-letter it. Returns what happened."""
    context = _context.get()
    if context is not None and context.runner is not None:
        return context.runner.run(lambda r: _attempt_once(r, event_id, subscription_id, attempt))
    with _job_resources() as (settings, client):
        return asyncio.run(_retry(settings, client, event_id, subscription_id, attempt))


def unpark_deliveries(pairs: list[list[str]]) -> str:
    """RQ job: schedule the first attempt of each parked delivery [event id, subscription
    id] as its own retry job (due now). At least once: a run repeated after a crash may repeat
    a first attempt (same webhook-id), never lose one."""
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
    admission = None
    if subscription.has_shared_limits:
        admission = await resources.throttle.admit(subscription)
        if not admission.admitted:
            delay_s = resources.throttle.defer_s(subscription, admission)
            await outcomes.defer(event_id, subscription_id, attempt=attempt, delay_s=delay_s)
            return f"deferred: {admission.reason} limit"
    try:
        result = await resources.deliverer.attempt(
            event, subscription, attempt_number=attempt, now=time.time()
        )
    finally:
        if admission is not None and admission.lease is not None:
            try:
                await resources.throttle.release(subscription, admission)
            except Exception:  # Redis down: the lease expires by itself
                log.exception("lease not released", extra={"subscription_id": subscription_id})
    await outcomes.settle([Settled(event, subscription, result)])
    return result.outcome.value
