"""Unauthenticated operational routes: liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
from functools import cache
from importlib import resources

from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.api.context import context
from relay.api.problems import problem
from relay.api.routing import resource
from relay.store.stats import heartbeats, queue_depths
from relay.telemetry import render_metrics

READY_TIMEOUT_S = 2.0


@cache
def openapi_document() -> bytes:
    """The shipped openapi.yaml (read from the installed package, whatever the cwd)."""
    return resources.files("relay.api").joinpath("openapi.yaml").read_bytes()


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await context(request).redis.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        return problem(503, f"Redis does not answer: {type(exc).__name__}", slug="unavailable")
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    ctx = context(request)
    keys = ctx.store.keys
    beats, depths = await asyncio.gather(heartbeats(ctx.redis, keys), queue_depths(ctx.redis, keys))
    body = render_metrics(role="api", beats=beats, depths=depths)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    return Response(openapi_document(), media_type="application/yaml")


def routes() -> list[Route]:
    return [
        resource("/healthz", get=healthz),
        resource("/readyz", get=readyz),
        resource("/metrics", get=metrics),
        resource("/openapi.yaml", get=openapi),
    ]
