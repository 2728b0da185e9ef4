"""Schemathesis against the live API (every check, every phase, bounded in time): the API
answers what openapi.yaml promises, and the schema is as strict as the API; once with the
env token, once with a tenant key (which must never see the other tenant's rows)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from relay.api import create_app
from relay.core.access import OPERATOR_ONLY_SCOPES, SCOPES
from relay.settings import Settings
from tests.api.conftest import TOKEN

ST = Path(sys.executable).with_name("st")
MAX_TIME_S = 45
TENANT_MAX_TIME_S = 25


def test_schemathesis_finds_no_failure_with_all_checks(
    api_settings: Settings, serve_app: Callable[..., str], tmp_path: Path
) -> None:
    # Schemathesis sends wrong tokens on purpose (its auth checks): not a brute force.
    base_url = serve_app(create_app(api_settings.replace(auth_failures_per_minute=1_000_000)))
    _run_schemathesis(base_url, TOKEN, tmp_path, max_time_s=MAX_TIME_S, min_generated=300)


def test_schemathesis_with_a_tenant_key_finds_no_failure_nor_the_other_tenants_rows(
    api_settings: Settings, serve_app: Callable[..., str], tmp_path: Path
) -> None:
    base_url = serve_app(create_app(api_settings.replace(auth_failures_per_minute=1_000_000)))
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        mine, theirs = (api.post("/v1/tenants", json={"name": n}).json()["id"] for n in "AB")
        other = api.post(
            "/v1/sources",
            json={"username": "other-tenant-user", "password": "other-pw", "tenant_id": theirs},
        ).json()
        other_sub = api.post(
            "/v1/subscriptions",
            json={"url": "http://127.0.0.1:9/other-tenant-hook", "tenant_id": theirs},
        ).json()
        scopes = [s for s in SCOPES if s not in OPERATOR_ONLY_SCOPES]
        key = api.post("/v1/keys", json={"name": "st", "scopes": scopes, "tenant_id": mine})
        har = _run_schemathesis(
            base_url, key.json()["key"], tmp_path, max_time_s=TENANT_MAX_TIME_S, min_generated=100
        )
        # Every /v1 answer (the operational routes are public by contract: /metrics names
        # source ids, see SECURITY.md).
        entries = json.loads(har.read_text())["log"]["entries"]
        answers = [
            json.dumps(e["response"])
            for e in entries
            if urlsplit(e["request"]["url"]).path.startswith("/v1/")
        ]
        assert len(answers) >= 100
        for marker in (other["id"], other_sub["id"], theirs, "other-tenant"):
            assert not [a for a in answers if marker in a], marker
        # Nothing the tenant did reached the other tenant's rows.
        assert api.get(f"/v1/sources/{other['id']}").json()["username"] == "other-tenant-user"
        assert api.get(f"/v1/subscriptions/{other_sub['id']}").status_code == 200


def _run_schemathesis(
    base_url: str, token: str, tmp_path: Path, *, max_time_s: int, min_generated: int
) -> Path:
    """Run every check and phase; the HAR file of every exchange."""
    report = tmp_path / "report.ndjson"
    har = tmp_path / "report.har"
    command = [
        str(ST),
        "run",
        f"{base_url}/openapi.yaml",
        "--url",
        base_url,
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        "10",
        "--max-time",
        str(max_time_s),
        "--seed",
        "1",
        "--workers",
        "1",  # one thread: CPython 3.11's ast module is not thread-safe (hypothesis parses)
        "--request-timeout",
        "30",
        "--report",
        "ndjson,har",
        "--report-ndjson-path",
        str(report),
        "--report-har-path",
        str(har),
        "--no-color",
        "--generation-database",
        "none",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=max_time_s + 60, env=env, cwd=tmp_path
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary + result.stderr[-2000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert counts is not None, summary
    print(counts.group(0))  # the figures, with `pytest -s`
    assert int(counts.group(1)) >= min_generated and "failed" not in counts.group(0), summary
    assert report.exists()
    assert all(json.loads(line) for line in report.read_text().splitlines() if line.strip())
    return har


def test_schemathesis_checks_get_openapi_yaml_itself(
    api_settings: Settings, serve_app: Callable[..., str], tmp_path: Path
) -> None:
    """The time-bounded run above may not reach this route; its answer is YAML that
    schemathesis parses, so the schema must describe a document, not a string."""
    base_url = serve_app(create_app(api_settings))
    command = [
        str(ST),
        "run",
        f"{base_url}/openapi.yaml",
        "--url",
        base_url,
        "--checks",
        "all",
        "--include-path",
        "/openapi.yaml",
        "--phases",
        "examples,coverage,fuzzing",  # stateful needs links, which this route has none of
        "--max-examples",
        "10",
        "--seed",
        "1",
        "--workers",
        "1",
        "--no-color",
        "--generation-database",
        "none",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Selected: 1/" in result.stdout and "Tested: 1" in result.stdout, result.stdout
    counts = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert counts is not None and counts.group(1) == counts.group(2), result.stdout[-3000:]
