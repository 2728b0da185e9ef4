from __future__ import annotations

import ast
import inspect
import logging
import re

import httpx
import pytest
import yaml
from starlette.routing import Route

from relay.admin import auth as credentials
from relay.admin.auth import is_valid_token
from relay.api import auth
from relay.api.app import all_routes
from relay.api.health import openapi_document
from relay.observability.logs import JsonFormatter
from tests.api.conftest import SECOND_TOKEN, TOKEN

PROTECTED = [
    ("GET", "/v1/sources"),
    ("POST", "/v1/sources"),
    ("GET", "/v1/subscriptions/sub_x"),
    ("POST", "/v1/subscriptions/sub_x/test"),
    ("GET", "/v1/events"),
    ("POST", "/v1/dead-letters/dl_x/retry"),
    ("GET", "/v1/no-such-route"),
    ("DELETE", "/v1/events"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_v1_routes_without_a_token_are_401_problems(
    anonymous: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await anonymous.request(method, path)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["type"] == "urn:relay:problem:unauthorized"
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"
    assert body["detail"] == "missing Authorization header"


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Basic dGVzdC10b2tlbg==", "test-token", "Token test-token"],
)
async def test_malformed_authorization_is_401(anonymous: httpx.AsyncClient, header: str) -> None:
    response = await anonymous.get("/v1/sources", headers={"Authorization": header})
    assert response.status_code == 401
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    "token", [b"wrong", b"test-token2", b"test-toke", b"TEST-TOKEN", "tést".encode("latin-1")]
)
async def test_wrong_token_is_401_and_not_echoed(
    anonymous: httpx.AsyncClient, token: bytes
) -> None:
    headers = {b"Authorization": b"Bearer " + token}
    response = await anonymous.get("/v1/sources", headers=headers)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["detail"] == "the token is not valid"


@pytest.mark.parametrize("token", [TOKEN, SECOND_TOKEN])
async def test_every_configured_token_is_accepted_during_rotation(
    anonymous: httpx.AsyncClient, token: str
) -> None:
    response = await anonymous.get("/v1/sources", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.yaml"])
async def test_operational_routes_need_no_token(anonymous: httpx.AsyncClient, path: str) -> None:
    assert (await anonymous.get(path)).status_code == 200


def test_token_comparison() -> None:
    assert is_valid_token("a", ["b", "a"])
    assert not is_valid_token("a", [])
    assert not is_valid_token("", ["a"])
    assert not is_valid_token("ab", ["a"])


# Every /v1 route, enumerated from the app and from openapi.yaml, so new routes are covered.


def _v1_routes() -> list[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in all_routes():
        if isinstance(route, Route) and route.path.startswith("/v1"):
            path = re.sub(r"\{[^}]+\}", "x_1", route.path)
            found.update((method, path) for method in route.methods or () if method != "HEAD")
    return sorted(found)


def test_every_openapi_v1_operation_is_enumerated() -> None:
    document = yaml.safe_load(openapi_document())
    documented = {
        (method.upper(), re.sub(r"\{[^}]+\}", "x_1", path))
        for path, operations in document["paths"].items()
        if path.startswith("/v1")
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert documented
    assert documented <= set(_v1_routes())


BAD_AUTHORIZATION: list[str | None] = [
    None,
    "",
    "Bearer",
    "Bearer    ",
    "Basic dGVzdC10b2tlbg==",
    f"Token {TOKEN}",
    TOKEN,
    "Bearer wrong",
    f"Bearer {TOKEN}x",
    f"Bearer {TOKEN[:-1]}",
    f"Bearer {TOKEN},{SECOND_TOKEN}",
    f"Bearer {TOKEN.upper()}",
]


@pytest.mark.parametrize(("method", "path"), _v1_routes())
async def test_every_v1_route_refuses_missing_malformed_and_wrong_tokens(
    anonymous: httpx.AsyncClient, method: str, path: str
) -> None:
    for header in BAD_AUTHORIZATION:
        headers = {} if header is None else {"Authorization": header}
        response = await anonymous.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (header, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["status"] == 401
        assert TOKEN not in response.text and SECOND_TOKEN not in response.text


async def test_tokens_and_secrets_are_redacted_from_logs(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await client.post("/v1/subscriptions", json={"url": "https://example.com/hook"})
    secret = created.json()["secret"]
    await client.get(f"/v1/subscriptions/{created.json()['id']}/secret")
    await anonymous.get("/v1/sources", headers={"Authorization": f"Bearer {TOKEN}x"})
    await anonymous.get("/v1/sources", headers={"Authorization": f"Bearer {SECOND_TOKEN}"})
    # Whatever a handler or library logs passes through the JSON formatter's redaction.
    formatter = JsonFormatter(role="api")
    lines = [formatter.format(record) for record in caplog.records]
    lines.append(formatter.format(_record(f"Authorization: Bearer {TOKEN} secret {secret}")))
    text = "\n".join(lines)
    assert TOKEN not in text and SECOND_TOKEN not in text and secret not in text


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("relay.test", logging.INFO, __file__, 1, message, None, None)


def test_tokens_are_compared_in_constant_time() -> None:
    source = inspect.getsource(credentials)
    tree = ast.parse(source)
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert "hmac.compare_digest" in calls or "secrets.compare_digest" in calls
    # No ordinary comparison touches a token: ==, !=, in, or a set/dict lookup of one.
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [ast.unparse(n) for n in (node.left, *node.comparators)]
            assert not any("token" in o.lower() or "given" in o for o in operands), operands
    assert "authenticate(" in inspect.getsource(auth.BearerAuth)
    assert "is_valid_token(" in inspect.getsource(credentials.authenticate)
