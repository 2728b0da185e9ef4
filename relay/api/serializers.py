"""JSON shapes of the API's resources (documented in openapi.yaml). Never a password or secret,
except `subscription_created` (the 201 of create) and the secret routes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from relay.admin.secrets import Rotation, current_secret
from relay.core.events import rfc3339
from relay.core.health import SubscriptionHealth
from relay.core.models import (
    ApiKey,
    Attempt,
    AuditEntry,
    DeadLetter,
    Event,
    EventDelivery,
    Listing,
    Source,
    Subscription,
    Tenant,
)

T = TypeVar("T")


def _time(epoch_s: float | None) -> str | None:
    return None if epoch_s is None else rfc3339(epoch_s)


def listing(page: Listing[T], render: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    """`{"data": [...], "next_cursor": ...}`."""
    return {"data": [render(item) for item in page.items], "next_cursor": page.next_cursor}


def items(values: Iterable[T], render: Callable[[T], dict[str, Any]]) -> list[dict[str, Any]]:
    return [render(value) for value in values]


def source(value: Source) -> dict[str, Any]:
    return {
        "id": value.id,
        "username": value.username,
        "base_url": value.base_url,
        "poll_interval": value.poll_interval_s,
        "cursor": value.cursor,
        "status": value.status,
        "last_polled_at": _time(value.last_polled_at),
        "last_error": value.last_error,
        "created_at": rfc3339(value.created_at),
        "tenant_id": value.tenant_id,
    }


def subscription(value: Subscription, health: SubscriptionHealth | None = None) -> dict[str, Any]:
    body = {
        "id": value.id,
        "url": value.url,
        "event_types": None if value.event_types is None else list(value.event_types),
        "source_ids": None if value.source_ids is None else list(value.source_ids),
        "description": value.description,
        "headers": dict(value.headers),
        "enabled": value.enabled,
        "disabled_reason": value.disabled_reason,
        "payload_format": value.payload_format,
        "created_at": rfc3339(value.created_at),
        "tenant_id": value.tenant_id,
        "secrets": _active_secrets(value),
        "match": None if value.match is None else value.match.as_dict(),
        "rate_limit_per_s": value.rate_limit_per_s,
        "timeout_s": value.timeout_s,
        "concurrency": value.concurrency,
    }
    if health is not None:
        body["health"] = subscription_health(health)
    return body


def subscription_health(value: SubscriptionHealth) -> dict[str, Any]:
    return {
        "state": value.state,
        "success_rate_1h": value.success_rate_1h,
        "last_success_at": _time(value.last_success_at),
        "failing_since": _time(value.failing_since),
        "last_error": value.last_error,
        "queued_retries": value.queued_retries,
        "dead_letters": value.dead_letters,
    }


def _active_secrets(value: Subscription) -> list[dict[str, Any]]:
    """Each secret that signs now, newest first, by its end (never its value)."""
    now = time.time()
    return [
        {"expires_at": _time(s.expires_at)}
        for s in value.secrets
        if s.expires_at is None or s.expires_at > now
    ]


def subscription_created(
    value: Subscription, health: SubscriptionHealth | None = None
) -> dict[str, Any]:
    return {**subscription(value, health), "secret": current_secret(value)}


def rotation(value: Rotation) -> dict[str, Any]:
    return {
        "secret": current_secret(value.subscription),
        "previous_expires_at": rfc3339(value.previous_expires_at),
    }


def attempt(value: Attempt) -> dict[str, Any]:
    return {
        "id": value.id,
        "event_id": value.event_id,
        "attempt": value.attempt,
        "at": rfc3339(value.at),
        "status_code": value.status_code,
        "error": value.error,
        "response_body": value.response_body,
        "duration_ms": value.duration_ms,
    }


def event_attempt(value: Attempt) -> dict[str, Any]:
    """An attempt in an event's list: the subscription's log shape plus `subscription_id`."""
    return {**attempt(value), "subscription_id": value.subscription_id}


def event_delivery(value: EventDelivery) -> dict[str, Any]:
    return {
        "subscription_id": value.subscription_id,
        "url": value.url,
        "state": value.state,
        "attempts": value.attempts,
        "last_status_code": value.last_status_code,
        "last_attempt_at": _time(value.last_attempt_at),
        "next_attempt_at": _time(value.next_attempt_at),
    }


def event(value: Event) -> dict[str, Any]:
    return {
        "id": value.id,
        "type": value.type,
        "source_id": value.source_id,
        "timestamp": value.timestamp,
        "created_at": rfc3339(value.created_at_ms / 1000),
        "payload": json.loads(value.body),
    }


def dead_letter(value: DeadLetter) -> dict[str, Any]:
    return {
        "id": value.id,
        "event_id": value.event_id,
        "subscription_id": value.subscription_id,
        "attempts": value.attempts,
        "last_error": value.last_error,
        "last_status_code": value.last_status_code,
        "failed_at": rfc3339(value.failed_at),
    }


def tenant(value: Tenant) -> dict[str, Any]:
    return {"id": value.id, "name": value.name, "created_at": rfc3339(value.created_at)}


def api_key(value: ApiKey) -> dict[str, Any]:
    """A key's record: never the key itself nor its digest."""
    return {
        "id": value.id,
        "name": value.name,
        "scopes": list(value.scopes),
        "tenant_id": value.tenant_id,
        "created_at": rfc3339(value.created_at),
        "expires_at": _time(value.expires_at),
        "last_used_at": _time(value.last_used_at),
    }


def audit_entry(value: AuditEntry) -> dict[str, Any]:
    return {
        "id": value.id,
        "at": rfc3339(value.at),
        "actor": value.actor,
        "action": value.action,
        "resource_id": value.resource_id,
        "tenant_id": value.tenant_id,
    }
