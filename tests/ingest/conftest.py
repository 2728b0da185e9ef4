"""The poller's test rig: the real simulator over HTTP, a real Redis, pollers stepped with
an injected clock (`stepped`) or running in real time (`running`)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs

import httpx
import pytest
import redis.asyncio

from relay.core.models import Source
from relay.ingest.mc5_client import MC5Client
from relay.ingest.poller import Poller, Round
from relay.settings import Settings
from relay.simulator.app import SimulatorConfig, create_app
from relay.store.connection import async_redis
from relay.store.events import unpack_event
from relay.store.keys import Keys
from relay.store.sources import SourceStore
from tests.support import wait_until

ACCOUNTS = {"u@r": "pw", "v@r": "pw", "w@r": "pw"}
T = int(time.time()) - 3600  # message seconds well in the past, away from the clock
FAST = {"lock_ttl_s": 1.0, "lock_renew_s": 0.25, "discover_s": 0.05}


class Clock:
    """The pollers' clock in stepped tests: starts at a whole second, moves when told."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Sim:
    url: str
    http: httpx.AsyncClient

    async def add(self, **body: Any) -> list[str]:
        response = await self.http.post("/_sim/messages", json=body)
        assert response.status_code == 201, response.text
        return list(response.json()["documentIds"])

    async def post(self, path: str, **body: Any) -> None:
        response = await self.http.post(path, json=body)
        assert response.is_success, response.text

    async def requests(self, username: str = "u@r") -> int:
        stats = (await self.http.get("/_sim/stats")).json()
        return int(stats["requests_by_username"].get(username, 0))

    async def document_ids(self, username: str = "u@r") -> list[str]:
        listing = (await self.http.get("/_sim/messages", params={"username": username})).json()
        return [m["documentId"] for m in listing["messages"]]


class OverlapDetector(httpx.AsyncBaseTransport):
    """Real HTTP, recording the most requests in flight at once per username (slow them
    down with the simulator's "slow" fault)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        username = parse_qs(request.content.decode())["username"][0]
        self.calls += 1
        self._in_flight[username] += 1
        self.max_in_flight[username] = max(self.max_in_flight[username], self._in_flight[username])
        try:
            response = await self._inner.handle_async_request(request)
            await response.aread()
            return response
        finally:
            self._in_flight[username] -= 1

    async def aclose(self) -> None:
        await self._inner.aclose()


class UpstreamTamper(httpx.AsyncBaseTransport):
    """Real HTTP to the simulator, except: the first `statuses` calls get those HTTP statuses
    (HTML bodies), when `since` is set every call asks for that `since` instead, and each
    call's time on `clock` is recorded."""

    def __init__(
        self,
        *,
        statuses: list[int] | None = None,
        since: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.statuses = list(statuses or [])
        self.since = since
        self._clock = clock
        self.called_at: list[float] = []

    @property
    def calls(self) -> int:
        return len(self.called_at)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.called_at.append(self._clock())
        if self.statuses:
            status = self.statuses.pop(0)
            return httpx.Response(status, html=f"<html><body>{status}</body></html>")
        if self.since is not None:
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            form["since"] = str(self.since)
            request = httpx.Request(request.method, request.url, data=form)
        response = await self._inner.handle_async_request(request)
        await response.aread()
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
async def sim(serve_app: Callable[..., str]) -> AsyncIterator[Sim]:
    url = serve_app(create_app(SimulatorConfig(accounts=dict(ACCOUNTS))))
    async with httpx.AsyncClient(base_url=url) as http:
        yield Sim(url, http)


@pytest.fixture
def sources(aredis: redis.asyncio.Redis, keys: Keys) -> SourceStore:
    return SourceStore(redis=aredis, keys=keys)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def stepped(
    settings: Settings, clock: Clock
) -> AsyncIterator[Callable[..., Awaitable[Poller]]]:
    """`await make(**poller_kwargs)`: a poller on `clock`, to drive with `run_round()`;
    stopped cleanly afterwards unless the test did (`stop` is idempotent)."""
    made: list[tuple[Poller, redis.asyncio.Redis, MC5Client]] = []

    async def make(
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        mc5: dict[str, Any] | None = None,
        **kw: Any,
    ) -> Poller:
        client = async_redis(settings.require_redis_url())
        upstream = MC5Client(**({"timeout_s": 0.5, "transport": transport} | (mc5 or {})))
        poller = Poller(settings=settings, redis=client, mc5=upstream, clock=clock, **kw)
        made.append((poller, client, upstream))
        return poller

    yield make
    for poller, client, upstream in made:
        await poller.stop()
        await upstream.aclose()
        await client.aclose()


@dataclass
class Running:
    poller: Poller
    task: asyncio.Task[None]
    stop: asyncio.Event

    async def stop_cleanly(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)


@pytest.fixture
async def running(settings: Settings) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    """`await start(**poller_kwargs)` runs a real-time poller with its own clients."""
    started: list[tuple[Running, redis.asyncio.Redis, MC5Client]] = []

    async def start(*, transport: httpx.AsyncBaseTransport | None = None, **kw: Any) -> Running:
        client = async_redis(settings.require_redis_url())
        mc5 = MC5Client(timeout_s=0.5, transport=transport)
        poller = Poller(settings=settings, redis=client, mc5=mc5, **(FAST | kw))
        stop = asyncio.Event()
        run = Running(poller, asyncio.create_task(poller.run(stop)), stop)
        started.append((run, client, mc5))
        return run

    yield start
    for run, client, mc5 in started:
        if not run.task.done():
            await run.stop_cleanly()
        await mc5.aclose()
        await client.aclose()


async def make_source(
    sources: SourceStore,
    sim: Sim,
    username: str = "u@r",
    password: str = "pw",
    *,
    poll_interval_s: float = 0.2,
    start_from: int = T - 10,
) -> Source:
    return await sources.create(
        username=username,
        password=password,
        base_url=sim.url,
        poll_interval_s=poll_interval_s,
        start_from=start_from,
        now=time.time(),
    )


async def rounds(poller: Poller, clock: Clock, count: int, *, every_s: float = 0.25) -> list[Round]:
    """`count` rounds, the clock moved `every_s` after each."""
    done = []
    for _ in range(count):
        done.append(await poller.run_round())
        clock.advance(every_s)
    return done


async def event_bodies(aredis: redis.asyncio.Redis, keys: Keys) -> list[dict[str, Any]]:
    """The bodies of every event handed to delivery, in stream order."""
    entries = cast("list[tuple[str, dict[str, str]]]", await aredis.xrange(keys.stream))
    values = [cast(str, await aredis.get(keys.event(f["e"]))) for _, f in entries]
    events = [unpack_event(f["e"], v) for (_, f), v in zip(entries, values, strict=True)]
    return [json.loads(event.body) for event in events]


async def event_document_ids(aredis: redis.asyncio.Redis, keys: Keys) -> list[str]:
    return [body["data"]["documentId"] for body in await event_bodies(aredis, keys)]


async def count_reaches(aredis: redis.asyncio.Redis, keys: Keys, count: int) -> None:
    async def reached() -> bool:
        return bool(await aredis.xlen(keys.stream) >= count)

    await wait_until(reached, timeout_s=10)
