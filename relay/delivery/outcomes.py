"""Acting on attempts: record them, then retry, dead-letter, or disable after 410 Gone.

Shared by the dispatcher (first attempts, many at once) and the retry job (one at a time).
Every write is at-least-once: a crash before it finishes makes the caller repeat the attempt,
never lose it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from relay.core.errors import NotFound
from relay.core.health import (
    DELIVERY_DEAD_LETTERED,
    OPERATOR_SUBSCRIPTION_ID,
    SUBSCRIPTION_DISABLED,
    SUBSCRIPTION_FAILING,
    SUBSCRIPTION_RECOVERED,
    disabled_reason,
    operator_subscription,
)
from relay.core.ids import new_id
from relay.core.models import Attempt, Event, Subscription
from relay.core.retry import Outcome, RetryPolicy, parse_retry_after
from relay.delivery.deliverer import AttemptResult
from relay.observability.metrics import DEAD_LETTERS, END_TO_END_LAG
from relay.settings import Settings
from relay.store import Store
from relay.store.health import SentOutcome, Transition
from relay.store.retry_queue import RetryQueue, RetryRequest

log = logging.getLogger("relay.outcomes")

GONE_REASON = "disabled after 410 Gone"
DEFAULT_DISABLE_AFTER_S = 5 * 86400
_TRANSITION_EVENTS = {"failing": SUBSCRIPTION_FAILING, "recovered": SUBSCRIPTION_RECOVERED}


@dataclass(frozen=True, slots=True)
class Settled:
    """A delivery whose attempt is over (`result`), or that was parked without one (None):
    due now, or, when a limit deferred it, in `defer_s` seconds. `is_fresh`: the first
    attempt of an entry read for the first time (not reclaimed, not explicit), so no retry
    of this delivery can exist yet and there is none to clear when it finishes."""

    event: Event
    subscription: Subscription
    result: AttemptResult | None
    is_explicit: bool = False
    defer_s: float = 0.0
    is_fresh: bool = False


def dropped_attempt(
    event_id: str, subscription: Subscription, *, attempt: int, now: float
) -> Attempt:
    """The attempt recorded instead of sending to a subscription disabled meanwhile."""
    reason = subscription.disabled_reason or "disabled"
    if not reason.startswith("disabled"):
        reason = f"disabled: {reason}"
    return Attempt(
        id=new_id("att"),
        event_id=event_id,
        subscription_id=subscription.id,
        attempt=attempt,
        at=now,
        status_code=None,
        error=f"dropped: subscription {reason}",
        outcome=Outcome.DROPPED,
        response_body=None,
        duration_ms=0,
    )


def operator_target(settings: Settings) -> Subscription | None:
    """The in-memory subscription operator events go to; None when not configured."""
    url, secret = settings.operator_webhook_url, settings.operator_webhook_secret
    if url is None or secret is None:
        return None
    return operator_subscription(url=url, secret=secret)


class OutcomeHandler:
    """Settles finished attempts: records them and hands each delivery to its next step."""

    def __init__(
        self,
        *,
        store: Store,
        retries: RetryQueue,
        policy: RetryPolicy,
        rng: random.Random,
        clock: Callable[[], float],
        disable_after_s: int = DEFAULT_DISABLE_AFTER_S,
    ) -> None:
        self._store = store
        self._disable_after_s = disable_after_s
        self._retries = retries
        self._policy = policy
        self._rng = rng
        self._clock = clock

    async def settle(self, items: Sequence[Settled]) -> None:
        """Record the attempts (one round trip) and act on every outcome; raises only on a
        Redis failure, in which case the caller must not treat the items as settled."""
        if not items:
            return
        now = self._clock()
        attempts = [item.result.attempt for item in items if item.result is not None]
        if attempts:
            await self._store.attempts.record_many(attempts)
            await self._track_health(items, now=now)
        retries: list[RetryRequest] = []
        parked: list[tuple[str, str]] = []
        finished: list[Settled] = []
        dead: list[tuple[Settled, Attempt]] = []
        gone: dict[str, Subscription] = {}
        for item in items:
            event_id, subscription_id = item.event.id, item.subscription.id
            if item.result is None:
                if item.defer_s > 0:  # a first attempt a limit deferred
                    retries.append(RetryRequest(event_id, subscription_id, 1, item.defer_s))
                else:
                    parked.append((event_id, subscription_id))
                continue
            attempt = item.result.attempt
            if item.result.outcome is Outcome.DELIVERED:
                finished.append(item)
                if not item.is_explicit:
                    END_TO_END_LAG.observe(max(0.0, now - item.event.timestamp))
            elif item.result.outcome is Outcome.GONE:
                finished.append(item)
                gone[subscription_id] = item.subscription
            else:
                retry_after_s = parse_retry_after(item.result.retry_after, now=now)
                delay_s = self._policy.next_delay_s(
                    attempt=attempt.attempt, rng=self._rng, retry_after_s=retry_after_s
                )
                if delay_s is None:
                    finished.append(item)
                    dead.append((item, attempt))
                else:
                    retries.append(
                        RetryRequest(event_id, subscription_id, attempt.attempt + 1, delay_s)
                    )
        if retries:
            await asyncio.to_thread(self._retries.schedule, retries)
        if parked:
            await asyncio.to_thread(self._retries.park, parked)
        for item, attempt in dead:
            dead_letter = await self._store.dead_letters.add(
                event_id=item.event.id,
                subscription_id=item.subscription.id,
                attempts=attempt.attempt,
                last_error=attempt.error,
                last_status_code=attempt.status_code,
                failed_at=now,
                last_response=attempt.response_body,
            )
            DEAD_LETTERS.labels(item.subscription.id).inc()
            if item.subscription.id != OPERATOR_SUBSCRIPTION_ID:
                await self._store.operator_events.emit(
                    DELIVERY_DEAD_LETTERED,
                    {
                        "dead_letter_id": dead_letter.id,
                        "event_id": item.event.id,
                        "subscription_id": item.subscription.id,
                        "tenant_id": item.subscription.tenant_id,
                        "url": item.subscription.url,
                        "attempts": attempt.attempt,
                        "last_error": attempt.error,
                        "last_status_code": attempt.status_code,
                    },
                    now=now,
                )
            log.warning(
                "delivery dead-lettered",
                extra={"event_id": item.event.id, "subscription_id": item.subscription.id},
            )
        for subscription in gone.values():
            if subscription.id != OPERATOR_SUBSCRIPTION_ID:  # exists only in memory
                await self.disable_gone(subscription)
        # A finished delivery's retry records go; a fresh one has none to clear.
        cleared = [(i.event.id, i.subscription.id) for i in finished if not i.is_fresh]
        if cleared:
            await self._store.retry_states.clear_retries(cleared)

    async def defer(
        self, event_id: str, subscription_id: str, *, attempt: int, delay_s: float
    ) -> None:
        """Schedule attempt `attempt` again in `delay_s`, from inside its own job, after a
        limit refused it: no attempt is recorded and nothing counts as failed."""
        request = RetryRequest(event_id, subscription_id, attempt, delay_s, is_deferral=True)
        await asyncio.to_thread(self._retries.schedule, [request])

    async def disable_gone(self, subscription: Subscription) -> None:
        """Disable a subscription that answered 410 and make its pending retries drop now."""
        await self._store.subscriptions.disable(subscription.id, reason=GONE_REASON)
        expedited = await asyncio.to_thread(self._retries.expedite, subscription.id)
        log.warning(
            "subscription disabled after 410 Gone",
            extra={"subscription_id": subscription.id, "pending_retries_dropped": expedited},
        )

    async def _track_health(self, items: Sequence[Settled], *, now: float) -> None:
        """Update the health records of the attempts that were sent and act on the changes:
        tell the operator when a subscription starts failing or recovers, and disable one
        that failed for the whole disable window. Operator deliveries are left out, so they
        can never cause operator events of their own."""
        subscriptions: dict[str, Subscription] = {}
        sent: list[SentOutcome] = []
        for item in items:
            result = item.result
            if result is None or item.subscription.id == OPERATOR_SUBSCRIPTION_ID:
                continue
            attempt = result.attempt
            if not attempt.was_sent or result.outcome is Outcome.GONE:
                continue
            subscriptions[item.subscription.id] = item.subscription
            error = attempt.error or f"HTTP {attempt.status_code}"
            sent.append(SentOutcome(item.subscription.id, attempt.at, attempt.is_delivered, error))
        changes = await self._store.health.record(
            sent, now=now, disable_after_s=self._disable_after_s
        )
        for outcome, transition in changes:
            await self._on_transition(
                subscriptions[outcome.subscription_id], outcome, transition, now=now
            )

    async def _on_transition(
        self,
        subscription: Subscription,
        outcome: SentOutcome,
        transition: Transition,
        *,
        now: float,
    ) -> None:
        data = {
            "subscription_id": subscription.id,
            "tenant_id": subscription.tenant_id,
            "url": subscription.url,
            "at": outcome.at,
            "last_error": None if outcome.is_delivered else outcome.error,
        }
        if transition != "disable":
            extra = {"subscription_id": subscription.id, "transition": transition}
            log.warning("subscription health changed", extra=extra)
            await self._store.operator_events.emit(_TRANSITION_EVENTS[transition], data, now=now)
            return
        if not subscription.enabled:
            return
        reason = disabled_reason(self._disable_after_s)
        try:
            await self._store.subscriptions.disable(subscription.id, reason=reason)
        except NotFound:
            return  # deleted meanwhile
        expedited = await asyncio.to_thread(self._retries.expedite, subscription.id)
        log.warning(
            "subscription disabled: every delivery failed for the disable window",
            extra={"subscription_id": subscription.id, "pending_retries_dropped": expedited},
        )
        await self._store.operator_events.emit(
            SUBSCRIPTION_DISABLED, {**data, "disabled_reason": reason}, now=now
        )
