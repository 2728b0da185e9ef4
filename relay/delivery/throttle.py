"""Admission of deliveries to subscriptions with a `rate_limit_per_s` or a `concurrency`,
shared by the dispatcher (first attempts) and the retry job (every later one).

A subscription with neither never gets here: it costs no Redis round trip. Otherwise each
delivery asks the shared limiter (store/limits.py) once. A start reserved within
`RATE_WAIT_S` is waited for in memory; a lease held elsewhere is polled for up to
`LEASE_WAIT_S`. Anything later is *deferred*: handed to the retry queue for the same attempt
number with a due time, so it is never dropped, never counted as a failed attempt, and never
holds up other subscriptions' deliveries. Deferred deliveries of one subscription are spread
one rate interval apart (behind its queued retries), so they come due about when the rate
lets them start instead of all at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from relay.core.models import Subscription
from relay.observability.metrics import DELIVERIES_DEFERRED
from relay.store.limits import Admission, DeliveryLimiter

RATE_WAIT_S = 1.0  # a start reserved within this long is waited for in memory
LEASE_WAIT_S = 1.0  # how long a delivery polls for a lease held by another process
LEASE_POLL_S = 0.05
LEASE_MARGIN_S = 5.0  # a lease outlives its POST's timeout by this much
LEASE_RETRY_S = (1.0, 2.0)  # a delivery refused a lease is tried again this much later


class Throttle:
    def __init__(
        self,
        *,
        limiter: DeliveryLimiter,
        timeout_for: Callable[[Subscription], float],
        rng: random.Random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._limiter = limiter
        self._timeout_for = timeout_for
        self._rng = rng
        self._clock = clock
        self._deferred_until: dict[str, float] = {}  # subscription id -> last deferral's due

    async def admit(self, subscription: Subscription) -> Admission:
        """Admit one delivery, waiting for it when it is due soon (see the module); a refusal
        means defer it by `defer_s`. Raises only on a Redis failure."""
        give_up = time.monotonic() + LEASE_WAIT_S
        lease_s = self._timeout_for(subscription) + LEASE_MARGIN_S
        while True:
            admission = await self._limiter.acquire(
                subscription.id,
                rate_limit_per_s=subscription.rate_limit_per_s,
                concurrency=subscription.concurrency,
                lease_s=lease_s,
                max_wait_s=RATE_WAIT_S,
            )
            if admission.admitted:
                if admission.wait_s > 0:
                    await asyncio.sleep(admission.wait_s)
                return admission
            if admission.reason == "rate" or time.monotonic() >= give_up:
                DELIVERIES_DEFERRED.labels(subscription.id, admission.reason).inc()
                return admission
            await asyncio.sleep(LEASE_POLL_S)

    async def release(self, subscription: Subscription, admission: Admission) -> None:
        """End the admission's lease, if it holds one."""
        await self._limiter.release(subscription.id, admission.lease)

    def defer_s(self, subscription: Subscription, admission: Admission) -> float:
        """How much later to try a refused delivery again."""
        rate = subscription.rate_limit_per_s
        if admission.reason != "rate" or rate is None:
            return self._rng.uniform(*LEASE_RETRY_S)
        now = self._clock()
        interval_s = 1 / rate
        behind = now + admission.wait_s + admission.queued_retries * interval_s
        due = max(behind, self._deferred_until.get(subscription.id, 0.0) + interval_s)
        self._deferred_until[subscription.id] = due
        if len(self._deferred_until) > 10_000:  # bounded: forget the ones already due
            self._deferred_until = {k: v for k, v in self._deferred_until.items() if v > now}
        return due - now
