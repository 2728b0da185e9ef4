"""The retry worker as a real `relay worker` process: its job threads drain subscriptions side
by side, so a hanging subscriber's backlog never holds back another subscriber's retries."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import pytest

from relay.core.events import event_from_message
from relay.core.models import Message
from relay.delivery.jobs import retry_queue_for
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis, sync_redis
from relay.store.retry_queue import RetryRequest
from tests.support import Receiver, free_port, serve, wait_until_sync
from tests.workers.crash_harness import RoleProcesses

TIMEOUT_S = 3  # every attempt to the hanging subscriber takes this long
BACKLOG = 200


@pytest.mark.timeout(120)
def test_a_hanging_subscriber_never_holds_back_another_subscribers_retries(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    hanging, quiet = Receiver(delay_s=30), Receiver()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "MC5_", "REDIS_"))
    } | {
        "REDIS_URL": redis_url,
        "RELAY_KEY_PREFIX": key_prefix,
        "RELAY_ADMIN_TOKEN": "retry-worker-token-0123456789",
        "RELAY_API_PORT": str(free_port()),
        "RELAY_ALLOW_PRIVATE_TARGETS": "true",
        "RELAY_DELIVERY_TIMEOUT": str(TIMEOUT_S),
        "RELAY_RETRY_SCHEDULE": "600,600",
        "RELAY_WORKER_CONCURRENCY": "2",
    }
    settings = Settings.from_env(env)
    roles = RoleProcesses(env=env, log_dir=tmp_path)
    with contextlib.ExitStack() as stack:
        hanging_url = stack.enter_context(serve(hanging.app()))
        quiet_url = stack.enter_context(serve(quiet.app()))
        stack.callback(roles.close)
        hanging_sub, quiet_sub, events = asyncio.run(_setup(settings, hanging_url, quiet_url))
        _schedule(settings, [RetryRequest(e, hanging_sub, 2, 0.0) for e in events[:BACKLOG]])
        roles.start("worker")
        slots = settings.subscriber_concurrency
        wait_until_sync(
            lambda: len(hanging.received) >= slots, what="the hanging subscriber's slots busy"
        )

        _schedule(settings, [RetryRequest(e, quiet_sub, 2, 0.0) for e in events[BACKLOG:]])
        wait_until_sync(lambda: len(quiet.received) == 3, what="the quiet subscriber's retries")
        hanging_seen = len(hanging.received)

        # The quiet retries went while the hanging drain was still in its first two rounds of
        # timeouts: one worker thread (RELAY_WORKER_CONCURRENCY=1) would have waited for the
        # whole drain budget plus a round, 3 rounds.
        assert hanging_seen <= 2 * slots, hanging_seen
        assert sorted(r.document_id for r in quiet.received) == ["q0", "q1", "q2"]
        assert roles.stop("worker", timeout_s=TIMEOUT_S + 30) == {"worker": 0}


async def _setup(
    settings: Settings, hanging_url: str, quiet_url: str
) -> tuple[str, str, list[str]]:
    client = async_redis(settings.require_redis_url())
    try:
        store = Store.create(client, settings)
        now = time.time()
        subscriptions = [
            await store.subscriptions.create(
                url=url + "/",
                event_types=None,
                source_ids=None,
                description=None,
                headers={},
                enabled=True,
                now=now,
            )
            for url in (hanging_url, quiet_url)
        ]
        tags = [f"h{i}" for i in range(BACKLOG)] + ["q0", "q1", "q2"]
        events = [
            event_from_message(
                Message(kind="incoming", document_id=tag, timestamp=int(now), text="hi"),
                source_id="src_test",
                created_at_ms=int(now * 1000),
            )
            for tag in tags
        ]
        await store.events.add(events, retention_s=3600)
        return subscriptions[0].id, subscriptions[1].id, [e.id for e in events]
    finally:
        await client.aclose()


def _schedule(settings: Settings, requests: list[RetryRequest]) -> None:
    client = sync_redis(settings.require_redis_url())
    try:
        retry_queue_for(settings, client).schedule(requests)
    finally:
        client.close()
