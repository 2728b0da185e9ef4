"""Helpers for the observability tests: scrape and read `/metrics`, run `relay status --json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from relay.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


async def scrape(api_url: str) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{api_url}/metrics")
    response.raise_for_status()
    return response.text


def sample_sum(text: str, name: str, **labels: str) -> float:
    """The sum of every sample called `name` whose labels include `labels` (over roles and
    instances, as a PromQL `sum` would)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def exposed_names(text: str) -> set[str]:
    """Every series name a PromQL query could use on this exposition, including families that
    have no sample yet (a labelled counter before its first increment)."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count"),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def relay_command() -> list[str]:
    """The installed `relay` console script next to this interpreter, else `-m workers.cli`."""
    script = Path(sys.executable).parent / "relay"
    return [str(script)] if script.exists() else [sys.executable, "-m", "workers.cli"]


def run_status(
    settings: Settings, *args: str, redis_url: str | None = None
) -> tuple[int, str, str]:
    """`relay status ARGS` as a subprocess with only REDIS_URL and RELAY_KEY_PREFIX set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "REDIS_", "MC5_"))}
    env["REDIS_URL"] = redis_url or settings.require_redis_url()
    env["RELAY_KEY_PREFIX"] = settings.key_prefix
    result = subprocess.run(
        [*relay_command(), "status", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


def status_json(settings: Settings) -> dict[str, Any]:
    code, out, err = run_status(settings, "--json")
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def subscription_in(status: dict[str, Any], subscription_id: str) -> dict[str, Any]:
    (found,) = [s for s in status["subscriptions"] if s["id"] == subscription_id]
    return found  # type: ignore[no-any-return]
