"""The tenant portal in headless Chromium against the real app on loopback: a customer logs
in with a tenant key, lands on its subscriptions, sees only its tenant's rows, cannot
reach the operator's pages, creates a subscription that is its tenant's, and logs out."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import httpx
import pytest

from relay.api import create_app
from relay.core.access import OPERATOR_ONLY_SCOPES, SCOPES
from relay.settings import Settings
from tests.api.conftest import AUTH
from tests.console.chromium import chromium_path, missing_reason

_MISSING = missing_reason()
if _MISSING is not None and os.environ.get("RELAY_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"RELAY_REQUIRE_BROWSER=1 but {_MISSING}")
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")

if _MISSING is None:
    from playwright.sync_api import Browser, expect, sync_playwright


@pytest.fixture
def console_url(api_settings: Settings, serve_app: Callable[..., str]) -> str:
    return serve_app(create_app(api_settings))


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        yield launched
        launched.close()


def _seed(api: httpx.Client, name: str) -> tuple[str, str, str]:
    """A tenant with a source and a subscription: (tenant id, source id, subscription id)."""
    tenant = api.post("/v1/tenants", json={"name": name}).json()["id"]
    source = api.post(
        "/v1/sources", json={"username": f"{name}-user", "password": "pw", "tenant_id": tenant}
    ).json()["id"]
    sub = api.post(
        "/v1/subscriptions",
        json={"url": f"http://127.0.0.1:9/{name}-hook", "tenant_id": tenant},
    ).json()["id"]
    return tenant, source, sub


def test_tenant_portal_in_a_browser(browser: Browser, console_url: str) -> None:
    with httpx.Client(base_url=console_url, headers=AUTH) as api:
        acme, acme_source, acme_sub = _seed(api, "acme")
        _, globex_source, globex_sub = _seed(api, "globex")
        scopes = [s for s in SCOPES if s not in OPERATOR_ONLY_SCOPES]
        key = api.post("/v1/keys", json={"name": "acme", "scopes": scopes, "tenant_id": acme})
        secret = key.json()["key"]

        page = browser.new_context(base_url=console_url).new_page()
        page.goto("/ui/")
        expect(page.get_by_role("heading", name="Log in to relay")).to_be_visible()
        page.keyboard.type(secret)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Subscriptions")).to_be_visible()
        assert page.url.endswith("/ui/subscriptions")
        nav = page.get_by_role("navigation", name="Console")
        expect(nav.get_by_role("link", name="Overview")).to_have_count(0)
        expect(nav.get_by_role("link", name="Keys")).to_have_count(0)
        expect(page.get_by_text(acme_sub)).to_be_visible()
        assert globex_sub not in page.content()

        nav.get_by_role("link", name="Sources").click()
        expect(page.get_by_role("link", name="acme-user")).to_be_visible()
        assert globex_source not in page.content() and "globex" not in page.content()
        assert acme_source in page.content()

        page.goto(f"/ui/subscriptions/{globex_sub}")
        assert "not found" in page.content()
        page.goto("/ui/keys")
        expect(page.get_by_text("This key may not use this page.")).to_be_visible()

        page.goto("/ui/subscriptions")
        page.get_by_label("URL").fill("http://127.0.0.1:9/acme-new")
        page.get_by_role("button", name="Create subscription").click()
        expect(page.get_by_text("http://127.0.0.1:9/acme-new").first).to_be_visible()
        mine = api.get("/v1/subscriptions", params={"limit": "100"}).json()["data"]
        created = [s for s in mine if s["url"] == "http://127.0.0.1:9/acme-new"]
        assert [s["tenant_id"] for s in created] == [acme]

        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("heading", name="Log in to relay")).to_be_visible()
