"""The poller in real time, as `relay poller` runs it: the cadence on the wall clock, one
request per account at a time under concurrency, a SIGKILLed poller's sources taken over,
and the role's entry point. Waits are conditions with deadlines, never sleeps."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from relay.settings import Settings
from relay.store.keys import Keys
from relay.store.sources import SourceStore
from tests.ingest.conftest import (
    ACCOUNTS,
    OverlapDetector,
    Sim,
    T,
    count_reaches,
    event_document_ids,
    make_source,
)
from tests.support import wait_until
from workers.poller import run_poller


async def test_polls_follow_the_interval_on_the_wall_clock(
    sim: Sim, sources: SourceStore, running: Any
) -> None:
    await make_source(sources, sim, poll_interval_s=0.2)
    started = time.monotonic()
    await running()

    async def six_polls() -> bool:
        return await sim.requests() >= 6

    await wait_until(six_polls, timeout_s=10)
    assert time.monotonic() - started >= 5 * 0.2 * 0.95  # five intervals between six polls


async def test_a_created_source_is_discovered_at_once_not_at_the_next_discovery(
    sim: Sim, sources: SourceStore, running: Any, aredis: Any, keys: Keys
) -> None:
    await running(discover_s=3600.0)  # only the creation's notice can make it discover

    async def listening() -> bool:  # its first discovery is done by then
        ((_channel, subscribers),) = await aredis.pubsub_numsub(keys.sources_created)
        return int(subscribers) >= 1

    await wait_until(listening, what="the poller listening for new sources")
    await make_source(sources, sim, poll_interval_s=0.2)

    async def polled() -> bool:
        return await sim.requests() >= 1

    await wait_until(polled, timeout_s=10, what="the new source polled")


async def test_one_account_never_has_two_requests_in_flight_under_concurrency(
    sim: Sim, sources: SourceStore, running: Any, aredis: Any, keys: Keys
) -> None:
    for username in ACCOUNTS:
        await sim.add(username=username, count=300, kind="mix", timestamp=T, per_second=20)
        await make_source(sources, sim, username, poll_interval_s=0.05)
    await sim.post("/_sim/faults", kind="slow", delay_s=0.05, times=200)
    detector = OverlapDetector()
    await running(transport=detector, max_pages_per_s=100.0)
    await running(transport=detector, max_pages_per_s=100.0)
    await count_reaches(aredis, keys, 900)

    async def many_polls() -> bool:
        return detector.calls >= 30

    await wait_until(many_polls, timeout_s=10)
    assert max(detector.max_in_flight.values()) == 1
    got = await event_document_ids(aredis, keys)
    assert len(got) == len(set(got)) == 900
    await detector.aclose()


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
    sim: Sim, settings: Settings, sources: SourceStore, running: Any, aredis: Any, keys: Keys
) -> None:
    await sim.add(count=250, kind="mix", timestamp=T, per_second=7)
    source = await make_source(sources, sim)
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
        await count_reaches(aredis, keys, 1)
        assert await aredis.get(keys.source_lock(source.id)) == "poller_doomed"
    finally:
        doomed.kill()  # SIGKILL: no clean-up of any kind
        await doomed.wait()
    assert await aredis.get(keys.source_lock(source.id)) == "poller_doomed"
    heir = await running()

    async def taken_over() -> bool:
        holder: str | None = await aredis.get(keys.source_lock(source.id))
        return bool(holder == heir.poller.token)

    await wait_until(taken_over, timeout_s=5)
    later = await sim.add(count=3, timestamp=T + 100)
    await count_reaches(aredis, keys, 253)
    await heir.stop_cleanly()  # whatever it was about to record is recorded
    got = await event_document_ids(aredis, keys)
    assert len(got) == len(set(got)) == 253
    assert set(later) <= set(got)


async def test_run_poller_creates_the_default_source_and_polls_it(
    sim: Sim, settings: Settings, sources: SourceStore, aredis: Any, keys: Keys
) -> None:
    (document_id,) = await sim.add(count=1, timestamp=int(time.time()) + 5)
    configured = settings.replace(mc5_username="u@r", mc5_password="pw", mc5_base_url=sim.url)
    stop = asyncio.Event()
    task = asyncio.create_task(run_poller(configured, stop=stop))
    await count_reaches(aredis, keys, 1)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert await event_document_ids(aredis, keys) == [document_id]
    (source_id,) = await sources.ids()
    assert (await sources.get(source_id)).username == "u@r"
    assert await aredis.get(keys.source_lock(source_id)) is None
