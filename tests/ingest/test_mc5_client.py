"""MC5Client over an injected transport: the request it sends and how errors translate."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
import pytest

from relay.core.errors import UpstreamStatusError, UpstreamTransportError
from relay.core.models import Page
from relay.ingest.mc5_client import MC5Client

PASSWORD = "s3cret-pw"


def _client(handler: httpx.MockTransport | None = None, *, timeout_s: float = 10.0) -> MC5Client:
    return MC5Client(transport=handler, timeout_s=timeout_s)


async def _fetch(client: MC5Client, since: int = 1366624700) -> Page:
    try:
        return await client.fetch_page(
            base_url="http://mc5.test/", username="1234@reseller", password=PASSWORD, since=since
        )
    finally:
        await client.aclose()


async def test_posts_form_with_credentials_in_the_body_not_the_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": 0, "hasMoreMessages": False})

    page = await _fetch(_client(httpx.MockTransport(handler)), since=42)
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "http://mc5.test/services/rest/user/allMessages"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "username": ["1234@reseller"],
        "password": [PASSWORD],
        "since": ["42"],
    }
    assert page.has_more is False


async def test_json_page_is_parsed() -> None:
    body = {
        "status": 0,
        "incomingMessages": [{"documentId": 7, "timestamp": 9, "text": "  x", "from": 61}],
    }
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=body))
    page = await _fetch(_client(transport))
    assert page.messages[0].document_id == "7"
    assert page.messages[0].text == "  x"


async def test_non_zero_status_raises_status_error() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"status": 3}))
    with pytest.raises(UpstreamStatusError, match="MC5 status 3: authentication failed"):
        await _fetch(_client(transport))


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(502, text="bad gateway"), "transport: HTTP 502 from upstream"),
        (httpx.Response(500, json={"status": 0}), "transport: HTTP 500 from upstream"),
        (
            httpx.Response(200, html="<html><body>oops</body></html>"),
            "transport: HTML page instead of JSON (HTTP 200)",
        ),
        (
            httpx.Response(200, text="<html>no type</html>"),
            "transport: HTML page instead of JSON (HTTP 200)",
        ),
        (
            httpx.Response(
                200, content=b'{"status": 0, "incom', headers={"content-type": "application/json"}
            ),
            "transport: invalid JSON",
        ),
        (httpx.Response(200, json=[1, 2]), "transport: malformed allMessages response"),
    ],
)
async def test_bad_answers_are_transport_errors(response: httpx.Response, message: str) -> None:
    transport = httpx.MockTransport(lambda r: response)
    with pytest.raises(UpstreamTransportError) as caught:
        await _fetch(_client(transport))
    assert str(caught.value).startswith(message)
    assert PASSWORD not in str(caught.value)


async def test_connection_failure_is_a_readable_transport_error_without_the_password() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(UpstreamTransportError) as caught:
        await _fetch(_client(httpx.MockTransport(handler)))
    text = str(caught.value)
    assert text.startswith("transport: connection refused")
    assert "mc5.test" in text
    assert PASSWORD not in text


async def test_timeout_is_a_transport_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(UpstreamTransportError, match=r"transport: no answer within 2 s"):
        await _fetch(_client(httpx.MockTransport(handler), timeout_s=2.0))


async def test_one_client_reuses_its_connection_pool_for_many_calls() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, content=json.dumps({"status": 0}).encode())

    client = _client(httpx.MockTransport(handler))
    for since in range(3):
        await client.fetch_page(base_url="http://x", username="u", password="p", since=since)
    await client.aclose()
    assert calls == 3
