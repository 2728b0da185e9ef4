from __future__ import annotations

import redis.asyncio

from relay.observability.metrics import DELIVERIES
from relay.observability.telemetry import HeartbeatPublisher, render_metrics
from relay.store.heartbeats import heartbeats
from relay.store.keys import Keys
from relay.store.stats import queue_depths


async def test_published_heartbeat_appears_in_merged_metrics_with_its_role(
    redis_url: str, aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    DELIVERIES.labels(subscription_id="sub_telemetry", outcome="delivered").inc(3)
    publisher = HeartbeatPublisher(redis_url=redis_url, keys=keys, role="dispatcher")
    publisher.publish_once()

    beats = await heartbeats(aredis, keys)
    assert [b.role for b in beats] == ["dispatcher"]
    depths = await queue_depths(aredis, keys)
    text = render_metrics(role="api", beats=beats, depths=depths).decode()

    assert 'relay_role_instances{role="dispatcher"} 1.0' in text
    assert "relay_dead_letters 0.0" in text
    delivered = [
        line
        for line in text.splitlines()
        if line.startswith("relay_deliveries_total{") and 'subscription_id="sub_telemetry"' in line
    ]
    assert delivered and all(line.endswith(" 3.0") for line in delivered)
    assert any('role="api"' in line for line in delivered)

    publisher.stop()
    assert await heartbeats(aredis, keys) == []


async def test_queue_depths_count_the_stream_and_dead_letters(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    await aredis.xadd(keys.stream, {"e": "evt_1"})
    await aredis.xadd(keys.stream, {"e": "evt_2"})
    await aredis.zadd(keys.dead_letters, {"dl_1": 1})
    depths = await queue_depths(aredis, keys)
    assert (depths.stream_backlog, depths.stream_pending, depths.dead_letters) == (2, 0, 1)
