"""What `relay dev` sets up before the roles start: a source polling the simulator's demo
account, and the demo receiver subscribed."""

from __future__ import annotations

import time

from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis

DEMO_USERNAME = "demo@reseller"
DEMO_PASSWORD = "demo"  # noqa: S105  (the simulator's demo account)
DEMO_DESCRIPTION = "relay dev demo receiver"


async def seed_demo(settings: Settings, *, simulator_url: str, receiver_url: str) -> str:
    """Point a source at the simulator and subscribe the receiver; returns its secret."""
    redis = async_redis(settings.require_redis_url())
    try:
        store = Store.create(redis, settings)
        now = time.time()
        await store.sources.ensure(
            username=DEMO_USERNAME,
            password=DEMO_PASSWORD,
            base_url=simulator_url,
            poll_interval_s=min(settings.poll_interval_s, 1.0),
            start_from=None,
            now=now,
        )
        for subscription in await store.subscriptions.all():
            if subscription.url == receiver_url and subscription.description == DEMO_DESCRIPTION:
                await store.subscriptions.update(subscription.id, enabled=True)
                return subscription.secrets[0].value
        created = await store.subscriptions.create(
            url=receiver_url,
            event_types=None,
            source_ids=None,
            description=DEMO_DESCRIPTION,
            headers={},
            enabled=True,
            now=now,
        )
        return created.secrets[0].value
    finally:
        await redis.aclose()
