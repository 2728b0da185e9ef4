"""The events pages in headless Chromium against the real app, Redis, dispatcher and retry
worker: find a message by documentId and by phone number, open it, see a delivered, a
retrying and a dead subscription, redeliver it, and fit both pages on a 375 px phone."""

from __future__ import annotations

import re
from collections.abc import Callable

from relay.settings import Settings
from tests.console.chromium import missing_reason
from tests.console.message_seed import (
    OTHER_SENDER,
    OTHER_TEXT,
    RECIPIENT,
    SENDER,
    Story,
    tell_a_story_alone,
)
from tests.console.test_browser import (  # noqa: F401  (fixtures and helpers shared)
    _log_in,
    _run,
    _watch,
    pytestmark,
)
from tests.console.test_browser import browser as browser
from tests.console.test_browser import console_url as console_url
from tests.support import wait_until_sync
from workers.dispatcher import open_dispatcher

if missing_reason() is None:
    from playwright.sync_api import Browser, Page, expect

EXCERPT = "<b>Order</b> #1234 shipped & on its way Reply STOP to opt out"


def _story(settings: Settings, serve_app: Callable[..., str]) -> Story:
    return _run(tell_a_story_alone(settings, serve_app))


def _search(page: Page, label: str, value: str) -> None:
    page.goto("/ui/events")
    page.get_by_label(label).fill(value)
    page.get_by_role("button", name="Search").click()


def _dispatch(settings: Settings) -> None:
    async def once() -> None:
        async with open_dispatcher(settings) as dispatcher:
            await dispatcher.run_until_idle()

    _run(once())


def test_find_a_message_see_its_deliveries_and_redeliver_it(
    browser: Browser,
    console_url: str,
    api_settings: Settings,
    serve_app: Callable[..., str],
) -> None:
    story = _story(api_settings, serve_app)
    watched = _watch(browser, console_url)
    page = watched.page
    _log_in(page)

    _search(page, "documentId", "doc-7731")
    rows = page.locator("table.messages tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(EXCERPT)
    expect(rows.locator("td[data-label='From → to']")).to_have_text(f"{SENDER} → to {RECIPIENT}")
    expect(rows.locator("td[data-label='Deliveries']")).to_have_text(
        "1 delivered · 1 retrying · 1 dead"
    )

    _search(page, "Phone number", OTHER_SENDER)
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(OTHER_TEXT)
    _search(page, "Phone number", RECIPIENT)
    expect(rows).to_have_count(1)
    rows.get_by_role("link").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"{SENDER} → {RECIPIENT}")
    expect(page.locator(".message-text")).to_have_text(
        "<b>Order</b> #1234 shipped & on its way\nReply STOP to opt out"
    )
    deliveries = page.locator("table.deliveries tbody tr")
    expect(deliveries).to_have_count(3)
    expected = {
        story.delivered.id: ("delivered", "1", "HTTP 204"),
        story.retrying.id: ("retrying", "1", "HTTP 503"),
        story.dead.id: ("dead", "4", "HTTP 500"),
    }
    for subscription_id, (state, attempts, response) in expected.items():
        row = deliveries.filter(has_text=subscription_id)
        expect(row.locator("td[data-label='State']")).to_have_text(state)
        expect(row.locator("td[data-label='Attempts']")).to_have_text(attempts)
        expect(row.locator("td[data-label='Last response']")).to_have_text(response)
    retrying = deliveries.filter(has_text=story.retrying.id)
    expect(retrying.locator("td[data-label='Next attempt']")).to_contain_text(
        re.compile(r"\(in (60 min|1 h)\)")  # the receiver's Retry-After: 3600
    )
    expect(page.locator("table.attempts tbody tr")).to_have_count(6)

    page.get_by_label("Deliver again to").select_option(story.delivered.id)
    page.locator("form.redeliver").get_by_role("button", name="Redeliver").click()
    expect(page.get_by_role("status")).to_have_text("Queued 1 delivery(ies).")
    _dispatch(api_settings)
    wait_until_sync(
        lambda: len(story.receiver.delivered()) == 2 and len(story.receiver.snapshot()) == 3,
        what="the redelivery at the receiver",
    )
    page.reload()
    expect(page.locator("table.attempts tbody tr")).to_have_count(7)
    assert watched.errors == []
    assert watched.outside == []


def test_the_events_pages_fit_a_375px_phone(
    browser: Browser,
    console_url: str,
    api_settings: Settings,
    serve_app: Callable[..., str],
) -> None:
    story = _story(api_settings, serve_app)
    watched = _watch(browser, console_url, viewport={"width": 375, "height": 812})
    page = watched.page
    _log_in(page)
    wide = []
    for path in ("/ui/events", f"/ui/events/{story.event.id}", "/ui/events?phone=6148"):
        page.goto(path)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > 375:
            wide.append((path, scroll_width))
    assert wide == []
