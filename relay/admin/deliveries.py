"""Delivering again on demand: test pings, the attempt log, replay, recover and redelivery."""

from __future__ import annotations

from collections.abc import Iterable

from relay.admin import audit
from relay.admin.context import AdminContext
from relay.core.errors import Conflict, InvalidInput
from relay.core.models import Attempt, Event, Listing, Subscription
from relay.store.event_deliveries import DELIVERED, delivery_state

PUBLISH_BATCH = 100
# One replay is one transaction: 100,000 stream entries take Redis about 0.1 s to apply.
REPLAY_MAX = 100_000
REPLAY_READ_CHUNK = 500
SUCCEEDED, FAILED = "succeeded", "failed"
OUTCOMES = (SUCCEEDED, FAILED)


async def _publish(ctx: AdminContext, pairs: Iterable[tuple[str, str]]) -> int:
    """Queue each (event id, subscription id) as an explicit delivery; how many were queued."""
    pending = list(pairs)
    for start in range(0, len(pending), PUBLISH_BATCH):
        await ctx.store.stream.publish_many(pending[start : start + PUBLISH_BATCH])
    return len(pending)


def _require_enabled(subscription: Subscription) -> None:
    if not subscription.enabled:
        raise Conflict(
            f"subscription {subscription.id} is disabled"
            + (f" ({subscription.disabled_reason})" if subscription.disabled_reason else "")
            + "; enable it first"
        )


async def send_test_ping(ctx: AdminContext, subscription_id: str) -> Attempt:
    """Send a `relay.ping` to the subscription now (whatever its filters); the attempt, also
    recorded in its log. Raises NotFound."""
    subscription = await ctx.store.subscriptions.get(subscription_id, tenant=ctx.tenant)
    attempt = await ctx.deliverer.ping(subscription, now=ctx.clock())
    await audit.record(ctx, "subscription.test", subscription_id, tenant_id=subscription.tenant_id)
    return attempt


async def list_attempts(
    ctx: AdminContext,
    subscription_id: str,
    *,
    limit: int,
    cursor: str | None,
    outcome: str | None = None,
    event_id: str | None = None,
) -> Listing[Attempt]:
    """The subscription's attempt log, newest first, only `outcome` ones (`succeeded`: 2xx;
    `failed`: any other, including drops and 410) and only `event_id`'s when given; raises
    NotFound."""
    await ctx.store.subscriptions.get(subscription_id, tenant=ctx.tenant)
    return await ctx.store.attempts.page(
        subscription_id,
        limit=limit,
        cursor=cursor,
        is_delivered=None if outcome is None else outcome == SUCCEEDED,
        event_id=event_id,
    )


async def _window(
    ctx: AdminContext, subscription: Subscription, *, since: int, until: int | None
) -> list[Event]:
    """Stored events with a message time in [since, until] that the subscription matches,
    oldest first. Raises InvalidInput (a window of more than REPLAY_MAX events)."""
    ids = await ctx.store.events.ids_in_window(since=since, until=until)
    if len(ids) > REPLAY_MAX:
        raise InvalidInput(
            f"the window holds {len(ids)} events, more than {REPLAY_MAX} in one replay; "
            "split it into narrower windows",
            field="until",
        )
    found: list[Event] = []
    for start in range(0, len(ids), REPLAY_READ_CHUNK):  # bounded replies, one connection
        chunk = await ctx.store.events.get_many(ids[start : start + REPLAY_READ_CHUNK])
        # matches() keeps a tenant's subscription to its tenant's events.
        found += [e for e in chunk if e is not None and subscription.matches(e)]
    return found


async def replay(ctx: AdminContext, subscription_id: str, *, since: int, until: int | None) -> int:
    """Queue every stored event with a message time in [since, until] that the subscription
    matches, all or none (one transaction: a failed request queued nothing, so retrying it
    never doubles a delivery); how many were queued. Raises NotFound, Conflict (disabled),
    InvalidInput (a window of more than REPLAY_MAX events)."""
    subscription = await ctx.store.subscriptions.get(subscription_id, tenant=ctx.tenant)
    _require_enabled(subscription)
    events = await _window(ctx, subscription, since=since, until=until)
    pairs = [(e.id, subscription.id) for e in events]
    await ctx.store.stream.publish_many(pairs, atomic=True)
    await audit.record(
        ctx, "subscription.replay", subscription_id, tenant_id=subscription.tenant_id
    )
    return len(pairs)


async def redeliver_event(ctx: AdminContext, event_id: str, subscription_id: str | None) -> int:
    """Queue one event again to one enabled subscription, or to every enabled one it matches;
    how many were queued. Raises NotFound, Conflict (disabled)."""
    event = await ctx.store.events.get(event_id, tenant=ctx.tenant)
    if subscription_id is not None:
        subscription = await ctx.store.subscriptions.get(subscription_id, tenant=ctx.tenant)
        _require_enabled(subscription)
        # Explicit deliveries skip matches() in the dispatcher: even the operator cannot send
        # one tenant's event to another tenant's subscription.
        if subscription.tenant_id is not None and event.tenant_id != subscription.tenant_id:
            raise Conflict(
                f"event {event.id} does not belong to the tenant of subscription {subscription.id}"
            )
        targets = [subscription]
    else:
        await ctx.routes.refresh(ctx.store.subscriptions)  # not a read of every subscription
        targets = [s for s in ctx.routes.candidates(event) if s.matches(event)]
        if ctx.tenant is not None:  # a tenant redelivers only to its own subscriptions
            targets = [s for s in targets if s.tenant_id == ctx.tenant]
    queued = await _publish(ctx, ((event.id, target.id) for target in targets))
    await audit.record(ctx, "event.redeliver", event_id, tenant_id=event.tenant_id)
    return queued


async def recover(ctx: AdminContext, subscription_id: str, *, since: int, until: int | None) -> int:
    """Queue again every event of the window (message time, as `replay`) routed to the
    subscription (it existed when the event was recorded, or an attempt was made) whose
    delivery is dead, dropped or never delivered; delivered ones and those with a retry
    scheduled are skipped, and the dead letters of those queued are removed, in the same
    transaction (all or none). How many were queued. Raises NotFound, Conflict (disabled),
    InvalidInput (a window of more than REPLAY_MAX events)."""
    subscription = await ctx.store.subscriptions.get(subscription_id, tenant=ctx.tenant)
    _require_enabled(subscription)
    events = await _window(ctx, subscription, since=since, until=until)
    pairs: list[tuple[str, str]] = []
    dead_letter_ids: list[str] = []
    for start in range(0, len(events), REPLAY_READ_CHUNK):
        chunk = events[start : start + REPLAY_READ_CHUNK]
        records = await ctx.store.event_deliveries.records([(e.id, subscription.id) for e in chunk])
        for event, record in zip(chunk, records, strict=True):
            if record.last is None and not subscription.predates(event):
                continue  # never routed to it (older than the subscription): that is replay
            state = delivery_state(record, is_enabled=True)
            if state == DELIVERED or record.retry_progress is not None:
                continue
            pairs.append((event.id, subscription.id))
            if record.dead_letter_id is not None:
                dead_letter_ids.append(record.dead_letter_id)
    await ctx.store.dead_letters.requeue_with(
        pairs, subscription_id=subscription.id, dead_letter_ids=dead_letter_ids
    )
    await audit.record(
        ctx, "subscription.recover", subscription_id, tenant_id=subscription.tenant_id
    )
    return len(pairs)
