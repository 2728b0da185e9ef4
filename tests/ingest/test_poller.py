"""The poller stepped round by round on an injected clock: the real simulator over HTTP,
a real Redis, real locks. No sleeps: each round polls what is due, then the test looks."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
from typing import Any

import pytest
from prometheus_client import REGISTRY

from relay.core.models import QueueDepths
from relay.ingest.poller import _next_due
from relay.observability.status import RelayStatus
from relay.observability.status_report import render_text
from relay.store.keys import Keys
from relay.store.locks import poller_lateness
from relay.store.server import RedisMemory
from relay.store.sources import SourceStore
from tests.ingest.conftest import (
    ACCOUNTS,
    Clock,
    OverlapDetector,
    Sim,
    T,
    UpstreamTamper,
    event_bodies,
    event_document_ids,
    make_source,
    rounds,
)
from tests.support import wait_until

# Quirks


@pytest.mark.parametrize("quirky", [False, True], ids=["documented", "quirks"])
async def test_every_quirk_becomes_the_documented_event_fields(
    quirky: bool, sim: Sim, sources: SourceStore, stepped: Any, aredis: Any, keys: Keys
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
    source = await make_source(sources, sim)
    poller = await stepped()
    first = await poller.run_round()
    assert first.taken == (source.id,) and first.polled == (source.id,)
    assert first.new_events == 3
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


# Cadence and backoff


async def test_each_account_keeps_its_own_interval(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock
) -> None:
    intervals = {"u@r": 0.25, "v@r": 0.5, "w@r": 1.0}
    ids = {
        (await make_source(sources, sim, username, poll_interval_s=interval_s)).id: interval_s
        for username, interval_s in intervals.items()
    }
    poller = await stepped()
    done = await rounds(poller, clock, 32, every_s=0.125)  # four seconds
    for source_id, interval_s in ids.items():
        polled_at = [0.125 * n for n, r in enumerate(done) if source_id in r.polled]
        gaps = [b - a for a, b in itertools.pairwise(polled_at)]
        assert polled_at[0] == 0  # taken and polled at once
        assert interval_s / 2 < gaps[0] <= 1.5 * interval_s + 0.125  # then onto its phase
        assert gaps[1:] == [interval_s] * (len(gaps) - 1)


async def test_sources_taken_together_are_polled_at_different_moments(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock
) -> None:
    ids = [(await make_source(sources, sim, u, poll_interval_s=1.0)).id for u in ACCOUNTS]
    poller = await stepped()
    done = await rounds(poller, clock, 32, every_s=0.0625)  # two seconds
    assert set(done[0].polled) == set(ids)
    later = [r.polled for r in done[1:] if r.polled]
    assert {s for polled in later for s in polled} == set(ids)  # each polled again ...
    assert all(len(polled) == 1 for polled in later)  # ... at a moment of its own


async def test_repeated_transport_failures_double_the_wait_and_then_recover(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock
) -> None:
    await sim.post("/_sim/faults", kind="http_500", times=3)
    source = await make_source(sources, sim)
    tamper = UpstreamTamper(clock=clock)
    poller = await stepped(transport=tamper)
    failures = []
    while tamper.calls < 4:
        await poller.run_round()
        failures.append((await sources.get(source.id)).failures)
        clock.advance(0.125)
        assert clock.now - tamper.called_at[0] < 20, "the source was not polled again"
    gaps = [b - a for a, b in zip(tamper.called_at, tamper.called_at[1:], strict=False)]
    for gap, expected in zip(gaps, (1.0, 2.0, 4.0), strict=True):
        assert expected * 0.8 <= gap <= expected * 1.2 + 0.125  # ± 20 % jitter, one step
    settled = await sources.get(source.id)
    assert (settled.status, settled.failures, settled.last_error) == ("ok", 0, None)
    assert max(failures) == 3


def test_polls_keep_a_fixed_cadence_but_never_run_back_to_back() -> None:
    assert _next_due(10.0, ended=10.3, interval_s=1.0) == pytest.approx(11.0)
    assert _next_due(10.0, ended=10.0, interval_s=1.0) == pytest.approx(11.0)
    assert _next_due(10.0, ended=15.0, interval_s=1.0) == pytest.approx(15.1)


# Status codes


@pytest.mark.parametrize("status", [1, 2, 3, 4, 200, 220])
async def test_status_failures_mark_the_source_and_never_spin(
    status: int, sim: Sim, sources: SourceStore, stepped: Any, clock: Clock
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
    source = await make_source(sources, sim, username, password)
    first = await stepped()
    assert (await first.run_round()).polled == (source.id,)
    failed = await sources.get(source.id)
    assert failed.status == "failing"
    assert failed.last_error is not None
    assert failed.last_error.startswith(f"MC5 status {status}: ")
    assert failed.failures == 1
    if status in (1, 2, 3):
        assert 240 <= failed.next_poll_at - clock.now <= 360
    else:
        assert failed.next_poll_at == math.inf
        assert failed.last_error.endswith("not retried until the source is changed")
    await rounds(first, clock, 12)  # three seconds
    await first.stop()
    second = await stepped()  # a restart does not retry early either
    assert not [r.polled for r in await rounds(second, clock, 4) if r.polled]
    assert await sim.requests(username) == 1


async def test_auth_failure_message_and_recovery_after_the_password_is_fixed(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock, aredis: Any, keys: Keys
) -> None:
    (document_id,) = await sim.add(count=1, timestamp=T)
    source = await make_source(sources, sim, password="wrong")
    poller = await stepped()
    await poller.run_round()
    assert (await sources.get(source.id)).last_error == "MC5 status 3: authentication failed"
    await sources.update(source.id, password="pw")
    clock.advance(1.0)  # a waiting source looks at its hash again every second
    assert (await poller.run_round()).new_events == 1
    recovered = await sources.get(source.id)
    assert (recovered.status, recovered.last_error, recovered.failures) == ("ok", None, 0)
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
    stepped: Any,
    clock: Clock,
    aredis: Any,
    keys: Keys,
) -> None:
    await sim.add(count=3, timestamp=T)
    await sim.post("/_sim/faults", **fault, times=1)
    source = await make_source(sources, sim)
    poller = await stepped()
    await poller.run_round()
    failed = await sources.get(source.id)
    assert failed.status == "failing"
    assert failed.last_error is not None and failed.last_error.startswith(error)
    assert 0.8 <= failed.next_poll_at - (failed.last_polled_at or 0) <= 1.2  # 1 s ± 20 %
    clock.advance(1.25)
    assert (await poller.run_round()).new_events == 3
    recovered = await sources.get(source.id)
    assert (recovered.status, recovered.last_error) == ("ok", None)
    assert sorted(await event_document_ids(aredis, keys)) == sorted(await sim.document_ids())


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 429, 503, 504])
async def test_every_http_error_status_backs_off_reports_and_recovers_without_loss(
    status: int,
    sim: Sim,
    sources: SourceStore,
    stepped: Any,
    clock: Clock,
    aredis: Any,
    keys: Keys,
) -> None:
    await sim.add(count=3, timestamp=T)
    source = await make_source(sources, sim)
    poller = await stepped(transport=UpstreamTamper(statuses=[status]))
    await poller.run_round()
    failed = await sources.get(source.id)
    assert (failed.status, failed.last_error) == (
        "failing",
        f"transport: HTTP {status} from upstream",
    )
    assert 0.8 <= failed.next_poll_at - (failed.last_polled_at or 0) <= 1.2  # 1 s ± 20 %
    clock.advance(1.25)
    await poller.run_round()
    assert (await sources.get(source.id)).status == "ok"
    assert sorted(await event_document_ids(aredis, keys)) == sorted(await sim.document_ids())


# Paging


async def test_backlog_of_250_pages_through_boundary_seconds_without_loss_or_doubles(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock, aredis: Any, keys: Keys
) -> None:
    await sim.add(count=250, kind="mix", timestamp=T, per_second=7)
    source = await make_source(sources, sim, poll_interval_s=10.0)
    poller = await stepped()
    done = await rounds(poller, clock, 5)
    assert sum(r.new_events for r in done) == 250
    assert done[-1].polled == ()  # drained: back to the 10 s interval
    got = await event_document_ids(aredis, keys)
    assert len(got) == len(set(got)) == 250
    assert set(got) == set(await sim.document_ids())
    assert (await sources.get(source.id)).cursor == T + 249 // 7


async def test_same_second_burst_over_100_records_the_first_100_and_reports_the_gap(
    sim: Sim,
    sources: SourceStore,
    stepped: Any,
    clock: Clock,
    aredis: Any,
    keys: Keys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="relay.poller")
    await sim.add(count=150, timestamp=T)
    later = await sim.add(count=5, timestamp=T + 1)
    reachable = (await sim.document_ids())[:100] + later
    source = await make_source(sources, sim)
    poller = await stepped()
    done = await rounds(poller, clock, 6)
    assert [r.new_events for r in done] == [100, 5, 0, 0, 0, 0]
    assert all(len(r.polled) == 1 for r in done)  # idle polling at the interval, no spinning
    got = await event_document_ids(aredis, keys)
    assert sorted(got) == sorted(reachable)
    settled = await sources.get(source.id)
    assert (settled.status, settled.cursor) == ("ok", T + 1)
    assert settled.last_error == (
        f"possible gap: more than 100 messages in second {T}; "
        "the upstream returns only the first 100"
    )
    gaps = REGISTRY.get_sample_value("relay_possible_gaps_total", {"source_id": source.id})
    assert gaps == 1
    assert any(r.getMessage() == "possible gap" and r.second == T for r in caplog.records)  # type: ignore[attr-defined]


@pytest.mark.parametrize("empty_newest", ["zero", "missing", "since"])
async def test_cursor_never_moves_backwards_on_empty_pages(
    empty_newest: str, sim: Sim, sources: SourceStore, stepped: Any, clock: Clock
) -> None:
    await sim.post("/_sim/config", empty_newest=empty_newest, inclusive_since=False)
    await sim.add(count=2, timestamp=T)
    source = await make_source(sources, sim)
    poller = await stepped()
    done = await rounds(poller, clock, 4)
    assert [r.new_events for r in done] == [2, 0, 0, 0]
    assert await sim.requests() == 4
    assert (await sources.get(source.id)).cursor == T


async def test_an_empty_page_writes_only_last_polled_at(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock, aredis: Any, keys: Keys
) -> None:
    source = await make_source(sources, sim)
    poller = await stepped()
    await poller.run_round()
    before = await aredis.hgetall(keys.source(source.id))
    clock.advance(0.25)
    await poller.run_round()
    after = await aredis.hgetall(keys.source(source.id))
    assert float(after.pop("last_polled_at")) == clock.now
    before.pop("last_polled_at")
    assert after == before


async def test_a_page_from_before_the_cursor_never_moves_it_back_nor_doubles(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock, aredis: Any, keys: Keys
) -> None:
    ids = await sim.add(count=3, timestamp=T) + await sim.add(count=2, timestamp=T + 50)
    source = await make_source(sources, sim, poll_interval_s=1.0)
    first = await stepped()
    await first.run_round()
    await first.stop()
    assert (await sources.get(source.id)).cursor == T + 50

    # An upstream that ignores `since` and pages from T - 10: a full page of the three
    # messages of second T, newest T < cursor, "more to come".
    await sim.post("/_sim/config", page_size=3)
    tamper = UpstreamTamper(since=T - 10)
    second = await stepped(transport=tamper)
    await rounds(second, clock, 16, every_s=0.125)  # two seconds
    assert tamper.calls == 2  # at the 1 s interval, not paging again and again
    settled = await sources.get(source.id)
    assert (settled.status, settled.cursor) == ("ok", T + 50)
    assert sorted(await event_document_ids(aredis, keys)) == sorted(ids)


async def test_a_full_page_of_already_seen_ids_does_not_spin_or_double(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock, aredis: Any, keys: Keys
) -> None:
    ids = await sim.add(count=100, kind="mix", timestamp=T, per_second=10)
    source = await make_source(sources, sim, poll_interval_s=1.0)
    first = await stepped()
    await first.run_round()
    await first.stop()
    cursor = (await sources.get(source.id)).cursor

    # The upstream now answers every call with the same 100 seen messages, "more to come".
    tamper = UpstreamTamper(since=T - 1)
    second = await stepped(transport=tamper)
    await rounds(second, clock, 16, every_s=0.125)
    assert tamper.calls == 2
    settled = await sources.get(source.id)
    assert (settled.status, settled.cursor) == ("ok", cursor)
    assert sorted(await event_document_ids(aredis, keys)) == sorted(ids)


# Restarts, locks and several pollers


async def test_restart_mid_backlog_loses_and_doubles_nothing(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock, aredis: Any, keys: Keys
) -> None:
    await sim.add(count=250, kind="mix", timestamp=T, per_second=7)
    await make_source(sources, sim)
    first = await stepped()
    assert (await first.run_round()).new_events == 100
    await first.stop()
    second = await stepped()
    await rounds(second, clock, 4)
    got = await event_document_ids(aredis, keys)
    assert len(got) == 250 and set(got) == set(await sim.document_ids())


async def test_pollers_split_sources_evenly_and_rebalance_as_they_come_and_go(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock, aredis: Any, keys: Keys
) -> None:
    created = {(await make_source(sources, sim, username)).id for username in ACCOUNTS}
    first = await stepped()
    assert set((await first.run_round()).taken) == created

    second = await stepped()  # joins: the first hands one over at its next discovery
    assert (await second.run_round()).taken == ()
    (handed,) = (await first.run_round()).released
    assert (await second.run_round()).taken == (handed,)
    assert first.owned_source_ids | second.owned_source_ids == created
    assert len(first.owned_source_ids) == 2

    await second.stop()  # a clean stop frees its locks at once
    assert (await first.run_round()).taken == (handed,)
    assert first.owned_source_ids == created

    doomed = await stepped(lock_ttl_s=1.0)  # joins, takes its share, then dies
    await doomed.run_round()
    await first.run_round()
    (orphan,) = (await doomed.run_round()).taken

    async def expired() -> bool:
        return bool(await aredis.get(keys.source_lock(orphan)) is None)

    await wait_until(expired, timeout_s=5)  # Redis expires the dead poller's lock
    clock.advance(15.0)  # the dead poller's heartbeat is a lock TTL old
    assert (await first.run_round()).taken == (orphan,)
    assert first.owned_source_ids == created
    holders = {await aredis.get(keys.source_lock(s)) for s in created}
    assert holders == {first.token}


async def test_two_pollers_never_poll_one_account_at_once(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock, aredis: Any, keys: Keys
) -> None:
    for username in ACCOUNTS:
        await sim.add(username=username, count=120, kind="mix", timestamp=T, per_second=9)
        await make_source(sources, sim, username)
    await sim.post("/_sim/faults", kind="slow", delay_s=0.05, times=1000)
    detector = OverlapDetector()
    first = await stepped(transport=detector)
    second = await stepped(transport=detector)
    for _ in range(8):
        await asyncio.gather(first.run_round(), second.run_round())
        clock.advance(0.25)
    got = await event_document_ids(aredis, keys)
    assert len(got) == len(set(got)) == 360
    assert max(detector.max_in_flight.values()) == 1
    assert len(first.owned_source_ids) + len(second.owned_source_ids) == 3
    await detector.aclose()


async def test_clean_stop_releases_locks_and_deregisters(
    sim: Sim, sources: SourceStore, stepped: Any, aredis: Any, keys: Keys
) -> None:
    source = await make_source(sources, sim)
    poller = await stepped()
    await poller.run_round()
    assert await aredis.get(keys.source_lock(source.id)) == poller.token
    await poller.stop()
    assert await aredis.get(keys.source_lock(source.id)) is None
    assert await aredis.zscore(keys.pollers, poller.token) is None


async def test_paused_and_deleted_sources_are_not_polled(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock
) -> None:
    source = await make_source(sources, sim)
    poller = await stepped()
    await rounds(poller, clock, 2)
    await sources.update(source.id, status="paused")
    assert not [r for r in await rounds(poller, clock, 4) if r.polled]
    await sources.update(source.id, status="ok")
    assert [r.polled for r in await rounds(poller, clock, 2)] == [(source.id,), (source.id,)]
    await sources.delete(source.id)
    assert not [r for r in await rounds(poller, clock, 4) if r.polled]
    assert await sim.requests() == 4
    assert source.id not in poller.owned_source_ids


async def test_lock_is_renewed_while_the_poller_lives(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock, aredis: Any, keys: Keys
) -> None:
    source = await make_source(sources, sim)
    poller = await stepped(lock_ttl_s=15.0, lock_renew_s=5.0)
    await poller.run_round()
    await aredis.pexpire(keys.source_lock(source.id), 2000)
    clock.advance(5.0)
    await poller.run_round()
    assert await aredis.pttl(keys.source_lock(source.id)) > 10_000
    assert await aredis.get(keys.source_lock(source.id)) == poller.token
    assert source.id in poller.owned_source_ids


async def test_poller_that_loses_its_lock_stops_polling_that_source(
    sim: Sim,
    sources: SourceStore,
    stepped: Any,
    clock: Clock,
    aredis: Any,
    keys: Keys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="relay.poller")
    source = await make_source(sources, sim)
    poller = await stepped(lock_renew_s=5.0)
    await poller.run_round()
    await aredis.set(keys.source_lock(source.id), "poller_elsewhere", px=60_000)
    clock.advance(5.0)
    assert (await poller.run_round()).polled == ()
    assert source.id not in poller.owned_source_ids
    assert not [r for r in await rounds(poller, clock, 4) if r.polled]
    assert await sim.requests() == 1
    assert await aredis.get(keys.source_lock(source.id)) == "poller_elsewhere"
    assert any(r.getMessage() == "source lock lost" for r in caplog.records)


_EMPTY_STATUS = RelayStatus(
    at=0.0,
    key_prefix="p:",
    redis=RedisMemory(policy="noeviction", used_bytes=0, max_bytes=0, is_out_of_memory=False),
    roles={},
    queues=QueueDepths(0, 0, 0, 0, 0, 0, 0),
    sources=[],
    subscriptions=[],
)


async def test_lateness_is_measured_from_the_due_time_and_shown_by_status(
    sim: Sim, sources: SourceStore, stepped: Any, clock: Clock, aredis: Any, keys: Keys
) -> None:
    await make_source(sources, sim, poll_interval_s=1.0)
    poller = await stepped()
    await poller.run_round()
    clock.advance(1.5)  # due at +1 s, started at +1.5 s
    (poll,) = (await poller.run_round()).polls
    assert poll.lateness_s == pytest.approx(0.5)
    assert poller.lateness_p99_s == pytest.approx(0.5)
    await poller.run_round()  # the next discovery publishes it for `relay status`
    assert await poller_lateness(aredis, keys, now=clock.now, ttl_s=15) == {poller.token: 0.5}
    status = dataclasses.replace(_EMPTY_STATUS, poll_lateness_p99_s={poller.token: 1.5})
    assert "start late by 1500 ms p99 (1 pollers)  BEHIND" in render_text(status)
