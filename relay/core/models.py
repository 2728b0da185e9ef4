"""The values relay passes around: sources, messages, events, subscriptions, attempts.

All frozen; built by the stores and the MC5 parser, never mutated. Times are epoch seconds
(`*_at: float`, `timestamp: int` for the upstream's whole seconds) unless named `_ms`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from relay.core.retry import Outcome, classify
from relay.core.sms_match import SmsMatch

T = TypeVar("T")

SourceStatus = Literal["ok", "failing", "paused"]
MessageKind = Literal["incoming", "outgoing"]

MESSAGE_RECEIVED = "message.received"
MESSAGE_SENT = "message.sent"
RELAY_PING = "relay.ping"
EVENT_TYPES = (MESSAGE_RECEIVED, MESSAGE_SENT)
PAYLOAD_STANDARD = "standard"
PAYLOAD_FLAT = "flat"
PAYLOAD_FORMATS = (PAYLOAD_STANDARD, PAYLOAD_FLAT)


@dataclass(frozen=True, slots=True)
class Source:
    """One MC5 account the poller reads."""

    id: str
    username: str
    password: str = field(repr=False)  # kept out of reprs, logs and tracebacks
    base_url: str
    poll_interval_s: float
    cursor: int
    status: SourceStatus
    created_at: float
    last_polled_at: float | None = None
    last_error: str | None = None
    next_poll_at: float = 0.0
    failures: int = 0
    tenant_id: str | None = None  # None: the operator's own
    failing_since: float | None = None  # first failed poll of the current streak (if failing)


@dataclass(frozen=True, slots=True)
class Message:
    """One upstream SMS, with every field kept as the upstream sent it (numbers as strings)."""

    kind: MessageKind
    document_id: str
    timestamp: int
    text: str | None = None
    sender: str | None = None  # the upstream's `from`; outgoing messages have none
    recipient: str | None = None
    origin_document_id: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One parsed `allMessages` response with status 0, messages oldest first."""

    messages: tuple[Message, ...]
    newest_timestamp: int | None  # None when missing or 0 (quirk 6)
    has_more: bool | None  # None when the field is missing (quirk 5)
    rejected: tuple[str, ...] = ()  # why each unreadable message was left out (relay.core.mc5)


@dataclass(frozen=True, slots=True)
class Event:
    """One webhook event: `body` is the exact JSON sent, signed and stored."""

    id: str
    type: str
    source_id: str | None
    timestamp: int  # the message's own epoch second
    created_at_ms: int  # when relay recorded it; a subscription gets events created after it
    body: bytes
    tenant_id: str | None = None  # its source's tenant, recorded at ingest


