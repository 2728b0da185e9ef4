"""`relay dispatcher`: first delivery attempts from the stream until stopped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from relay.delivery.deliverer import Deliverer
from relay.delivery.dispatcher import Dispatcher, reclaim_idle_s
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis, sync_redis


@contextlib.asynccontextmanager
async def open_dispatcher(
    settings: Settings, *, reclaim_after_s: float | None = None
) -> AsyncIterator[Dispatcher]:
    """A dispatcher with its Redis clients and HTTP pool, closed on exit. Drive it with
    `run(stop)` or step it with `run_until_idle()`. `reclaim_after_s` shortens the
    idle-time reclaim (tests)."""
    url = settings.require_redis_url()
    client = async_redis(url)
    rq_client = sync_redis(url)
    store = Store.create(client, settings)
    deliverer = Deliverer(store=store, settings=settings)
    await deliverer.start()
    try:
        yield Dispatcher(
            store=store,
            deliverer=deliverer,
            settings=settings,
            rq_client=rq_client,
            reclaim_after_s=reclaim_after_s or reclaim_idle_s(settings),
        )
    finally:
        await deliverer.close()
        await client.aclose()
        rq_client.close()


async def run_dispatcher(
    settings: Settings, *, stop: asyncio.Event, reclaim_after_s: float | None = None
) -> None:
    """Deliver first attempts until `stop` is set; then finish in-flight deliveries and
    leave unsettled entries to be reclaimed. `reclaim_after_s` shortens the reclaim (tests)."""
    async with open_dispatcher(settings, reclaim_after_s=reclaim_after_s) as dispatcher:
        await dispatcher.run(stop)
