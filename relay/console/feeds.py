"""Console pages for what already happened: the events feed with redelivery, and dead
letters with retry (one, or all of them)."""

from __future__ import annotations

from starlette.responses import Response

from relay.admin import dead_letters, deliveries, events, subscriptions, validation
from relay.console.pages import Page, page, redirect
from relay.core.models import EVENT_TYPES
from relay.web.query import page_params, query_choice, query_text

SUBSCRIPTION_CHOICES = 100


@page
async def list_events(current: Page) -> Response:
    request = current.request
    limit, cursor = page_params(request)
    event_type = query_choice(request, "type", EVENT_TYPES) or None
    source_id = query_text(request, "source_id", max_length=100) or None
    found = await events.list_events(
        current.ctx, limit=limit, cursor=cursor, type=event_type, source_id=source_id
    )
    choices = await subscriptions.list_subscriptions(
        current.ctx, limit=SUBSCRIPTION_CHOICES, cursor=None
    )
    return current.render(
        "events.html",
        events=found,
        event_types=EVENT_TYPES,
        event_type=event_type or "",
        source_id=source_id or "",
        subscriptions=[s for s in choices.items if s.enabled],
    )


@page
async def redeliver(current: Page) -> Response:
    """Queue the event again to one subscription, or to every enabled one it matches."""
    chosen = current.form.get("subscription_id").strip() or None
    if chosen is not None:
        chosen = validation.text(chosen, "subscription_id", max_length=100)
    event_id = current.request.path_params["event_id"]
    queued = await deliveries.redeliver_event(current.ctx, event_id, chosen)
    return redirect("/ui/events", done="redelivered", n=queued)


@page
async def list_dead_letters(current: Page) -> Response:
    limit, cursor = page_params(current.request)
    found = await dead_letters.list_dead_letters(current.ctx, limit=limit, cursor=cursor)
    ids = sorted({dl.subscription_id for dl in found.items})
    urls = {sub.id: sub.url for sub in await subscriptions.subscriptions_by_id(current.ctx, ids)}
    return current.render("dead_letters.html", dead_letters=found, urls=urls)


@page
async def retry_dead_letter(current: Page) -> Response:
    dead_letter_id = current.request.path_params["dead_letter_id"]
    await dead_letters.retry_dead_letter(current.ctx, dead_letter_id)
    return redirect("/ui/dead-letters", done="retried")


@page
async def retry_all_dead_letters(current: Page) -> Response:
    queued = await dead_letters.retry_dead_letters(current.ctx)
    return redirect("/ui/dead-letters", done="retried-all", n=queued)
