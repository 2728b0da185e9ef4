"""The dispatcher: first delivery attempts, read from the stream's consumer group.

Each entry fans out to its subscriptions; each delivery takes one of its subscription's
slots (`subscriber_concurrency`) and POSTs through the shared HTTP client (http_client.py).
A delivery that cannot get a slot within `SLOT_WAIT_S` is parked: handed to the RQ retry
queue as its first attempt, so a hanging subscriber never holds up the stream or the others.
After one such timeout the subscription counts as slow and deliveries that find its slots
busy park at once, until an attempt to it is quick again; a flush hands all its parked
deliveries to the retry queue as one job (see RetryQueue.park). A subscription with a
`concurrency` of its own has that many slots (at most `subscriber_concurrency`), and one
with a `rate_limit_per_s` or `concurrency` asks the shared limiter before each POST
(throttle.py): a delivery it refuses is deferred to the retry queue with a due time, so a
throttled subscription's backlog waits there, not in the dispatcher's window.

Results are written in batches (attempts, retries, run sets, ACKs: a few round trips per
batch), and an entry is ACKed only when all of its deliveries are settled. Each dispatcher
beats every second (store/heartbeats.py, `Liveness`); the entries of one silent for
DEAD_AFTER_S are taken over by a live one within seconds. Entries of a consumer that never
beat, or of a live one that holds them too long, are reclaimed (XAUTOCLAIM) once idle longer
than 2 x the longest delivery timeout (global or a subscription's) + 30 s; a live one re-takes
within seconds its own entries it does not know it holds (a read whose reply was lost). A
dispatcher whose loop stalls past DEAD_AFTER_S may see its entries delivered again by a peer:
at least once, with the same webhook-id.

MAX_IN_FLIGHT bounds sockets and memory rather than setting the throughput: on loopback the
receiver and the client set the ceiling (BENCHMARKS.md, "In-flight window"), and by Little's
law the window still carries thousands of deliveries per second to subscribers that answer
in 100 ms. The connector limit equals it and the read gate keeps in-flight POSTs below it, so
no POST waits for a pooled connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass

import redis

from relay.core.health import OPERATOR_SUBSCRIPTION_ID
from relay.core.limits import longest_timeout_s
from relay.core.models import Event, Subscription
from relay.core.retry import RetryPolicy
from relay.delivery.deliverer import CONNECTION_LIMIT, Deliverer
from relay.delivery.jobs import retry_queue_for
from relay.delivery.outcomes import OutcomeHandler, Settled, operator_target
from relay.delivery.routing import RoutingIndex
from relay.delivery.slots import Slots
from relay.delivery.throttle import LEASE_WAIT_S, RATE_WAIT_S, Throttle
from relay.event_loops import loop_name
from relay.settings import Settings
from relay.store import Store
from relay.store.heartbeats import Liveness
from relay.store.limits import Admission
from relay.store.stream import StreamEntry

log = logging.getLogger("relay.dispatcher")

READ_COUNT = 200
BLOCK_MS = 1000
SLOT_WAIT_S = 1.0
MAX_IN_FLIGHT = CONNECTION_LIMIT
FLUSH_RETRY_S = 1.0
FLUSH_LINGER_S = 0.01
BEAT_EVERY_S = 1.0
DEAD_AFTER_S = 5.0  # a dispatcher silent this long is dead: its entries are taken over
TAKEOVER_MIN_IDLE_MS = int((DEAD_AFTER_S - BEAT_EVERY_S) * 1000)
RECLAIM_EVERY_S = 2.0
LIVENESS_FORGET_S = 86400.0


def reclaim_idle_s(settings: Settings) -> float:
    """How long an entry stays unsettled before another dispatcher takes it over: longer
    than the longest delivery any subscription may set (`timeout_s`) plus its waits."""
    return 2 * longest_timeout_s(settings.delivery_timeout_s) + 30


@dataclass(slots=True)
class _Tracked:
    entry: StreamEntry
    remaining: int  # deliveries of this entry not yet settled
    is_fresh: bool  # read for the first time and not explicit: no retry of it exists yet


class Dispatcher:
    def __init__(
        self,
        *,
        store: Store,
        deliverer: Deliverer,
        settings: Settings,
        rq_client: redis.Redis,
        reclaim_after_s: float,
    ) -> None:
        self._store = store
        self._deliverer = deliverer
        self._settings = settings
        self._outcomes = OutcomeHandler(
            store=store,
            retries=retry_queue_for(settings, rq_client),
            policy=RetryPolicy(settings.retry_schedule_s),
            rng=random.Random(),
            clock=time.time,
            disable_after_s=settings.disable_after_s,
        )
        self._throttle = Throttle(
            limiter=store.limits, timeout_for=deliverer.timeout_for, rng=random.Random()
        )
        self._operator = operator_target(settings)
        self._consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._reclaim_ms = int(reclaim_after_s * 1000)
        self._reclaim_every_s = min(RECLAIM_EVERY_S, reclaim_after_s / 2)
        self._liveness = Liveness(redis=store.redis, keys=store.keys, role="dispatcher")
        self._routes = RoutingIndex()
        self._fanout = 1  # deliveries per entry in the last batch: sizes the next read
        self._slots: dict[str, Slots] = {}  # subscription id -> its slots here
        self._slow: set[str] = set()  # subscriptions whose slots stayed busy too long
        self._tracked: dict[str, _Tracked] = {}
        self._pending = 0  # deliveries read and not yet settled
        self._capacity = asyncio.Event()
        self._buffer: list[tuple[_Tracked, Settled | None]] = []
        self._dirty = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def run(self, stop: asyncio.Event) -> None:
        await self._store.stream.ensure_group()
        await self._liveness.beat(self._consumer, now=time.time())
        loop = loop_name(asyncio.get_running_loop())
        log.info("dispatcher started", extra={"consumer": self._consumer, "event_loop": loop})
        flusher = self._start_flusher()
        beater = asyncio.create_task(self._beat_forever())
        next_reclaim = 0.0
        try:
            while not stop.is_set():
                try:
                    await self._wait_for_capacity(stop)
                    if stop.is_set():
                        break
                    if time.monotonic() >= next_reclaim:
                        next_reclaim = time.monotonic() + self._reclaim_every_s
                        await self._reclaim()
                    entries = await self._store.stream.read(
                        consumer=self._consumer, count=self._read_count(), block_ms=BLOCK_MS
                    )
                    if entries:
                        await self._dispatch(entries, reclaimed=False)
                except Exception:
                    log.exception("dispatch loop error; retrying")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=FLUSH_RETRY_S)
        finally:
            await self._drain()
            await self._stop_flusher(flusher)
            beater.cancel()
            if not self._tracked:  # else its beat goes stale and a peer takes them over
                with contextlib.suppress(Exception):
                    await self._liveness.forget([self._consumer])
            log.info("dispatcher stopped", extra={"unsettled_entries": len(self._tracked)})

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(BEAT_EVERY_S)
            try:
                await self._liveness.beat(self._consumer, now=time.time())
            except Exception as exc:  # Redis down: the loop itself logs and retries
                log.warning("dispatcher beat not written", extra={"error": str(exc)})

    async def run_until_idle(self) -> int:
        """Burst mode, for tests and one-shot runs: reclaim what is due, then read and deliver
        until a read finds nothing new and nothing is in flight. Returns with every result
        written (parked deliveries handed to the retry queue, entries ACKed); returns the
        number of stream entries read. Unlike `run`, errors propagate."""
        await self._store.stream.ensure_group()
        await self._liveness.beat(self._consumer, now=time.time())
        flusher = self._start_flusher()
        read = 0
        try:
            await self._reclaim()
            while True:
                await self._wait_for_capacity(None)
                entries = await self._store.stream.read(
                    consumer=self._consumer, count=self._read_count(), block_ms=None
                )
                if entries:
                    await self._dispatch(entries, reclaimed=False)
                    read += len(entries)
                    continue
                if self._pending == 0:
                    break
                self._capacity.clear()
                await self._capacity.wait()  # a batch of results was written
        finally:
            await self._stop_flusher(flusher)
        return read

    def _start_flusher(self) -> asyncio.Task[None]:
        self._closing = False
        return asyncio.create_task(self._flush_forever())

    async def _stop_flusher(self, flusher: asyncio.Task[None]) -> None:
        """Write what is buffered and stop the flusher."""
        self._closing = True
        self._dirty.set()
        try:
            await asyncio.wait_for(flusher, timeout=10)
        except TimeoutError:
            log.warning("results not written in time; their entries will be reclaimed")

    def _read_count(self) -> int:
        fanout = max(1, self._fanout)
        return max(1, min(READ_COUNT, (MAX_IN_FLIGHT - self._pending) // fanout))

    async def _wait_for_capacity(self, stop: asyncio.Event | None) -> None:
        while self._pending >= MAX_IN_FLIGHT and not (stop is not None and stop.is_set()):
            self._capacity.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._capacity.wait(), timeout=1.0)

    async def _reclaim(self) -> None:
        claimed = await self._take_over_dead()
        # Entries read by a reply this dispatcher never got: the idle-time reclaim below
        # would leave them for minutes (it must outwait the longest delivery).
        claimed += await self._store.stream.claim_orphans(
            self._consumer,
            known=self._tracked,
            min_idle_ms=TAKEOVER_MIN_IDLE_MS,
            count=self._read_count(),
        )
        claimed += await self._store.stream.claim_stale(
            consumer=self._consumer, min_idle_ms=self._reclaim_ms, count=self._read_count()
        )
        claimed = [entry for entry in claimed if entry.id not in self._tracked]
        if claimed:
            log.info("reclaimed unsettled entries", extra={"count": len(claimed)})
            await self._dispatch(claimed, reclaimed=True)
        forgotten = await self._store.stream.forget_idle_consumers(min_idle_ms=self._reclaim_ms)
        if forgotten:
            log.info("removed idle stream consumers", extra={"count": forgotten})
        await self._liveness.prune(older_than=time.time() - LIVENESS_FORGET_S)

    async def _take_over_dead(self) -> list[StreamEntry]:
        """The entries of dispatchers silent for DEAD_AFTER_S (killed, or their host gone)."""
        holders = await self._store.stream.holders()
        holders.pop(self._consumer, None)
        dead = await self._liveness.silent(list(holders), now=time.time(), after_s=DEAD_AFTER_S)
        claimed: list[StreamEntry] = []
        for holder in sorted(dead):
            room = self._read_count() - len(claimed)
            if room <= 0:
                break
            taken = await self._store.stream.claim_from(
                holder, consumer=self._consumer, min_idle_ms=TAKEOVER_MIN_IDLE_MS, count=room
            )
            if taken:
                log.info(
                    "took over the entries of a dead dispatcher",
                    extra={"dead_consumer": holder, "count": len(taken)},
                )
            claimed += taken
        return claimed

    async def _dispatch(self, entries: list[StreamEntry], *, reclaimed: bool) -> None:
        event_ids = sorted({entry.event_id for entry in entries if entry.event_id})
        found = await self._store.events.get_many(event_ids)
        events = {event.id: event for event in found if event is not None}
        await self._routes.refresh(self._store.subscriptions)
        already: dict[str, set[str]] = {}
        if reclaimed:
            already = await self._store.stream.settled_subscriptions([e.id for e in entries])
        deliveries = 0
        for entry in entries:
            event = events.get(entry.event_id)
            targets = self._targets(entry, event) if event is not None else []
            skip = already.get(entry.id, set())
            targets = [sub for sub in targets if sub.id not in skip]
            is_fresh = not reclaimed and not entry.is_explicit
            tracked = _Tracked(entry=entry, remaining=len(targets), is_fresh=is_fresh)
            if event is None or not targets:
                if event is None and entry.event_id:
                    log.warning("event expired before delivery", extra={"event_id": entry.event_id})
                self._push(tracked, None)
                continue
            self._tracked[entry.id] = tracked
            self._pending += len(targets)
            deliveries += len(targets)
            for subscription in targets:
                task = asyncio.create_task(self._deliver(tracked, event, subscription))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        self._fanout = max(1, -(-deliveries // len(entries)))  # ceil

    def _targets(self, entry: StreamEntry, event: Event) -> list[Subscription]:
        if entry.subscription_id == OPERATOR_SUBSCRIPTION_ID:
            return [] if self._operator is None else [self._operator]
        if entry.subscription_id is not None:
            sub = self._routes.get(entry.subscription_id)
            return [sub] if sub is not None and sub.enabled else []
        return [
            sub
            for sub in self._routes.candidates(event)
            if sub.matches(event) and (entry.is_explicit or sub.predates(event))
        ]

    async def _deliver(self, tracked: _Tracked, event: Event, subscription: Subscription) -> None:
        """Never raises: anything unexpected parks the delivery on the retry queue."""
        explicit, fresh = tracked.entry.is_explicit, tracked.is_fresh
        settled = Settled(event, subscription, None, is_explicit=explicit, is_fresh=fresh)
        slot = self._slot_for(subscription)
        if not await self._take_slot(slot, subscription.id):
            self._push(tracked, settled)  # parked: the retry queue makes the first attempt
            return
        admission = None
        try:
            if subscription.has_shared_limits:
                admission = await self._throttle.admit(subscription)
                if not admission.admitted:
                    defer_s = self._throttle.defer_s(subscription, admission)
                    settled = Settled(
                        event, subscription, None, explicit, defer_s=defer_s, is_fresh=fresh
                    )
                    return
            started = time.monotonic()
            result = await self._deliverer.attempt(
                event, subscription, attempt_number=1, now=time.time()
            )
            if time.monotonic() - started < SLOT_WAIT_S:
                self._slow.discard(subscription.id)
            settled = Settled(event, subscription, result, is_explicit=explicit, is_fresh=fresh)
        except Exception:
            log.exception("delivery failed unexpectedly; parking it", extra={"event_id": event.id})
        finally:
            slot.release()
            if admission is not None and admission.lease is not None:
                await self._release(subscription, admission)
            self._push(tracked, settled)

    async def _release(self, subscription: Subscription, admission: Admission) -> None:
        try:
            await self._throttle.release(subscription, admission)
        except Exception:  # Redis down: the lease expires by itself
            log.exception("lease not released", extra={"subscription_id": subscription.id})

    def _slot_for(self, subscription: Subscription) -> Slots:
        """The subscription's slots in this dispatcher: `subscriber_concurrency`, or its own
        `concurrency` when lower (then the shared leases bind the dispatchers together)."""
        size = self._settings.subscriber_concurrency
        if subscription.concurrency is not None:
            size = min(size, subscription.concurrency)
        known = self._slots.get(subscription.id)
        if known is not None and known.size == size:
            return known
        slots = Slots(size)  # new size: holders of the old ones release those
        self._slots[subscription.id] = slots
        return slots

    async def _take_slot(self, slots: Slots, subscription_id: str) -> bool:
        """Take one of the subscription's slots; False means park the delivery instead.

        A free slot is always taken. A busy one is waited for up to SLOT_WAIT_S, unless the
        subscription is known to be slow (a wait timed out and no attempt has been quick
        since): then the delivery parks at once. So a hanging subscriber's deliveries wait
        (and count against MAX_IN_FLIGHT) for one SLOT_WAIT_S only, not for as long as it
        hangs, and the stream keeps being read for the others."""
        if slots.try_take():
            return True
        if subscription_id in self._slow:
            return False
        if await slots.take(SLOT_WAIT_S):
            return True
        self._slow.add(subscription_id)
        return False

    def _push(self, tracked: _Tracked, settled: Settled | None) -> None:
        self._buffer.append((tracked, settled))
        self._dirty.set()

    async def _flush_forever(self) -> None:
        """Write results as they come; a batch grows while the previous one is written."""
        while True:
            await self._dirty.wait()
            if len(self._buffer) < READ_COUNT and not self._closing:
                await asyncio.sleep(FLUSH_LINGER_S)  # gather a batch: a few round trips each
            self._dirty.clear()
            batch, self._buffer = self._buffer, []
            failures = 0
            while batch:
                try:
                    await self._flush(batch)
                    break
                except Exception:
                    failures += 1
                    log.exception("writing delivery results failed; retrying")
                    if self._closing and failures >= 3:
                        return  # unsettled entries stay pending and will be reclaimed
                    await asyncio.sleep(FLUSH_RETRY_S)
            if self._closing and not self._buffer:
                return

    async def _flush(self, batch: list[tuple[_Tracked, Settled | None]]) -> None:
        """Settle a batch; changes nothing in memory unless every write succeeded."""
        await self._outcomes.settle([settled for _, settled in batch if settled is not None])
        done: list[str] = []
        newly: dict[str, tuple[_Tracked, list[str]]] = {}
        for tracked, settled in batch:
            if settled is None:
                done.append(tracked.entry.id)  # nothing to deliver: only ACK
            else:
                newly.setdefault(tracked.entry.id, (tracked, []))[1].append(settled.subscription.id)
        partial: dict[str, list[str]] = {}
        for entry_id, (tracked, subscription_ids) in newly.items():
            if tracked.remaining - len(subscription_ids) <= 0:
                done.append(entry_id)
            else:
                partial[entry_id] = subscription_ids
        await self._store.stream.settle(
            done=done, partial=partial, keep_s=self._settings.event_retention_s
        )
        for entry_id, (tracked, subscription_ids) in newly.items():
            tracked.remaining -= len(subscription_ids)
            self._pending -= len(subscription_ids)
            if tracked.remaining <= 0:
                self._tracked.pop(entry_id, None)
        self._capacity.set()

    async def _drain(self) -> None:
        """Let in-flight deliveries finish (each is bounded by its timeout and waits)."""
        if self._tasks:
            longest_s = longest_timeout_s(self._settings.delivery_timeout_s)
            waits_s = SLOT_WAIT_S + max(RATE_WAIT_S, LEASE_WAIT_S)
            _done, still = await asyncio.wait(set(self._tasks), timeout=longest_s + waits_s + 5)
            for task in still:
                task.cancel()
