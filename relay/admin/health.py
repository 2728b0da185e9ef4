"""What the operational routes and the console overview read: readiness, metrics, queues."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from relay.admin.context import AdminContext
from relay.core.models import MinuteCounts, QueueDepths, RolePresence
from relay.observability.telemetry import STALE_AFTER_S, render_metrics
from relay.store.connection import eviction_refusal
from relay.store.heartbeats import heartbeats, role_presence
from relay.store.server import RedisMemory, read_memory
from relay.store.stats import queue_depths, source_cursors


@dataclass(frozen=True, slots=True)
class Readiness:
    roles: dict[str, RolePresence]
    memory: RedisMemory
    allow_evicting: bool  # RELAY_ALLOW_EVICTING_REDIS

    @property
    def roles_down(self) -> list[str]:
        """Roles whose every instance went silent without a clean stop. None while Redis is
        out of memory: heartbeats cannot be written then, the roles wait and go on."""
        if self.memory.is_out_of_memory:
            return []
        return [name for name, presence in self.roles.items() if presence.is_down]

    @property
    def is_eviction_refused(self) -> bool:
        """Redis evicts keys and the operator did not allow it."""
        return self.memory.is_evicting and not self.allow_evicting

    @property
    def eviction_refusal(self) -> str:
        """Why an evicting Redis is refused, naming the settings."""
        return eviction_refusal(self.memory.policy or "unknown")


async def readiness(ctx: AdminContext) -> Readiness:
    """Ping Redis, read its memory state and the roles' presence; raises RedisError or
    OSError if Redis fails."""
    await ctx.store.redis.ping()
    memory = await read_memory(ctx.store.redis, ctx.store.keys)
    roles = await role_presence(
        ctx.store.redis, ctx.store.keys, now=ctx.clock(), stale_after_s=STALE_AFTER_S
    )
    return Readiness(roles=roles, memory=memory, allow_evicting=ctx.settings.allow_evicting_redis)


async def metrics_text(ctx: AdminContext) -> bytes:
    """The Prometheus exposition of every role, the queues and the sources' cursor lag."""
    redis, keys = ctx.store.redis, ctx.store.keys
    beats, depths, cursors, memory = await asyncio.gather(
        heartbeats(redis, keys),
        queue_depths(redis, keys),
        source_cursors(redis, keys),
        read_memory(redis, keys),
    )
    return render_metrics(
        role="api", beats=beats, depths=depths, cursors=cursors, memory=memory, now=ctx.clock()
    )


async def depths(ctx: AdminContext) -> QueueDepths:
    """Every queue's depth."""
    return await queue_depths(ctx.store.redis, ctx.store.keys)


async def minute_counts(
    ctx: AdminContext, minutes: list[int], *, subscription_ids: list[str]
) -> list[MinuteCounts]:
    """Attempt counts per epoch minute, overall and for the subscriptions asked."""
    return await ctx.store.attempts.minute_counts(minutes, subscription_ids=subscription_ids)
