"""Subscription health and the operator's own events, as values.

Health definitions (also in openapi.yaml): a subscription is `failing` from its first failed
attempt after its last success (`failing_since`) until its next success; `disabled` when it
is not enabled (whatever its attempts); `healthy` otherwise. `success_rate_1h` is delivered
attempts / all attempts of the last 60 epoch minutes (None without any). Dropped attempts
(nothing was sent) count for neither side of the state.

Operator events are Standard Webhooks sent to `RELAY_OPERATOR_WEBHOOK_URL` through the same
delivery path as any subscription, by a subscription that exists only in memory
(`operator_subscription`), so it is never listed and never routed normal events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from relay.core.events import rfc3339
from relay.core.ids import new_id
from relay.core.models import Event, Secret, Subscription

HealthState = Literal["healthy", "failing", "disabled"]

OPERATOR_SUBSCRIPTION_ID = "sub_operator"
SUBSCRIPTION_FAILING = "relay.subscription.failing"
SUBSCRIPTION_RECOVERED = "relay.subscription.recovered"
SUBSCRIPTION_DISABLED = "relay.subscription.disabled"
DELIVERY_DEAD_LETTERED = "relay.delivery.dead_lettered"
SOURCE_FAILING = "relay.source.failing"
SOURCE_RECOVERED = "relay.source.recovered"


def disabled_reason(disable_after_s: int) -> str:
    """The `disabled_reason` of a subscription disabled for failing too long."""
    return f"disabled after every delivery failed for {disable_after_s} s (RELAY_DISABLE_AFTER)"


@dataclass(frozen=True, slots=True)
class HealthRecord:
    """What the store keeps per subscription, updated with every attempt that was sent."""

    last_success_at: float | None = None
    failing_since: float | None = None
    last_error: str | None = None
    queued_retries: int = 0
    next_retry_at: float | None = None
    dead_letters: int = 0


@dataclass(frozen=True, slots=True)
class SubscriptionHealth:
    state: HealthState
    success_rate_1h: float | None
    last_success_at: float | None
    failing_since: float | None
    last_error: str | None
    queued_retries: int
    dead_letters: int
    next_retry_at: float | None = None


def subscription_health(
    subscription: Subscription, record: HealthRecord, *, ok_1h: int, failed_1h: int
) -> SubscriptionHealth:
    """The health shown for `subscription` from its record and last hour's counts."""
    state: HealthState = "healthy"
    if not subscription.enabled:
        state = "disabled"
    elif record.failing_since is not None:
        state = "failing"
    total = ok_1h + failed_1h
    return SubscriptionHealth(
        state=state,
        success_rate_1h=round(ok_1h / total, 4) if total else None,
        last_success_at=record.last_success_at,
        failing_since=record.failing_since,
        last_error=record.last_error,
        queued_retries=record.queued_retries,
        dead_letters=record.dead_letters,
        next_retry_at=record.next_retry_at,
    )


def operator_subscription(*, url: str, secret: str) -> Subscription:
    """The in-memory subscription that carries operator events."""
    return Subscription(
        id=OPERATOR_SUBSCRIPTION_ID, url=url, secrets=(Secret(secret),), created_at=0.0
    )


def operator_event(event_type: str, data: dict[str, Any], *, now: float) -> Event:
    """One operator event: `{type, timestamp (now, RFC 3339), data}`."""
    body = {"type": event_type, "timestamp": rfc3339(now), "data": data}
    return Event(
        id=new_id("evt"),
        type=event_type,
        source_id=None,
        timestamp=int(now),
        created_at_ms=int(now * 1000),
        body=json.dumps(body, separators=(",", ":")).encode(),
    )
