"""Hostile input to the admin API, by hand (schemathesis covers the schema at random):
oversized and mistyped bodies, deep nesting, unicode edge cases, SSRF URL tricks, a name that
resolves to a private address at delivery time, and header injection through custom headers.

Every answer must be a 4xx problem (never a 5xx), and no response body or log line may carry
the admin token, a webhook secret or an upstream password."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette

from relay.api import create_app
from relay.core.urls import is_public_address
from relay.settings import Settings
from tests.api.conftest import AUTH, TOKEN

PASSWORD = "hunter2-upstream-password"
NUL_TO_1F = "".join(chr(c) for c in range(0x20))


@pytest.fixture
def strict_settings(api_settings: Settings) -> Settings:
    """Production rules: private and loopback subscriber URLs are refused."""
    return api_settings.replace(allow_private_targets=False)


@pytest.fixture
async def strict(strict_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app: Starlette = create_app(strict_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://relay.test", headers=AUTH
        ) as http:
            yield http


class Ledger:
    """Every response of a test, to check none is a 5xx and none leaks a secret."""

    def __init__(self) -> None:
        self.responses: list[httpx.Response] = []
        self.secrets: list[str] = [TOKEN, PASSWORD]

    def add(self, response: httpx.Response) -> httpx.Response:
        self.responses.append(response)
        return response

    def check(self, logs: str) -> None:
        assert [r for r in self.responses if r.status_code >= 500] == []
        for response in self.responses:
            for secret in self.secrets:
                assert secret not in response.text, (response.request.url, secret)
        for secret in self.secrets:
            assert secret not in logs


@pytest.fixture
def ledger(caplog: pytest.LogCaptureFixture) -> Iterator[Ledger]:
    caplog.set_level(logging.DEBUG)
    book = Ledger()
    yield book
    book.check(caplog.text)


async def _subscription(client: httpx.AsyncClient, ledger: Ledger, url: str) -> dict[str, Any]:
    response = await client.post("/v1/subscriptions", json={"url": url})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    ledger.secrets.append(body["secret"])  # shown once here; must never appear again
    return body


def _is_problem(response: httpx.Response, *statuses: int) -> bool:
    return (
        response.status_code in statuses
        and response.headers["content-type"] == "application/problem+json"
        and response.json()["status"] == response.status_code
    )


# Bodies


async def test_oversized_bodies_are_413(strict: httpx.AsyncClient, ledger: Ledger) -> None:
    big = json.dumps({"url": "https://example.com/", "description": "x" * 70_000})

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 1024  # 100 KiB without a Content-Length

    json_type = {"content-type": "application/json"}
    cases = [
        await strict.post("/v1/subscriptions", content=big, headers=json_type),
        await strict.post("/v1/sources", content=chunks(), headers=json_type),
        await strict.patch("/v1/subscriptions/sub_x", content=big, headers=json_type),
    ]
    for response in cases:
        ledger.add(response)
        assert _is_problem(response, 413), response.text


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/jsonx",
        "",
    ],
)
async def test_wrong_content_types_are_415(
    content_type: str, strict: httpx.AsyncClient, ledger: Ledger
) -> None:
    body = json.dumps({"url": "https://example.com/"})
    headers = {"content-type": content_type} if content_type else {}
    response = ledger.add(await strict.post("/v1/subscriptions", content=body, headers=headers))
    assert _is_problem(response, 415), response.text


@pytest.mark.parametrize("depth", [100, 10_000, 1_000_000])
async def test_deeply_nested_json_is_a_4xx(
    depth: int, strict: httpx.AsyncClient, ledger: Ledger
) -> None:
    nested = "[" * depth + "]" * depth
    for body in (nested, '{"url": "https://example.com/", "description": ' + nested + "}"):
        response = ledger.add(
            await strict.post(
                "/v1/subscriptions", content=body, headers={"content-type": "application/json"}
            )
        )
        assert _is_problem(response, 400, 413, 422), response.text


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"[]",
        b'"text"',
        b"\xff\xfe{}",
        b'\xef\xbb\xbf{"url": "https://example.com/"}',
        b'{"url": "https://example.com/", "url": "http://127.0.0.1/"}',
        b'{"url": NaN}',
        b'{"url": Infinity}',
        b'{"url": "https://example.com/"',
        b'{"url": "https://example.com/", "enabled": "yes"}',
        b'{"url": "https://example.com/", "headers": [["a", "b"]]}',
        b'{"url": "https://example.com/", "event_types": "message.received"}',
        b'{"url": 12}',
        b'{"url": "https://example.com/", "__proto__": {}}',
    ],
)
async def test_malformed_json_bodies_are_4xx(
    raw: bytes, strict: httpx.AsyncClient, ledger: Ledger
) -> None:
    response = ledger.add(
        await strict.post(
            "/v1/subscriptions", content=raw, headers={"content-type": "application/json"}
        )
    )
    if response.status_code == 201:  # duplicate keys: the last wins, and it is refused
        pytest.fail(f"accepted {raw!r}: {response.text}")
    assert _is_problem(response, 400, 415, 422), response.text


# Unicode

UNICODE_TEXTS = [
    "nul\u0000inside",
    "\ud800 lone high surrogate",
    "lone low \udfff",
    "\u202eright-to-left override\u202c",
    "\u200f\u05e9\u05dc\u05d5\u05dd rtl",
    "zero\u200bwidth\ufeffbom",
    "emoji \U0001f600 and combining e\u0301",
    NUL_TO_1F,
    "x" * 5000,
    "\uffff\ufffe nonchars",
]


@pytest.mark.parametrize("text", UNICODE_TEXTS, ids=range(len(UNICODE_TEXTS)))
async def test_unicode_edge_cases_never_break_the_api(
    text: str, strict: httpx.AsyncClient, ledger: Ledger
) -> None:
    # Escaped in JSON (lone surrogates cannot be sent as UTF-8 at all).
    escaped = json.dumps({"url": "https://example.com/hook", "description": text})
    response = await strict.post(
        "/v1/subscriptions", content=escaped, headers={"content-type": "application/json"}
    )
    assert response.status_code in (201, 422), response.text
    if response.status_code == 422:
        ledger.add(response)
    else:  # 201 is the one answer that shows the new secret
        ledger.secrets.append(response.json()["secret"])
        got = ledger.add(await strict.get(f"/v1/subscriptions/{response.json()['id']}"))
        assert got.status_code == 200
        assert got.json()["description"] == text  # stored and returned unchanged
    raw = quote(text.encode("utf-8", "surrogatepass"))  # as raw bytes in the URL
    for response in (
        await strict.post(
            "/v1/sources",
            content=json.dumps({"username": text, "password": PASSWORD}),
            headers={"content-type": "application/json"},
        ),
        await strict.get(f"/v1/events?type={raw}&cursor={raw}&source_id={raw}"),
        await strict.get(f"/v1/subscriptions/{raw}"),
        await strict.get(f"/v1/sources?limit={raw}"),
    ):
        ledger.add(response)
        assert response.status_code < 500, response.text


# SSRF: subscriber URLs

SSRF_URLS = [
    "http://127.0.0.1/",
    "http://2130706433/",  # decimal
    "http://0177.0.0.1/",  # octal
    "http://0x7f.0.0.1/",  # hex
    "http://0x7f000001/",
    "http://127.1/",
    "http://017700000001/",
    "http://[::ffff:127.0.0.1]/",  # IPv6-mapped
    "http://[::ffff:7f00:1]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",  # NAT64
    "http://[2002:7f00:1::]/",  # 6to4
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/",
    "http://[::1]/",
    "http://[::]/",
    "http://0.0.0.0/",
    "http://0/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://127。0。0。1/",  # ideographic full stops
    "http://１２７.０.０.１/",  # full-width digits  # noqa: RUF001
    "http://example.com@127.0.0.1/",  # userinfo tricks
    "http://127.0.0.1:80@example.com/",
    "http://user:pass@example.com/",
    "http://127.0.0.1#@example.com/",
    "http://127.0.0.1\\@example.com/",
    "http://127.0.0.1 /",
    "http://127.0.0.1\t/",
    "http://example.com\r\nHost: 127.0.0.1/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "ftp://example.com/",
    "javascript:alert(1)",
    "//example.com/",
    "http:///",
    "http://example.com:0/",
    "http://example.com:99999/",
    "http://" + "a" * 64 + ".com/",
    "https://example.com/" + "a" * 3000,
]


@pytest.mark.parametrize("url", SSRF_URLS)
async def test_unsafe_subscriber_urls_are_refused_on_create_and_update(
    url: str, strict: httpx.AsyncClient, ledger: Ledger
) -> None:
    created = ledger.add(await strict.post("/v1/subscriptions", json={"url": url}))
    assert _is_problem(created, 422), created.text
    assert created.json().get("errors", [{}])[0].get("field", "url") == "url"
    existing = await _subscription(strict, ledger, "https://example.com/ok")
    patched = ledger.add(
        await strict.patch(f"/v1/subscriptions/{existing['id']}", json={"url": url})
    )
    assert _is_problem(patched, 422), patched.text
    after = ledger.add(await strict.get(f"/v1/subscriptions/{existing['id']}"))
    assert after.json()["url"] == "https://example.com/ok"


async def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(
    strict: httpx.AsyncClient, ledger: Ledger
) -> None:
    # This machine's own name passes the save-time check (it is not an IP literal nor a
    # localhost name) but /etc/hosts or DNS points it at a loopback or private address.
    name = socket.gethostname().lower()
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(name, 80)}
    except socket.gaierror:
        pytest.skip(f"{name} does not resolve here")
    if any(is_public_address(address) for address in addresses):
        pytest.skip(f"{name} resolves to a public address here: {addresses}")
    subscription = await _subscription(strict, ledger, f"http://{name}:9/hook")
    response = ledger.add(await strict.post(f"/v1/subscriptions/{subscription['id']}/test"))
    assert response.status_code == 200, response.text
    attempt = response.json()
    assert attempt["status_code"] is None
    assert attempt["error"] == f"refused: {name} resolves only to non-public addresses"


# Header injection through custom headers

BAD_HEADERS = [
    {"X-Evil": "a\r\nX-Injected: 1"},
    {"X-Evil": "a\nb"},
    {"X-Evil": "a\rb"},
    {"X-Evil": "nul\u0000"},
    {"X-Evil": "caf\u00e9"},
    {"X-Evil": " leading"},
    {"X-Evil\r\nX-Injected": "1"},
    {"X Evil": "1"},
    {"X-Evil:": "1"},
    {"": "1"},
    {"webhook-signature": "v1,forged"},
    {"Webhook-Id": "msg_forged"},
    {"WEBHOOK-TIMESTAMP": "0"},
    {"Host": "internal.example"},
    {"Content-Length": "0"},
    {"Transfer-Encoding": "chunked"},
    {"Content-Type": "text/plain"},
    {"User-Agent": "not-relay"},
    {"Connection": "close"},
    {f"X-H{i}": "v" for i in range(21)},
    {"X-Long": "v" * 10_000},
    {"X-" + "n" * 1000: "v"},
]


@pytest.mark.parametrize("headers", BAD_HEADERS, ids=range(len(BAD_HEADERS)))
async def test_header_injection_through_custom_headers_is_refused(
    headers: dict[str, str], strict: httpx.AsyncClient, ledger: Ledger
) -> None:
    body = {"url": "https://example.com/hook", "headers": headers}
    created = ledger.add(await strict.post("/v1/subscriptions", json=body))
    assert _is_problem(created, 422), created.text
    existing = await _subscription(strict, ledger, "https://example.com/ok")
    patched = ledger.add(
        await strict.patch(f"/v1/subscriptions/{existing['id']}", json={"headers": headers})
    )
    assert _is_problem(patched, 422), patched.text
    after = ledger.add(await strict.get(f"/v1/subscriptions/{existing['id']}"))
    assert after.json()["headers"] == {}


# Secrets never leak


async def test_passwords_and_secrets_never_appear_in_answers_or_logs(
    strict: httpx.AsyncClient, ledger: Ledger
) -> None:
    source = ledger.add(
        await strict.post(
            "/v1/sources",
            json={"username": "leak@reseller", "password": PASSWORD, "base_url": "https://x.test"},
        )
    )
    assert source.status_code == 201, source.text
    subscription = await _subscription(strict, ledger, "https://example.com/hook")
    bad_password_bodies: list[dict[str, Any]] = [
        {"username": "a b", "password": PASSWORD},
        {"username": "ok@r", "password": PASSWORD, "base_url": "not a url"},
        {"username": "ok@r", "password": PASSWORD, "poll_interval": "soon"},
        {"username": "ok@r", "password": PASSWORD, "unknown": PASSWORD},
        {"username": PASSWORD + " x", "password": PASSWORD},
    ]
    for body in bad_password_bodies:
        response = ledger.add(await strict.post("/v1/sources", json=body))
        assert _is_problem(response, 422), response.text
    for path in ("/v1/sources", f"/v1/sources/{source.json()['id']}", "/v1/subscriptions"):
        ledger.add(await strict.get(path))
    ledger.add(await strict.patch(f"/v1/sources/{source.json()['id']}", json={"password": 5}))
    ledger.add(
        await strict.patch(
            f"/v1/subscriptions/{subscription['id']}", json={"url": "http://127.0.0.1/"}
        )
    )
    wrong = ledger.add(
        await strict.get("/v1/sources", headers={"Authorization": f"Bearer {TOKEN}x"})
    )
    assert wrong.status_code == 401
    # The one legitimate place for the secret is its own route, which is not in the ledger.
    shown = await strict.get(f"/v1/subscriptions/{subscription['id']}/secret")
    assert shown.json()["secret"] == subscription["secret"]
