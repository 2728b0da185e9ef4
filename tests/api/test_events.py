"""The events feed, redelivery and replay (queued on the delivery stream, explicit)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import httpx
import pytest

from relay.store import Store
from tests.api.conftest import message


async def stream_entries(store: Store) -> list[dict[str, str]]:
    entries = cast(
        "list[tuple[str, dict[str, str]]]", await store.redis.xrange(store.keys.replay_stream)
    )
    return [fields for _, fields in entries]


async def subscribe(client: httpx.AsyncClient, **fields: object) -> str:
    body = {"url": "https://example.com/hook", **fields}
    response = await client.post("/v1/subscriptions", json=body)
    assert response.status_code == 201
    return str(response.json()["id"])


async def test_feed_is_newest_first_with_filters_and_pages(
    client: httpx.AsyncClient, add_events: Callable[..., Any]
) -> None:
    events = await add_events(message("d1"), message("d2", kind="outgoing"), message("d3"))
    await add_events(message("d4"), source_id="src_other")
    feed = (await client.get("/v1/events")).json()
    assert [e["id"] for e in feed["data"]][1:] == [e.id for e in events][::-1]
    assert feed["next_cursor"] is None

    received = (await client.get("/v1/events", params={"type": "message.received"})).json()
    assert all(e["type"] == "message.received" for e in received["data"])
    assert len(received["data"]) == 3
    other = (await client.get("/v1/events", params={"source_id": "src_other"})).json()
    assert [e["source_id"] for e in other["data"]] == ["src_other"]

    page = (await client.get("/v1/events", params={"limit": 3})).json()
    assert len(page["data"]) == 3 and page["next_cursor"]
    rest = (await client.get("/v1/events", params={"cursor": page["next_cursor"]})).json()
    assert [e["id"] for e in rest["data"]] == [events[0].id]


async def test_event_shape_carries_the_webhook_body(
    client: httpx.AsyncClient, add_events: Callable[..., Any]
) -> None:
    (event,) = await add_events(message("51750a01e4b0d1406c9c5fdb"))
    response = await client.get(f"/v1/events/{event.id}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == event.id and body["type"] == "message.received"
    assert body["source_id"] == "src_test" and body["timestamp"] == 1366624769
    assert body["created_at"].endswith("Z")
    assert body["payload"] == json.loads(event.body)
    assert body["payload"]["data"]["text"] == " ggghhh"


@pytest.mark.parametrize("query", ["type=message.deleted", "type=", "source_id="])
async def test_bad_filters_are_422(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/v1/events?{query}")
    assert response.status_code == 422
    assert response.json()["field"] == query.split("=")[0]


async def test_unknown_event_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/events/evt_nope")).status_code == 404
    assert (await client.post("/v1/events/evt_nope/redeliver")).status_code == 404


async def test_redeliver_to_every_enabled_matching_subscription(
    client: httpx.AsyncClient, add_events: Callable[..., Any], store: Store
) -> None:
    (event,) = await add_events(message("r1"))
    everything = await subscribe(client)
    received_only = await subscribe(client, event_types=["message.received"])
    await subscribe(client, event_types=["message.sent"])
    await subscribe(client, source_ids=["src_elsewhere"])
    await subscribe(client, enabled=False)
    before = len(await stream_entries(store))

    response = await client.post(f"/v1/events/{event.id}/redeliver")
    assert response.status_code == 202
    assert response.json() == {"queued": 2}
    queued = (await stream_entries(store))[before:]
    assert sorted(e["s"] for e in queued) == sorted([everything, received_only])
    assert all(e["e"] == event.id and e["x"] == "1" for e in queued)


async def test_redeliver_to_all_follows_subscription_changes_between_requests(
    client: httpx.AsyncClient, add_events: Callable[..., Any], store: Store
) -> None:
    """The API keeps its routing index between requests: it must see every change."""
    (event,) = await add_events(message("r2"))
    first = await subscribe(client)
    path = f"/v1/events/{event.id}/redeliver"
    assert (await client.post(path)).json() == {"queued": 1}

    second = await subscribe(client, event_types=["message.received"])
    patched = await client.patch(f"/v1/subscriptions/{first}", json={"enabled": False})
    assert patched.status_code == 200
    before = len(await stream_entries(store))
    assert (await client.post(path)).json() == {"queued": 1}
    assert [e["s"] for e in (await stream_entries(store))[before:]] == [second]

    assert (await client.delete(f"/v1/subscriptions/{second}")).status_code == 204
    assert (await client.post(path)).json() == {"queued": 0}


async def test_redeliver_to_one_subscription(
    client: httpx.AsyncClient, add_events: Callable[..., Any], store: Store
) -> None:
    (event,) = await add_events(message("r2"))
    target = await subscribe(client, event_types=["message.sent"])
    before = len(await stream_entries(store))
    response = await client.post(
        f"/v1/events/{event.id}/redeliver", json={"subscription_id": target}
    )
    assert response.status_code == 202 and response.json() == {"queued": 1}
    assert (await stream_entries(store))[before:] == [{"e": event.id, "s": target, "x": "1"}]


async def test_redeliver_errors(client: httpx.AsyncClient, add_events: Callable[..., Any]) -> None:
    (event,) = await add_events(message("r3"))
    path = f"/v1/events/{event.id}/redeliver"
    missing = await client.post(path, json={"subscription_id": "sub_missing"})
    assert missing.status_code == 404
    disabled = await subscribe(client, enabled=False)
    assert (await client.post(path, json={"subscription_id": disabled})).status_code == 409
    invalid = await client.post(path, json={"subscription_id": 5})
    assert invalid.status_code == 422 and invalid.json()["field"] == "subscription_id"
    unknown = await client.post(path, json={"subscription": "x"})
    assert unknown.status_code == 422
    wrong_type = await client.post(path, content=b"x", headers={"content-type": "text/plain"})
    assert wrong_type.status_code == 415


async def test_replay_queues_matching_events_in_the_window(
    client: httpx.AsyncClient, add_events: Callable[..., Any], store: Store
) -> None:
    await add_events(
        message("w1", timestamp=1000),
        message("w2", timestamp=2000),
        message("w3", timestamp=2000, kind="outgoing"),
        message("w4", timestamp=3000),
    )
    sub = await subscribe(client, event_types=["message.received"])
    before = len(await stream_entries(store))
    response = await client.post(
        f"/v1/subscriptions/{sub}/replay", json={"since": 1500, "until": 3000}
    )
    assert response.status_code == 202
    assert response.json() == {"queued": 2}
    queued = (await stream_entries(store))[before:]
    assert all(e["s"] == sub and e["x"] == "1" for e in queued)

    open_ended = await client.post(f"/v1/subscriptions/{sub}/replay", json={"since": 0})
    assert open_ended.json() == {"queued": 3}
    empty = await client.post(f"/v1/subscriptions/{sub}/replay", json={"since": 5, "until": 1})
    assert empty.json() == {"queued": 0}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "since"),
        ({"since": -1}, "since"),
        ({"since": "1"}, "since"),
        ({"since": 1, "until": -1}, "until"),
        ({"since": 1, "from": 2}, "from"),
    ],
)
async def test_replay_validation(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    sub = await subscribe(client)
    response = await client.post(f"/v1/subscriptions/{sub}/replay", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == field


async def test_replay_unknown_or_disabled_subscription(client: httpx.AsyncClient) -> None:
    missing = await client.post("/v1/subscriptions/sub_nope/replay", json={"since": 0})
    assert missing.status_code == 404
    disabled = await subscribe(client, enabled=False)
    conflict = await client.post(f"/v1/subscriptions/{disabled}/replay", json={"since": 0})
    assert conflict.status_code == 409
