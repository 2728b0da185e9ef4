"""The console in headless Chromium against the real app, a real Redis and a real receiver
on loopback: log in, create a subscription, watch a test ping land in its attempt log,
rotate the secret, retry a dead letter, log out; keyboard use and a 375 px phone width."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from relay.api import create_app
from relay.core.events import event_from_message
from relay.core.signing import verify
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis
from tests.api.conftest import TOKEN, message
from tests.console.chromium import chromium_path, missing_reason
from tests.support import Receiver

_MISSING = missing_reason()
if _MISSING is not None and os.environ.get("RELAY_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"RELAY_REQUIRE_BROWSER=1 but {_MISSING}")
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")

if _MISSING is None:
    from playwright.sync_api import Browser, Page, Request, expect, sync_playwright

T = TypeVar("T")
PAGES = ("/ui/", "/ui/sources", "/ui/subscriptions", "/ui/events", "/ui/dead-letters")


@pytest.fixture
def console_url(api_settings: Settings, serve_app: Callable[..., str]) -> str:
    """The real app (its own Redis client, lifespan on) served by uvicorn on loopback."""
    return serve_app(create_app(api_settings))


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        yield launched
        launched.close()


class Watched:
    """A page whose requests outside the console, console errors and dialogs are tracked."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.outside: list[str] = []
        self.errors: list[str] = []

        def on_request(request: Request) -> None:
            if not request.url.startswith(base_url) and not request.url.startswith("data:"):
                self.outside.append(request.url)

        page.on("request", on_request)
        page.on(
            "console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None
        )
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("dialog", lambda dialog: dialog.accept())


def _watch(browser: Browser, base_url: str, **options: object) -> Watched:
    context = browser.new_context(base_url=base_url, **options)  # type: ignore[arg-type]
    return Watched(context.new_page(), base_url)


