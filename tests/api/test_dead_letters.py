from __future__ import annotations

from typing import cast

import httpx
from starlette.applications import Starlette

from relay.store import Store


async def add_dead_letter(store: Store, n: int, subscription_id: str = "sub_x") -> str:
    dead = await store.dead_letters.add(
        event_id=f"evt_{n}",
        subscription_id=subscription_id,
        attempts=8,
        last_error="timeout after 2 s",
        last_status_code=None if n % 2 else 500,
        failed_at=1700000000 + n,
    )
    return dead.id


async def subscribe(client: httpx.AsyncClient) -> str:
    created = await client.post("/v1/subscriptions", json={"url": "https://example.com/hook"})
    assert created.status_code == 201
    return str(created.json()["id"])


async def test_list_get_and_retry(client: httpx.AsyncClient, store: Store) -> None:
    sub = await subscribe(client)
    ids = [await add_dead_letter(store, n, sub) for n in range(3)]
    page = (await client.get("/v1/dead-letters", params={"limit": 2})).json()
    assert [d["id"] for d in page["data"]] == ids[:0:-1]
    rest = (await client.get("/v1/dead-letters", params={"cursor": page["next_cursor"]})).json()
    assert [d["id"] for d in rest["data"]] == ids[:1] and rest["next_cursor"] is None

    one = (await client.get(f"/v1/dead-letters/{ids[0]}")).json()
    assert one == {
        "id": ids[0],
        "event_id": "evt_0",
        "subscription_id": sub,
        "attempts": 8,
        "last_error": "timeout after 2 s",
        "last_status_code": 500,
        "failed_at": "2023-11-14T22:13:20Z",
    }

    before = await store.redis.xlen(store.keys.replay_stream)
    retried = await client.post(f"/v1/dead-letters/{ids[0]}/retry")
    assert retried.status_code == 202
    assert retried.json() == one
    entries = cast(
        "list[tuple[str, dict[str, str]]]", await store.redis.xrange(store.keys.replay_stream)
    )
    assert await store.redis.xlen(store.keys.replay_stream) == before + 1
    assert entries[-1][1] == {"e": "evt_0", "s": sub, "x": "1"}
    assert (await client.get(f"/v1/dead-letters/{ids[0]}")).status_code == 404
    assert (await client.post(f"/v1/dead-letters/{ids[0]}/retry")).status_code == 404


async def test_unknown_dead_letter_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/dead-letters/dl_nope")).status_code == 404
    assert (await client.post("/v1/dead-letters/dl_nope/retry")).status_code == 404


async def test_retrying_a_dead_letter_of_a_deleted_subscription_is_409_and_keeps_it(
    client: httpx.AsyncClient, store: Store
) -> None:
    sub = await subscribe(client)
    dead_id = await add_dead_letter(store, 1, sub)
    assert (await client.delete(f"/v1/subscriptions/{sub}")).status_code == 204
    before = await store.redis.xlen(store.keys.replay_stream)

    retried = await client.post(f"/v1/dead-letters/{dead_id}/retry")

    assert retried.status_code == 409
    assert retried.headers["content-type"] == "application/problem+json"
    assert "was deleted" in retried.json()["detail"]
    assert (await client.get(f"/v1/dead-letters/{dead_id}")).status_code == 200
    assert await store.redis.xlen(store.keys.replay_stream) == before


async def test_retrying_a_dead_letter_of_a_disabled_subscription_is_409(
    client: httpx.AsyncClient, store: Store
) -> None:
    sub = await subscribe(client)
    dead_id = await add_dead_letter(store, 1, sub)
    await client.patch(f"/v1/subscriptions/{sub}", json={"enabled": False})
    retried = await client.post(f"/v1/dead-letters/{dead_id}/retry")
    assert retried.status_code == 409 and "disabled" in retried.json()["detail"]


def _as(app: Starlette, key: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.AsyncClient(transport=transport, base_url="http://relay.test", headers=headers)


async def _replayed(store: Store) -> list[tuple[str, str]]:
    entries = cast(
        "list[tuple[str, dict[str, str]]]", await store.redis.xrange(store.keys.replay_stream)
    )
    return [(fields["e"], fields["s"]) for _, fields in entries]


async def test_bulk_retry_by_subscription_and_time_queues_each_once(
    client: httpx.AsyncClient, store: Store
) -> None:
    sub, other, disabled = [await subscribe(client) for _ in range(3)]
    await client.patch(f"/v1/subscriptions/{disabled}", json={"enabled": False})
    for n in range(4):
        await add_dead_letter(store, n, sub)  # failed at 1700000000 + n
    await add_dead_letter(store, 10, other)
    await add_dead_letter(store, 11, disabled)

    by_time = await client.post(
        "/v1/dead-letters/retry", json={"subscription_id": sub, "since": 1700000002}
    )
    assert by_time.status_code == 202 and by_time.json() == {"queued": 2}
    assert sorted(await _replayed(store)) == [("evt_2", sub), ("evt_3", sub)]

    everything = await client.post("/v1/dead-letters/retry")
    assert everything.json() == {"queued": 3}  # the disabled subscription's one stays
    assert sorted(await _replayed(store)) == sorted(
        [("evt_0", sub), ("evt_1", sub), ("evt_2", sub), ("evt_3", sub), ("evt_10", other)]
    )
    left = (await client.get("/v1/dead-letters")).json()["data"]
    assert [(d["event_id"], d["subscription_id"]) for d in left] == [("evt_11", disabled)]
    assert (await client.post("/v1/dead-letters/retry")).json() == {"queued": 0}


async def test_bulk_retry_with_a_tenant_key_touches_only_its_tenant(
    app: Starlette, client: httpx.AsyncClient, store: Store
) -> None:
    tenant = (await client.post("/v1/tenants", json={"name": "A"})).json()["id"]
    key = await client.post(
        "/v1/keys", json={"name": "a", "scopes": ["deliveries:write"], "tenant_id": tenant}
    )
    ours = await client.post(
        "/v1/subscriptions", json={"url": "https://example.com/a", "tenant_id": tenant}
    )
    operator_sub = await subscribe(client)
    await add_dead_letter(store, 1, ours.json()["id"])
    await add_dead_letter(store, 2, operator_sub)
    async with _as(app, key.json()["key"]) as tenant_client:
        foreign = await tenant_client.post(
            "/v1/dead-letters/retry", json={"subscription_id": operator_sub}
        )
        assert foreign.status_code == 404
        retried = await tenant_client.post("/v1/dead-letters/retry")
    assert retried.json() == {"queued": 1}
    assert await _replayed(store) == [("evt_1", ours.json()["id"])]
    left = (await client.get("/v1/dead-letters")).json()["data"]
    assert [d["subscription_id"] for d in left] == [operator_sub]
