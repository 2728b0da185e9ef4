"""What every handler needs, built once by the app's lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis
from starlette.requests import Request

from relay.delivery import Deliverer
from relay.settings import Settings
from relay.store import Store


@dataclass(frozen=True, slots=True)
class ApiContext:
    settings: Settings
    redis: Redis
    store: Store
    deliverer: Deliverer
    clock: Callable[[], float]


def context(request: Request) -> ApiContext:
    """The app's ApiContext (set on `app.state.context` at startup)."""
    return cast(ApiContext, request.app.state.context)
