"""The health pages in headless Chromium against the real app and Redis: a failing
subscription says so and why, dead letters show their subscription and last response with
links, a failing source says since when and when it is polled next."""

from __future__ import annotations

import time

from relay.core.events import event_from_message
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis
from tests.api.conftest import message
from tests.console.chromium import missing_reason
from tests.console.health_seed import LAST_RESPONSE, make_failing, make_failing_source
from tests.console.test_browser import (  # noqa: F401  (fixtures and helpers shared)
    _log_in,
    _run,
    _watch,
    pytestmark,
)
from tests.console.test_browser import browser as browser
from tests.console.test_browser import console_url as console_url

if missing_reason() is None:
    from playwright.sync_api import Browser, expect

URL = "https://hooks.example.com/relay/orders"


def _seed(settings: Settings) -> tuple[str, str]:
    """A failing subscription and source; (subscription id, event id)."""

    async def seed() -> tuple[str, str]:
        client = async_redis(settings.require_redis_url())
        try:
            store = Store.create(client, settings)
            now = time.time()
            sub = await store.subscriptions.create(
                url=URL,
                event_types=None,
                source_ids=None,
                description=None,
                headers={},
                enabled=True,
                now=now,
            )
            event = event_from_message(
                message("health-doc"), source_id="src_test", created_at_ms=int(now * 1000)
            )
            await store.events.add([event], retention_s=3600)
            await make_failing(store, settings, sub.id, event.id)
            source = await store.sources.create(
                username="acme@reseller",
                password="p",
                base_url="https://mc5.example",
                poll_interval_s=2.0,
                start_from=None,
                now=now,
            )
            await make_failing_source(store, source)
            return sub.id, event.id
        finally:
            await client.aclose()

    return _run(seed())


def test_the_health_pages_say_what_is_wrong_and_link_onwards(
    browser: Browser,
    console_url: str,
    api_settings: Settings,
) -> None:
    subscription_id, event_id = _seed(api_settings)
    watched = _watch(browser, console_url)
    page = watched.page
    _log_in(page)

    page.goto(f"/ui/subscriptions/{subscription_id}")
    health = page.locator("section.health")
    expect(health.get_by_role("heading")).to_have_text("Health: failing")
    expect(health).to_contain_text("Failing since")
    expect(health).to_contain_text("(10 min): every attempt since then failed, last with HTTP 503")
    facts = {
        "Success rate (1 h)": "25 %",
        "Last error": "HTTP 503",
        "Queued retries": "1",
        "Next retry": "(in 5 min)",
        "Dead letters": "1",
        "Secret expiry": "previous: stops signing",
    }
    for term, shown in facts.items():
        expect(health.locator("div", has=page.locator(f"dt:text-is('{term}')"))).to_contain_text(
            shown
        )

    page.goto("/ui/dead-letters")
    row = page.locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("HTTP 503")
    expect(row).to_contain_text(LAST_RESPONSE)
    expect(row.get_by_role("link", name=event_id)).to_have_attribute(
        "href", f"/ui/events/{event_id}"
    )
    row.get_by_role("link", name=URL).click()
    expect(page.locator("section.health")).to_be_visible()
    assert page.url.endswith(f"/ui/subscriptions/{subscription_id}")

    page.goto("/ui/sources")
    status = page.locator("td[data-label='Status']")
    expect(status).to_contain_text("failing")
    expect(status).to_contain_text("(5 min)")
    expect(status).to_contain_text("next poll")
    expect(status).to_contain_text("(in 2 min)")
    assert watched.errors == []
