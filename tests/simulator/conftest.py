"""Simulator fixtures: a settable clock and a fresh simulator per test behind real HTTP.

One uvicorn server (tests.conftest.serve) lives for the whole simulator suite and each test
swaps a fresh app in: starting and stopping uvicorn per test cost ~0.25 s, over half the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from relay.simulator.app import SimulatorConfig, create_app
from tests.support import serve

ALL_MESSAGES = "/services/rest/user/allMessages"
START = 1_700_000_000  # the fake clock's second at the start of every test


class FakeClock:
    """A clock the test moves by hand; the simulator reads it for messages added "now"."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Sim:
    """A running simulator: its app (in-process state), base URL and an HTTP client."""

    app: Starlette
    url: str
    http: httpx.Client
    clock: FakeClock

    def poll(
        self,
        since: int | str,
        *,
        username: str = "demo@reseller",
        password: str = "demo",
        method: str = "POST",
    ) -> dict[str, Any]:
        """One allMessages call (form POST, or GET with a query) returning the JSON body."""
        params = {"username": username, "password": password, "since": str(since)}
        if method == "GET":
            response = self.http.get(ALL_MESSAGES, params=params)
        else:
            response = self.http.post(ALL_MESSAGES, data=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def add(self, *messages: dict[str, Any], username: str | None = None) -> list[str]:
        """Add explicit messages through the control route; returns their documentIds."""
        body: dict[str, Any] = {"messages": list(messages)}
        if username is not None:
            body["username"] = username
        response = self.http.post("/_sim/messages", json=body)
        assert response.status_code == 201, response.text
        ids: list[str] = response.json()["documentIds"]
        return ids

    def add_bulk(self, count: int, **fields: Any) -> list[str]:
        """Add `count` generated messages through the control route; returns their ids."""
        response = self.http.post("/_sim/messages", json={"count": count, **fields})
        assert response.status_code == 201, response.text
        ids: list[str] = response.json()["documentIds"]
        return ids

    def configure(self, **switches: Any) -> dict[str, Any]:
        response = self.http.post("/_sim/config", json=switches)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get("/_sim/stats").json()
        return body


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class SwappableApp:
    """An ASGI app forwarding every request to whichever simulator app the current test set."""

    def __init__(self) -> None:
        self.app: Starlette | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert self.app is not None, "no simulator started in this test"
        # `send` goes through untouched: the reset fault needs uvicorn's own.
        await self.app(scope, receive, send)


@dataclass
class SharedServer:
    swappable: SwappableApp
    url: str
    http: httpx.Client  # shared too: building an httpx client (its TLS context) costs ~0.1 s


@pytest.fixture(scope="session")
def shared_server() -> Iterator[SharedServer]:
    swappable = SwappableApp()
    with serve(swappable) as url, httpx.Client(base_url=url, timeout=5) as http:
        yield SharedServer(swappable, url, http)


@pytest.fixture
def start_simulator(shared_server: SharedServer, clock: FakeClock) -> Iterator[Callable[..., Sim]]:
    """`start_simulator(config=None)` serves a fresh simulator on loopback, on the fake clock."""
    server = shared_server

    def start(config: SimulatorConfig | None = None) -> Sim:
        app = create_app(config, clock=clock)
        server.swappable.app = app
        return Sim(app=app, url=server.url, http=server.http, clock=clock)

    yield start
    if server.swappable.app is not None:
        # The shared server runs no per-app lifespan, so stop what the lifespan would.
        server.http.post("/_sim/traffic", json={"rate": 0})
    server.swappable.app = None


@pytest.fixture
def sim(start_simulator: Callable[..., Sim]) -> Sim:
    """A simulator with the default config (account demo@reseller / demo)."""
    return start_simulator()
