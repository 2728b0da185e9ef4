"""The RelayError tree. Library errors are translated into these at the boundary; the API
maps them to problem+json in one place (relay.web.problems).

RelayError
├── ConfigError            a setting is missing or invalid (names the variable)
├── RedisUnavailable       Redis did not answer
├── NotFound               an admin resource does not exist
├── Conflict               the request conflicts with current state
├── InvalidInput           a value failed validation (field and reason)
│   ├── UnsafeTarget       a subscriber URL points at a refused address
│   ├── FieldErrors        several fields failed at once (relay.web.problems)
│   └── MalformedBody      a simulator control request is not usable (relay.simulator)
├── RequestProblem         an HTTP-level rejection: bad JSON, media type, size (relay.web.problems)
├── SignatureError         a webhook's signature or timestamp did not verify
├── UpstreamError          the MC5 API could not be used
│   ├── UpstreamTransportError   HTTP error, timeout, HTML or invalid JSON: back off and retry
│   └── UpstreamStatusError      a non-zero MC5 `status` (see relay.core.mc5)
├── SourceLockLost         a poller no longer holds a source's lock (relay.store.ingest)
└── RefusedAddress         a subscriber's host resolves only to refused addresses; also an
                           OSError, so the HTTP client reports it as a connection failure
                           (relay.delivery.deliverer)

A failed webhook POST is not an exception: it is an attempt with an error (relay.delivery).
"""

from __future__ import annotations


class RelayError(Exception):
    """Base of every error relay raises on purpose."""


class ConfigError(RelayError):
    """A setting is missing or invalid; the message names the variable."""


class RedisUnavailable(RelayError):
    """Redis did not answer."""


class NotFound(RelayError):
    """An admin resource does not exist."""


class Conflict(RelayError):
    """The request conflicts with the current state of a resource."""


class InvalidInput(RelayError):
    """A value failed validation."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class UnsafeTarget(InvalidInput):
    """A subscriber URL resolves to a loopback, private, link-local or metadata address."""


class SignatureError(RelayError):
    """A webhook's headers are missing, its timestamp is outside the tolerance, or no
    signature matches."""


class UpstreamError(RelayError):
    """The MC5 API could not be used."""


class UpstreamTransportError(UpstreamError):
    """HTTP error, timeout, connection failure, HTML page or invalid JSON from the upstream."""


class UpstreamStatusError(UpstreamError):
    """The upstream answered with a non-zero MC5 `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
