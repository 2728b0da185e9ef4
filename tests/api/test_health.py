from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from relay.api import create_app
from relay.settings import Settings
from relay.store.connection import async_redis
from tests.support import free_port


async def test_healthz(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_when_redis_answers(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("status", "redis", "roles")} == {
        "status": "ok",
        "redis": "ok",
        "roles": {},
    }
    assert body["redis_memory"]["maxmemory_policy"] == "noeviction"
    assert body["redis_memory"]["evicting"] is False


async def test_readyz_is_503_and_v1_is_503_when_redis_is_down(api_settings: Settings) -> None:
    dead = async_redis(f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(api_settings, redis=dead)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"Authorization": "Bearer test-token"}
        ) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.headers["content-type"] == "application/problem+json"
            assert ready.json()["type"] == "urn:relay:problem:unavailable"
            listing = await client.get("/v1/sources")
            assert listing.status_code == 503
            assert listing.headers["retry-after"] == "5"
            assert "127.0.0.1" not in listing.json()["detail"]
    await dead.aclose()


async def test_metrics_are_prometheus_text(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "relay_dead_letters" in response.text
    assert 'role="api"' in response.text


async def test_openapi_yaml_is_served(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    document = yaml.safe_load(response.text)
    assert document["openapi"].startswith("3.1")
    root = Path(__file__).resolve().parents[2]
    assert (root / "openapi.yaml").read_bytes() == response.content


def test_openapi_document_is_found_from_any_directory(tmp_path: Path) -> None:
    code = "from relay.api.health import openapi_document; print(len(openapi_document()))"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 1000
