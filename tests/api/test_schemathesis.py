"""Schemathesis against the live API (every check, every phase, bounded in time): the API
answers what openapi.yaml promises, and the schema is as strict as the API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from relay.api import create_app
from relay.settings import Settings
from tests.api.conftest import TOKEN

ST = Path(sys.executable).with_name("st")
MAX_TIME_S = 45


def test_schemathesis_finds_no_failure_with_all_checks(
    api_settings: Settings, serve_app: Callable[..., str], tmp_path: Path
) -> None:
    # Schemathesis sends wrong tokens on purpose (its auth checks): not a brute force.
    base_url = serve_app(create_app(api_settings.replace(auth_failures_per_minute=1_000_000)))
    report = tmp_path / "report.ndjson"
    command = [
        str(ST),
        "run",
        f"{base_url}/openapi.yaml",
        "--url",
        base_url,
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--max-examples",
        "10",
        "--max-time",
        str(MAX_TIME_S),
        "--seed",
        "1",
        "--workers",
        "1",  # one thread: CPython 3.11's ast module is not thread-safe (hypothesis parses)
        "--request-timeout",
        "30",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--no-color",
        "--generation-database",
        "none",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=MAX_TIME_S + 60, env=env, cwd=tmp_path
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary + result.stderr[-2000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert counts is not None, summary
    print(counts.group(0))  # the figures, with `pytest -s`
    assert int(counts.group(1)) >= 300 and "failed" not in counts.group(0), summary
    assert report.exists()
    assert all(json.loads(line) for line in report.read_text().splitlines() if line.strip())
