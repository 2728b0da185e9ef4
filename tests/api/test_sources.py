from __future__ import annotations

import httpx
import pytest

from relay.settings import Settings

NEW = {"username": "1234321@reseller", "password": "s3cret-pw", "base_url": "http://mc5.test/"}


async def test_create_returns_201_with_defaults_and_no_password(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    response = await client.post("/v1/sources", json=NEW)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/sources/{body['id']}"
    assert set(body) == {
        "id", "username", "base_url", "poll_interval", "cursor", "status",
        "last_polled_at", "last_error", "created_at", "tenant_id",
    }  # fmt: skip
    assert body["username"] == NEW["username"]
    assert body["base_url"] == "http://mc5.test"
    assert body["poll_interval"] == api_settings.poll_interval_s
    assert body["status"] == "ok"
    assert body["last_polled_at"] is None and body["last_error"] is None
    assert body["created_at"].endswith("Z")
    assert "s3cret-pw" not in response.text


async def test_base_url_defaults_to_mc5_base_url(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    response = await client.post("/v1/sources", json={"username": "a", "password": "b"})
    assert response.json()["base_url"] == api_settings.mc5_base_url


@pytest.mark.parametrize(("start_from", "cursor"), [(1700000000, 1700000000), (0, 0)])
async def test_start_from_sets_the_cursor(
    client: httpx.AsyncClient, start_from: int, cursor: int
) -> None:
    response = await client.post("/v1/sources", json={**NEW, "start_from": start_from})
    assert response.json()["cursor"] == cursor


async def test_start_from_now_uses_the_clock(api_settings: Settings) -> None:
    from relay.api import create_app

    app = create_app(api_settings, clock=lambda: 1800000000.5)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"Authorization": "Bearer test-token"}
        ) as http:
            response = await http.post("/v1/sources", json={**NEW, "start_from": "now"})
    assert response.json()["cursor"] == 1800000000


async def test_same_account_twice_is_409(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/sources", json=NEW)).status_code == 201
    response = await client.post("/v1/sources", json={**NEW, "password": "other"})
    assert response.status_code == 409
    assert response.json()["type"] == "urn:relay:problem:conflict"
    assert "other" not in response.text


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"username": ""}, "username"),
        ({"username": "has space"}, "username"),
        ({"username": "tab\there"}, "username"),
        ({"username": 5}, "username"),
        ({"password": ""}, "password"),
        ({"password": None}, "password"),
        ({"base_url": "ftp://mc5.test"}, "base_url"),
        ({"base_url": "http://user:pw@mc5.test"}, "base_url"),
        ({"base_url": "mc5.test"}, "base_url"),
        ({"poll_interval": 0.01}, "poll_interval"),
        ({"poll_interval": 3601}, "poll_interval"),
        ({"poll_interval": "2"}, "poll_interval"),
        ({"poll_interval": True}, "poll_interval"),
        ({"start_from": -1}, "start_from"),
        ({"start_from": "yesterday"}, "start_from"),
        ({"start_from": 1.5}, "start_from"),
    ],
)
async def test_create_validation_is_422_naming_the_field(
    client: httpx.AsyncClient, patch: dict[str, object], field: str
) -> None:
    response = await client.post("/v1/sources", json={**NEW, **patch})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field
    assert body["errors"][0]["field"] == field
    assert "s3cret-pw" not in response.text


@pytest.mark.parametrize("missing", ["username", "password"])
async def test_required_fields(client: httpx.AsyncClient, missing: str) -> None:
    body = {k: v for k, v in NEW.items() if k != missing}
    response = await client.post("/v1/sources", json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == f"{missing} is required"


async def test_list_is_newest_first_and_paginated_without_passwords(
    client: httpx.AsyncClient,
) -> None:
    ids = []
    for n in range(5):
        created = await client.post("/v1/sources", json={**NEW, "username": f"user{n}"})
        ids.append(created.json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/sources", params=params)).json()
        assert len(page["data"]) <= 2
        assert all("password" not in item for item in page["data"])
        seen += [item["id"] for item in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert "s3cret-pw" not in (await client.get("/v1/sources")).text


async def test_get_patch_delete(client: httpx.AsyncClient) -> None:
    source_id = (await client.post("/v1/sources", json=NEW)).json()["id"]
    assert (await client.get(f"/v1/sources/{source_id}")).json()["id"] == source_id

    response = await client.patch(
        f"/v1/sources/{source_id}",
        json={"status": "paused", "cursor": 1700000001, "poll_interval": 5, "password": "new"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["cursor"], body["poll_interval"]) == ("paused", 1700000001, 5)
    assert "new" not in response.text.replace("newest", "")

    resumed = await client.patch(f"/v1/sources/{source_id}", json={"status": "ok"})
    assert resumed.json()["status"] == "ok"
    unchanged = await client.patch(f"/v1/sources/{source_id}", json={})
    assert unchanged.json() == resumed.json()

    assert (await client.delete(f"/v1/sources/{source_id}")).status_code == 204
    assert (await client.get(f"/v1/sources/{source_id}")).status_code == 404
    assert (await client.delete(f"/v1/sources/{source_id}")).status_code == 404


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"status": "failing"}, "status"),
        ({"status": "stopped"}, "status"),
        ({"cursor": -5}, "cursor"),
        ({"cursor": "1"}, "cursor"),
        ({"start_from": 0}, "start_from"),  # only at creation
    ],
)
async def test_patch_validation(
    client: httpx.AsyncClient, patch: dict[str, object], field: str
) -> None:
    source_id = (await client.post("/v1/sources", json=NEW)).json()["id"]
    response = await client.patch(f"/v1/sources/{source_id}", json=patch)
    assert response.status_code == 422
    assert response.json()["field"] == field


async def test_patch_onto_another_account_is_409(client: httpx.AsyncClient) -> None:
    await client.post("/v1/sources", json=NEW)
    other = (await client.post("/v1/sources", json={**NEW, "username": "other"})).json()
    response = await client.patch(f"/v1/sources/{other['id']}", json={"username": NEW["username"]})
    assert response.status_code == 409


async def test_unknown_source_is_404(client: httpx.AsyncClient) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        body: dict[str, object] | None = {} if method == "PATCH" else None
        response = await client.request(method, "/v1/sources/src_missing", json=body)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
