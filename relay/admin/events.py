"""The events feed and single events."""

from __future__ import annotations

from relay.admin.context import AdminContext
from relay.core.models import Event, Listing


async def list_events(
    ctx: AdminContext,
    *,
    limit: int,
    cursor: str | None,
    type: str | None = None,
    source_id: str | None = None,
) -> Listing[Event]:
    """Recent events, newest first, optionally of one type or source."""
    return await ctx.store.events.page(
        limit=limit, cursor=cursor, type=type, source_id=source_id, tenant=ctx.tenant
    )


async def get_event(ctx: AdminContext, event_id: str) -> Event:
    """The event; raises NotFound (also once it expired)."""
    return await ctx.store.events.get(event_id, tenant=ctx.tenant)
