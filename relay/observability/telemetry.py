"""Metrics across processes: each role publishes its registry into Redis with its heartbeat;
the admin API's `/metrics` merges them (labelled `role`, `instance`) with live queue gauges.

This works the same for one `relay run` and for roles spread over machines, since Redis is
the only thing they share. Each process's counters live in its own registry and are summed by
Prometheus queries (`sum by (...)`); a restarted process is a new `instance` series, which
`rate()` treats like any counter reset.

Every heartbeat also scores `role|instance` in `keys.role_instances`. A clean stop removes the
instance; a crash leaves it, so readiness can name a role whose instances all went silent
(`STALE_AFTER_S`) until one is back, or until `ROLE_FORGET_S` has passed.

Values read from Redis at scrape time (queue depths, dead letters, source cursor lag) are
exposed once by the API, and replace any same-named per-process values.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import redis
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from relay.core.models import Heartbeat, QueueDepths
from relay.store.connection import sync_redis
from relay.store.heartbeats import HeartbeatWriter
from relay.store.keys import Keys
from relay.store.server import RedisMemory, is_evicting, read_policy

log = logging.getLogger("relay.telemetry")

HEARTBEAT_INTERVAL_S = 5.0
STALE_AFTER_S = HEARTBEAT_INTERVAL_S * 3  # three missed heartbeats: the instance is silent
ROLE_FORGET_S = 86400.0  # a crashed role still counts for readiness this long


def instance_name() -> str:
    """`host:pid`, unique per process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def snapshot(registry: CollectorRegistry = REGISTRY) -> list[dict[str, Any]]:
    """The registry's metric families as plain JSON-able values."""
    return [
        {
            "name": family.name,
            "type": family.type,
            "help": family.documentation,
            "samples": [[s.name, s.labels, s.value] for s in family.samples],
        }
        for family in registry.collect()
    ]


class HeartbeatPublisher:
    """A daemon thread writing this process's heartbeat + metrics every few seconds."""

    def __init__(
        self,
        *,
        redis_url: str,
        keys: Keys,
        role: str,
        interval_s: float = HEARTBEAT_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        allow_evicting_redis: bool = False,
    ) -> None:
        self._client = sync_redis(redis_url, timeout_s=5)
        self._writer = HeartbeatWriter(
            client=self._client, keys=keys, role=role, instance=instance_name()
        )
        self._role = role
        self._interval_s = interval_s
        self._clock = clock
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
        self._allow_evicting = allow_evicting_redis
        self._policy: str | None = ""  # "" = not read yet; None = Redis would not say

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop publishing and remove the heartbeat (this instance is gone, cleanly)."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._interval_s + 5)
        with contextlib.suppress(redis.RedisError):
            self._writer.withdraw()
        self._client.close()

    def publish_once(self) -> None:
        """Write the heartbeat with a metrics snapshot, and mark the instance seen."""
        now = self._clock()
        value = json.dumps(
            {"role": self._role, "instance": instance_name(), "at": now, "metrics": snapshot()}
        )
        self._writer.publish(
            value, now=now, ttl_s=int(self._interval_s * 3) + 1, forget_after_s=ROLE_FORGET_S
        )

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                self.publish_once()
            except redis.RedisError as exc:
                log.warning("heartbeat not published", extra={"error": str(exc)})
            self.check_eviction_policy()
            self._stopped.wait(self._interval_s)

    def check_eviction_policy(self) -> None:
        """Read Redis's maxmemory-policy and log when it changes: an error when it now evicts
        (the role keeps running: readiness, `relay status` and /metrics show it), a warning
        once when Redis will not say. Never raises."""
        try:
            policy = read_policy(self._client)
        except redis.RedisError:
            return  # Redis down: the heartbeat above already said so
        if policy == self._policy:
            return
        if policy is None:
            log.warning("Redis maxmemory-policy is unknown (CONFIG and INFO memory refused)")
        elif is_evicting(policy) and not self._allow_evicting:
            log.error(
                "Redis maxmemory-policy now evicts keys: messages may be lost; set noeviction",
                extra={"maxmemory_policy": policy},
            )
        elif self._policy and is_evicting(self._policy):
            log.info("Redis maxmemory-policy is safe again", extra={"maxmemory_policy": policy})
        self._policy = policy


