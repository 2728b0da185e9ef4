"""The console logged in with an API key: a tenant key gets its tenant's portal (its rows
only, no relay-wide pages, no passwords), scopes hold on pages as in the API, a revoked
key's session ends at once, and the operator gets a tenant column and filter."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import pytest

from relay.core.access import OPERATOR_ONLY_SCOPES, SCOPES
from relay.core.events import event_from_message
from relay.core.models import Event
from relay.settings import Settings
from relay.store import Store
from tests.api.conftest import AUTH, message
from tests.console.conftest import ORIGIN, Console, csrf_of, log_in

TENANT_SCOPES = [s for s in SCOPES if s not in OPERATOR_ONLY_SCOPES]


@dataclass
class Tenant:
    id: str
    source_id: str
    subscription_id: str
    event_id: str
    dead_letter_id: str
    markers: tuple[str, ...]


async def _tenant(api: httpx.AsyncClient, store: Store, name: str) -> Tenant:
    tenant_id = (await api.post("/v1/tenants", json={"name": name})).json()["id"]
    source = (
        await api.post(
            "/v1/sources",
            json={"username": f"{name}-user", "password": f"{name}-pw", "tenant_id": tenant_id},
        )
    ).json()
    sub = (
        await api.post(
            "/v1/subscriptions",
            json={"url": f"http://127.0.0.1:9/{name}-hook", "tenant_id": tenant_id},
        )
    ).json()
    event = event_from_message(
        message(f"{name}-doc"), source_id=source["id"], created_at_ms=int(time.time() * 1000)
    )
    event = Event(**{**{f: getattr(event, f) for f in event.__slots__}, "tenant_id": tenant_id})
    await store.events.add([event], retention_s=3600)
    dead = await store.dead_letters.add(
        event_id=event.id, subscription_id=sub["id"], attempts=3,
        last_error="HTTP 500", last_status_code=500, failed_at=time.time(),
    )  # fmt: skip
    markers = (source["id"], sub["id"], event.id, dead.id, f"{name}-user", f"{name}-hook")
    return Tenant(tenant_id, source["id"], sub["id"], event.id, dead.id, markers)


async def _key(api: httpx.AsyncClient, tenant: Tenant | None, scopes: list[str]) -> dict[str, str]:
    body = {"name": "portal", "scopes": scopes, "tenant_id": tenant and tenant.id}
    response = await api.post("/v1/keys", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
async def api(browser: httpx.AsyncClient) -> httpx.AsyncClient:
    return browser  # same app; the API is driven with the env token header


async def _portal(browser: httpx.AsyncClient, key: str) -> Console:
    response = await log_in(browser, key)
    assert response.status_code == 303, response.text
    landing = await browser.get("/ui/", follow_redirects=True)
    assert landing.url.path == "/ui/subscriptions"
    return Console(browser, csrf_of(landing.text))


async def test_a_tenant_key_sees_its_own_rows_and_nothing_else(
    browser: httpx.AsyncClient, store: Store
) -> None:
    browser.headers.update(AUTH)
    acme, globex = await _tenant(browser, store, "acme"), await _tenant(browser, store, "globex")
    key = await _key(browser, acme, TENANT_SCOPES)
    del browser.headers["Authorization"]
    portal = await _portal(browser, key["key"])
    own = {
        "/ui/sources": acme.source_id,
        "/ui/subscriptions": acme.subscription_id,
        "/ui/events": acme.event_id,
        "/ui/dead-letters": acme.dead_letter_id,
    }
    for path, own_id in own.items():
        page = await portal.get(path)
        assert page.status_code == 200, path
        assert own_id in page.text, path
        assert not [m for m in globex.markers if m in page.text], path
        assert "acme-pw" not in page.text and 'href="/ui/keys"' not in page.text
        assert 'href="/ui/">Overview' not in page.text and ">Tenant<" not in page.text
    assert (await portal.get(f"/ui/subscriptions/{globex.subscription_id}")).status_code == 404
    assert (await portal.get(f"/ui/sources/{globex.source_id}")).status_code == 404
    assert (await portal.get("/ui/keys")).status_code == 403
    stolen = await portal.post(f"/ui/dead-letters/{globex.dead_letter_id}/retry")
    assert stolen.status_code == 404
    assert (await store.dead_letters.get(globex.dead_letter_id)).id == globex.dead_letter_id


async def test_page_scopes_hold_and_a_revoked_key_ends_its_session(
    browser: httpx.AsyncClient, store: Store
) -> None:
    browser.headers.update(AUTH)
    acme = await _tenant(browser, store, "acme")
    key = await _key(browser, acme, ["subscriptions:read"])
    del browser.headers["Authorization"]
    portal = await _portal(browser, key["key"])
    created = await portal.post("/ui/subscriptions", {"url": "http://127.0.0.1:9/x"})
    assert created.status_code == 403
    assert (await portal.get("/ui/events")).status_code == 403
    await store.api_keys.revoke(key["id"])
    after = await portal.get("/ui/subscriptions")
    assert after.status_code == 303 and after.headers["location"].startswith("/ui/login")


async def test_the_operator_sees_a_tenant_column_and_filter(console: Console, store: Store) -> None:
    console.http.headers.update(AUTH)
    acme, globex = (
        await _tenant(console.http, store, "acme"),
        await _tenant(console.http, store, "globex"),
    )
    del console.http.headers["Authorization"]
    everything = (await console.get("/ui/subscriptions")).text
    assert acme.subscription_id in everything and globex.subscription_id in everything
    assert acme.id in everything and ">Tenant<" in everything
    narrowed = (await console.get(f"/ui/sources?tenant={acme.id}")).text
    assert acme.source_id in narrowed and globex.source_id not in narrowed


async def test_a_key_created_in_the_console_is_shown_once(console: Console) -> None:
    page = await console.post("/ui/keys", {"name": "zap", "scope.events:read": "1"})
    assert page.status_code == 201
    assert "rk_" in page.text
    again = await console.get("/ui/keys")
    assert "zap" in again.text and "rk_" not in again.text


@pytest.fixture
def api_settings(api_settings: Settings) -> Settings:
    return api_settings.replace(auth_failures_per_minute=3)


async def test_console_login_failures_are_limited_per_address(
    browser: httpx.AsyncClient,
) -> None:
    codes = [
        (await browser.post("/ui/login", data={"token": "nope"}, headers=ORIGIN)).status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    blocked = await log_in(browser)
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
