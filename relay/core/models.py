"""The values relay passes around: sources, messages, events, subscriptions, attempts.

All frozen; built by the stores and the MC5 parser, never mutated. Times are epoch seconds
(`*_at: float`, `timestamp: int` for the upstream's whole seconds) unless named `_ms`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

SourceStatus = Literal["ok", "failing", "paused"]
MessageKind = Literal["incoming", "outgoing"]

MESSAGE_RECEIVED = "message.received"
MESSAGE_SENT = "message.sent"
RELAY_PING = "relay.ping"
EVENT_TYPES = (MESSAGE_RECEIVED, MESSAGE_SENT)


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


@dataclass(frozen=True, slots=True)
class Event:
    """One webhook event: `body` is the exact JSON sent, signed and stored."""

    id: str
    type: str
    source_id: str | None
    timestamp: int  # the message's own epoch second
    created_at_ms: int  # when relay recorded it; a subscription gets events created after it
    body: bytes


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

    def matches(self, event: Event) -> bool:
        """Whether `event` goes to this subscription by its type and source filters."""
        if self.event_types is not None and event.type not in self.event_types:
            return False
        return self.source_ids is None or event.source_id in self.source_ids

    def signing_secrets(self, *, now: float) -> tuple[str, ...]:
        """The secrets that sign now: the current one and any still in its overlap."""
        return tuple(s.value for s in self.secrets if s.expires_at is None or s.expires_at > now)


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
