"""`/v1/events`: the feed of recent events, newest first (Zapier-style polling, sample data)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.admin import events
from relay.admin.validation import MAX_LIMIT
from relay.api import serializers
from relay.api.auth import requires
from relay.core.access import EVENTS_READ
from relay.core.models import EVENT_TYPES, PAYLOAD_FORMATS, PAYLOAD_STANDARD
from relay.web.context import context
from relay.web.query import page_params, query_choice, query_integer, query_text
from relay.web.routing import resource


async def list_events(request: Request) -> Response:
    limit, cursor = page_params(request)
    page = await events.list_events(
        context(request),
        limit=limit,
        cursor=cursor,
        type=query_choice(request, "type", EVENT_TYPES),
        source_id=query_text(request, "source_id", max_length=100),
    )
    return JSONResponse(serializers.listing(page, serializers.event))


async def event_samples(request: Request) -> Response:
    """A bare array of bodies as they would be sent (Zapier's performList wants no envelope)."""
    limit = query_integer(request, "limit", low=1, high=MAX_LIMIT)
    bodies = await events.sample_bodies(
        context(request),
        limit=events.DEFAULT_SAMPLES if limit is None else limit,
        type=query_choice(request, "type", EVENT_TYPES),
        payload_format=query_choice(request, "format", PAYLOAD_FORMATS) or PAYLOAD_STANDARD,
    )
    return JSONResponse(bodies)


async def get_event(request: Request) -> Response:
    event = await events.get_event(context(request), request.path_params["event_id"])
    return JSONResponse(serializers.event(event))


def routes() -> list[Route]:
    return [
        resource("/v1/events", get=requires(EVENTS_READ, list_events)),
        # before {event_id}, which it fits
        resource("/v1/events/samples", get=requires(EVENTS_READ, event_samples)),
        resource("/v1/events/{event_id}", get=requires(EVENTS_READ, get_event)),
    ]
