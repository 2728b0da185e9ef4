"""The poller end to end: the real simulator over HTTP, a real Redis, real locks."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs

import httpx
import pytest
import redis.asyncio
from prometheus_client import REGISTRY

from relay.core.models import Source
from relay.ingest.mc5_client import MC5Client
from relay.ingest.poller import Poller
from relay.settings import Settings
from relay.simulator.app import SimulatorConfig, create_app
from relay.store.connection import async_redis
from relay.store.events import unpack_event
from relay.store.keys import Keys
from relay.store.sources import SourceStore
from tests.support import wait_until
from workers.poller import run_poller

ACCOUNTS = {"u@r": "pw", "v@r": "pw", "w@r": "pw"}
T = int(time.time()) - 3600  # message seconds well in the past, away from the clock
FAST = {"lock_ttl_s": 1.0, "lock_renew_s": 0.25, "discover_s": 0.05}


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
    """Real HTTP, slowed down, recording the most requests in flight at once per username."""

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._delay_s = delay_s
        self._in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        username = parse_qs(request.content.decode())["username"][0]
        self._in_flight[username] += 1
        self.max_in_flight[username] = max(self.max_in_flight[username], self._in_flight[username])
        try:
            await asyncio.sleep(self._delay_s)
            response = await self._inner.handle_async_request(request)
            await response.aread()
            return response
        finally:
            self._in_flight[username] -= 1

    async def close_inner(self) -> None:
        await self._inner.aclose()

    async def aclose(self) -> None:
        """Shared by several clients: closed once by the test instead."""


@dataclass
class Running:
    poller: Poller
    task: asyncio.Task[None]
    stop: asyncio.Event

    async def stop_cleanly(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)


@pytest.fixture
async def sim(serve_app: Callable[..., str]) -> AsyncIterator[Sim]:
    url = serve_app(create_app(SimulatorConfig(accounts=dict(ACCOUNTS))))
    async with httpx.AsyncClient(base_url=url) as http:
        yield Sim(url, http)


@pytest.fixture
def sources(aredis: redis.asyncio.Redis, keys: Keys) -> SourceStore:
    return SourceStore(redis=aredis, keys=keys)


@pytest.fixture
async def pollers(settings: Settings) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    """`await start(**poller_kwargs)` runs a poller with its own Redis and MC5 clients."""
    started: list[tuple[Running, redis.asyncio.Redis, MC5Client]] = []

    async def start(*, transport: httpx.AsyncBaseTransport | None = None, **kw: Any) -> Running:
        client = async_redis(settings.require_redis_url())
        mc5 = MC5Client(timeout_s=0.5, transport=transport)
        poller = Poller(settings=settings, redis=client, mc5=mc5, **(FAST | kw))
        stop = asyncio.Event()
        running = Running(poller, asyncio.create_task(poller.run(stop)), stop)
        started.append((running, client, mc5))
        return running

    yield start
    for running, client, mc5 in started:
        if not running.task.done():
            await running.stop_cleanly()
        await mc5.aclose()
        await client.aclose()


async def _source(
    sources: SourceStore, sim: Sim, username: str = "u@r", password: str = "pw"
) -> Source:
    return await sources.create(
        username=username,
        password=password,
        base_url=sim.url,
        poll_interval_s=0.2,
        start_from=T - 10,
        now=time.time(),
    )


async def event_bodies(aredis: redis.asyncio.Redis, keys: Keys) -> list[dict[str, Any]]:
    """The bodies of every event handed to delivery, in stream order."""
    entries = cast("list[tuple[str, dict[str, str]]]", await aredis.xrange(keys.stream))
    values = [cast(str, await aredis.get(keys.event(f["e"]))) for _, f in entries]
    events = [unpack_event(f["e"], v) for (_, f), v in zip(entries, values, strict=True)]
    return [json.loads(event.body) for event in events]


async def event_document_ids(aredis: redis.asyncio.Redis, keys: Keys) -> list[str]:
    return [body["data"]["documentId"] for body in await event_bodies(aredis, keys)]


async def _count_reaches(aredis: redis.asyncio.Redis, keys: Keys, count: int) -> None:
    async def reached() -> bool:
        return await aredis.xlen(keys.stream) >= count

    await wait_until(reached, timeout_s=10)


async def _status(sources: SourceStore, source_id: str, status: str) -> None:
    async def reached() -> bool:
        return (await sources.get(source_id)).status == status

    await wait_until(reached, timeout_s=10)


# Quirks


@pytest.mark.parametrize("quirky", [False, True], ids=["documented", "quirks"])
async def test_every_quirk_becomes_the_documented_event_fields(
    quirky: bool, sim: Sim, sources: SourceStore, pollers: Any, aredis: Any, keys: Keys
) -> None:
    switches = ("integer_ids", "integer_numbers", "recpipent", "omit_has_more")
    await sim.post("/_sim/config", **{name: quirky for name in switches})
    out_id, in_id = await sim.add(
        messages=[
            {"kind": "outgoing", "text": "Reply> hi", "recipient": "61555879987", "timestamp": T},
            {
                "kind": "incoming",
                "text": "  lead",
                "from": "61555879987",
                "recipient": "61500079987",
                "timestamp": T + 1,
            },
        ]
    )
    await sim.add(
        messages=[
            {"kind": "incoming", "text": " r", "timestamp": T + 2, "originDocumentId": out_id}
        ]
    )
    source = await _source(sources, sim)
    await pollers()
    await _count_reaches(aredis, keys, 3)
    await asyncio.sleep(0.3)
    bodies = await event_bodies(aredis, keys)
    assert [b["data"]["documentId"] for b in bodies] == await sim.document_ids()
    sent, received, reply = (b["data"] for b in bodies)
    assert bodies[0]["type"] == "message.sent" and bodies[1]["type"] == "message.received"
    assert sent == {
        "documentId": out_id,
        "recipient": "61555879987",
        "text": "Reply> hi",
        "timestamp": T,
        "source_id": source.id,
    }
    assert received == {
        "documentId": in_id,
        "from": "61555879987",
        "recipient": "61500079987",
        "text": "  lead",
        "timestamp": T + 1,
        "source_id": source.id,
    }
    assert reply["originDocumentId"] == out_id and reply["text"] == " r"
    assert all(
        isinstance(v, str)
        for d in (sent, received, reply)
        for k, v in d.items()
        if k != "timestamp"
    )
    assert (await sources.get(source.id)).cursor == T + 2


# Status codes


@pytest.mark.parametrize("status", [1, 2, 3, 4, 200, 220])
async def test_status_failures_mark_the_source_and_never_spin(
    status: int, sim: Sim, sources: SourceStore, pollers: Any
) -> None:
    username, password = "u@r", "pw"
    if status in (1, 2):
        await sim.post("/_sim/faults", kind="status", status=status, times=1)
    elif status == 3:
        password = "wrong"
    elif status == 200:
        username = "nobody@r"
    else:
        await sim.post("/_sim/accounts", username="u@r", password="pw", status=status)
    source = await _source(sources, sim, username, password)
    first = await pollers()
    await _status(sources, source.id, "failing")
    failed = await sources.get(source.id)
    assert failed.last_error is not None
    assert failed.last_error.startswith(f"MC5 status {status}: ")
    assert failed.failures == 1
    if status in (1, 2, 3):
        assert 240 <= failed.next_poll_at - time.time() <= 360
    else:
        assert failed.next_poll_at == math.inf
        assert failed.last_error.endswith("not retried until the source is changed")
    await asyncio.sleep(0.6)  # three poll intervals
    await first.stop_cleanly()
    await pollers()  # a restart does not retry early either
    await asyncio.sleep(0.6)
    assert await sim.requests(username) == 1


async def test_auth_failure_message_and_recovery_after_the_password_is_fixed(
    sim: Sim, sources: SourceStore, pollers: Any, aredis: Any, keys: Keys
) -> None:
    (document_id,) = await sim.add(count=1, timestamp=T)
    source = await _source(sources, sim, password="wrong")
    await pollers()
    await _status(sources, source.id, "failing")
    assert (await sources.get(source.id)).last_error == "MC5 status 3: authentication failed"
    await sources.update(source.id, password="pw")
    await _count_reaches(aredis, keys, 1)
    await _status(sources, source.id, "ok")
    recovered = await sources.get(source.id)
    assert (recovered.last_error, recovered.failures) == (None, 0)
    assert await event_document_ids(aredis, keys) == [document_id]


# Transport faults and 9999


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"kind": "status", "status": 9999}, "MC5 status 9999: internal error"),
        ({"kind": "http_500"}, "transport: HTTP 500 from upstream"),
        ({"kind": "html_502"}, "transport: HTTP 502 from upstream"),
        ({"kind": "invalid_json"}, "transport: invalid JSON"),
        ({"kind": "slow", "delay_s": 1.0}, "transport: no answer within 0.5 s"),
        ({"kind": "reset"}, "transport: "),
    ],
    ids=["9999", "http_500", "html_502", "invalid_json", "slow", "reset"],
)
async def test_transient_failures_back_off_and_recover(
    fault: dict[str, Any],
    error: str,
    sim: Sim,
    sources: SourceStore,
    pollers: Any,
    aredis: Any,
    keys: Keys,
) -> None:
    await sim.add(count=3, timestamp=T)
    await sim.post("/_sim/faults", **fault, times=1)
    source = await _source(sources, sim)
    await pollers()
    await _status(sources, source.id, "failing")
    failed = await sources.get(source.id)
    assert failed.last_error is not None and failed.last_error.startswith(error)
    assert 0.5 <= failed.next_poll_at - (failed.last_polled_at or 0) <= 1.5  # 1 s ± 20 %
    await _count_reaches(aredis, keys, 3)
    await _status(sources, source.id, "ok")
    assert (await sources.get(source.id)).last_error is None
    assert sorted(await event_document_ids(aredis, keys)) == sorted(await sim.document_ids())


async def test_repeated_transport_failures_double_the_wait(
    sim: Sim, sources: SourceStore, pollers: Any
) -> None:
    await sim.post("/_sim/faults", kind="http_500", times=100)
    source = await _source(sources, sim)
    await pollers()

    async def failed_twice() -> bool:
        return (await sources.get(source.id)).failures >= 2

    await wait_until(failed_twice, timeout_s=10)
    second = await sources.get(source.id)
    assert 1.5 <= second.next_poll_at - (second.last_polled_at or 0) <= 2.5  # 2 s ± 20 %
    assert await sim.requests() == 2


# Paging


async def test_backlog_of_250_pages_through_boundary_seconds_without_loss_or_doubles(
    sim: Sim, sources: SourceStore, pollers: Any, aredis: Any, keys: Keys
) -> None:
    await sim.add(count=250, kind="mix", timestamp=T, per_second=7)
    source = await _source(sources, sim)
    await pollers()
    await _count_reaches(aredis, keys, 250)
    await asyncio.sleep(0.5)
    got = await event_document_ids(aredis, keys)
    assert len(got) == len(set(got)) == 250
    assert set(got) == set(await sim.document_ids())
    assert (await sources.get(source.id)).cursor == T + 249 // 7


async def test_same_second_burst_over_100_records_the_first_100_and_reports_the_gap(
    sim: Sim,
    sources: SourceStore,
    pollers: Any,
    aredis: Any,
    keys: Keys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="relay.poller")
    await sim.add(count=150, timestamp=T)
    later = await sim.add(count=5, timestamp=T + 1)
    reachable = (await sim.document_ids())[:100] + later
    source = await _source(sources, sim)
    await pollers()
    await _count_reaches(aredis, keys, 105)
    before = await sim.requests()
    await asyncio.sleep(1.0)
    assert await sim.requests() - before <= 8  # idle polling at 0.2 s, no spinning
    got = await event_document_ids(aredis, keys)
    assert sorted(got) == sorted(reachable)
    settled = await sources.get(source.id)
    assert settled.status == "ok"
    assert settled.cursor == T + 1
    assert settled.last_error == (
        f"possible gap: more than 100 messages in second {T}; "
        "the upstream returns only the first 100"
    )
    gaps = REGISTRY.get_sample_value("relay_possible_gaps_total", {"source_id": source.id})
    assert gaps == 1
    assert any(r.getMessage() == "possible gap" and r.second == T for r in caplog.records)  # type: ignore[attr-defined]


@pytest.mark.parametrize("empty_newest", ["zero", "missing", "since"])
async def test_cursor_never_moves_backwards_on_empty_pages(
    empty_newest: str, sim: Sim, sources: SourceStore, pollers: Any, aredis: Any, keys: Keys
) -> None:
    await sim.post("/_sim/config", empty_newest=empty_newest, inclusive_since=False)
    await sim.add(count=2, timestamp=T)
    source = await _source(sources, sim)
    await pollers()
    await _count_reaches(aredis, keys, 2)
    before = await sim.requests()

    async def polled_empty_pages() -> bool:
        return await sim.requests() >= before + 3

    await wait_until(polled_empty_pages, timeout_s=10)
    assert (await sources.get(source.id)).cursor == T


# Restarts, locks and several pollers


async def test_restart_mid_backlog_loses_and_doubles_nothing(
    sim: Sim, sources: SourceStore, pollers: Any, aredis: Any, keys: Keys
) -> None:
    await sim.add(count=250, kind="mix", timestamp=T, per_second=7)
    await _source(sources, sim)
    slow = OverlapDetector(delay_s=0.2)
    first = await pollers(transport=slow)
    await _count_reaches(aredis, keys, 1)
    await first.stop_cleanly()
    partial = await aredis.xlen(keys.stream)
    assert 0 < partial < 250
    await pollers(transport=slow)
    await _count_reaches(aredis, keys, 250)
    await asyncio.sleep(0.5)
    got = await event_document_ids(aredis, keys)
    assert len(got) == 250 and set(got) == set(await sim.document_ids())
    await slow.close_inner()


_POLLER_PROCESS = """
import asyncio, sys
from relay.store.connection import async_redis
from relay.settings import Settings
from relay.ingest.mc5_client import MC5Client
from relay.ingest.poller import Poller

