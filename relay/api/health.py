"""Unauthenticated operational routes: liveness, readiness, metrics and the OpenAPI document.

Readiness (`/readyz`) is 200 while Redis answers, has memory to write, does not evict keys
(`maxmemory-policy` other than noeviction, unless RELAY_ALLOW_EVICTING_REDIS=true) and no
role is down, else 503 problem+json. While Redis is out of memory no role can write its
heartbeat: the answer says "Redis is out of memory", not that the roles are down.
A role is down when it has published heartbeats but every instance has been silent for
`STALE_AFTER_S` (crashed or hung; a clean stop removes the instance at once). A role that
never ran is not expected, so an API-only deployment is ready; a crashed role counts until
an instance is back or `ROLE_FORGET_S` has passed. The body reports each role's live
instances and the age of its newest heartbeat.
"""

from __future__ import annotations

import asyncio
from functools import cache
from importlib import resources

from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.admin import health
from relay.core.models import RolePresence
from relay.web.context import context
from relay.web.problems import problem
from relay.web.routing import resource

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
            ready = await health.readiness(context(request))
    except (RedisError, OSError, TimeoutError) as exc:
        return problem(
            503,
            f"Redis does not answer: {type(exc).__name__}",
            slug="unavailable",
            extra={"redis": "unreachable"},
        )
    memory = ready.memory
    report = {
        "redis": "out_of_memory" if memory.is_out_of_memory else "ok",
        "redis_memory": {
            "maxmemory_policy": memory.policy,
            "evicting": memory.is_evicting,
            "used_bytes": memory.used_bytes,
            "max_bytes": memory.max_bytes,
        },
        "roles": {name: _role_report(p) for name, p in ready.roles.items()},
    }
    if memory.is_out_of_memory:
        return problem(
            503,
            "Redis is out of memory (maxmemory reached, writes refused): every role waits and "
            "resumes when memory frees; raise maxmemory or free memory",
            slug="unavailable",
            extra=report,
        )
    if ready.is_eviction_refused:
        return problem(
            503,
            ready.eviction_refusal,
            slug="unavailable",
            extra=report,
        )
    if ready.roles_down:
        return problem(
            503,
            f"no live instance of role {', '.join(ready.roles_down)}",
            slug="unavailable",
            extra={**report, "roles_down": ready.roles_down},
        )
    return JSONResponse({"status": "ok", **report})


def _role_report(presence: RolePresence) -> dict[str, float]:
    return {"instances": presence.instances, "last_seen_s": presence.last_seen_s}


async def metrics(request: Request) -> Response:
    body = await health.metrics_text(context(request))
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
