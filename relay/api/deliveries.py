"""Delivering again on demand: subscription test pings, attempts, replay, recover and
redelivery."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.admin import deliveries, validation
from relay.api import serializers
from relay.api.auth import requires
from relay.core.access import DELIVERIES_WRITE, SUBSCRIPTIONS_READ
from relay.web.bodies import read_json_object
from relay.web.context import context
from relay.web.query import list_params, query_choice, query_text
from relay.web.routing import resource


async def send_test_ping(request: Request) -> Response:
    subscription_id = request.path_params["subscription_id"]
    attempt = await deliveries.send_test_ping(context(request), subscription_id)
    return JSONResponse(serializers.attempt(attempt))


async def list_attempts(request: Request) -> Response:
    limit, cursor = list_params(request, filters=("outcome", "event_id"))
    page = await deliveries.list_attempts(
        context(request),
        request.path_params["subscription_id"],
        limit=limit,
        cursor=cursor,
        outcome=query_choice(request, "outcome", deliveries.OUTCOMES),
        event_id=query_text(request, "event_id", max_length=100),
    )
    return JSONResponse(serializers.listing(page, serializers.attempt))


async def _window(request: Request) -> tuple[int, int | None]:
    """The `{since, until?}` body of replay and recover."""
    data = await read_json_object(request, known=("since", "until"))
    since = validation.integer(
        validation.required(data, "since"), "since", low=0, high=validation.MAX_EPOCH_S
    )
    until = data.get("until")
    if until is not None:
        until = validation.integer(until, "until", low=0, high=validation.MAX_EPOCH_S)
    return since, until


async def replay(request: Request) -> Response:
    since, until = await _window(request)
    queued = await deliveries.replay(
        context(request), request.path_params["subscription_id"], since=since, until=until
    )
    return JSONResponse({"queued": queued}, status_code=202)


async def recover(request: Request) -> Response:
    since, until = await _window(request)
    queued = await deliveries.recover(
        context(request), request.path_params["subscription_id"], since=since, until=until
    )
    return JSONResponse({"queued": queued}, status_code=202)


async def redeliver(request: Request) -> Response:
    data = await read_json_object(request, known=("subscription_id",), required=False)
    subscription_id = data.get("subscription_id")
    if subscription_id is not None:
        subscription_id = validation.text(subscription_id, "subscription_id", max_length=100)
    queued = await deliveries.redeliver_event(
        context(request), request.path_params["event_id"], subscription_id
    )
    return JSONResponse({"queued": queued}, status_code=202)


def routes() -> list[Route]:
    return [
        resource(
            "/v1/subscriptions/{subscription_id}/test",
            post=requires(DELIVERIES_WRITE, send_test_ping),
        ),
        resource(
            "/v1/subscriptions/{subscription_id}/attempts",
            get=requires(SUBSCRIPTIONS_READ, list_attempts),
        ),
        resource(
            "/v1/subscriptions/{subscription_id}/replay", post=requires(DELIVERIES_WRITE, replay)
        ),
        resource(
            "/v1/subscriptions/{subscription_id}/recover", post=requires(DELIVERIES_WRITE, recover)
        ),
        resource("/v1/events/{event_id}/redeliver", post=requires(DELIVERIES_WRITE, redeliver)),
    ]
