"""The `relay` command as a user runs it: real subprocesses, real Redis, real HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, wait_until_sync
from workers.dev import choose_port
from workers.dev_state import DevState, published

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


def _answers_200(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_http(url: str, *, timeout_s: float = 30) -> None:
    wait_until_sync(lambda: _answers_200(url), timeout_s=timeout_s, what=f"{url} to answer 200")


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
        _wait_http(f"http://127.0.0.1:{port}/healthz", timeout_s=60)  # every role starts
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
    answers: list[httpx.Response] = []

    def answered() -> bool:
        try:
            answers.append(httpx.get(url, headers=headers))
        except httpx.ConnectError:
            return False
        return True

    wait_until_sync(answered, timeout_s=30, what=f"{url} to listen")
    return answers[-1]


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
        process.communicate(timeout=60)  # drains and closes the stdout pipe
    assert process.returncode == 0
    wait_until_sync(
        lambda: not _processes_with(marker), timeout_s=10, what=f"no process left by {argv}"
    )


def test_dev_refuses_a_taken_port_naming_the_flag(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*RELAY, "dev", "--simulator-port", str(port)],
            env=_env(XDG_RUNTIME_DIR=str(tmp_path), RELAY_API_PORT=str(free_port())),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"port {port}" in result.stderr and "--simulator-port" in result.stderr


def test_a_taken_default_port_moves_to_a_free_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        default = taken.getsockname()[1]
        port = choose_port("127.0.0.1", asked=None, default=default, flag="--x")
    assert port.moved_from == default and port.number != default


class Dev:
    """A `relay dev` subprocess whose output goes to a file, for tests that run several."""

    def __init__(self, directory: Path, name: str, env: dict[str, str]) -> None:
        self.out = directory / f"{name}.out"
        self._file = self.out.open("w")
        self.process = subprocess.Popen(
            [*RELAY, "dev", "--rate", "5"], env=env, stdout=self._file, stderr=subprocess.STDOUT
        )

    def text(self) -> str:
        return self.out.read_text()

    def verified_ids(self) -> set[str]:
        return set(re.findall(r"^\[verified\] (?:\[\w+\] )?\S+ (evt_\w+)", self.text(), re.M))

    def wait_for_webhooks(self, count: int) -> None:
        wait_until_sync(
            lambda: len(self.verified_ids()) >= count or self.process.poll() is not None,
            timeout_s=90,
            what=f"{count} verified webhooks in {self.out}",
        )
        assert self.process.poll() is None, self.text()

    def banner(self, label: str) -> str:
        found = re.search(rf"^  {label}\s+(\S+)", self.text(), re.M)
        assert found, self.text()
        return found.group(1)

    def event_ids(self) -> set[str]:
        """Every event this dev stored: all pages, since on a slow machine a dev at 5 SMS/s
        has more than one page by the time it is asked."""
        api, token = self.banner("admin API"), self.banner("admin token")
        headers = {"Authorization": f"Bearer {token}"}
        answer = _get_when_listening(f"{api}/v1/events?limit=100", headers=headers).json()
        ids = {event["id"] for event in answer["data"]}
        while answer["next_cursor"]:
            page = httpx.get(
                f"{api}/v1/events",
                params={"limit": 100, "cursor": answer["next_cursor"]},
                headers=headers,
            )
            answer = page.raise_for_status().json()
            ids |= {event["id"] for event in answer["data"]}
        return ids

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        self._file.close()
        return self.text()


def test_two_devs_side_by_side_each_receive_only_their_own_webhooks(
    tmp_path: Path, marker: str
) -> None:
    # Default simulator and receiver ports on purpose: the second dev finds them taken.
    env = _env(XDG_RUNTIME_DIR=str(tmp_path), RELAY_TEST_MARKER=marker)
    first = Dev(tmp_path, "first", {**env, "RELAY_API_PORT": str(free_port())})
    try:
        first.wait_for_webhooks(1)
        second = Dev(tmp_path, "second", {**env, "RELAY_API_PORT": str(free_port())})
        try:
            second.wait_for_webhooks(3)
            first.wait_for_webhooks(3)
            for label in ("MC5 simulator", "demo receiver", "Redis"):
                assert first.banner(label) != second.banner(label)
            status = subprocess.run(
                [*RELAY, "status", "--json"], env=env, capture_output=True, text=True, timeout=30
            )
            assert status.returncode == 0, status.stderr
            assert f"pid {second.process.pid}" in status.stderr  # the newest dev
            assert "the newest of 2" in status.stderr
            assert json.loads(status.stdout)["key_prefix"] == "relay:"
            first_events, second_events = first.event_ids(), second.event_ids()
            first_seen, second_seen = first.verified_ids(), second.verified_ids()
        finally:
            second_output = second.stop()
    finally:
        first_output = first.stop()
    assert first_seen and second_seen
    assert first_seen <= first_events and not first_seen & second_events
    assert second_seen <= second_events and not second_seen & first_events
    for output in (first_output, second_output):
        assert "SIGNATURE INVALID" not in output
        assert "stopping…" in output and re.search(r"^stopped in \d+\.\d s$", output, re.M)
    assert list(tmp_path.glob("relay/dev-*.json")) == []  # both state files withdrawn


def test_dev_refuses_a_redis_url_and_prefix_another_dev_uses(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    other = DevState(
        pid=os.getpid(),  # alive: this test process stands in for the other dev
        started_at=time.time(),
        redis_url=redis_url,
        key_prefix=key_prefix,
        api_url="http://127.0.0.1:1",
        token="t",
        simulator_url="http://127.0.0.1:2",
        receiver_url="http://127.0.0.1:3/",
    )
    env = _env(
        XDG_RUNTIME_DIR=str(tmp_path),
        REDIS_URL=redis_url,
        RELAY_KEY_PREFIX=key_prefix,
        RELAY_API_PORT="0",
    )
    with published(other, str(tmp_path)):
        argv = [*RELAY, "dev", "--simulator-port", "0", "--receiver-port", "0"]
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"pid {os.getpid()}" in result.stderr and "RELAY_KEY_PREFIX" in result.stderr


@pytest.mark.parametrize(("chosen", "expected"), [(None, "uvloop"), ("asyncio", "asyncio")])
def test_a_role_runs_on_uvloop_unless_asyncio_is_chosen(
    redis_url: str, key_prefix: str, tmp_path: Path, chosen: str | None, expected: str
) -> None:
    env = _env(REDIS_URL=redis_url, RELAY_KEY_PREFIX=key_prefix)
    if chosen is not None:
        env["RELAY_EVENT_LOOP"] = chosen
    log_path = tmp_path / "dispatcher.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([*RELAY, "dispatcher"], env=env, stderr=log_file)
    try:

        def started() -> list[dict[str, object]]:
            lines = log_path.read_text().splitlines()
            rows = [json.loads(line) for line in lines if line.startswith("{")]
            return [row for row in rows if row["event"] == "dispatcher started"]

        wait_until_sync(lambda: bool(started()), timeout_s=30, what="the dispatcher to start")
        assert [row["event_loop"] for row in started()] == [expected]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0
