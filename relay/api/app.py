"""The admin REST API application: `create_app(settings, ...)` and `serve_api`.

The web console (relay.console) is mounted at /ui in the same app.

Routes live in one module per resource; errors become problem+json in `problems`; every
`/v1` route needs a bearer token or API key and declares the scope it needs (`auth`). The
lifespan owns the Redis client (unless one is given) and the Deliverer used by test pings.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from relay.admin.context import open_admin_context
from relay.api import (
    dead_letters,
    deliveries,
    events,
    health,
    keys,
    sources,
    subscription_secrets,
    subscriptions,
    tenants,
)
from relay.api.auth import BearerAuth
from relay.console import console
from relay.serving import serve_asgi
from relay.settings import Settings
from relay.web.problems import EXCEPTION_HANDLERS


def all_routes() -> list[Route]:
    return [
        *health.routes(),
        *sources.routes(),
        *subscriptions.routes(),
        *subscription_secrets.routes(),
        *deliveries.routes(),
        *events.routes(),
        *dead_letters.routes(),
        *tenants.routes(),
        *keys.routes(),
    ]


def create_app(
    settings: Settings,
    *,
    redis: Redis | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The admin API. Without `redis`, the app opens (and closes) its own client for
    `settings.redis_url`; the lifespan also starts and closes a Deliverer for test pings."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_admin_context(settings, redis=redis, clock=clock) as ctx:
            app.state.context = ctx
            yield

    app = Starlette(
        routes=[*all_routes(), *console()],
        middleware=[Middleware(BearerAuth)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    # "/v1/sources/" is not "/v1/sources": a redirect would hide the 404 from clients.
    app.router.redirect_slashes = False
    return app


async def serve_api(settings: Settings, *, stop: asyncio.Event) -> None:
    """Serve the admin API on settings.api_host:api_port until `stop` is set."""
    await serve_asgi(
        create_app(settings), host=settings.api_host, port=settings.api_port, stop=stop
    )
