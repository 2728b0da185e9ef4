"""`relay poller`: ensure the default source, then poll the MC5 sources until stopped."""

from __future__ import annotations

import asyncio

from relay.admin.sources import ensure_default_source
from relay.ingest.mc5_client import MC5Client
from relay.ingest.poller import Poller
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis


async def run_poller(settings: Settings, *, stop: asyncio.Event) -> None:
    """The poller role: ensure the default source (MC5_USERNAME/MC5_PASSWORD, if set), then
    poll until `stop` is set; releases its locks and closes its clients on the way out."""
    redis = async_redis(settings.require_redis_url())
    mc5 = MC5Client(
        deadline_s=settings.mc5_deadline_s,
        max_response_bytes=settings.mc5_max_response_bytes,
        max_connections=settings.poll_concurrency,
    )
    try:
        await ensure_default_source(settings, Store.create(redis, settings))
        await Poller(settings=settings, redis=redis, mc5=mc5).run(stop)
    finally:
        await mc5.aclose()
        await redis.aclose()
