"""A hostile upstream, from the real simulator's faults: no answer can stop an account, hold
a poll, or hide later messages; every failure marks the source and backs off."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client import REGISTRY

from relay.store.keys import Keys
from relay.store.sources import SourceStore
from tests.ingest.conftest import (
    Clock,
    Sim,
    T,
    event_bodies,
    event_document_ids,
    make_source,
    rounds,
)


async def test_an_oversize_body_fails_the_poll_and_the_account_recovers(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock, aredis: Any, keys: Keys
) -> None:
    stored = await sim.add(count=3, timestamp=T)
    await sim.post("/_sim/faults", kind="oversize", size_bytes=8 * 1024 * 1024)
    source = await make_source(sources, sim)
    poller = await stepped(mc5={"max_response_bytes": 1024 * 1024})
    await poller.run_round()
    failed = await sources.get(source.id)
    assert failed.status == "failing"
    assert failed.last_error == "transport: response larger than 1048576 bytes"
    clock.advance(1.25)
    await poller.run_round()
    assert (await sources.get(source.id)).status == "ok"
    assert sorted(await event_document_ids(aredis, keys)) == sorted(stored)


async def test_a_trickled_body_is_cut_at_the_poll_deadline(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock, aredis: Any, keys: Keys
) -> None:
    stored = await sim.add(count=1, timestamp=T)
    await sim.post("/_sim/faults", kind="trickle", delay_s=0.05)
    source = await make_source(sources, sim)
    poller = await stepped(mc5={"deadline_s": 1.0})
    started = time.monotonic()
    await poller.run_round()
    assert time.monotonic() - started < 5  # not the minutes a byte every 50 ms would take
    failed = await sources.get(source.id)
    assert (failed.status, failed.last_error) == (
        "failing",
        "transport: no complete answer within 1 s",
    )
    clock.advance(1.25)
    await poller.run_round()
    assert await event_document_ids(aredis, keys) == stored


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("timestamp", '"²"'),
        ("timestamp", "1e20"),
        ("timestamp", "1e300"),
        ("timestamp", "100000000000000000"),
        ("timestamp", "1.5"),
        ("timestamp", "true"),
        ("timestamp", "-1"),
        ("documentId", '"\\ud800"'),
        ("documentId", "[1]"),
        ("text", "{}"),
    ],
)
async def test_a_message_with_a_poison_value_is_skipped_and_the_account_moves_on(
    field: str,
    raw: str,
    sim: Sim,
    sources: SourceStore,
    stepped: Any,
    clock: Clock,
    aredis: Any,
    keys: Keys,
) -> None:
    stored = await sim.add(count=2, timestamp=T)
    await sim.post("/_sim/faults", kind="poison", field=field, raw=raw, times=3)
    source = await make_source(sources, sim)
    poller = await stepped()
    await rounds(poller, clock, 3)
    assert sorted(await event_document_ids(aredis, keys)) == sorted(stored)
    settled = await sources.get(source.id)
    assert settled.status == "ok" and settled.cursor == T
    assert settled.last_error is not None
    assert settled.last_error.startswith("skipped 1 unreadable message(s): ")
    skipped = REGISTRY.get_sample_value("relay_messages_skipped_total", {"source_id": source.id})
    assert skipped == 3
    later = await sim.add(count=1, timestamp=T + 5)
    clock.advance(0.25)
    await poller.run_round()
    assert set(later) <= set(await event_document_ids(aredis, keys))


async def test_text_with_a_lone_surrogate_is_delivered_as_sent(
    sim: Sim, sources: SourceStore, stepped: Any, aredis: Any, keys: Keys
) -> None:
    await sim.post("/_sim/faults", kind="poison", field="text", raw='"a\\ud800b"')
    source = await make_source(sources, sim)
    poller = await stepped()
    assert (await poller.run_round()).new_events == 1
    (body,) = await event_bodies(aredis, keys)
    assert body["data"]["text"] == "a\ud800b"
    assert (await sources.get(source.id)).last_error is None


async def test_bytes_that_are_not_utf8_are_delivered_with_replacement_characters(
    sim: Sim, sources: SourceStore, stepped: Any, aredis: Any, keys: Keys
) -> None:
    await sim.add(count=1, timestamp=T)
    await sim.post("/_sim/faults", kind="non_utf8")
    source = await make_source(sources, sim)
    poller = await stepped()
    assert (await poller.run_round()).new_events == 2
    texts = [body["data"]["text"] for body in await event_bodies(aredis, keys)]
    assert "caf\ufffd \ufffd\ufffd" in texts
    assert (await sources.get(source.id)).status == "ok"


async def test_a_message_from_the_future_is_delivered_but_later_messages_still_arrive(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock, aredis: Any, keys: Keys
) -> None:
    await sim.post("/_sim/faults", kind="future", offset_s=10 * 365 * 86400)
    source = await make_source(sources, sim, start_from=int(clock.now) - 60)
    poller = await stepped()
    assert (await poller.run_round()).new_events == 1
    assert (await sources.get(source.id)).cursor <= int(clock.now)
    later = await sim.add(count=2, timestamp=int(clock.now) + 1)
    clock.advance(1.0)
    await poller.run_round()
    got = await event_document_ids(aredis, keys)
    assert len(got) == 3 and set(later) <= set(got)
    assert (await sources.get(source.id)).cursor == int(clock.now)


async def test_endless_fresh_pages_are_fetched_at_a_capped_rate(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock, aredis: Any, keys: Keys
) -> None:
    await sim.post("/_sim/faults", kind="endless", times=1000)
    await make_source(sources, sim, poll_interval_s=10.0)
    poller = await stepped(max_pages_per_s=4.0)
    done = await rounds(poller, clock, 32, every_s=0.0625)  # two seconds
    polls = sum(len(r.polled) for r in done)
    assert polls == 8  # four pages a second, not one per round
    assert await aredis.xlen(keys.stream) == polls
