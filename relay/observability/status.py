"""What `relay status` shows: the relay's state read straight from Redis, as plain values.

Redis itself (eviction policy, memory, out of memory), sources (cursor, lag, last error),
subscriptions (enabled, recent success rate, queued
retries, dead letters), queue depths and the role instances seen lately. Nothing secret is
included: source passwords and subscription secrets are never read into it, and subscription
URLs are shown without a password or query values (`display_url`).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Any

from relay.core.models import QueueDepths, RolePresence, Source
from relay.core.redaction import display_url, redact
from relay.observability.telemetry import STALE_AFTER_S
from relay.store import Store
from relay.store.heartbeats import role_presence
from relay.store.locks import poller_lateness
from relay.store.server import RedisMemory, read_memory
from relay.store.stats import queue_depths, queued_retries_by_subscription

POLLER_TTL_S = 15.0  # a poller silent this long is gone (relay.ingest.poller.LOCK_TTL_S)
RECENT_ATTEMPTS = 100  # the success rate covers each subscription's last this many attempts
_PAGE = 100


@dataclass(frozen=True, slots=True)
class SourceState:
    id: str
    username: str
    base_url: str
    status: str  # ok | failing | paused
    cursor: int  # epoch s of the newest message recorded (where the next poll starts)
    cursor_lag_s: float  # now - cursor: grows while the source is idle or not polled
    last_polled_ago_s: float | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    id: str
    url: str  # display_url: no password, no query values
    enabled: bool
    disabled_reason: str | None
    recent_attempts: int  # of the last RECENT_ATTEMPTS, leaving out drops (never sent)
    recent_delivered: int
    success_rate: float | None  # recent_delivered / recent_attempts; None without attempts
    last_attempt_ago_s: float | None
    queued_retries: int  # scheduled, due or running in the retry queue
    dead_letters: int


@dataclass(frozen=True, slots=True)
class RelayStatus:
    at: float
    key_prefix: str
    redis: RedisMemory
    roles: dict[str, RolePresence]
    queues: QueueDepths
    sources: list[SourceState]
    subscriptions: list[SubscriptionState]
    poll_lateness_p99_s: dict[str, float] = dataclasses.field(default_factory=dict)  # by poller

    @property
    def roles_down(self) -> list[str]:
        """Roles whose every instance went silent (see relay.api.health); none while Redis is
        out of memory, when no role can write its heartbeat."""
        if self.redis.is_out_of_memory:
            return []
        return [name for name, presence in self.roles.items() if presence.is_down]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, with the same field names as the dataclasses (`relay status --json`)."""
        return {
            "at": self.at,
            "key_prefix": self.key_prefix,
            "redis": {**dataclasses.asdict(self.redis), "is_evicting": self.redis.is_evicting},
            "roles": {name: dataclasses.asdict(p) for name, p in self.roles.items()},
            "roles_down": self.roles_down,
            "queues": dataclasses.asdict(self.queues),
            "sources": [dataclasses.asdict(s) for s in self.sources],
            "subscriptions": [dataclasses.asdict(s) for s in self.subscriptions],
            "poll_lateness_p99_s": self.poll_lateness_p99_s,
        }


async def gather_status(store: Store, *, now: float) -> RelayStatus:
    """Read the relay's state under the store's key prefix; raises RedisError if Redis fails."""
    memory = await read_memory(store.redis, store.keys)
    roles = await role_presence(store.redis, store.keys, now=now, stale_after_s=STALE_AFTER_S)
    depths = await queue_depths(store.redis, store.keys)
    sources = [
        SourceState(
            id=source.id,
            username=source.username,
            base_url=display_url(source.base_url),
            status=source.status,
            cursor=source.cursor,
            cursor_lag_s=_age(now, float(source.cursor)) or 0.0,
            last_polled_ago_s=_age(now, source.last_polled_at),
            last_error=redact(source.last_error) if source.last_error else None,
        )
        for source in await _all_sources(store)
    ]
    retries = await queued_retries_by_subscription(store.redis, store.keys)
    dead = await _dead_letters_by_subscription(store)
    subscriptions = []
    for subscription in await store.subscriptions.all():
        listing = await store.attempts.page(subscription.id, limit=RECENT_ATTEMPTS, cursor=None)
        sent = [a for a in listing.items if a.was_sent]
        delivered = sum(1 for a in sent if a.is_delivered)
        subscriptions.append(
            SubscriptionState(
                id=subscription.id,
                url=display_url(subscription.url),
                enabled=subscription.enabled,
                disabled_reason=subscription.disabled_reason,
                recent_attempts=len(sent),
                recent_delivered=delivered,
                success_rate=round(delivered / len(sent), 4) if sent else None,
                last_attempt_ago_s=_age(now, max((a.at for a in listing.items), default=None)),
                queued_retries=retries.get(subscription.id, 0),
                dead_letters=dead.get(subscription.id, 0),
            )
        )
    return RelayStatus(
        at=now,
        key_prefix=store.keys.prefix,
        redis=memory,
        roles=roles,
        queues=depths,
        sources=sources,
        subscriptions=subscriptions,
        poll_lateness_p99_s=await poller_lateness(
            store.redis, store.keys, now=now, ttl_s=POLLER_TTL_S
        ),
    )


async def _all_sources(store: Store) -> list[Source]:
    found: list[Source] = []
    cursor: str | None = None
    while True:
        listing = await store.sources.page(limit=_PAGE, cursor=cursor)
        found.extend(listing.items)
        cursor = listing.next_cursor
        if cursor is None:
            return found


async def _dead_letters_by_subscription(store: Store) -> dict[str, int]:
    counts: Counter[str] = Counter()
    cursor: str | None = None
    while True:
        listing = await store.dead_letters.page(limit=_PAGE, cursor=cursor)
        counts.update(dead.subscription_id for dead in listing.items)
        cursor = listing.next_cursor
        if cursor is None:
            return dict(counts)


def _age(now: float, at: float | None) -> float | None:
    return None if at is None else round(max(0.0, now - at), 1)