def _log_in(page: Page) -> None:
    page.goto("/ui/")
    expect(page.get_by_role("heading", name="Log in to relay")).to_be_visible()
    page.keyboard.type(TOKEN)  # the token field has focus on arrival
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def _run(coroutine: Coroutine[object, object, T]) -> T:
    """Run async store code from a sync test (Playwright's own loop holds this thread)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _add_dead_letter(settings: Settings, subscription_id: str) -> str:
    async def add() -> str:
        redis = async_redis(settings.require_redis_url())
        try:
            store = Store.create(redis, settings)
            event = event_from_message(
                message("dl-doc-1"), source_id="src_test", created_at_ms=int(time.time() * 1000)
            )
            await store.events.add([event], retention_s=settings.event_retention_s)
            dead = await store.dead_letters.add(
                event_id=event.id,
                subscription_id=subscription_id,
                attempts=4,
                last_error="HTTP 500",
                last_status_code=500,
                failed_at=time.time(),
            )
            return dead.id
        finally:
            await redis.aclose()

    return _run(add())


def _dead_letter_ids(settings: Settings) -> list[str]:
    async def ids() -> list[str]:
        redis = async_redis(settings.require_redis_url())
        try:
            page = await Store.create(redis, settings).dead_letters.page(limit=10, cursor=None)
            return [d.id for d in page.items]
        finally:
            await redis.aclose()

    return _run(ids())


def test_console_end_to_end(
    browser: Browser,
    console_url: str,
    api_settings: Settings,
    receiver: tuple[Receiver, str],
) -> None:
    recorder, hook_url = receiver
    watched = _watch(browser, console_url)
    page = watched.page

    _log_in(page)
    cookie = next(c for c in page.context.cookies() if c["name"] == "relay_console")
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert TOKEN not in cookie["value"]

    # Create a subscription; the secret is shown once.
    page.get_by_role("link", name="Subscriptions").click()
    page.get_by_label("Webhook URL").fill(hook_url)
    page.get_by_label("Description").fill("browser test")
    page.get_by_role("button", name="Create subscription").click()
    expect(page.get_by_role("heading", name="Subscription created")).to_be_visible()
    first_secret = page.get_by_label("Secret").input_value()
    assert first_secret.startswith("whsec_")

    # A test ping reaches the receiver, signed, and shows in the attempt log.
    page.get_by_role("link", name="Done").click()
    subscription_id = page.locator("dd code").first.inner_text()
    page.get_by_role("button", name="Send test ping").click()
    expect(page.get_by_role("heading", name="Attempt log")).to_be_visible()
    expect(page.locator("table.attempts tbody tr").first).to_contain_text("204")
    assert len(recorder.received) == 1
    headers, body = recorder.received[0].headers, recorder.received[0].body
    verify(secret=first_secret, headers=headers, body=body, now=time.time())
    assert b'"relay.ping"' in body

    # Rotating gives a new secret; the next webhook carries both signatures.
    page.goto(f"/ui/subscriptions/{subscription_id}")
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_role("heading", name="Secret rotated")).to_be_visible()
    second_secret = page.get_by_label("Secret").input_value()
    assert second_secret.startswith("whsec_") and second_secret != first_secret
    page.goto(f"/ui/subscriptions/{subscription_id}")
    page.get_by_role("button", name="Send test ping").click()
    expect(page.locator("table.attempts tbody tr")).to_have_count(2)
    headers, body = recorder.received[-1].headers, recorder.received[-1].body
    assert len(headers["webhook-signature"].split(" ")) == 2
    verify(secret=second_secret, headers=headers, body=body, now=time.time())
    verify(secret=first_secret, headers=headers, body=body, now=time.time())

    # The subscription's page never shows a secret unless asked.
    page.goto(f"/ui/subscriptions/{subscription_id}")
    assert second_secret not in page.content() and first_secret not in page.content()

    # Retry a dead letter made by the real dead-letter store.
    dead_letter_id = _add_dead_letter(api_settings, subscription_id)
    page.get_by_role("link", name="Dead letters").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    page.get_by_role("button", name=f"Retry dead letter {dead_letter_id}").click()
    expect(page.get_by_role("status")).to_contain_text("queued for delivery again")
    expect(page.get_by_text("No dead letters.")).to_be_visible()
    assert _dead_letter_ids(api_settings) == []

    # Log out: the session is gone server side too.
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_contain_text("You are logged out.")
    page.goto("/ui/subscriptions")
    expect(page.get_by_role("heading", name="Log in to relay")).to_be_visible()

    assert watched.outside == []
    assert watched.errors == []


def test_every_page_fits_a_375px_phone_without_horizontal_scroll(
    browser: Browser, console_url: str, receiver: tuple[Receiver, str]
) -> None:
    _, hook_url = receiver
    watched = _watch(browser, console_url, viewport={"width": 375, "height": 812})
    page = watched.page
    _log_in(page)
    page.goto("/ui/subscriptions")
    page.get_by_label("Webhook URL").fill(
        hook_url + "?with=a-rather-long-query-string-for-wrapping"
    )
    page.get_by_role("button", name="Create subscription").click()
    page.get_by_role("link", name="Done").click()
    page.get_by_role("button", name="Send test ping").click()
    wide = []
    for path in (*PAGES, page.url):
        page.goto(path)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > 375:
            wide.append((path, scroll_width))
    assert wide == []
    assert watched.outside == []


def test_keyboard_reaches_the_skip_link_and_the_navigation_with_a_visible_focus(
    browser: Browser, console_url: str
) -> None:
    page = _watch(browser, console_url).page
    _log_in(page)
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    for _ in range(3):  # skip link, brand, Overview, then Sources
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Sources"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Sources", exact=True)).to_be_visible()


def _add_failing_source(settings: Settings) -> None:
    """A source the poller would mark failing, with a long error squeezing its row."""

    async def add() -> None:
        redis = async_redis(settings.require_redis_url())
        try:
            sources = Store.create(redis, settings).sources
            source = await sources.create(
                username="a-rather-long-account-name@reseller",
                password="p",
                base_url="https://mc5.example/a/rather/long/base/url/for/the/account/column",
                poll_interval_s=2.0,
                start_from=None,
                now=time.time(),
            )
            _, version = await sources.get_versioned(source.id)
            error = "MC5 status 3: wrong username or password; polled again slowly " * 4
            await sources.record_failure(
                source.id,
                version=version,
                error=error.strip(),
                failures=3,
                next_poll_at=time.time() + 60,
                now=time.time(),
            )
        finally:
            await redis.aclose()

    _run(add())


def test_the_failing_badge_stays_on_one_line_at_1280px(
    browser: Browser, console_url: str, api_settings: Settings
) -> None:
    _add_failing_source(api_settings)
    watched = _watch(browser, console_url, viewport={"width": 1280, "height": 800})
    page = watched.page
    _log_in(page)
    for path in ("/ui/", "/ui/sources"):
        page.goto(path)
        badge = page.locator(".badge-failing").first
        expect(badge).to_have_text("failing")
        lines = page.evaluate(
            """el => el.getBoundingClientRect().height
                    / parseFloat(getComputedStyle(el).lineHeight)""",
            badge.element_handle(),
        )
        assert lines < 1.5, (path, lines)
