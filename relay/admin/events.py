"""The events feed and single events."""

from __future__ import annotations

import json
from typing import Any

from relay.admin.context import AdminContext
from relay.core.events import body_for
from relay.core.models import PAYLOAD_STANDARD, Event, Listing

DEFAULT_SAMPLES = 10


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


async def sample_bodies(
    ctx: AdminContext,
    *,
    limit: int = DEFAULT_SAMPLES,
    type: str | None = None,
    payload_format: str = PAYLOAD_STANDARD,
) -> list[Any]:
    """The newest stored events as the JSON bodies a subscription of `payload_format` would
    receive (Zapier's performList and sample data); empty when there are none yet."""
    page = await ctx.store.events.page(limit=limit, cursor=None, type=type, tenant=ctx.tenant)
    return [json.loads(body_for(event, payload_format)) for event in page.items]