redis_url, prefix, token = sys.argv[1:4]
settings = Settings(redis_url=redis_url, key_prefix=prefix, poll_interval_s=0.2)
poller = Poller(settings=settings, redis=async_redis(redis_url), mc5=MC5Client(), token=token,
                lock_ttl_s=1.0, lock_renew_s=0.25, discover_s=0.05)
asyncio.run(poller.run(asyncio.Event()))
"""


async def test_killed_poller_source_is_taken_over_after_its_lock_expires(
    sim: Sim, settings: Settings, sources: SourceStore, pollers: Any, aredis: Any, keys: Keys
) -> None:
    await sim.add(count=250, kind="mix", timestamp=T, per_second=7)
    source = await _source(sources, sim)
    await sim.post("/_sim/faults", kind="slow", delay_s=0.3, times=3)
    doomed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _POLLER_PROCESS,
        settings.require_redis_url(),
        keys.prefix,
        "poller_doomed",
    )
    try:
        await _count_reaches(aredis, keys, 1)
        assert await aredis.get(keys.source_lock(source.id)) == "poller_doomed"
    finally:
        doomed.kill()  # SIGKILL: no clean-up of any kind
        await doomed.wait()
    assert await aredis.get(keys.source_lock(source.id)) == "poller_doomed"
    heir = await pollers()

    async def taken_over() -> bool:
        holder: str | None = await aredis.get(keys.source_lock(source.id))
        return bool(holder == heir.poller.token)

    await wait_until(taken_over, timeout_s=5)
    later = await sim.add(count=3, timestamp=T + 100)
    await _count_reaches(aredis, keys, 253)
    await asyncio.sleep(0.5)
    got = await event_document_ids(aredis, keys)
    assert len(got) == len(set(got)) == 253
    assert set(later) <= set(got)


async def test_two_pollers_split_sources_and_never_poll_one_account_at_once(
    sim: Sim, sources: SourceStore, pollers: Any, aredis: Any, keys: Keys
) -> None:
    for username in ACCOUNTS:
        await sim.add(username=username, count=120, kind="mix", timestamp=T, per_second=9)
    created = [await _source(sources, sim, username) for username in ACCOUNTS]
    detector = OverlapDetector(delay_s=0.05)
    first = await pollers(transport=detector)

    async def first_owns_all() -> bool:
        return len(first.poller.owned_source_ids) == 3

    await wait_until(first_owns_all, timeout_s=10)
    second = await pollers(transport=detector)

    async def split() -> bool:
        return len(second.poller.owned_source_ids) >= 1 and len(first.poller.owned_source_ids) == 2

    await wait_until(split, timeout_s=10)
    for username in ACCOUNTS:
        await sim.add(username=username, count=10, timestamp=T + 50)
    await _count_reaches(aredis, keys, 390)
    await asyncio.sleep(0.5)
    got = await event_document_ids(aredis, keys)
    assert len(got) == len(set(got)) == 390
    expected = [d for username in ACCOUNTS for d in await sim.document_ids(username)]
    assert set(got) == set(expected)
    assert max(detector.max_in_flight.values()) == 1
    holders = {await aredis.get(keys.source_lock(s.id)) for s in created}
    assert holders == {first.poller.token, second.poller.token}
    await detector.close_inner()


async def test_clean_stop_releases_locks_and_deregisters(
    sim: Sim, sources: SourceStore, pollers: Any, aredis: Any, keys: Keys
) -> None:
    source = await _source(sources, sim)
    running = await pollers()

    async def owned() -> bool:
        return source.id in running.poller.owned_source_ids

    await wait_until(owned, timeout_s=10)
    await running.stop_cleanly()
    assert await aredis.get(keys.source_lock(source.id)) is None
    assert await aredis.zscore(keys.pollers, running.poller.token) is None


async def test_paused_and_deleted_sources_are_not_polled(
    sim: Sim, sources: SourceStore, pollers: Any, aredis: Any, keys: Keys
) -> None:
    source = await _source(sources, sim)
    running = await pollers()

    async def polled() -> bool:
        return await sim.requests() >= 2

    await wait_until(polled, timeout_s=10)
    await sources.update(source.id, status="paused")
    await asyncio.sleep(0.3)
    paused_at = await sim.requests()
    await asyncio.sleep(0.6)
    assert await sim.requests() == paused_at
    await sources.update(source.id, status="ok")
    await wait_until(lambda: _more_requests(sim, paused_at), timeout_s=10)
    await sources.delete(source.id)
    await asyncio.sleep(0.3)
    deleted_at = await sim.requests()
    await asyncio.sleep(0.6)
    assert await sim.requests() == deleted_at
    assert source.id not in running.poller.owned_source_ids


async def _more_requests(sim: Sim, than: int) -> bool:
    return await sim.requests() > than


async def test_run_poller_creates_the_default_source_and_polls_it(
    sim: Sim, settings: Settings, sources: SourceStore, aredis: Any, keys: Keys
) -> None:
    (document_id,) = await sim.add(count=1, timestamp=int(time.time()) + 5)
    configured = settings.replace(mc5_username="u@r", mc5_password="pw", mc5_base_url=sim.url)
    stop = asyncio.Event()
    task = asyncio.create_task(run_poller(configured, stop=stop))
    await _count_reaches(aredis, keys, 1)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert await event_document_ids(aredis, keys) == [document_id]
    (source_id,) = await sources.ids()
    assert (await sources.get(source_id)).username == "u@r"
    assert await aredis.get(keys.source_lock(source_id)) is None


async def test_lock_is_renewed_while_the_poller_lives(
    sim: Sim,
    sources: SourceStore,
    pollers: Any,
    aredis: Any,
    keys: Keys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="relay.poller")
    source = await _source(sources, sim)
    running = await pollers()

    async def owned() -> bool:
        return source.id in running.poller.owned_source_ids

    await wait_until(owned, timeout_s=10)
    for _ in range(12):  # 2.4 s: more than twice the 1 s lock TTL
        assert await aredis.get(keys.source_lock(source.id)) == running.poller.token
        await asyncio.sleep(0.2)
    assert source.id in running.poller.owned_source_ids
    assert not [r for r in caplog.records if r.getMessage() == "source lock lost"]


async def test_poller_that_loses_its_lock_stops_polling_that_source(
    sim: Sim, sources: SourceStore, pollers: Any, aredis: Any, keys: Keys
) -> None:
    source = await _source(sources, sim)
    running = await pollers()

    async def owned() -> bool:
        return source.id in running.poller.owned_source_ids

    await wait_until(owned, timeout_s=10)
    await aredis.set(keys.source_lock(source.id), "poller_elsewhere", px=60_000)

    async def dropped() -> bool:
        return source.id not in running.poller.owned_source_ids

    await wait_until(dropped, timeout_s=3)
    await asyncio.sleep(0.3)
    before = await sim.requests()
    await asyncio.sleep(0.6)
    assert await sim.requests() == before
    assert await aredis.get(keys.source_lock(source.id)) == "poller_elsewhere"


# Upstream faults the simulator cannot inject: other HTTP statuses, an upstream that ignores
# `since`. The transport answers or rewrites one call; every other call is real HTTP.


class UpstreamTamper(httpx.AsyncBaseTransport):
    """Real HTTP to the simulator, except: the first `statuses` calls get those HTTP statuses
    (HTML bodies), and when `since` is set every call asks for that `since` instead."""

    def __init__(self, *, statuses: list[int] | None = None, since: int | None = None) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.statuses = list(statuses or [])
        self.since = since
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
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


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 429, 503, 504])
async def test_every_http_error_status_backs_off_reports_and_recovers_without_loss(
    status: int, sim: Sim, sources: SourceStore, pollers: Any, aredis: Any, keys: Keys
) -> None:
    await sim.add(count=3, timestamp=T)
    source = await _source(sources, sim)
    await pollers(transport=UpstreamTamper(statuses=[status]))
    await _status(sources, source.id, "failing")
    failed = await sources.get(source.id)
    assert failed.last_error == f"transport: HTTP {status} from upstream"
    assert 0.5 <= failed.next_poll_at - (failed.last_polled_at or 0) <= 1.5  # 1 s ± 20 %
    await _count_reaches(aredis, keys, 3)
    await _status(sources, source.id, "ok")
    assert sorted(await event_document_ids(aredis, keys)) == sorted(await sim.document_ids())


async def test_a_page_from_before_the_cursor_never_moves_it_back_nor_doubles(
    sim: Sim, sources: SourceStore, pollers: Any, aredis: Any, keys: Keys
) -> None:
    ids = await sim.add(count=3, timestamp=T) + await sim.add(count=2, timestamp=T + 50)
    source = await _source(sources, sim)
    first = await pollers()
    await _count_reaches(aredis, keys, 5)
    await first.stop_cleanly()
    assert (await sources.get(source.id)).cursor == T + 50

    # An upstream that ignores `since` and pages from T - 10: a full page of the three
    # messages of second T, newest T < cursor, "more to come".
    await sim.post("/_sim/config", page_size=3)
    tamper = UpstreamTamper(since=T - 10)
    await pollers(transport=tamper)
    await asyncio.sleep(1.0)
    assert 1 <= tamper.calls <= 8  # no tight loop
    settled = await sources.get(source.id)
    assert (settled.status, settled.cursor) == ("ok", T + 50)
    assert sorted(await event_document_ids(aredis, keys)) == sorted(ids)


async def test_a_full_page_of_already_seen_ids_does_not_spin_or_double(
    sim: Sim, sources: SourceStore, pollers: Any, aredis: Any, keys: Keys
) -> None:
    ids = await sim.add(count=100, kind="mix", timestamp=T, per_second=10)
    source = await _source(sources, sim)
    first = await pollers()
    await _count_reaches(aredis, keys, 100)
    await first.stop_cleanly()
    cursor = (await sources.get(source.id)).cursor

    # The upstream now answers every call with the same 100 seen messages, "more to come".
    tamper = UpstreamTamper(since=T - 1)
    await pollers(transport=tamper)
    await asyncio.sleep(1.0)
    assert 1 <= tamper.calls <= 8  # the 0.2 s poll interval, not a tight loop
    settled = await sources.get(source.id)
    assert (settled.status, settled.cursor) == ("ok", cursor)
    assert sorted(await event_document_ids(aredis, keys)) == sorted(ids)
