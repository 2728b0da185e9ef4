"""What every admin operation is given: built once by the app's lifespan."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from relay.core.access import OPERATOR, Principal
from relay.delivery.deliverer import Deliverer
from relay.delivery.routing import RoutingIndex
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis


@dataclass(frozen=True, slots=True)
class AdminContext:
    settings: Settings
    store: Store
    deliverer: Deliverer  # test pings are sent from the API process
    clock: Callable[[], float]
    principal: Principal = OPERATOR  # who asks; the API and console set it per request
    # which subscriptions an event goes to, kept current incrementally (redeliver to all)
    routes: RoutingIndex = dataclasses.field(default_factory=RoutingIndex)

    @property
    def tenant(self) -> str | None:
        """The tenant every store read and write is limited to (None: no limit)."""
        return self.principal.tenant_id

    def acting_as(self, principal: Principal) -> AdminContext:
        """This context for one request by `principal`."""
        return dataclasses.replace(self, principal=principal)


@contextlib.asynccontextmanager
async def open_admin_context(
    settings: Settings, *, redis: Redis | None = None, clock: Callable[[], float] = time.time
) -> AsyncIterator[AdminContext]:
    """The context for one admin API process: its Redis client (unless `redis` is given,
    which stays the caller's to close), the stores, and a started Deliverer for test pings."""
    client = redis if redis is not None else async_redis(settings.require_redis_url())
    try:
        store = Store.create(client, settings)
        deliverer = Deliverer(store=store, settings=settings)
        await deliverer.start()
        try:
            yield AdminContext(settings=settings, store=store, deliverer=deliverer, clock=clock)
        finally:
            await deliverer.close()
    finally:
        if redis is None:
            await client.aclose()
