"""API keys, tenants, the audit log and failed-authentication limits, through the real app."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from relay.api import create_app
from relay.core.models import Event, Subscription
from relay.settings import Settings
from relay.store import Store
from relay.store.api_keys import LAST_USED_EVERY_S


def _client(app: Starlette, address: str, token: str | None = None) -> httpx.AsyncClient:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://relay.test", headers=headers)


async def _new_key(client: httpx.AsyncClient, **body: object) -> dict[str, object]:
    response = await client.post("/v1/keys", json={"name": "k", "scopes": ["events:read"], **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_key_is_shown_once_and_only_its_hash_is_stored(
    client: httpx.AsyncClient, store: Store
) -> None:
    created = await _new_key(client)
    secret = str(created["key"])
    assert secret.startswith("rk_") and len(secret) == 3 + 43
    listed = (await client.get("/v1/keys")).json()["data"]
    read = (await client.get(f"/v1/keys/{created['id']}")).json()
    assert all("key" not in row for row in [*listed, read])
    async for name in store.redis.scan_iter(match=f"{store.keys.prefix}*"):
        kind = await store.redis.type(name)
        value = str(
            await store.redis.hgetall(name) if kind == "hash" else await store.redis.get(name)
            if kind == "string" else ""
        )  # fmt: skip
        assert secret not in value and secret[3:] not in value, name


async def test_revocation_holds_on_the_next_request_on_another_replica(
    app: Starlette, client: httpx.AsyncClient, api_settings: Settings
) -> None:
    created = await _new_key(client)
    other_replica = create_app(api_settings)
    async with (
        other_replica.router.lifespan_context(other_replica),
        _client(other_replica, "10.0.0.1", str(created["key"])) as elsewhere,
    ):
        assert (await elsewhere.get("/v1/events")).status_code == 200
        assert (await client.delete(f"/v1/keys/{created['id']}")).status_code == 204
        assert (await elsewhere.get("/v1/events")).status_code == 401
    assert (await client.get(f"/v1/keys/{created['id']}")).status_code == 404


async def test_an_expired_key_is_refused(app: Starlette, client: httpx.AsyncClient) -> None:
    created = await _new_key(client, expires_at=int(time.time()) - 1)
    async with _client(app, "10.0.0.2", str(created["key"])) as holder:
        assert (await holder.get("/v1/events")).status_code == 401


async def test_last_used_at_is_written_at_most_once_a_minute(
    app: Starlette, client: httpx.AsyncClient, store: Store
) -> None:
    created = await _new_key(client)
    assert created["last_used_at"] is None
    async with _client(app, "10.0.0.3", str(created["key"])) as holder:
        await holder.get("/v1/events")
        first = (await store.api_keys.get(str(created["id"]))).last_used_at
        await holder.get("/v1/events")
        assert (await store.api_keys.get(str(created["id"]))).last_used_at == first
    assert first is not None and abs(first - time.time()) < LAST_USED_EVERY_S


async def test_write_implies_read_and_a_missing_scope_is_403(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    created = await _new_key(client, scopes=["sources:write"])
    async with _client(app, "10.0.0.4", str(created["key"])) as holder:
        assert (await holder.get("/v1/sources")).status_code == 200
        refused = await holder.get("/v1/subscriptions")
    assert refused.status_code == 403
    assert refused.json()["type"] == "urn:relay:problem:insufficient-scope"
    assert refused.headers["content-type"] == "application/problem+json"


async def test_tenant_keys_never_hold_operator_scopes_and_keys_grant_only_their_own(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    tenant = (await client.post("/v1/tenants", json={"name": "T"})).json()
    for scope in ("keys:write", "tenants:write"):
        refused = await client.post(
            "/v1/keys", json={"name": "k", "scopes": [scope], "tenant_id": tenant["id"]}
        )
        assert refused.status_code == 422, refused.text
    minter = await _new_key(client, scopes=["keys:write"])
    async with _client(app, "10.0.0.5", str(minter["key"])) as holder:
        escalate = await holder.post("/v1/keys", json={"name": "x", "scopes": ["sources:write"]})
        assert escalate.status_code == 422
        assert (
            await holder.post("/v1/keys", json={"name": "x", "scopes": ["keys:write"]})
        ).status_code == 201


async def test_a_tenant_is_deleted_only_once_it_owns_nothing(client: httpx.AsyncClient) -> None:
    tenant = (await client.post("/v1/tenants", json={"name": "T"})).json()
    source = (
        await client.post(
            "/v1/sources", json={"username": "u", "password": "p", "tenant_id": tenant["id"]}
        )
    ).json()
    assert source["tenant_id"] == tenant["id"]
    assert (await client.delete(f"/v1/tenants/{tenant['id']}")).status_code == 409
    assert (await client.delete(f"/v1/sources/{source['id']}")).status_code == 204
    assert (await client.delete(f"/v1/tenants/{tenant['id']}")).status_code == 204
    assert (await client.get(f"/v1/tenants/{tenant['id']}")).status_code == 404


async def test_what_a_tenant_key_creates_is_its_tenants(
    app: Starlette, client: httpx.AsyncClient, receiver: object
) -> None:
    a = (await client.post("/v1/tenants", json={"name": "A"})).json()["id"]
    b = (await client.post("/v1/tenants", json={"name": "B"})).json()["id"]
    b_source = (
        await client.post("/v1/sources", json={"username": "b", "password": "p", "tenant_id": b})
    ).json()
    key = await _new_key(client, scopes=["sources:write", "subscriptions:write"], tenant_id=a)
    async with _client(app, "10.0.0.6", str(key["key"])) as tenant_a:
        source = await tenant_a.post("/v1/sources", json={"username": "a", "password": "p"})
        assert source.json()["tenant_id"] == a
        foreign = await tenant_a.post(
            "/v1/subscriptions", json={"url": "http://127.0.0.1:9/", "source_ids": [b_source["id"]]}
        )
        assert foreign.status_code == 404
        assert foreign.json()["detail"] == f"source {b_source['id']} not found"
        assert b not in foreign.text
        smuggled = await tenant_a.post(
            "/v1/subscriptions", json={"url": "http://127.0.0.1:9/", "tenant_id": b}
        )
        assert smuggled.status_code == 404
        own = await tenant_a.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/"})
        assert own.status_code == 201 and own.json()["tenant_id"] == a
        # Changing it to a foreign source: 409, not a 404 that would say it is gone.
        changed = await tenant_a.patch(
            f"/v1/subscriptions/{own.json()['id']}", json={"source_ids": [b_source["id"]]}
        )
        assert changed.status_code == 409
        assert changed.json()["detail"] == f"source {b_source['id']} not found"
        kept = await tenant_a.get(f"/v1/subscriptions/{own.json()['id']}")
        assert kept.json()["source_ids"] is None


async def test_the_audit_log_names_actor_and_action_and_never_a_secret(
    client: httpx.AsyncClient,
) -> None:
    created = await _new_key(client)
    sub = (await client.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/"})).json()
    await client.post(f"/v1/subscriptions/{sub['id']}/secret/rotate")
    await client.delete(f"/v1/keys/{created['id']}")
    log = await client.get("/v1/audit-log")
    entries = log.json()["data"]
    assert [e["action"] for e in entries] == [
        "key.revoke", "secret.rotate", "subscription.create", "key.create",
    ]  # fmt: skip
    assert {e["actor"] for e in entries} == {"env"}
    assert entries[0]["resource_id"] == created["id"]
    assert str(created["key"]) not in log.text and sub["secret"] not in log.text


def test_a_tenant_subscription_without_a_source_filter_gets_only_its_tenants_events() -> None:
    sub = Subscription(id="sub_1", url="http://x/", secrets=(), created_at=0, tenant_id="ten_a")
    operator_sub = Subscription(id="sub_2", url="http://x/", secrets=(), created_at=0)

    def event(tenant: str | None) -> Event:
        return Event("evt", "message.received", "src", 0, 0, b"{}", tenant_id=tenant)

    assert sub.matches(event("ten_a"))
    assert not sub.matches(event("ten_b")) and not sub.matches(event(None))
    assert all(operator_sub.matches(event(t)) for t in ("ten_a", "ten_b", None))


@pytest.fixture
def limited(api_settings: Settings) -> Settings:
    return api_settings.replace(auth_failures_per_minute=5, trusted_proxies=("10.9.9.9",))


@pytest.fixture
async def limited_app(limited: Settings) -> AsyncIterator[Starlette]:
    application = create_app(limited)
    async with application.router.lifespan_context(application):
        yield application


async def test_failed_logins_past_the_limit_are_429_for_that_address_only(
    limited_app: Starlette,
) -> None:
    async with (
        _client(limited_app, "192.0.2.1", "wrong") as guesser,
        _client(limited_app, "192.0.2.2", "test-token") as other,
    ):
        codes = [(await guesser.get("/v1/events")).status_code for _ in range(7)]
        assert codes == [401] * 5 + [429] * 2
        blocked = await guesser.get("/v1/events", headers={"Authorization": "Bearer test-token"})
        assert blocked.status_code == 429  # even a right guess, once blocked
        assert 1 <= int(blocked.headers["retry-after"]) <= 60
        assert blocked.json()["type"] == "urn:relay:problem:too-many-failed-authentications"
        assert (await other.get("/v1/events")).status_code == 200


async def test_x_forwarded_for_counts_only_behind_a_trusted_proxy(
    limited_app: Starlette,
) -> None:
    async with (
        _client(limited_app, "10.9.9.9", "wrong") as proxy,
        _client(limited_app, "192.0.2.3", "wrong") as direct,
    ):
        for _ in range(5):
            await proxy.get("/v1/events", headers={"X-Forwarded-For": "198.51.100.1"})
        behind = await proxy.get("/v1/events", headers={"X-Forwarded-For": "198.51.100.1"})
        assert behind.status_code == 429
        fresh = await proxy.get("/v1/events", headers={"X-Forwarded-For": "198.51.100.2"})
        assert fresh.status_code == 401  # another client behind the same proxy
        for forged in ("198.51.100.10", "198.51.100.11", "198.51.100.12", "1.1.1.1", "2.2.2.2"):
            await direct.get("/v1/events", headers={"X-Forwarded-For": forged})
        spoofing = await direct.get("/v1/events", headers={"X-Forwarded-For": "3.3.3.3"})
        assert spoofing.status_code == 429  # an untrusted peer's header is ignored


async def test_not_even_the_operator_sends_one_tenants_event_to_anothers_subscription(
    client: httpx.AsyncClient, store: Store
) -> None:
    a = (await client.post("/v1/tenants", json={"name": "A"})).json()["id"]
    b = (await client.post("/v1/tenants", json={"name": "B"})).json()["id"]
    b_sub = await client.post(
        "/v1/subscriptions", json={"url": "http://127.0.0.1:9/", "tenant_id": b}
    )
    event = Event(
        "evt_a", "message.received", "src_a", 0, int(time.time() * 1000), b"{}", tenant_id=a
    )
    await store.events.add([event], retention_s=60)
    aimed = await client.post(
        f"/v1/events/{event.id}/redeliver", json={"subscription_id": b_sub.json()["id"]}
    )
    assert aimed.status_code == 409
    everywhere = await client.post(f"/v1/events/{event.id}/redeliver", json={})
    assert everywhere.json() == {"queued": 0}  # B's subscription does not match A's event
