"""`rate_limit_per_s`, `timeout_s` and `concurrency` through the API: set on create and
PATCH, shown on every read, cleared with null, and bad values answered 422 problem+json."""

from __future__ import annotations

import httpx
import pytest

URL = "https://example.com/hooks/sms"
LIMITS = ("rate_limit_per_s", "timeout_s", "concurrency")


async def test_limits_are_null_by_default_and_shown_everywhere(
    client: httpx.AsyncClient,
) -> None:
    created = (await client.post("/v1/subscriptions", json={"url": URL})).json()
    assert {name: created[name] for name in LIMITS} == dict.fromkeys(LIMITS)
    read = (await client.get(f"/v1/subscriptions/{created['id']}")).json()
    listed = (await client.get("/v1/subscriptions")).json()["data"]
    assert {name: read[name] for name in LIMITS} == dict.fromkeys(LIMITS)
    assert [sub["id"] for sub in listed if all(sub[n] is None for n in LIMITS)] == [created["id"]]


async def test_limits_set_on_create_change_on_patch_and_clear_with_null(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/subscriptions",
        json={"url": URL, "rate_limit_per_s": 2.5, "timeout_s": 5, "concurrency": 3},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["rate_limit_per_s"], created["timeout_s"], created["concurrency"]) == (
        2.5,
        5,
        3,
    )
    path = f"/v1/subscriptions/{created['id']}"

    changed = (await client.patch(path, json={"concurrency": 1})).json()
    assert (changed["rate_limit_per_s"], changed["timeout_s"], changed["concurrency"]) == (
        2.5,
        5,
        1,
    )
    cleared = (await client.patch(path, json={"rate_limit_per_s": None, "timeout_s": None})).json()
    assert (cleared["rate_limit_per_s"], cleared["timeout_s"], cleared["concurrency"]) == (
        None,
        None,
        1,
    )
    read = (await client.get(path)).json()
    assert {name: read[name] for name in LIMITS} == {**dict.fromkeys(LIMITS), "concurrency": 1}


@pytest.mark.parametrize(
    ("fields", "field", "detail"),
    [
        ({"rate_limit_per_s": 0}, "rate_limit_per_s", "between 0.01 and 1000"),
        ({"rate_limit_per_s": -1}, "rate_limit_per_s", "between 0.01 and 1000"),
        ({"rate_limit_per_s": 1001}, "rate_limit_per_s", "between 0.01 and 1000"),
        ({"rate_limit_per_s": "5"}, "rate_limit_per_s", "must be a number"),
        ({"rate_limit_per_s": True}, "rate_limit_per_s", "must be a number"),
        ({"timeout_s": 0}, "timeout_s", "between 0.1 and 60"),
        ({"timeout_s": 60.5}, "timeout_s", "between 0.1 and 60"),
        ({"timeout_s": [1]}, "timeout_s", "must be a number"),
        ({"concurrency": 0}, "concurrency", "between 1 and 1000"),
        ({"concurrency": 1001}, "concurrency", "between 1 and 1000"),
        ({"concurrency": 1.5}, "concurrency", "must be an integer"),
        ({"concurrency": "2"}, "concurrency", "must be an integer"),
    ],
)
async def test_bad_limits_are_422_naming_the_field(
    client: httpx.AsyncClient, fields: dict[str, object], field: str, detail: str
) -> None:
    created = await client.post("/v1/subscriptions", json={"url": URL, **fields})
    existing = (await client.post("/v1/subscriptions", json={"url": URL})).json()
    patched = await client.patch(f"/v1/subscriptions/{existing['id']}", json=fields)
    for response in (created, patched):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert body["type"] == "urn:relay:problem:invalid-input"
        assert body["field"] == field and detail in body["detail"], body
    unchanged = (await client.get(f"/v1/subscriptions/{existing['id']}")).json()
    assert {name: unchanged[name] for name in LIMITS} == dict.fromkeys(LIMITS)
    assert len((await client.get("/v1/subscriptions")).json()["data"]) == 1  # none created
