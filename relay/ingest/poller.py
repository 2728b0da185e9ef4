"""The poller: poll every MC5 source, record new messages, split sources
between poller processes.

Ownership. Each source is polled by one poller at a time, the holder of its Redis lock
(`keys.source_lock`: SET NX PX with this poller's random token, TTL `lock_ttl_s` = 15 s,
renewed every `lock_renew_s` = 5 s by compare-and-pexpire). The ingest script checks the
lock before committing, so a poller that lost its lock (stalled past the TTL) commits
nothing. Every `discover_s` (1 s) a poller heartbeats into `keys.pollers`, counts the live
pollers and holds at most ceil(sources / live pollers) sources: it takes free ones, and
sheds extras (after their current poll) when another poller joins. A dead poller's sources
are taken over once its locks expire. A clean stop (`stop` set) finishes the polls in flight
and releases the locks; cancelling `run()` abandons them like a crash (they expire). A source
loop that lost its lock ends on a flag checked before each fetch and each commit, not on
cancellation alone (redis-py can swallow a CancelledError that lands mid-command), and the
source is not taken again before that loop has ended: one account, one request at a time.

Per source: fetch `since = cursor`, record the page with one ingest script (dedupe, events,
stream, cursor), and fetch again at once while the page brought something new (or moved the
cursor) and `hasMoreMessages` is true or missing, or the page was stuck; otherwise wait
`poll_interval_s`. Paused sources are not polled; deleted ones stop being polled.

Stuck pages: a full page all in one second cannot be paged past with `since` (the upstream
returns the same first 100 again). Every message given is recorded, the cursor moves to that
second + 1, and the possible gap is reported: a warning log, POSSIBLE_GAPS, and the source's
`last_error` ("possible gap: more than 100 messages in second ...") while its status stays
"ok". That note is kept for `gap_note_keep_s` (1 h) of later successful polls, so an operator
sees it, and is then cleared; a failure message replaces it meanwhile.

Failures: transport errors and MC5 status 9999 back off from 1 s to 120 s; status 1, 2
(configuration) and 3 (authentication) from 300 s to 3600 s; 4, 200 and 220 stop polling
until the source is changed (relay.core.backoff). The source becomes "failing" with a
readable `last_error`, and `failures` and `next_poll_at` are stored so a restart does not
retry early. The next successful poll resets status "ok" and clears `last_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from relay.core.backoff import retry_delay_s
from relay.core.errors import NotFound, UpstreamError, UpstreamStatusError
from relay.core.ids import new_id
from relay.core.mc5 import PAGE_SIZE, gap_note, plan_page, status_behaviour
from relay.core.models import Source
from relay.ingest.mc5_client import MC5Client
from relay.observability.metrics import (
    DUPLICATES_DROPPED,
    MESSAGES_INGESTED,
    POLLS,
    POSSIBLE_GAPS,
)
from relay.settings import Settings
from relay.store.events import EventStore
from relay.store.ingest import Ingest, SourceLockLost
from relay.store.keys import Keys
from relay.store.locks import SourceLocks
from relay.store.sources import SourceStore

log = logging.getLogger("relay.poller")

LOCK_TTL_S = 15.0
LOCK_RENEW_S = 5.0
DISCOVER_S = 1.0
TRIM_EVERY_S = 60.0
STOP_GRACE_S = 5.0
RECHECK_S = 1.0  # how soon a waiting (paused, backing off) source notices an admin change
ERROR_PAUSE_S = 1.0  # after an unexpected error (e.g. Redis unreachable) in a source loop


@dataclass
class _Owned:
    """One source this poller holds. Its loop ends on flags, not only on cancellation: some
    client libraries swallow a CancelledError that arrives in the middle of a command."""

    renewed_at: float  # loop time of the last successful lock renewal
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    is_stopping: bool = False
    is_abandoned: bool = False
    task: asyncio.Task[None] | None = None

    @property
    def is_ending(self) -> bool:
        return self.is_stopping or self.is_abandoned

    def stop(self) -> None:
        """Finish the poll in flight, release the lock, end."""
        self.is_stopping = True
        self.wake.set()

    def abandon(self) -> None:
        """End at once without releasing: the lock is lost, or the poller is going down."""
        self.is_abandoned = True
        self.wake.set()
        if self.task is not None:
            self.task.cancel()


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
    ) -> None:
        self.token = token or new_id("poller")
        keys = Keys(settings.key_prefix)
        self._mc5 = mc5
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock_renew_s = lock_renew_s
        self._discover_s = discover_s
        self._page_size = page_size
        self._locks = SourceLocks(redis=redis, keys=keys, ttl_s=lock_ttl_s)
        self._sources = SourceStore(redis=redis, keys=keys)
        self._events = EventStore(redis=redis, keys=keys)
        self._ingest = Ingest(
            redis=redis,
            keys=keys,
            dedupe_ttl_s=settings.dedupe_ttl_s,
            event_retention_s=settings.event_retention_s,
            gap_note_keep_s=gap_note_keep_s,
        )
        self._owned: dict[str, _Owned] = {}
        self._lost: dict[str, _Owned] = {}
        self._trimmed_at = 0.0

    @property
    def owned_source_ids(self) -> frozenset[str]:
        """The sources this poller holds now."""
        return frozenset(self._owned)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set, then finish in-flight polls and release every lock."""
        try:
            while not stop.is_set():
                try:
                    await self._tick()
                except Exception:
                    log.exception("poller round failed", extra={"poller": self.token})
                await _wait(stop, self._discover_s)
            await self._shutdown()
        finally:
            for owned in self._owned.values():
                owned.abandon()

    async def _tick(self) -> None:
        live = await self._locks.heartbeat(self.token, now=self._clock())
        ids = await self._sources.ids()
        present = set(ids)
        self._lost = {i: o for i, o in self._lost.items() if o.task and not o.task.done()}
        for source_id, owned in list(self._owned.items()):
            if owned.task is None or owned.task.done():
                del self._owned[source_id]
            elif source_id not in present:
                owned.stop()
        await self._renew_locks()
        quota = math.ceil(len(ids) / live)
        active = [sid for sid, owned in self._owned.items() if not owned.is_ending]
        for source_id in active[quota:]:
            log.info("handing source over", extra={"source_id": source_id, "poller": self.token})
            self._owned[source_id].stop()
        if len(active) < quota:
            free = [i for i in ids if i not in self._owned and i not in self._lost]
            await self._acquire(free, quota - len(active))
        if time.monotonic() - self._trimmed_at >= TRIM_EVERY_S:
            self._trimmed_at = time.monotonic()
            await self._events.trim_expired()

    async def _acquire(self, candidates: list[str], wanted: int) -> None:
        self._rng.shuffle(candidates)  # pollers starting together try different sources
        for source_id in await self._locks.acquire(candidates, self.token, wanted=wanted):
            owned = _Owned(renewed_at=asyncio.get_running_loop().time())
            owned.task = asyncio.create_task(self._own(source_id, owned), name=f"poll {source_id}")
            self._owned[source_id] = owned
            log.info("source taken", extra={"source_id": source_id, "poller": self.token})

    async def _renew_locks(self) -> None:
        now = asyncio.get_running_loop().time()
        due = [sid for sid, o in self._owned.items() if now - o.renewed_at >= self._lock_renew_s]
        for source_id, renewed in zip(due, await self._locks.renew(due, self.token), strict=True):
            if renewed:
                self._owned[source_id].renewed_at = now
                continue
            log.warning("source lock lost", extra={"source_id": source_id, "poller": self.token})
            owned = self._owned.pop(source_id)
            owned.abandon()
            self._lost[source_id] = owned  # not taken again before its task has ended

    async def _shutdown(self) -> None:
        for owned in self._owned.values():
            owned.stop()
        tasks = [owned.task for owned in self._owned.values() if owned.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            if pending:
                for owned in self._owned.values():
                    owned.abandon()
                await asyncio.wait(pending, timeout=1.0)
        for source_id in list(self._owned):
            await self._locks.release(source_id, self.token)
        self._owned.clear()
        await self._locks.leave(self.token)

    async def _own(self, source_id: str, owned: _Owned) -> None:
        """Poll one source until told to stop, then release its lock (not when abandoned)."""
        while not owned.is_ending:
            try:
                source, version = await self._sources.get_versioned(source_id)
                delay_s = await self._poll(source, version, owned)
            except (NotFound, SourceLockLost):
                break
            except Exception:
                log.exception("polling failed", extra={"source_id": source_id})
                delay_s = ERROR_PAUSE_S
            if delay_s > 0:
                await _wait(owned.wake, delay_s)
        if not owned.is_abandoned:
            await self._locks.release(source_id, self.token)

    async def _poll(self, source: Source, version: int, owned: _Owned) -> float:
        """Poll once if due; returns how long to wait before looking at the source again."""
        started = time.monotonic()
        now = self._clock()
        if owned.is_ending:
            return 0.0
        if source.status == "paused":
            return min(source.poll_interval_s, RECHECK_S)
        if source.next_poll_at > now:
            return min(source.next_poll_at - now, RECHECK_S)
        try:
            page = await self._mc5.fetch_page(
                base_url=source.base_url,
                username=source.username,
                password=source.password,
                since=source.cursor,
            )
        except UpstreamError as exc:
            if not owned.is_abandoned:
                await self._record_failure(source, version, exc)
            return 0.0
        if owned.is_abandoned:
            return 0.0
        plan = plan_page(cursor=source.cursor, page=page, page_size=self._page_size)
        note = None
        if plan.is_possible_gap and plan.stuck_second is not None:
            note = gap_note(second=plan.stuck_second, page_size=self._page_size)
            POSSIBLE_GAPS.labels(source_id=source.id).inc()
            log.warning(
                "possible gap",
                extra={"source_id": source.id, "second": plan.stuck_second, "error": note},
            )
        now = self._clock()
        result = await self._ingest.record_page(
            source_id=source.id,
            token=self.token,
            version=version,
            messages=page.messages,
            cursor=plan.cursor,
            now=now,
            gap_note=note,
        )
        POLLS.labels(source_id=source.id, outcome="ok").inc()
        MESSAGES_INGESTED.labels(source_id=source.id).inc(len(result.new_event_ids))
        DUPLICATES_DROPPED.labels(source_id=source.id).inc(result.duplicates)
        if result.new_event_ids:
            log.info(
                "messages recorded",
                extra={
                    "source_id": source.id,
                    "new": len(result.new_event_ids),
                    "duplicates": result.duplicates,
                    "cursor": plan.cursor,
                },
            )
        if not result.is_cursor_recorded:
            return 0.0  # the source changed meanwhile: reload it before going on
        if plan.should_fetch_again(new_count=len(result.new_event_ids)):
            return 0.0
        return _cadence_wait_s(source.poll_interval_s, elapsed_s=time.monotonic() - started)

    async def _record_failure(self, source: Source, version: int, exc: UpstreamError) -> None:
        now = self._clock()
        if isinstance(exc, UpstreamStatusError):
            kind = status_behaviour(exc.status).retry
            outcome = "status_error"
        else:
            kind, outcome = "backoff", "transport_error"
        failures = source.failures + 1
        delay_s = retry_delay_s(kind, failures=failures, rng=self._rng)
        error = str(exc)
        if delay_s is None:
            error += "; not retried until the source is changed"
        await self._sources.record_failure(
            source.id,
            version=version,
            error=error,
            failures=failures,
            next_poll_at=math.inf if delay_s is None else now + delay_s,
            now=now,
        )
        POLLS.labels(source_id=source.id, outcome=outcome).inc()
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


def _cadence_wait_s(interval_s: float, *, elapsed_s: float) -> float:
    """Polls start every `interval_s` (the poll's own time is not added to the wait), but
    at least a tenth of it apart, so a slow upstream is never polled back to back."""
    return max(interval_s - elapsed_s, interval_s / 10)


async def _wait(stop: asyncio.Event, timeout_s: float) -> None:
    """Sleep `timeout_s`, or less when `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout_s)
