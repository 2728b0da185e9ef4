"""What Zapier-style clients need: flat payloads, the samples route, idempotent subscribe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.conftest import SECOND_TOKEN, message

HOOK = {"url": "https://example.com/hook", "event_types": ["message.received"]}


async def test_payload_format_defaults_to_standard_and_can_be_changed(
    client: httpx.AsyncClient,
) -> None:
    created = (await client.post("/v1/subscriptions", json=HOOK)).json()
    assert created["payload_format"] == "standard"
    flat = await client.post("/v1/subscriptions", json={**HOOK, "payload_format": "flat"})
    assert flat.status_code == 201 and flat.json()["payload_format"] == "flat"
    changed = await client.patch(
        f"/v1/subscriptions/{created['id']}", json={"payload_format": "flat"}
    )
    assert changed.json()["payload_format"] == "flat"
    shown = (await client.get(f"/v1/subscriptions/{created['id']}")).json()
    assert shown["payload_format"] == "flat"


@pytest.mark.parametrize("value", ["xml", "", 1, None])
async def test_bad_payload_format_is_422(client: httpx.AsyncClient, value: object) -> None:
    response = await client.post("/v1/subscriptions", json={**HOOK, "payload_format": value})
    assert response.status_code == 422
    assert response.json()["field"] == "payload_format"


async def test_samples_are_a_bare_array_of_bodies_as_sent(
    client: httpx.AsyncClient, add_events: Callable[..., Any]
) -> None:
    assert (await client.get("/v1/events/samples")).json() == []
    events = await add_events(message("d1"), message("d2", kind="outgoing"), message("d3"))

    standard = (await client.get("/v1/events/samples")).json()
    assert [s["data"]["documentId"] for s in standard] == ["d3", "d2", "d1"]

    flat = await client.get(
        "/v1/events/samples", params={"format": "flat", "type": "message.received", "limit": 1}
    )
    assert flat.status_code == 200
    (sample,) = flat.json()
    assert sample["id"] == events[2].id and sample["document_id"] == "d3"
    assert sample["from"] == "61555879987" and sample["text"] == " ggghhh"


@pytest.mark.parametrize("query", ["format=xml", "type=relay.ping", "limit=0", "limit=101"])
async def test_bad_sample_parameters_are_422(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/v1/events/samples?{query}")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_same_idempotency_key_gives_the_first_answer_and_one_subscription(
    client: httpx.AsyncClient,
) -> None:
    headers = {"Idempotency-Key": "zap-123"}
    first = await client.post("/v1/subscriptions", json=HOOK, headers=headers)
    again = await client.post(
        "/v1/subscriptions", json=dict(reversed(HOOK.items())), headers=headers
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    listed = (await client.get("/v1/subscriptions")).json()["data"]
    assert [s["id"] for s in listed] == [first.json()["id"]]

    other = await client.post("/v1/subscriptions", json=HOOK, headers={"Idempotency-Key": "b"})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


async def test_idempotency_key_reused_with_another_body_is_409(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "zap-124"}
    assert (await client.post("/v1/subscriptions", json=HOOK, headers=headers)).status_code == 201
    reused = await client.post(
        "/v1/subscriptions", json={**HOOK, "description": "other"}, headers=headers
    )
    assert reused.status_code == 409
    assert "different request body" in reused.json()["detail"]
    assert len((await client.get("/v1/subscriptions")).json()["data"]) == 1


async def test_a_rejected_request_does_not_use_up_its_key(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "zap-125"}
    bad = await client.post("/v1/subscriptions", json={"url": "ftp://x"}, headers=headers)
    assert bad.status_code == 422
    good = await client.post("/v1/subscriptions", json={"url": "ftp://x", **HOOK}, headers=headers)
    assert good.status_code == 201


async def test_idempotency_key_is_remembered_for_24_hours(
    client: httpx.AsyncClient, store: Any
) -> None:
    await client.post("/v1/subscriptions", json=HOOK, headers={"Idempotency-Key": "zap-126"})
    (name,) = [k async for k in store.redis.scan_iter(match=store.keys.idempotency("*", "*"))]
    assert 86000 < await store.redis.ttl(name) <= 86400


@pytest.mark.parametrize("key", [b"", b"a" * 256, "caf\u00e9".encode(), b"two words"])
async def test_malformed_idempotency_key_is_422(client: httpx.AsyncClient, key: bytes) -> None:
    response = await client.post("/v1/subscriptions", json=HOOK, headers={b"Idempotency-Key": key})
    assert response.status_code == 422
    assert (await client.get("/v1/subscriptions")).json()["data"] == []


async def test_test_ping_is_the_only_way_a_ping_is_sent(
    client: httpx.AsyncClient, receiver: Any, add_events: Callable[..., Any]
) -> None:
    recorder, url = receiver
    created = (await client.post("/v1/subscriptions", json={"url": url})).json()
    await add_events(message("d1"))  # stored events are never pings: nothing else sends one
    feed = (await client.get("/v1/events")).json()["data"]
    assert all(e["type"] != "relay.ping" for e in feed)
    samples = (await client.get("/v1/events/samples")).json()
    assert all(s["type"] != "relay.ping" for s in samples)
    attempt = (await client.post(f"/v1/subscriptions/{created['id']}/test")).json()
    assert attempt["status_code"] == 204
    assert [r.body for r in recorder.received if b"relay.ping" in r.body]


async def test_idempotency_keys_are_per_credential(client: httpx.AsyncClient) -> None:
    first = await client.post("/v1/subscriptions", json=HOOK, headers={"Idempotency-Key": "k"})
    other = await client.post(
        "/v1/subscriptions",
        json=HOOK,
        headers={"Idempotency-Key": "k", "Authorization": f"Bearer {SECOND_TOKEN}"},
    )
    assert first.status_code == other.status_code == 201
    assert other.json()["id"] != first.json()["id"]
    assert "idempotent-replayed" not in other.headers
