"""Delivering again on demand: test pings, the attempt log, replay and redelivery."""

from __future__ import annotations

from collections.abc import Iterable

from relay.admin.context import AdminContext
from relay.core.errors import Conflict
from relay.core.models import Attempt, Listing, Subscription

PUBLISH_BATCH = 100


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
    subscription = await ctx.store.subscriptions.get(subscription_id)
    return await ctx.deliverer.ping(subscription, now=ctx.clock())


async def list_attempts(
    ctx: AdminContext, subscription_id: str, *, limit: int, cursor: str | None
) -> Listing[Attempt]:
    """The subscription's attempt log, newest first; raises NotFound."""
    await ctx.store.subscriptions.get(subscription_id)
    return await ctx.store.attempts.page(subscription_id, limit=limit, cursor=cursor)


async def replay(ctx: AdminContext, subscription_id: str, *, since: int, until: int | None) -> int:
    """Queue every stored event with a message time in [since, until] that the subscription
    matches; how many were queued. Raises NotFound, Conflict (disabled)."""
    subscription = await ctx.store.subscriptions.get(subscription_id)
    _require_enabled(subscription)
    ids = await ctx.store.events.ids_in_window(since=since, until=until)
    found = [event for event in await ctx.store.events.get_many(ids) if event is not None]
    return await _publish(
        ctx, ((event.id, subscription.id) for event in found if subscription.matches(event))
    )


async def redeliver_event(ctx: AdminContext, event_id: str, subscription_id: str | None) -> int:
    """Queue one event again to one enabled subscription, or to every enabled one it matches;
    how many were queued. Raises NotFound, Conflict (disabled)."""
    event = await ctx.store.events.get(event_id)
    if subscription_id is not None:
        subscription = await ctx.store.subscriptions.get(subscription_id)
        _require_enabled(subscription)
        targets = [subscription]
    else:
        targets = [s for s in await ctx.store.subscriptions.all() if s.enabled and s.matches(event)]
    return await _publish(ctx, ((event.id, target.id) for target in targets))