def render_metrics(
    *,
    role: str,
    beats: Iterable[Heartbeat],
    depths: QueueDepths,
    cursors: Mapping[str, int] | None = None,
    memory: RedisMemory | None = None,
    now: float | None = None,
) -> bytes:
    """The Prometheus text exposition of this process, every live role, the queues and the
    sources' cursor lag (`now` minus each of `cursors`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        _Merged(
            role=role,
            beats=list(beats),
            depths=depths,
            cursors=dict(cursors or {}),
            memory=memory,
            now=time.time() if now is None else now,
        )
    )
    return generate_latest(registry)


class _Merged(Collector):
    def __init__(
        self,
        *,
        role: str,
        beats: list[Heartbeat],
        depths: QueueDepths,
        cursors: dict[str, int],
        memory: RedisMemory | None,
        now: float,
    ) -> None:
        self._role = role
        self._beats = beats
        self._depths = depths
        self._cursors = cursors
        self._memory = memory
        self._now = now

    def collect(self) -> Iterator[Metric]:
        live = list(self._live_gauges())
        # A counter may share a gauge's base name (relay_dead_letters_total): match the type.
        replaced = {(family.name, family.type) for family in live}
        families: dict[str, Metric] = {}
        sources = [(self._role, instance_name(), snapshot())]
        sources += [
            (b.role, b.instance, b.metrics) for b in self._beats if b.instance != instance_name()
        ]
        for role, instance, metrics in sources:
            for family in metrics:
                if (family["name"], family["type"]) in replaced:
                    continue
                merged = families.get(family["name"])
                if merged is None:
                    merged = Metric(family["name"], family["help"], family["type"])
                    families[family["name"]] = merged
                for name, labels, value in family["samples"]:
                    merged.add_sample(name, {**labels, "role": role, "instance": instance}, value)
        yield from families.values()
        yield from live

    def _live_gauges(self) -> Iterator[Metric]:
        depths = self._depths
        for name, help_text, value in (
            ("relay_stream_backlog", "Events waiting for a dispatcher", depths.stream_backlog),
            ("relay_stream_pending", "Events read but not settled", depths.stream_pending),
            ("relay_retry_queue_ready", "Retries due, waiting for a worker", depths.retry_ready),
            (
                "relay_retry_queue_scheduled",
                "Retries waiting for their time",
                depths.retry_scheduled,
            ),
            (
                "relay_retry_queue_rate_limited",
                "Retries due but held back: their subscription's drain is busy",
                depths.retry_rate_limited,
            ),
            ("relay_retry_queue_running", "Retries a worker is running", depths.retry_running),
            (
                "relay_retry_jobs_failed",
                "Retry jobs that crashed (RQ failed registry; not dead letters)",
                depths.retry_failed,
            ),
            ("relay_dead_letters", "Dead letters kept", depths.dead_letters),
        ):
            gauge = Metric(name, help_text, "gauge")
            gauge.add_sample(name, {}, value)
            yield gauge
        beats = Metric("relay_role_instances", "Live role instances (heartbeats)", "gauge")
        counts: dict[str, int] = {}
        for beat in self._beats:
            counts[beat.role] = counts.get(beat.role, 0) + 1
        for role, count in sorted(counts.items()):
            beats.add_sample("relay_role_instances", {"role": role}, count)
        yield beats
        lag = Metric(
            "relay_source_cursor_lag_seconds",
            "Now minus the source cursor (the newest message time recorded)",
            "gauge",
        )
        for source_id, cursor in sorted(self._cursors.items()):
            lag.add_sample(
                "relay_source_cursor_lag_seconds",
                {"source_id": source_id},
                max(0.0, self._now - cursor),
            )
        yield lag
        if self._memory is not None:
            yield from _memory_gauges(self._memory)


def _memory_gauges(memory: RedisMemory) -> Iterator[Metric]:
    evicting = Metric(
        "relay_redis_evicting",
        "1 when Redis's maxmemory-policy deletes keys under memory pressure (unsafe)",
        "gauge",
    )
    evicting.add_sample(
        "relay_redis_evicting", {"policy": memory.policy or "unknown"}, int(memory.is_evicting)
    )
    yield evicting
    oom = Metric("relay_redis_out_of_memory", "1 while Redis refuses writes (maxmemory)", "gauge")
    oom.add_sample("relay_redis_out_of_memory", {}, int(memory.is_out_of_memory))
    yield oom
    for name, help_text, value in (
        ("relay_redis_used_memory_bytes", "Redis used_memory", memory.used_bytes),
        ("relay_redis_maxmemory_bytes", "Redis maxmemory (0: no limit)", memory.max_bytes),
    ):
        if value is not None:
            gauge = Metric(name, help_text, "gauge")
            gauge.add_sample(name, {}, value)
            yield gauge
