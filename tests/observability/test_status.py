"""`relay status`: what it reads, that it shows no secret, and its exit codes."""

from __future__ import annotations

import json
import time

import redis.asyncio

from relay.core.models import QueueDepths
from relay.core.redaction import display_url
from relay.observability.status import gather_status
from relay.observability.telemetry import HeartbeatPublisher
from relay.settings import Settings
from relay.store import Store
from tests.observability.scrape import run_status
from tests.support import free_port


def test_display_url_hides_passwords_and_query_values() -> None:
    shown = display_url("https://user:hunter2@hooks.example.com/in?token=abc&x=1#frag")
    assert shown == "https://user:***@hooks.example.com/in?token=***&x=***"


def test_unreachable_redis_exits_3_naming_redis_url_without_its_password(
    settings: Settings,
) -> None:
    code, out, err = run_status(
        settings, "--json", redis_url=f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    )
    assert code == 3 and out == ""
    assert "REDIS_URL" in err and "hunter2" not in err


async def test_text_and_json_show_sources_subscriptions_and_roles_but_no_secret(
    settings: Settings, aredis: redis.asyncio.Redis, redis_url: str
) -> None:
    store = Store.create(aredis, settings)
    source = await store.sources.create(
        username="acme",
        password="pa55word-sekrit",
        base_url="http://127.0.0.1:9/",
        poll_interval_s=2,
        start_from=None,
        now=time.time() - 30,
    )
    subscription = await store.subscriptions.create(
        url="http://127.0.0.1:9/hook?token=tok-sekrit",
        event_types=None,
        source_ids=None,
        description=None,
        headers={"Authorization": "Bearer hdr-sekrit"},
        enabled=True,
        now=time.time(),
    )
    beat = HeartbeatPublisher(redis_url=redis_url, keys=store.keys, role="poller")
    beat.publish_once()
    try:
        code, text, _ = run_status(settings)
        json_code, raw, _ = run_status(settings, "--json")
    finally:
        beat.stop()

    assert code == json_code == 0
    for secret in ("pa55word-sekrit", "tok-sekrit", "hdr-sekrit", subscription.secrets[0].value):
        assert secret not in text and secret not in raw
    assert source.id in text and subscription.id in text and "poller" in text
    status = json.loads(raw)
    assert status["roles"]["poller"]["instances"] == 1 and status["roles_down"] == []
    (seen_source,) = status["sources"]
    assert seen_source["id"] == source.id and seen_source["cursor_lag_s"] >= 30
    (seen_sub,) = status["subscriptions"]
    assert seen_sub["url"] == "http://127.0.0.1:9/hook?token=***"
    assert (seen_sub["enabled"], seen_sub["success_rate"], seen_sub["queued_retries"]) == (
        True,
        None,
        0,
    )


async def test_status_of_an_empty_prefix_has_zero_queues(
    settings: Settings, aredis: redis.asyncio.Redis
) -> None:
    status = await gather_status(Store.create(aredis, settings), now=time.time())
    assert status.queues == QueueDepths(0, 0, 0, 0, 0)
    assert (status.sources, status.subscriptions, status.roles) == ([], [], {})
