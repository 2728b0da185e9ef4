"""Subscription health as the API and the console show it (definitions in relay.core.health)."""

from __future__ import annotations

from collections.abc import Sequence

from relay.admin.context import AdminContext
from relay.core.health import SubscriptionHealth, subscription_health
from relay.core.models import Subscription


async def health_of(
    ctx: AdminContext, subscriptions: Sequence[Subscription]
) -> dict[str, SubscriptionHealth]:
    """Each subscription's health by id; one Redis round trip for the whole page."""
    if not subscriptions:
        return {}
    records, counts = await ctx.store.health.read_many(
        [sub.id for sub in subscriptions], now=ctx.clock()
    )
    return {
        sub.id: subscription_health(sub, record, ok_1h=ok, failed_1h=failed)
        for sub, record, (ok, failed) in zip(subscriptions, records, counts, strict=True)
    }


async def health_of_one(ctx: AdminContext, subscription: Subscription) -> SubscriptionHealth:
    return (await health_of(ctx, [subscription]))[subscription.id]
