"""Every list route in openapi.yaml refuses a query parameter it does not take (and one given
twice) with 422 problem+json naming it, so a typo never silently widens a list or search."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.api.test_openapi import SPEC, resolve


def _is_list(operation: dict[str, Any]) -> bool:
    """A GET whose 200 body is an array, or an object with a `data` array."""
    _, response = resolve(operation["responses"]["200"])
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    _, schema = resolve(schema)
    return schema.get("type") == "array" or "data" in schema.get("properties", {})


LIST_ROUTES = sorted(
    path
    for path, item in SPEC["paths"].items()
    if path.startswith("/v1/") and "get" in item and _is_list(item["get"])
)


def test_the_walk_covers_every_kind_of_list() -> None:
    for expected in (
        "/v1/sources", "/v1/subscriptions", "/v1/subscriptions/{subscription_id}/attempts",
        "/v1/events", "/v1/events/samples", "/v1/events/{event_id}/deliveries",
        "/v1/events/{event_id}/attempts", "/v1/dead-letters", "/v1/tenants", "/v1/keys",
        "/v1/audit-log",
    ):  # fmt: skip
        assert expected in LIST_ROUTES


@pytest.mark.parametrize("template", LIST_ROUTES)
async def test_an_unknown_or_repeated_parameter_is_422(
    client: httpx.AsyncClient, template: str
) -> None:
    path = re.sub(r"\{[a-z_]+\}", "x_missing", template)  # checked before the id is looked up
    unknown = await client.get(path, params={"limt": "5"})
    assert unknown.status_code == 422, unknown.text
    assert unknown.headers["content-type"] == "application/problem+json"
    body = unknown.json()
    assert body["type"] == "urn:relay:problem:invalid-input" and body["field"] == "limt"
    assert "unknown query parameter 'limt'" in body["detail"]
    taken = [p for p in SPEC["paths"][template]["get"].get("parameters", [])]
    if taken:  # a parameter the route takes, given twice
        _, first = resolve(taken[0])
        twice = await client.get(f"{path}?{first['name']}=1&{first['name']}=2")
        assert twice.status_code == 422 and twice.json()["field"] == first["name"]


async def test_known_parameters_still_work(client: httpx.AsyncClient) -> None:
    listed = await client.get("/v1/events", params={"limit": "5", "type": "message.sent"})
    assert listed.status_code == 200 and listed.json() == {"data": [], "next_cursor": None}
