"""Search and an event's story stay inside a tenant: a tenant key finds only its tenant's
messages (even from the same number), sees only its subscriptions' deliveries, and gets 404
for another tenant's event, exactly as for an id that does not exist."""

from __future__ import annotations

import dataclasses
import time

import httpx
from starlette.applications import Starlette

from relay.core.access import OPERATOR_ONLY_SCOPES, SCOPES
from relay.core.events import event_from_message
from relay.core.models import Attempt, Event
from relay.settings import Settings
from relay.store import Store
from tests.api.conftest import message

TENANT_SCOPES = [s for s in SCOPES if s not in OPERATOR_ONLY_SCOPES]
SAME_NUMBER = "61555879987"  # the sender of every test message


def _as(app: Starlette, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://relay.test",
        headers={"Authorization": f"Bearer {key}"},
    )


async def _tenant(client: httpx.AsyncClient, name: str) -> tuple[str, str]:
    tenant = (await client.post("/v1/tenants", json={"name": name})).json()["id"]
    key = await client.post(
        "/v1/keys", json={"name": name, "scopes": TENANT_SCOPES, "tenant_id": tenant}
    )
    return tenant, key.json()["key"]


async def _event_of(store: Store, settings: Settings, tenant: str, document_id: str) -> Event:
    event = event_from_message(
        message(document_id), source_id=f"src_{tenant}", created_at_ms=int(time.time() * 1000)
    )
    event = dataclasses.replace(event, tenant_id=tenant)
    await store.events.add([event], retention_s=settings.event_retention_s)
    return event


def _attempt(event: Event, subscription_id: str) -> Attempt:
    return Attempt(
        id=f"att_{subscription_id}", event_id=event.id, subscription_id=subscription_id,
        attempt=1, at=time.time(), status_code=200, error=None, response_body="secret-ish",
        duration_ms=3,
    )  # fmt: skip


async def test_a_tenant_finds_only_its_messages_and_never_sees_another_tenants_story(
    app: Starlette, client: httpx.AsyncClient, store: Store, api_settings: Settings
) -> None:
    acme, acme_key = await _tenant(client, "acme")
    globex, globex_key = await _tenant(client, "globex")
    operator_sub = await client.post("/v1/subscriptions", json={"url": "https://op.example/"})
    async with _as(app, acme_key) as as_acme, _as(app, globex_key) as as_globex:
        acme_sub = await as_acme.post("/v1/subscriptions", json={"url": "https://a.example/"})
        mine = await _event_of(store, api_settings, acme, "doc-acme")
        theirs = await _event_of(store, api_settings, globex, "doc-globex")
        await store.attempts.record_many(
            [_attempt(mine, acme_sub.json()["id"]), _attempt(mine, operator_sub.json()["id"])]
        )

        found = (await as_acme.get("/v1/events", params={"phone": SAME_NUMBER})).json()
        assert [e["id"] for e in found["data"]] == [mine.id]
        operator_sees = (await client.get("/v1/events", params={"phone": SAME_NUMBER})).json()
        assert {e["id"] for e in operator_sees["data"]} == {mine.id, theirs.id}
        hidden = await as_acme.get("/v1/events", params={"document_id": "doc-globex"})
        assert hidden.json() == {"data": [], "next_cursor": None}
        by_time = (await as_globex.get("/v1/events", params={"since": 0})).json()["data"]
        assert [e["id"] for e in by_time] == [theirs.id]

        rows = (await as_acme.get(f"/v1/events/{mine.id}/deliveries")).json()["data"]
        assert [r["subscription_id"] for r in rows] == [acme_sub.json()["id"]]  # not the operator's
        attempts = (await as_acme.get(f"/v1/events/{mine.id}/attempts")).json()["data"]
        assert [a["subscription_id"] for a in attempts] == [acme_sub.json()["id"]]
        everyone = (await client.get(f"/v1/events/{mine.id}/deliveries")).json()["data"]
        assert len(everyone) == 2

        for path in ("deliveries", "attempts"):
            foreign = await as_globex.get(f"/v1/events/{mine.id}/{path}")
            missing = await as_globex.get(f"/v1/events/evt_nope/{path}")
            assert foreign.status_code == missing.status_code == 404
            assert foreign.json() == {
                **missing.json(), "detail": f"event {mine.id} not found",
            }  # fmt: skip
            assert "doc-acme" not in foreign.text and acme_sub.json()["id"] not in foreign.text
        stolen = await as_globex.post(
            f"/v1/subscriptions/{acme_sub.json()['id']}/recover", json={"since": 0}
        )
        assert stolen.status_code == 404
        assert stolen.json()["detail"] == f"subscription {acme_sub.json()['id']} not found"
