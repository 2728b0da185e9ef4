"""Console pages for events as messages: the list (searchable by phone number, documentId
and message time, each row with its delivery states at a glance) and one event's page (its
fields, one delivery row per subscription, every attempt, and redelivery).

Every read goes through `relay.admin.events` with the page's context, so a tenant key's
session (the customer portal) finds only its tenant's messages.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from relay.admin import deliveries, events, subscriptions, validation
from relay.console.message_view import epoch_of, form_time, message_of, state_counts
from relay.console.pages import Page, list_context, page, redirect
from relay.core.errors import NotFound
from relay.core.models import EVENT_TYPES
from relay.web.query import page_params, query_choice

SUBSCRIPTION_CHOICES = 100
GONE = (
    "Event {event_id} not found. Events are kept for RELAY_EVENT_RETENTION seconds, and "
    "test pings are never stored."
)


def _searched(request: Request, name: str, *, max_length: int) -> str:
    """A search field, stripped; "" when absent or left blank (the form sends every field)."""
    value = request.query_params.get(name, "").strip()
    return validation.text(value, name, max_length=max_length) if value else ""


@page
async def list_events(current: Page) -> Response:
    """Messages newest first, narrowed by the search form's fields."""
    request = current.request
    ctx = list_context(current)
    limit, cursor = page_params(request)
    phone = _searched(request, "phone", max_length=64)
    document_id = _searched(request, "document_id", max_length=200)
    event_type = query_choice(request, "type", ("", *EVENT_TYPES)) or ""
    source_id = _searched(request, "source_id", max_length=100)
    since = epoch_of(_searched(request, "since", max_length=40), "since")
    until = epoch_of(_searched(request, "until", max_length=40), "until")
    found = await events.list_events(
        ctx,
        limit=limit,
        cursor=cursor,
        type=event_type or None,
        source_id=source_id or None,
        document_id=document_id or None,
        phone=phone or None,
        since=since,
        until=until,
    )
    # One after another: gathered, the reads queue on the connection pool and take longer.
    rows = [
        (
            message_of(event),
            state_counts(d.state for d in await events.event_deliveries(ctx, event.id)),
        )
        for event in found.items
    ]
    search = {
        "phone": phone,
        "document_id": document_id,
        "type": event_type,
        "source_id": source_id,
        "since": form_time(since),
        "until": form_time(until),
    }
    kept = {name: value for name, value in search.items() if value}
    tenant = request.query_params.get("tenant", "")
    if tenant and current.ctx.principal.is_operator:
        kept["tenant"] = tenant
    return current.render(
        "events.html",
        events=found,
        rows=rows,
        event_types=EVENT_TYPES,
        search=search,
        is_searching=bool(kept),
        pager_query=("&" + urlencode(kept)) if kept else "",
    )


@page
async def show_event(current: Page) -> Response:
    """One event: its message, its delivery to each subscription, and every attempt."""
    ctx = current.ctx
    event_id = current.request.path_params["event_id"]
    try:
        event = await events.get_event(ctx, event_id)
    except NotFound:
        return current.error(404, GONE.format(event_id=event_id[:100]))
    delivered, attempts, choices = await asyncio.gather(
        events.event_deliveries(ctx, event_id),
        events.event_attempts(ctx, event_id),
        subscriptions.list_subscriptions(ctx, limit=SUBSCRIPTION_CHOICES, cursor=None),
    )
    routed = await subscriptions.subscriptions_by_id(ctx, [d.subscription_id for d in delivered])
    return current.render(
        "event.html",
        message=message_of(event),
        deliveries=delivered,
        counts=state_counts(d.state for d in delivered),
        attempts=attempts,
        urls={d.subscription_id: d.url for d in delivered},
        enabled={sub.id for sub in routed if sub.enabled},
        subscriptions=[sub for sub in choices.items if sub.enabled],
    )


@page
async def redeliver(current: Page) -> Response:
    """Queue the event again to one subscription, or to every enabled one it matches."""
    chosen = current.form.get("subscription_id").strip() or None
    if chosen is not None:
        chosen = validation.text(chosen, "subscription_id", max_length=100)
    event_id = current.request.path_params["event_id"]
    queued = await deliveries.redeliver_event(current.ctx, event_id, chosen)
    return redirect(f"/ui/events/{event_id}", done="redelivered", n=queued)