@dataclass(frozen=True, slots=True)
class Secret:
    """A signing secret (`whsec_...`); `expires_at` is set on a rotated-out secret."""

    value: str = field(repr=False)
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscriber URL with its filters, custom headers and signing secrets (newest first)."""

    id: str
    url: str
    secrets: tuple[Secret, ...]
    created_at: float
    event_types: tuple[str, ...] | None = None  # None: every type
    source_ids: tuple[str, ...] | None = None  # None: every source
    description: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True
    disabled_reason: str | None = None
    payload_format: str = PAYLOAD_STANDARD  # one of PAYLOAD_FORMATS
    tenant_id: str | None = None  # None: the operator's own
    match: SmsMatch | None = None  # None: every message
    # Delivery control (relay/core/limits.py); None: the global settings.
    rate_limit_per_s: float | None = None  # deliveries started per second, shared by all
    timeout_s: float | None = None  # one POST, connect to last byte
    concurrency: int | None = None  # deliveries in flight at once, shared by all

    @property
    def has_shared_limits(self) -> bool:
        """Whether its deliveries must ask the shared limiter first (a Redis round trip)."""
        return self.rate_limit_per_s is not None or self.concurrency is not None

    def matches(self, event: Event) -> bool:
        """Whether `event` goes to this subscription by its type, source, tenant and SMS
        filters: a tenant's subscription never gets another tenant's (or the operator's)
        events, even with no source filter. The SMS filter, the only one that reads the
        body, comes last."""
        if self.event_types is not None and event.type not in self.event_types:
            return False
        if self.tenant_id is not None and event.tenant_id != self.tenant_id:
            return False
        if self.source_ids is not None and event.source_id not in self.source_ids:
            return False
        return self.match is None or self.match.matches(event.body)

    def predates(self, event: Event) -> bool:
        """Whether the subscription existed when `event` was recorded, so it gets the event
        live (older events only by replay). Both sides in whole milliseconds, truncated the
        same way, so one made in the event's own millisecond counts as existing."""
        return int(self.created_at * 1000) <= event.created_at_ms

    def signing_secrets(self, *, now: float) -> tuple[str, ...]:
        """The secrets that sign now: the current one and any still in its overlap."""
        secrets = self.secrets
        if len(secrets) == 1 and secrets[0].expires_at is None:  # most, on every delivery
            return (secrets[0].value,)
        return tuple(s.value for s in secrets if s.expires_at is None or s.expires_at > now)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt as recorded in a subscription's log."""

    id: str
    event_id: str
    subscription_id: str
    attempt: int
    at: float
    status_code: int | None
    error: str | None
    response_body: str | None
    duration_ms: int
    outcome: Outcome | None = None  # None: from the status code (`classify`); always set after

    def __post_init__(self) -> None:
        if self.outcome is None:
            object.__setattr__(self, "outcome", classify(self.status_code))

    @property
    def is_delivered(self) -> bool:
        """The subscriber answered 2xx."""
        return self.outcome is Outcome.DELIVERED

    @property
    def was_sent(self) -> bool:
        """A request went out (not dropped before sending)."""
        return self.outcome is not Outcome.DROPPED


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery that used up the retry schedule."""

    id: str
    event_id: str
    subscription_id: str
    attempts: int
    last_error: str | None
    last_status_code: int | None
    failed_at: float
    last_response: str | None = None  # the last answer's body (first 4 KiB), for the console


@dataclass(frozen=True, slots=True)
class Listing(Generic[T]):
    """One page of a newest-first list and the cursor of the next page (None at the end)."""

    items: tuple[T, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class MinuteCounts:
    """Attempts that started in one epoch minute: all of them, and per subscription asked."""

    minute: int
    ok: int
    failed: int
    by_subscription: dict[str, tuple[int, int]]  # id -> (ok, failed)


@dataclass(frozen=True, slots=True)
class QueueDepths:
    stream_backlog: int  # entries not yet read by any dispatcher
    stream_pending: int  # entries read but not yet settled
    retry_ready: int  # retries due now, waiting for a worker
    retry_scheduled: int  # retries waiting for their time
    dead_letters: int
    retry_running: int = 0  # retries a worker is running now
    retry_failed: int = 0  # retry jobs that crashed (RQ's failed registry; not dead letters)
    retry_rate_limited: int = 0  # retries due but held back: their subscription's drain is busy


@dataclass(frozen=True, slots=True)
class RolePresence:
    """One role's instances: how many are live and how long ago the newest one beat."""

    instances: int  # live: heartbeat within the stale threshold
    stale_instances: int  # seen lately but silent since (crashed, or hung)
    last_seen_s: float  # seconds since the newest heartbeat of any instance

    @property
    def is_down(self) -> bool:
        """Every instance went silent without a clean stop."""
        return self.instances == 0


@dataclass(frozen=True, slots=True)
class Heartbeat:
    role: str
    instance: str
    at: float
    metrics: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A logged-in console session: its cookie value and its CSRF token."""

    id: str
    csrf_token: str
    logged_in_at: float
    key_id: str | None = None  # the API key logged in with; None: an env admin token


@dataclass(frozen=True, slots=True)
class Tenant:
    """One customer of the operator; owns sources and subscriptions."""

    id: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A scoped API key as stored: never the key itself, only its SHA-256 `digest`."""

    id: str
    name: str
    scopes: tuple[str, ...]
    tenant_id: str | None
    created_at: float
    expires_at: float | None = None
    last_used_at: float | None = None
    digest: str = field(default="", repr=False)

    def is_expired(self, *, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change made through the API or the console (never a secret)."""

    id: str
    at: float
    actor: str  # "env" or a key id
    action: str  # "subscription.create", "secret.rotate", "key.revoke", ...
    resource_id: str | None
    tenant_id: str | None


@dataclass(frozen=True, slots=True)
class EventDelivery:
    """One subscription's delivery of an event, as `GET /v1/events/{id}/deliveries` shows it."""

    subscription_id: str
    url: str
    state: str  # "delivered" | "pending" | "retrying" | "dead" | "dropped"
    attempts: int
    last_status_code: int | None
    last_attempt_at: float | None
    next_attempt_at: float | None
