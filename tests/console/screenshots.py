"""Screenshots of every console page for the README: `python -m tests.console.screenshots`.

Serves the real app on loopback over a private key prefix of the Redis at `--redis-url`
(deleted afterwards), seeds sources and subscriptions (one of each failing), events, attempts,
dead letters and a message delivered, retrying and dead (through the real dispatcher and
retry worker, to receivers on loopback), and saves desktop and 375 px phone PNGs under
docs/screenshots/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis
from playwright.sync_api import ViewportSize

from relay.api import create_app
from relay.core.events import event_from_message
from relay.core.ids import new_id
from relay.core.models import Attempt
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis
from tests.api.conftest import message
from tests.console.chromium import chromium_path, missing_reason
from tests.console.health_seed import make_failing, make_failing_source
from tests.console.message_seed import tell_a_story
from tests.support import serve

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TOKEN = "screenshot-token"


# The story's subscriptions get these URLs once delivered (their receivers are on loopback).
STORY_URLS = (
    "https://support.example.com/hooks/sms",
    "https://bots.example.com/orders-bot",
    "https://archive.example.org/legacy/inbox",
)


async def _seed(settings: Settings, serve_app: Callable[..., str]) -> tuple[str, str]:
    """Demo data; the ids of the subscription whose attempt log is shown and of the event
    whose page is."""
    client = async_redis(settings.require_redis_url())
    try:
        store = Store.create(client, settings)
        # First, so the dispatcher it runs finds no other subscription or event.
        story = await tell_a_story(store, settings, serve_app, when=int(time.time()) - 600)
        for sub, url in zip((story.delivered, story.retrying, story.dead), STORY_URLS, strict=True):
            await store.subscriptions.update(sub.id, url=url)
        now = time.time()  # the subscriptions below postdate the story's messages
        source = await store.sources.create(
            username="acme@reseller",
            password="never-shown",
            base_url="https://mc5.smartmessagingservices.net",
            poll_interval_s=2.0,
            start_from=int(now - 4),
            now=now,
        )
        orders = await store.subscriptions.create(
            url="https://hooks.example.com/relay/orders",
            event_types=("message.received",),
            source_ids=None,
            description="Order bot",
            headers={"X-Team": "orders"},
            enabled=True,
            now=now,
        )
        await store.subscriptions.create(
            url="https://crm.example.net/webhooks/sms",
            event_types=None,
            source_ids=None,
            description="CRM sync",
            headers={},
            enabled=True,
            now=now,
        )
        events = [
            event_from_message(
                message(f"doc-{n}", timestamp=int(now) - 60 * n),
                source_id="src_demo",
                created_at_ms=int(now * 1000) - n,
            )
            for n in range(6)
        ]
        await store.events.add(events[::-1], retention_s=3600)  # the newest recorded last
        attempts = []
        for minute in range(60):
            for k in range((minute * 7) % 5 + 1):
                failed = (minute + k) % 9 == 0
                attempts.append(
                    Attempt(
                        id=new_id("att"),
                        event_id=events[k % len(events)].id,
                        subscription_id=orders.id,
                        attempt=2 if failed else 1,
                        at=now - 60 * (59 - minute),
                        status_code=503 if failed else 200,
                        error="HTTP 503" if failed else None,
                        response_body='{"ok": false}' if failed else '{"ok": true}',
                        duration_ms=40 + k * 13,
                    )
                )
        await store.attempts.record_many(attempts)
        await make_failing(store, settings, orders.id, events[0].id)
        await store.sources.create(
            username="beta@reseller",
            password="never-shown",
            base_url="https://mc5.smartmessagingservices.net",
            poll_interval_s=2.0,
            start_from=int(now - 4),
            now=now,
        )
        await make_failing_source(store, source)
        return orders.id, story.event.id
    finally:
        await client.aclose()


def _shoot(base_url: str, subscription_id: str, event_id: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    pages = {
        "overview": "/ui/",
        "sources": "/ui/sources",
        "subscriptions": "/ui/subscriptions",
        "subscription": f"/ui/subscriptions/{subscription_id}",
        "attempts": f"/ui/subscriptions/{subscription_id}/attempts?limit=8",
        "events": "/ui/events",
        "event": f"/ui/events/{event_id}",
        "dead-letters": "/ui/dead-letters",
    }
    saved = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        sizes: tuple[tuple[str, ViewportSize], ...] = (
            ("", {"width": 1280, "height": 900}),
            ("-phone", {"width": 375, "height": 812}),
        )
        for suffix, size in sizes:
            page = browser.new_context(base_url=base_url, viewport=size).new_page()
            page.goto("/ui/login")
            saved.append(OUT / f"login{suffix}.png")
            page.screenshot(path=saved[-1])
            page.fill("#token", TOKEN)
            page.keyboard.press("Enter")
            page.wait_for_url("**/ui/")
            for name, path in pages.items():
                page.goto(path)
                saved.append(OUT / f"{name}{suffix}.png")
                page.screenshot(path=saved[-1], full_page=True)
            if suffix:
                break
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    reason = missing_reason()
    if reason:
        raise SystemExit(reason)
    prefix = f"screenshots:{uuid.uuid4().hex[:12]}:"
    settings = Settings.from_env(
        {
            "REDIS_URL": args.redis_url,
            "RELAY_KEY_PREFIX": prefix,
            "RELAY_ADMIN_TOKEN": TOKEN,
            "RELAY_ALLOW_PRIVATE_TARGETS": "true",
            "RELAY_RETRY_SCHEDULE": "0.2,0.2,0.2",  # the story's dead delivery, in a second
        }
    )
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.ExitStack() as receivers:
            seeded = asyncio.run(_seed(settings, lambda app: receivers.enter_context(serve(app))))
        with serve(create_app(settings)) as base_url:
            for path in _shoot(base_url, *seeded):
                print(path.relative_to(OUT.parents[1]))
    finally:
        with contextlib.closing(redis.Redis.from_url(args.redis_url)) as client:
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                client.delete(key)


if __name__ == "__main__":
    main()
