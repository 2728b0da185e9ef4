"""The events feed and single events."""

from __future__ import annotations

import json
from typing import Any

from relay.admin.context import AdminContext
from relay.core.events import body_for
from relay.core.models import PAYLOAD_STANDARD, Attempt, Event, EventDelivery, Listing, Subscription
from relay.store.event_deliveries import delivery_state
from relay.store.search import EventQuery

DEFAULT_SAMPLES = 10


async def list_events(
    ctx: AdminContext,
    *,
    limit: int,
    cursor: str | None,
    type: str | None = None,
    source_id: str | None = None,
    document_id: str | None = None,
    phone: str | None = None,
    sender: str | None = None,
    recipient: str | None = None,
    since: int | None = None,
    until: int | None = None,
) -> Listing[Event]:
    """Recent events, newest first, filtered by every argument given (`sender` is the
    message's `from`, `phone` its `from` or `recipient`, each exactly as the upstream sent
    it; `since`/`until` the message time, inclusive). With only `type`/`source_id` the feed
    order (as recorded); with any other filter message time order (store/search.py)."""
    query = EventQuery(
        type=type,
        source_id=source_id,
        tenant=ctx.tenant,
        document_id=document_id,
        phone=phone,
        sender=sender,
        recipient=recipient,
        since=since,
        until=until,
    )
    return await ctx.store.events.page(limit=limit, cursor=cursor, query=query)


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


async def _visible_subscriptions(ctx: AdminContext, ids: list[str]) -> list[Subscription]:
    found = await ctx.store.subscriptions.get_many(ids)
    return [s for s in found if ctx.tenant is None or s.tenant_id == ctx.tenant]


async def event_deliveries(ctx: AdminContext, event_id: str) -> list[EventDelivery]:
    """One row per subscription the event went to: those with an attempt recorded, and the
    enabled or disabled ones it is routed to that have none yet (they match it and existed
    when it was recorded). Deleted subscriptions are left out, and a tenant sees only its own
    subscriptions' rows. Raises NotFound (another tenant's event, or an expired one)."""
    event = await ctx.store.events.get(event_id, tenant=ctx.tenant)
    attempted = await ctx.store.event_deliveries.subscription_ids(event.id)
    subscriptions = {s.id: s for s in await _visible_subscriptions(ctx, attempted)}
    await ctx.routes.refresh(ctx.store.subscriptions)  # one round trip when unchanged
    for sub in [*ctx.routes.candidates(event), *ctx.routes.disabled()]:
        if ctx.tenant is not None and sub.tenant_id != ctx.tenant:
            continue
        if sub.id not in subscriptions and sub.matches(event) and sub.predates(event):
            subscriptions[sub.id] = sub
    ordered = sorted(subscriptions.values(), key=lambda s: (s.created_at, s.id))
    records = await ctx.store.event_deliveries.records([(event.id, s.id) for s in ordered])
    rows = []
    for sub, record in zip(ordered, records, strict=True):
        last = record.last
        rows.append(
            EventDelivery(
                subscription_id=sub.id,
                url=sub.url,
                state=delivery_state(record, is_enabled=sub.enabled),
                attempts=0 if last is None else last.count,
                last_status_code=None if last is None else last.status_code,
                last_attempt_at=None if last is None else last.at,
                next_attempt_at=record.next_attempt_at,
            )
        )
    return rows


async def event_attempts(ctx: AdminContext, event_id: str) -> list[Attempt]:
    """Every attempt of the event (all subscriptions still there; a tenant's own only),
    newest first, at most the last 100. Raises NotFound."""
    event = await ctx.store.events.get(event_id, tenant=ctx.tenant)
    attempts = await ctx.store.event_deliveries.attempts(event.id)
    ids = list(dict.fromkeys(a.subscription_id for a in attempts))
    visible = {s.id for s in await _visible_subscriptions(ctx, ids)}
    return [a for a in attempts if a.subscription_id in visible]
