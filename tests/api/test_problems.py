"""HTTP-level errors: every one is problem+json with the right status."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from relay.web.bodies import MAX_BODY_BYTES


def assert_problem(response: httpx.Response, status: int, kind: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["type"] == f"urn:relay:problem:{kind}"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404, "not-found")
    assert_problem(await client.get("/nothing"), 404, "not-found")


async def test_trailing_slash_is_not_redirected(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/sources/"), 404, "not-found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/sources", {"GET", "HEAD", "POST"}),
        ("PUT", "/v1/sources/src_x", {"GET", "HEAD", "PATCH", "DELETE"}),
        ("GET", "/v1/subscriptions/sub_x/test", {"POST"}),
        ("POST", "/v1/events", {"GET", "HEAD"}),
        ("POST", "/healthz", {"GET", "HEAD"}),
    ],
)
async def test_wrong_method_is_405_with_allow(
    client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path)
    assert_problem(response, 405, "method-not-allowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


async def test_invalid_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/sources", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed-request")


@pytest.mark.parametrize("raw", [b"NaN", b'{"a": Infinity}', b"\xff\xfe", b"[" * 5000])
async def test_non_standard_or_broken_json_is_400(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post(
        "/v1/subscriptions", content=raw, headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed-request")


async def test_missing_required_body_is_400(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post("/v1/sources"), 400, "malformed-request")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_wrong_content_type_is_415(client: httpx.AsyncClient, content_type: str) -> None:
    response = await client.post(
        "/v1/sources",
        content=b'{"username": "u", "password": "p"}',
        headers={"content-type": content_type},
    )
    assert_problem(response, 415, "unsupported-media-type")


async def test_json_with_charset_and_plus_json_are_accepted(client: httpx.AsyncClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = await client.post(
            "/v1/subscriptions",
            content=b'{"url": "https://example.com/hook"}',
            headers={"content-type": content_type},
        )
        assert response.status_code == 201, response.text


async def test_body_over_64_kib_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"description": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = await client.post(
        "/v1/subscriptions", content=big, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large")


async def test_streamed_body_over_64_kib_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[
        bytes
    ]:  # no Content-Length: the limit is enforced while reading
        for _ in range(20):
            yield b"x" * 4096

    response = await client.post(
        "/v1/subscriptions", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large")


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null"])
async def test_json_that_is_not_an_object_is_422(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/v1/subscriptions", content=body, headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "invalid-input")


async def test_unknown_fields_are_422_naming_each(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/subscriptions", json={"url": "https://example.com/h", "colour": 1, "size": 2}
    )
    body = assert_problem(response, 422, "invalid-input")
    assert body["field"] == "colour"
    assert body["errors"] == [
        {"field": "colour", "detail": "unknown field 'colour'"},
        {"field": "size", "detail": "unknown field 'size'"},
    ]
    assert "'colour'" in str(body["detail"]) and "'size'" in str(body["detail"])


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=abc", "limit=1.5", "limit=", "cursor=nope"]
)
async def test_bad_paging_parameters_are_422(client: httpx.AsyncClient, query: str) -> None:
    for path in ("/v1/sources", "/v1/subscriptions", "/v1/events", "/v1/dead-letters"):
        response = await client.get(f"{path}?{query}")
        body = assert_problem(response, 422, "invalid-input")
        assert body["field"] == query.split("=")[0]
