"""create_app() under its own uvicorn (with lifespan), and serve() as `relay simulate` uses it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from relay.core.errors import InvalidInput
from relay.simulator.app import SimulatorConfig, create_app, serve
from tests.simulator.conftest import ALL_MESSAGES, START, FakeClock
from tests.support import free_port, wait_until


def test_app_served_on_its_own_answers_polls(serve_app: Callable[..., str]) -> None:
    app = create_app(SimulatorConfig(accounts={"1234321@reseller": "pw"}), clock=FakeClock())
    url = serve_app(app)
    with httpx.Client(base_url=url) as http:
        http.post("/_sim/messages", json={"messages": [{"kind": "incoming", "text": " hi"}]})
        http.post("/_sim/traffic", json={"rate": 20})

        body = http.post(
            ALL_MESSAGES, data={"username": "1234321@reseller", "password": "pw", "since": "0"}
        ).json()

    assert body["incomingMessages"][0]["text"] == " hi"
    assert body["incomingMessages"][0]["timestamp"] == START
    # Left running on purpose: the lifespan must stop the generator when the server stops.


@pytest.mark.parametrize(
    "config",
    [
        SimulatorConfig(page_size=0),
        SimulatorConfig(capacity=-5),
        SimulatorConfig(empty_newest="never"),
        SimulatorConfig(accounts={"with space": "pw"}),
    ],
)
def test_unusable_config_is_refused_at_creation(config: SimulatorConfig) -> None:
    with pytest.raises(InvalidInput):
        create_app(config)


async def test_serve_generates_traffic_until_cancelled() -> None:
    port = free_port()
    task = asyncio.create_task(
        serve(host="127.0.0.1", port=port, config=SimulatorConfig(), traffic_rate=100)
    )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:

        async def has_messages() -> bool:
            try:
                return bool((await http.get("/_sim/stats")).json()["messages"] > 0)
            except httpx.TransportError:
                return False  # not listening yet

        await wait_until(has_messages, timeout_s=10)
        stats = (await http.get("/_sim/stats")).json()
        traffic = (await http.get("/_sim/traffic")).json()

        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        with pytest.raises(httpx.ConnectError):
            await http.get("/_sim/stats")

    assert stats["messages"] > 0
    assert traffic["usernames"] == ["demo@reseller"]
