"""What the operational routes and the console overview read: readiness, metrics, queues."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from relay.admin.context import AdminContext
from relay.core.models import MinuteCounts, QueueDepths, RolePresence
from relay.observability.telemetry import STALE_AFTER_S, render_metrics
from relay.store.heartbeats import heartbeats, role_presence
from relay.store.stats import queue_depths, source_cursors


@dataclass(frozen=True, slots=True)
class Readiness:
    roles: dict[str, RolePresence]

    @property
    def roles_down(self) -> list[str]:
        """Roles whose every instance went silent without a clean stop."""
        return [name for name, presence in self.roles.items() if presence.is_down]


async def readiness(ctx: AdminContext) -> Readiness:
    """Ping Redis and read the roles' presence; raises RedisError or OSError if Redis fails."""
    await ctx.store.redis.ping()
    roles = await role_presence(
        ctx.store.redis, ctx.store.keys, now=ctx.clock(), stale_after_s=STALE_AFTER_S
    )
    return Readiness(roles=roles)


async def metrics_text(ctx: AdminContext) -> bytes:
    """The Prometheus exposition of every role, the queues and the sources' cursor lag."""
    redis, keys = ctx.store.redis, ctx.store.keys
    beats, depths, cursors = await asyncio.gather(
        heartbeats(redis, keys), queue_depths(redis, keys), source_cursors(redis, keys)
    )
    return render_metrics(role="api", beats=beats, depths=depths, cursors=cursors, now=ctx.clock())


async def depths(ctx: AdminContext) -> QueueDepths:
    """Every queue's depth."""
    return await queue_depths(ctx.store.redis, ctx.store.keys)


async def minute_counts(
    ctx: AdminContext, minutes: list[int], *, subscription_ids: list[str]
) -> list[MinuteCounts]:
    """Attempt counts per epoch minute, overall and for the subscriptions asked."""
    return await ctx.store.attempts.minute_counts(minutes, subscription_ids=subscription_ids)
