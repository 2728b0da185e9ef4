"""A live relay for the integration clients (the Zapier app, the admin CLI): `relay dev` as a
user runs it, with its embedded Redis, the MC5 simulator (no generated traffic: tests add
the messages they need) and every role."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from relay.demo.seed import DEMO_USERNAME
from tests.support import free_port, wait_until_sync


@dataclass(frozen=True)
class LiveRelay:
    url: str
    token: str
    simulator_url: str
    username: str  # the simulator account the dev source polls

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def add_sms(self, **message: str) -> str:
        """Put one message upstream (kind, from, recipient, text); its documentId."""
        response = httpx.post(
            f"{self.simulator_url}/_sim/messages",
            json={"username": self.username, "messages": [message]},
        )
        response.raise_for_status()
        return str(response.json()["documentIds"][0])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def live_relay() -> Iterator[LiveRelay]:
    api_port, sim_port, receiver_port = free_port(), free_port(), free_port()
    token = f"tok-{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "MC5_"))}
    env.pop("REDIS_URL", None)  # dev embeds its own Redis
    env.update(RELAY_API_PORT=str(api_port), RELAY_ADMIN_TOKEN=token, RELAY_POLL_INTERVAL="0.2")
    argv = [sys.executable, "-m", "workers.cli", "dev", "--rate", "0"]
    argv += ["--simulator-port", str(sim_port), "--receiver-port", str(receiver_port)]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    relay = LiveRelay(
        url=f"http://127.0.0.1:{api_port}",
        token=token,
        simulator_url=f"http://127.0.0.1:{sim_port}",
        username=DEMO_USERNAME,
    )
    try:
        wait_until_sync(
            lambda: (
                _answers(f"{relay.url}/healthz") and _answers(f"{relay.simulator_url}/_sim/stats")
            ),
            timeout_s=60,
            what="relay dev to answer",
        )
        yield relay
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
