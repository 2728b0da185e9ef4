"""Console pages for what already happened: the events feed with redelivery, and dead
letters with retry (one, or all of them)."""

from __future__ import annotations

from starlette.responses import Response

from relay.api import validation
from relay.api.deliveries import redeliver_event
from relay.api.ui.pages import Page, page, redirect
from relay.core.errors import NotFound
from relay.core.models import EVENT_TYPES

SUBSCRIPTION_CHOICES = 100
RETRY_ALL_BATCH = 100
RETRY_ALL_MAX = 10_000  # one click never loops forever while new dead letters arrive


@page
async def list_events(current: Page) -> Response:
    request = current.request
    store = current.ctx.store
    limit, cursor = validation.page_params(request)
    event_type = validation.query_choice(request, "type", EVENT_TYPES) or None
    source_id = validation.query_text(request, "source_id", max_length=100) or None
    events = await store.events.page(
        limit=limit, cursor=cursor, type=event_type, source_id=source_id
    )
    choices = await store.subscriptions.page(limit=SUBSCRIPTION_CHOICES, cursor=None)
    return current.render(
        "events.html",
        events=events,
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
    queued = await redeliver_event(current.ctx, current.request.path_params["event_id"], chosen)
    return redirect("/ui/events", done="redelivered", n=queued)


@page
async def list_dead_letters(current: Page) -> Response:
    limit, cursor = validation.page_params(current.request)
    dead_letters = await current.ctx.store.dead_letters.page(limit=limit, cursor=cursor)
    return current.render("dead_letters.html", dead_letters=dead_letters)


@page
async def retry_dead_letter(current: Page) -> Response:
    await current.ctx.store.dead_letters.retry(current.request.path_params["dead_letter_id"])
    return redirect("/ui/dead-letters", done="retried")


@page
async def retry_all_dead_letters(current: Page) -> Response:
    """Retry every dead letter there is (each retry removes it, so the first page refills)."""
    store = current.ctx.store.dead_letters
    queued = 0
    while queued < RETRY_ALL_MAX:
        batch = await store.page(limit=RETRY_ALL_BATCH, cursor=None)
        if not batch.items:
            break
        for dead_letter in batch.items:
            try:
                await store.retry(dead_letter.id)
                queued += 1
            except NotFound:  # retried by someone else meanwhile
                continue
    return redirect("/ui/dead-letters", done="retried-all", n=queued)
