"""`/v1/events`: the feed of recent events, newest first (Zapier-style polling, sample data),
search by documentId, number and message time, and each event's deliveries and attempts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.admin import events
from relay.admin.validation import MAX_EPOCH_S, MAX_LIMIT
from relay.api import serializers
from relay.api.auth import requires
from relay.core.access import EVENTS_READ
from relay.core.errors import InvalidInput
from relay.core.models import EVENT_TYPES, PAYLOAD_FORMATS, PAYLOAD_STANDARD
from relay.web.context import context
from relay.web.query import list_params, query_choice, query_integer, query_text, reject_unknown
from relay.web.routing import resource

FILTERS = ("type", "source_id", "document_id", "phone", "from", "recipient", "since", "until")
MAX_NUMBER = 50


def _number(request: Request, name: str) -> str | None:
    """A phone number exactly as the upstream sent it; a leading space is refused because it
    is almost always a `+` sent unencoded (a query string decodes `+` to a space)."""
    value = query_text(request, name, max_length=MAX_NUMBER)
    if value is not None and value.startswith(" "):
        raise InvalidInput(
            f"{name} starts with a space: send a leading + as %2B (numbers are matched exactly "
            "as the upstream sent them)",
            field=name,
        )
    return value


async def list_events(request: Request) -> Response:
    limit, cursor = list_params(request, filters=FILTERS)
    page = await events.list_events(
        context(request),
        limit=limit,
        cursor=cursor,
        type=query_choice(request, "type", EVENT_TYPES),
        source_id=query_text(request, "source_id", max_length=100),
        document_id=query_text(request, "document_id", max_length=100),
        phone=_number(request, "phone"),
        sender=_number(request, "from"),
        recipient=_number(request, "recipient"),
        since=query_integer(request, "since", low=0, high=MAX_EPOCH_S),
        until=query_integer(request, "until", low=0, high=MAX_EPOCH_S),
    )
    return JSONResponse(serializers.listing(page, serializers.event))


async def event_deliveries(request: Request) -> Response:
    reject_unknown(request, ())
    rows = await events.event_deliveries(context(request), request.path_params["event_id"])
    return JSONResponse({"data": serializers.items(rows, serializers.event_delivery)})


async def event_attempts(request: Request) -> Response:
    reject_unknown(request, ())
    rows = await events.event_attempts(context(request), request.path_params["event_id"])
    return JSONResponse({"data": serializers.items(rows, serializers.event_attempt)})


async def event_samples(request: Request) -> Response:
    """A bare array of bodies as they would be sent (Zapier's performList wants no envelope)."""
    reject_unknown(request, ("type", "format", "limit"))
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
        resource("/v1/events/{event_id}/deliveries", get=requires(EVENTS_READ, event_deliveries)),
        resource("/v1/events/{event_id}/attempts", get=requires(EVENTS_READ, event_attempts)),
    ]
