"""`/v1/subscriptions/{id}/secret`: the only routes (besides create) that show a secret."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.api import serializers, validation
from relay.api.bodies import read_json_object
from relay.api.context import context
from relay.api.routing import resource

DEFAULT_OVERLAP_S = 86400
MAX_OVERLAP_S = 7 * 86400
_NO_STORE = {"Cache-Control": "no-store"}


async def get_secret(request: Request) -> Response:
    ctx = context(request)
    subscription = await ctx.store.subscriptions.get(request.path_params["subscription_id"])
    return JSONResponse({"secret": serializers.current_secret(subscription)}, headers=_NO_STORE)


async def rotate_secret(request: Request) -> Response:
    ctx = context(request)
    data = await read_json_object(request, known=("overlap_seconds",), required=False)
    overlap_s = DEFAULT_OVERLAP_S
    if "overlap_seconds" in data:
        overlap_s = validation.integer(
            data["overlap_seconds"], "overlap_seconds", low=0, high=MAX_OVERLAP_S
        )
    subscription = await ctx.store.subscriptions.rotate_secret(
        request.path_params["subscription_id"], overlap_s=overlap_s, now=ctx.clock()
    )
    return JSONResponse({"secret": serializers.current_secret(subscription)}, headers=_NO_STORE)


def routes() -> list[Route]:
    return [
        resource("/v1/subscriptions/{subscription_id}/secret", get=get_secret),
        resource("/v1/subscriptions/{subscription_id}/secret/rotate", post=rotate_secret),
    ]
