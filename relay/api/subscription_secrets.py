"""`/v1/subscriptions/{id}/secret`: the only routes (besides create) that show a secret."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.admin import secrets, subscriptions
from relay.api import serializers
from relay.api.auth import requires
from relay.core.access import SUBSCRIPTIONS_WRITE
from relay.web.bodies import read_json_object
from relay.web.context import context
from relay.web.routing import resource

_NO_STORE = {"Cache-Control": "no-store"}


async def get_secret(request: Request) -> Response:
    subscription_id = request.path_params["subscription_id"]
    subscription = await subscriptions.get_subscription(context(request), subscription_id)
    return JSONResponse({"secret": secrets.current_secret(subscription)}, headers=_NO_STORE)


async def rotate_secret(request: Request) -> Response:
    data = await read_json_object(request, known=("overlap_seconds",), required=False)
    overlap_s = secrets.DEFAULT_OVERLAP_S
    if "overlap_seconds" in data:
        overlap_s = secrets.overlap_seconds(data["overlap_seconds"])
    rotation = await secrets.rotate_secret(
        context(request), request.path_params["subscription_id"], overlap_s=overlap_s
    )
    return JSONResponse(serializers.rotation(rotation), headers=_NO_STORE)


def routes() -> list[Route]:
    return [
        # A secret lets its holder forge webhooks: reading one needs the write scope.
        resource(
            "/v1/subscriptions/{subscription_id}/secret",
            get=requires(SUBSCRIPTIONS_WRITE, get_secret),
        ),
        resource(
            "/v1/subscriptions/{subscription_id}/secret/rotate",
            post=requires(SUBSCRIPTIONS_WRITE, rotate_secret),
        ),
    ]
