"""The `relay` command as a user runs it: real subprocesses, real Redis, real HTTP."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
RELAY = [sys.executable, "-m", "workers.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "MC5_"))}
    env.pop("REDIS_URL", None)
    env.update(extra)
    return env


def _processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                status = (entry / "status").read_text()
                if "\nState:\tZ" not in status:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_run_with_unreachable_redis_exits_non_zero_naming_redis_url() -> None:
    env = _env(REDIS_URL="redis://127.0.0.1:1/0", RELAY_ADMIN_TOKEN="cli-test-token-0123456789")
    started = time.monotonic()
    result = subprocess.run(
        [*RELAY, "run"], env=env, capture_output=True, text=True, timeout=30, cwd="/"
    )
    assert result.returncode == 3
    assert "REDIS_URL" in result.stderr
    assert time.monotonic() - started < 10


def test_bad_setting_exits_with_config_error_naming_the_variable() -> None:
    env = _env(
        REDIS_URL="redis://127.0.0.1:1/0",
        RELAY_ADMIN_TOKEN="cli-test-token-0123456789",
        RELAY_API_PORT="x",
    )
    result = subprocess.run([*RELAY, "api"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "RELAY_API_PORT" in result.stderr


def test_api_without_admin_token_refuses_to_start(redis_url: str) -> None:
    result = subprocess.run(
        [*RELAY, "api"], env=_env(REDIS_URL=redis_url), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "RELAY_ADMIN_TOKEN" in result.stderr


def test_api_with_a_weak_admin_token_refuses_to_start_naming_the_override(
    redis_url: str,
) -> None:
    env = _env(REDIS_URL=redis_url, RELAY_ADMIN_TOKEN="a")
    result = subprocess.run([*RELAY, "api"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "shorter than 16 characters" in result.stderr
    assert "RELAY_ALLOW_WEAK_TOKENS=true" in result.stderr


@pytest.fixture
def marker() -> Iterator[str]:
    """A unique environment marker; any process still carrying it at the end is killed."""
    value = f"relay-test-{uuid.uuid4().hex}"
    yield value
    for pid in _processes_with(value):
        os.kill(pid, signal.SIGKILL)


def _wait_http(url: str, *, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {timeout_s} s")


def test_run_serves_healthz_for_the_docker_healthcheck_from_any_directory(
    redis_url: str, key_prefix: str, marker: str
) -> None:
    port = free_port()
    env = _env(
        REDIS_URL=redis_url,
        RELAY_KEY_PREFIX=key_prefix,
        RELAY_ADMIN_TOKEN="cli-test-token-0123456789",
        RELAY_API_PORT=str(port),
        RELAY_TEST_MARKER=marker,
    )
    process = subprocess.Popen([*RELAY, "run"], env=env, cwd="/", stderr=subprocess.PIPE)
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz")
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.yaml").status_code == 200
        healthcheck = _dockerfile_healthcheck()
        check = subprocess.run(healthcheck, env=env, timeout=10)
        assert check.returncode == 0
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    assert {line["role"] for line in lines} >= {"supervisor"}
    assert any("persistence is off" in line["event"] for line in lines) or redis_url.startswith(
        "redis"
    )
    assert _processes_with(marker) == []


def _get_when_listening(url: str, *, headers: dict[str, str]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(url, headers=headers)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _dockerfile_healthcheck() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(r"HEALTHCHECK .*?CMD \[(.*?)\]\n", text, re.S)
    assert match, "Dockerfile has no exec-form HEALTHCHECK"
    argv = json.loads(f"[{match.group(1)}]")
    return [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]


def test_dev_delivers_a_verified_webhook_and_ctrl_c_leaves_no_process(marker: str) -> None:
    api_port, sim_port, receiver_port = free_port(), free_port(), free_port()
    env = _env(RELAY_API_PORT=str(api_port), RELAY_TEST_MARKER=marker)
    argv = [*RELAY, "dev", "--rate", "5", "--simulator-port", str(sim_port)]
    argv += ["--receiver-port", str(receiver_port)]
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("[verified]"):
                break
        assert any(line.startswith("[verified]") for line in seen), "".join(seen)
        banner = "".join(seen)
        assert f"http://127.0.0.1:{api_port}" in banner
        token = re.search(r"admin token\s+(\S+)", banner)
        assert token is not None
        events = _get_when_listening(
            f"http://127.0.0.1:{api_port}/v1/events",
            headers={"Authorization": f"Bearer {token.group(1)}"},
        )  # the API may come up after the first webhook on a busy machine
        assert events.status_code == 200 and events.json()["data"]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    assert process.returncode == 0
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_with(marker) == [], shlex.join(argv)
