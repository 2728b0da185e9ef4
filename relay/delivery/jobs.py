"""The RQ retry job. Jobs carry ids only; each run reloads the event and the subscription.

The worker (workers/retry_worker.py) hands its settings and Redis client to the jobs it runs
with `job_context`; a job run by a plain `rq worker` builds them from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from relay.core.errors import NotFound
from relay.core.retry import RetryPolicy
from relay.delivery.deliverer import Deliverer
from relay.delivery.outcomes import OutcomeHandler, Settled, dropped_attempt
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis, sync_redis
from relay.store.keys import Keys
from relay.store.retry_queue import RetryQueue, RetryRequest

log = logging.getLogger("relay.jobs")


@dataclass(frozen=True, slots=True)
class JobContext:
    settings: Settings
    rq_redis: redis.Redis  # the worker's bytes client, reused to schedule the next attempt


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
        job_timeout_s=settings.delivery_timeout_s + 30,
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
    client = async_redis(settings.require_redis_url())
    try:
        store = Store.create(client, settings)
        outcomes = OutcomeHandler(
            store=store,
            retries=retry_queue_for(settings, rq_redis),
            policy=RetryPolicy(settings.retry_schedule_s),
            rng=random.Random(),
            clock=time.time,
        )
        return await _attempt_once(store, outcomes, settings, event_id, subscription_id, attempt)
    finally:
        await client.aclose()


async def _attempt_once(
    store: Store,
    outcomes: OutcomeHandler,
    settings: Settings,
    event_id: str,
    subscription_id: str,
    attempt: int,
) -> str:
    progress = await store.retry_states.retry_progress(event_id, subscription_id)
    if progress != attempt - 1:
        return "skipped: already settled"
    pair = [(event_id, subscription_id)]
    try:
        subscription = await store.subscriptions.get(subscription_id)
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
    deliverer = Deliverer(store=store, settings=settings)
    await deliverer.start()
    try:
        result = await deliverer.attempt(
            event, subscription, attempt_number=attempt, now=time.time()
        )
    finally:
        await deliverer.close()
    await outcomes.settle([Settled(event, subscription, result)])
    return result.outcome.value
