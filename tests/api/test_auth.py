from __future__ import annotations

import httpx
import pytest

from relay.api.auth import is_valid_token
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
    response = await anonymous.get("/v1/sources", headers={"Authorization": b"Bearer " + token})
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
