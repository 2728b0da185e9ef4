"""The poller: poll every MC5 source when it is due, record new messages, split sources
between poller processes.

Scheduling. The sources this poller holds wait in a heap of next-poll times
(relay.ingest.schedule); the poller starts the ones due, at most `concurrency` upstream
requests at a time (at or below the HTTP pool's size), reading each batch's source hashes in
one round trip. A source leaves the heap while it is polled and goes back when the poll ends,
so one account never has two requests in flight. Polls start every `poll_interval_s` of their
source (the poll's own time is not added) on a grid of the source's own phase, so sources
taken together are polled at spread moments, not in one burst; at least a tenth of the
interval after the last one ended;
a page that asks for more is fetched again at once, but at most `max_pages_per_s` times a
second per account, so an upstream that always has "more" cannot make the poller spin.
How late each poll starts after it was due is the `relay_poll_lateness_seconds` histogram.

Ownership. Each source is polled by one poller at a time, the holder of its Redis lock
(`keys.source_lock`, TTL `lock_ttl_s` = 15 s, all renewed every `lock_renew_s` = 5 s in one
pipeline). The ingest script checks the lock before committing, so a poller that lost its
lock (stalled past the TTL) commits nothing. Every `discover_s` (1 s), and at once when a
source is created (`keys.sources_created`, pub/sub), a poller heartbeats into
`keys.pollers`, counts the live pollers and holds at most ceil(sources / live pollers)
sources: it takes free ones (batched SET NX), and hands extras over (the latest due first,
after their poll in flight) when another poller joins, so a new poller has its share within
a discovery or two and a dead poller's sources are taken once its locks expire (one TTL).
A clean stop (`stop` set) finishes the polls in flight and releases the locks; cancelling
`run()` abandons them like a crash (they expire).

Stepping. `run_round()` does one discovery and polls every source due now, then returns what
it did (like arq's burst mode): tests drive the poller with it and an injected clock.

Per poll: fetch `since = cursor`, record the page with the ingest script (dedupe, events,
stream, cursor). An empty page of a healthy source writes nothing: its `last_polled_at` is
saved with the next batch, every `lock_renew_s` (the latest poll of each source only).
Stuck pages (a full page all in one second) move the cursor to that second + 1 and note the
possible gap on the source (`last_error`, status "ok", kept for `gap_note_keep_s`);
unreadable messages are skipped with a note the same way (relay.core.mc5).

Failures: transport errors, MC5 status 9999 and unexpected errors back off from 1 s to
120 s; status 1, 2 (configuration) and 3 (authentication) from 300 s to 3600 s; 4, 200 and
220 stop polling until the source is changed (relay.core.backoff). The source becomes
"failing" with a readable `last_error`, and `failures` and `next_poll_at` are stored so a
restart does not retry early. The next successful poll resets status "ok".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from relay.core.backoff import retry_delay_s
from relay.core.errors import UpstreamError, UpstreamStatusError
from relay.core.health import SOURCE_FAILING, SOURCE_RECOVERED
from relay.core.ids import new_id
from relay.core.mc5 import (
    PAGE_SIZE,
    RetryKind,
    gap_note,
    plan_page,
    rejected_note,
    status_behaviour,
)
from relay.core.models import Source
from relay.ingest.mc5_client import MC5Client
from relay.ingest.schedule import Schedule
from relay.observability.metrics import (
    DUPLICATES_DROPPED,
    MESSAGES_INGESTED,
    MESSAGES_SKIPPED,
    POLL_LATENESS,
    POLLS,
    POSSIBLE_GAPS,
)
from relay.settings import Settings
from relay.store.events import EventStore
from relay.store.ingest import Ingest, SourceLockLost
from relay.store.keys import Keys
from relay.store.locks import SourceLocks
from relay.store.operator_events import OperatorEvents
from relay.store.sources import SourceStore

GOLDEN_RATIO_FRACTION = (math.sqrt(5) - 1) / 2  # 0.618...: the most even spread

log = logging.getLogger("relay.poller")

LOCK_TTL_S = 15.0
LOCK_RENEW_S = 5.0
DISCOVER_S = 1.0
TRIM_EVERY_S = 60.0
STOP_GRACE_S = 5.0
RECHECK_S = 1.0  # how soon a waiting (paused, backing off) source notices an admin change
BATCH_WINDOW_S = 0.02  # polls due this soon start with the batch due now: fewer round trips
LATENESS_KEPT = 2048  # recent lateness samples behind `lateness_p99_s`

Outcome = Literal["ok", "failed", "waiting", "gone", "lost"]


@dataclass(frozen=True, slots=True)
class PollResult:
    """One source's turn: ok/failed made an upstream request; waiting (paused or backing
    off), gone (deleted) and lost (lock lost) did not."""

    source_id: str
    outcome: Outcome
    new_events: int = 0
    lateness_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Round:
    """What one `run_round()` did."""

    polls: tuple[PollResult, ...]
    taken: tuple[str, ...]
    released: tuple[str, ...]

    @property
    def polled(self) -> tuple[str, ...]:
        """The sources that made an upstream request, in the order they were started."""
        return tuple(p.source_id for p in self.polls if p.outcome in ("ok", "failed"))

    @property
    def new_events(self) -> int:
        return sum(p.new_events for p in self.polls)


class Poller:
    """Polls the sources this process holds the locks of; see the module docstring."""

    def __init__(
        self,
        *,
        settings: Settings,
        redis: Redis,
        mc5: MC5Client,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        token: str | None = None,
        lock_ttl_s: float = LOCK_TTL_S,
        lock_renew_s: float = LOCK_RENEW_S,
        discover_s: float = DISCOVER_S,
        page_size: int = PAGE_SIZE,
        gap_note_keep_s: float = 3600.0,
        concurrency: int | None = None,
        max_pages_per_s: float | None = None,
    ) -> None:
        self.token = token or new_id("poller")
        keys = Keys(settings.key_prefix)
        self._mc5 = mc5
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock_renew_s = lock_renew_s
        self._discover_s = discover_s
        self._redis = redis
        self._created_channel = keys.sources_created
        self._discover_soon = False  # a source was created: discover now
        self._page_size = page_size
        self._spread_s = settings.poll_interval_s
        # Each source polls on a grid of its own (see _next_due), anchored where it was taken
        # plus a phase: the golden-ratio sequence, so sources taken together spread evenly.
        self._anchors: dict[str, tuple[float, float]] = {}  # id -> (taken at, phase)
        self._next_phase = 0.0
        self._concurrency = min(concurrency or settings.poll_concurrency, mc5.max_connections)
        self._page_gap_s = 1.0 / (max_pages_per_s or settings.poll_max_pages_per_s)
        self._locks = SourceLocks(redis=redis, keys=keys, ttl_s=lock_ttl_s)
        self._sources = SourceStore(redis=redis, keys=keys)
        self._events = EventStore(redis=redis, keys=keys)
        self._operator = OperatorEvents(
            redis=redis,
            keys=keys,
            retention_s=settings.event_retention_s,
            is_enabled=settings.operator_webhook_url is not None,
        )
        self._ingest = Ingest(
            redis=redis,
            keys=keys,
            dedupe_ttl_s=settings.dedupe_ttl_s,
            event_retention_s=settings.event_retention_s,
            gap_note_keep_s=gap_note_keep_s,
        )
        self._schedule = Schedule()
        self._owned: set[str] = set()  # locks held: waiting in the schedule or in flight
        self._in_flight: set[str] = set()
        self._handing_over: set[str] = set()  # release once the poll in flight ends
        self._polled_at: dict[str, float] = {}  # empty polls whose last_polled_at is unsaved
        self._lateness: deque[float] = deque(maxlen=LATENESS_KEPT)
        self._tasks: set[asyncio.Task[list[PollResult]]] = set()
        self._poll_ended = asyncio.Event()
        self._renewed_at = -math.inf
        self._trimmed_at = -math.inf

    @property
    def owned_source_ids(self) -> frozenset[str]:
        """The sources this poller holds now."""
        return frozenset(self._owned)

    @property
    def lateness_p99_s(self) -> float:
        """The 99th percentile of recent polls' lateness (due time to start)."""
        if not self._lateness:
            return 0.0
        ordered = sorted(self._lateness)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    async def run_round(self) -> Round:
        """One discovery, then every source due now polled (the rest wait): a step."""
        taken, released = await self._discover(self._clock())
        batch = self._schedule.pop_due(self._clock(), limit=len(self._schedule))
        results: list[PollResult] = []
        for start in range(0, len(batch), self._concurrency):
            chunk = batch[start : start + self._concurrency]
            self._in_flight.update(source_id for source_id, _ in chunk)
            results += await self._poll_batch(chunk)
        await self._flush_polled()
        return Round(tuple(results), tuple(taken), tuple(released))

    async def stop(self) -> None:
        """A clean stop of a stepped poller: wait for polls in flight, save what is unsaved,
        release every lock and leave the live pollers (what `run` does once stopped)."""
        await self._shutdown()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set, then finish in-flight polls and release every lock."""
        discover_at = flush_at = -math.inf
        listener = asyncio.create_task(self._listen_for_new_sources())
        try:
            while not stop.is_set():
                if self._discover_soon or self._clock() >= discover_at:
                    self._discover_soon = False
                    try:
                        await self._discover(self._clock())
                        if self._clock() >= flush_at:  # only the latest poll of each source
                            flush_at = self._clock() + self._lock_renew_s
                            await self._flush_polled()
                    except Exception as exc:
                        _log_error("poller round failed", exc, {"poller": self.token})
                    discover_at = self._clock() + self._discover_s
                self._start_due()
                next_due = self._schedule.next_due()
                wake_at = discover_at if next_due is None else min(discover_at, next_due)
                wake_at = max(wake_at, self._clock() + BATCH_WINDOW_S / 2)
                if len(self._in_flight) >= self._concurrency:
                    wake_at = discover_at  # a slot frees up when a poll ends
                self._poll_ended.clear()
                wait_s = 0.0 if self._discover_soon else wake_at - self._clock()
                await _wait_any(stop, self._poll_ended, wait_s)
            await self._shutdown()
        finally:
            listener.cancel()
            for task in self._tasks:
                task.cancel()

    async def _listen_for_new_sources(self) -> None:
        """Wake the loop for a discovery when a source is created, so it is polled at once
        rather than at the next `discover_s`; a lost subscription only costs that second."""
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._created_channel)
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=self._discover_s
                        )
                        if message is not None:
                            self._discover_soon = True
                            self._poll_ended.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log_error("listening for new sources failed", exc, {"poller": self.token})
                await asyncio.sleep(self._discover_s)

    def _start_due(self) -> None:
        free = self._concurrency - len(self._in_flight)
        now = self._clock()
        batch = self._schedule.pop_due(now + BATCH_WINDOW_S, limit=free) if free > 0 else []
        if not batch:
            return
        self._in_flight.update(source_id for source_id, _ in batch)
        task = asyncio.create_task(self._poll_batch(batch), name="poll batch")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _discover(self, now: float) -> tuple[list[str], list[str]]:
        """Heartbeat, renew the locks, follow deletions, take or hand over sources."""
        live = await self._locks.heartbeat(self.token, now=now, lateness_p99_s=self.lateness_p99_s)
        ids = await self._sources.ids()
        present = set(ids)
        for source_id in self._owned - present:
            self._forget(source_id)
        if now - self._renewed_at >= self._lock_renew_s:
            held = sorted(self._owned)
            renewed_all = await self._locks.renew(held, self.token)
            for source_id, renewed in zip(held, renewed_all, strict=True):
                if not renewed:
                    log.warning("source lock lost", extra={"source_id": source_id})
                    self._forget(source_id)
            self._renewed_at = now
        quota = math.ceil(len(ids) / live)
        excess = len(self._owned - self._handing_over) - quota
        taken: list[str] = []
        released: list[str] = []
        if excess > 0:
            released = await self._hand_over(excess)
        elif excess < 0:
            free = [i for i in ids if i not in self._owned and i not in self._in_flight]
            self._rng.shuffle(free)  # pollers starting together try different sources
            taken = await self._locks.acquire(free, self.token, wanted=-excess)
            spread_s = self._spread_s if len(taken) > self._concurrency else 0.0
            for source_id in taken:
                self._owned.add(source_id)
                self._anchors[source_id] = (now, self._next_phase)
                self._next_phase = (self._next_phase + GOLDEN_RATIO_FRACTION) % 1.0
                self._schedule.set(source_id, now + self._rng.random() * spread_s)
            if taken:
                log.info("sources taken", extra={"count": len(taken), "poller": self.token})
        if now - self._trimmed_at >= TRIM_EVERY_S:
            self._trimmed_at = now
            await self._events.trim_expired()
        return taken, released

    async def _hand_over(self, count: int) -> list[str]:
        waiting = self._schedule.latest(count)
        for source_id in waiting:
            self._forget(source_id)
        await self._locks.release_many(waiting, self.token)
        busy = [i for i in self._in_flight if i in self._owned and i not in self._handing_over]
        self._handing_over.update(busy[: count - len(waiting)])
        log.info("handing sources over", extra={"count": count, "poller": self.token})
        return waiting

    def _forget(self, source_id: str) -> None:
        self._owned.discard(source_id)
        self._handing_over.discard(source_id)
        self._schedule.remove(source_id)
        self._polled_at.pop(source_id, None)
        self._anchors.pop(source_id, None)

    async def _flush_polled(self) -> None:
        polled, self._polled_at = self._polled_at, {}
        await self._sources.record_polled(polled)

    async def _shutdown(self) -> None:
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_GRACE_S)
            for task in pending:
                task.cancel()
        with contextlib.suppress(Exception):
            await self._flush_polled()
        await self._locks.release_many(sorted(self._owned), self.token)
        for source_id in list(self._owned):
            self._forget(source_id)
        await self._locks.leave(self.token)

    async def _poll_batch(self, batch: Sequence[tuple[str, float]]) -> list[PollResult]:
        """Poll each (source id, due time), reading their hashes in one round trip."""
        ids = [source_id for source_id, _ in batch]
        try:
            rows = await self._sources.get_many_versioned(ids)
        except Exception as exc:
            _log_error("reading sources failed", exc, {"poller": self.token})
            for source_id, _ in batch:
                self._poll_over(source_id, self._clock() + RECHECK_S)
            return []
        return list(
            await asyncio.gather(
                *(self._turn(sid, due, row) for (sid, due), row in zip(batch, rows, strict=True))
            )
        )

    async def _turn(self, source_id: str, due: float, row: tuple[Source, int] | None) -> PollResult:
        next_due = self._clock() + RECHECK_S
        try:
            if row is None:
                self._forget(source_id)
                return PollResult(source_id, "gone")
            result, next_due = await self._poll(row[0], row[1], due)
            return result
        except SourceLockLost:
            self._forget(source_id)
            return PollResult(source_id, "lost")
        except Exception as exc:
            _log_error("polling failed", exc, {"source_id": source_id})
            if row is not None:
                with contextlib.suppress(Exception):
                    error = f"internal error: {type(exc).__name__}: {exc}"
                    next_due = await self._record_failure(row[0], row[1], error, "backoff")
            return PollResult(source_id, "failed")
        finally:
            self._poll_over(source_id, next_due)

    def _poll_over(self, source_id: str, next_due: float) -> None:
        self._in_flight.discard(source_id)
        if source_id in self._handing_over:
            self._forget(source_id)
            task = asyncio.create_task(self._locks.release(source_id, self.token))
            task.add_done_callback(_log_failure)
        elif source_id in self._owned:
            self._schedule.set(source_id, next_due)
        self._poll_ended.set()

    async def _poll(self, source: Source, version: int, due: float) -> tuple[PollResult, float]:
        """Poll once if the source wants it; returns the result and when it is next due."""
        now = self._clock()
        if source.status == "paused":
            return PollResult(source.id, "waiting"), now + min(source.poll_interval_s, RECHECK_S)
        if source.next_poll_at > now:
            return PollResult(source.id, "waiting"), min(source.next_poll_at, now + RECHECK_S)
        lateness_s = max(0.0, now - due)
        POLL_LATENESS.observe(lateness_s)
        self._lateness.append(lateness_s)
        started = now
        try:
            page = await self._mc5.fetch_page(
                base_url=source.base_url,
                username=source.username,
                password=source.password,
                since=source.cursor,
            )
        except UpstreamError as exc:
            if source.id not in self._owned:
                return PollResult(source.id, "lost"), now
            if isinstance(exc, UpstreamStatusError):
                kind, outcome = status_behaviour(exc.status).retry, "status_error"
            else:
                kind, outcome = "backoff", "transport_error"
            POLLS.labels(source_id=source.id, outcome=outcome).inc()
            next_due = await self._record_failure(source, version, str(exc), kind)
            return PollResult(source.id, "failed", lateness_s=lateness_s), next_due
        if source.id not in self._owned:
            return PollResult(source.id, "lost"), now
        now = self._clock()
        plan = plan_page(cursor=source.cursor, page=page, now=now, page_size=self._page_size)
        note = None
        if plan.is_possible_gap and plan.stuck_second is not None:
            note = gap_note(second=plan.stuck_second, page_size=self._page_size)
            POSSIBLE_GAPS.labels(source_id=source.id).inc()
            log.warning(
                "possible gap",
                extra={"source_id": source.id, "second": plan.stuck_second, "error": note},
            )
        if page.rejected:
            note = rejected_note(page.rejected)
            MESSAGES_SKIPPED.labels(source_id=source.id).inc(len(page.rejected))
            extra = {"source_id": source.id, "error": note}
            log.warning("unreadable messages skipped", extra=extra)
        POLLS.labels(source_id=source.id, outcome="ok").inc()
        taken_at, phase = self._anchors.get(source.id, (0.0, 0.0))
        interval_s = source.poll_interval_s
        anchor = taken_at + phase * interval_s
        cadence_due = _next_due(started, ended=now, interval_s=interval_s, anchor=anchor)
        is_quiet = source.status == "ok" and source.failures == 0 and source.last_error is None
        if not page.messages and note is None and plan.cursor == source.cursor and is_quiet:
            self._polled_at[source.id] = now  # nothing else to write: the cadence is in memory
            return PollResult(source.id, "ok", lateness_s=lateness_s), cadence_due
        result = await self._ingest.record_page(
            source_id=source.id,
            token=self.token,
            version=version,
            messages=page.messages,
            cursor=plan.cursor,
            now=now,
            gap_note=note,
        )
        new = len(result.new_event_ids)
        MESSAGES_INGESTED.labels(source_id=source.id).inc(new)
        DUPLICATES_DROPPED.labels(source_id=source.id).inc(result.duplicates)
        if new:
            log.info(
                "messages recorded",
                extra={"source_id": source.id, "new": new, "cursor": plan.cursor},
            )
        polled = PollResult(source.id, "ok", new_events=new, lateness_s=lateness_s)
        if not result.is_cursor_recorded:
            return polled, now  # the source changed meanwhile: reload it before going on
        if source.status == "failing":
            await self._operator.emit(SOURCE_RECOVERED, _source_data(source), now=now)
        if plan.should_fetch_again(new_count=new):
            return polled, max(now, started + self._page_gap_s)
        return polled, cadence_due

    async def _record_failure(
        self, source: Source, version: int, error: str, kind: RetryKind
    ) -> float:
        """Mark the source failing and back off; returns when to look at it again."""
        now = self._clock()
        failures = source.failures + 1
        delay_s = retry_delay_s(kind, failures=failures, rng=self._rng)
        if delay_s is None:
            error += "; not retried until the source is changed"
        next_poll_at = math.inf if delay_s is None else now + delay_s
        recorded = await self._sources.record_failure(
            source.id,
            version=version,
            error=error,
            failures=failures,
            next_poll_at=next_poll_at,
            now=now,
        )
        if recorded and source.status != "failing":  # one poller per source: no race
            data = {**_source_data(source), "last_error": error}
            await self._operator.emit(SOURCE_FAILING, data, now=now)
        log.warning(
            "poll failed",
            extra={
                "source_id": source.id,
                "username": source.username,
                "error": error,
                "failures": failures,
                "retry_in_s": None if delay_s is None else round(delay_s, 1),
            },
        )
        return min(next_poll_at, now + RECHECK_S)


def _source_data(source: Source) -> dict[str, str | None]:
    """What an operator event says about a source (never its password)."""
    return {"source_id": source.id, "username": source.username, "tenant_id": source.tenant_id}


def _next_due(started: float, *, ended: float, interval_s: float, anchor: float = 0.0) -> float:
    """Polls start every `interval_s` on the source's grid, `anchor` + whole intervals: the
    next poll is the first grid time more than half an interval after this one started, so a
    late start does not shift the cadence. The poller anchors each source where it took it
    plus a phase, so sources taken together are polled at different moments and their pages
    reach the dispatchers one after another rather than as one burst. A poll also waits at
    least a tenth of the interval after the last one ended, so a slow upstream is never
    polled back to back."""
    steps = math.floor((started + interval_s / 2 - anchor) / interval_s) + 1
    return max(anchor + steps * interval_s, ended + interval_s / 10)


async def _wait_any(stop: asyncio.Event, ended: asyncio.Event, timeout_s: float) -> None:
    """Until `stop` or `ended` is set, or `timeout_s` passes."""
    if timeout_s <= 0 or stop.is_set() or ended.is_set():
        await asyncio.sleep(0)
        return
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(ended.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _log_error(event: str, exc: BaseException, extra: dict[str, object]) -> None:
    """A Redis that is down, out of memory or failing over fails every round the same way
    until it recovers: one warning line naming the error per retry, not a traceback each
    second (that storm buried everything else under OOM). Anything else is a bug: traceback."""
    if isinstance(exc, RedisError | OSError):
        log.warning(event, extra={**extra, "error": f"{type(exc).__name__}: {exc}"})
    else:
        log.error(event, exc_info=exc, extra=extra)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("releasing a lock failed", exc_info=task.exception())
