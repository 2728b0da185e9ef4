"""Redis-backed stores. Only this package knows key names (see keys.py)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from relay.settings import Settings
from relay.store.api_keys import ApiKeyStore
from relay.store.attempts import AttemptLog
from relay.store.audit import AuditLog
from relay.store.auth_failures import AuthFailures
from relay.store.console_sessions import ConsoleSessionStore
from relay.store.dead_letters import DeadLetterStore
from relay.store.event_deliveries import EventDeliveries
from relay.store.events import EventStore
from relay.store.health import HealthStore
from relay.store.idempotency import IdempotencyStore
from relay.store.keys import Keys
from relay.store.limits import DeliveryLimiter
from relay.store.operator_events import OperatorEvents
from relay.store.retry_queue import RetryStates
from relay.store.sources import SourceStore
from relay.store.stream import DeliveryStream
from relay.store.subscriptions import SubscriptionStore
from relay.store.tenants import TenantStore


@dataclass(frozen=True, slots=True)
class Store:
    """Every store over one Redis client and key prefix."""

    redis: Redis
    keys: Keys
    sources: SourceStore
    events: EventStore
    stream: DeliveryStream
    retry_states: RetryStates
    subscriptions: SubscriptionStore
    attempts: AttemptLog
    dead_letters: DeadLetterStore
    console_sessions: ConsoleSessionStore
    idempotency: IdempotencyStore
    tenants: TenantStore
    api_keys: ApiKeyStore
    audit: AuditLog
    auth_failures: AuthFailures
    health: HealthStore
    operator_events: OperatorEvents
    event_deliveries: EventDeliveries
    limits: DeliveryLimiter

    @classmethod
    def create(cls, redis: Redis, settings: Settings) -> Store:
        keys = Keys(settings.key_prefix)
        return cls(
            redis=redis,
            keys=keys,
            sources=SourceStore(redis=redis, keys=keys),
            events=EventStore(redis=redis, keys=keys),
            stream=DeliveryStream(redis=redis, keys=keys),
            retry_states=RetryStates(redis=redis, keys=keys),
            subscriptions=SubscriptionStore(redis=redis, keys=keys),
            attempts=AttemptLog(redis=redis, keys=keys, kept=settings.attempts_kept),
            dead_letters=DeadLetterStore(
                redis=redis, keys=keys, retention_s=settings.event_retention_s
            ),
            console_sessions=ConsoleSessionStore(redis=redis, keys=keys),
            idempotency=IdempotencyStore(redis=redis, keys=keys),
            tenants=TenantStore(redis=redis, keys=keys),
            api_keys=ApiKeyStore(redis=redis, keys=keys),
            audit=AuditLog(redis=redis, keys=keys),
            auth_failures=AuthFailures(redis=redis, keys=keys),
            health=HealthStore(redis=redis, keys=keys),
            operator_events=OperatorEvents(
                redis=redis,
                keys=keys,
                retention_s=settings.event_retention_s,
                is_enabled=settings.operator_webhook_url is not None,
            ),
            event_deliveries=EventDeliveries(redis=redis, keys=keys),
            limits=DeliveryLimiter(redis=redis, keys=keys),
        )
