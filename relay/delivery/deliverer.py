"""Sending one webhook: sign, POST through the pooled HTTP client (http_client.py), describe
the result.

Every failure becomes part of the returned attempt (an `error` string without secrets), so
callers never see an HTTP exception. Unless private targets are allowed, the client only
connects to public addresses: it resolves names itself and keeps only public answers (which
also covers DNS rebinding, since the filtered answer is what gets connected to), and refuses
IP-literal URLs of refused addresses.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from dataclasses import dataclass

from prometheus_client import Counter

from relay import __version__
from relay.core.errors import InvalidInput
from relay.core.events import body_for, ping_event
from relay.core.headers import is_reserved_header
from relay.core.ids import new_id
from relay.core.models import Attempt, Event, Subscription
from relay.core.redaction import redact
from relay.core.retry import Outcome, classify
from relay.core.signing import webhook_headers
from relay.delivery.http_client import (
    ConnectFailed,
    Disconnected,
    HttpClient,
    HttpError,
    InvalidHeader,
    InvalidResponse,
    InvalidUrl,
    RefusedAddress,
)
from relay.observability.metrics import ATTEMPT_SECONDS, DELIVERIES
from relay.settings import Settings
from relay.store import Store

log = logging.getLogger("relay.delivery")

USER_AGENT = f"relay/{__version__}"
RESPONSE_BODY_LIMIT = 4096
# The dispatcher's global in-flight cap; see BENCHMARKS.md, "Figures behind design choices".
CONNECTION_LIMIT = 256


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """One attempt as recorded, what it means, and the subscriber's `Retry-After` if any."""

    attempt: Attempt
    outcome: Outcome
    retry_after: str | None = None


class Deliverer:
    """Holds the pooled HTTP client; `start()` before use and `close()` after."""

    def __init__(
        self, *, store: Store, settings: Settings, connection_limit: int = CONNECTION_LIMIT
    ) -> None:
        self._store = store
        self._settings = settings
        self._timeout_s = settings.delivery_timeout_s
        self._connection_limit = connection_limit
        self._client: HttpClient | None = None
        # DELIVERIES' child per (subscription, outcome); prometheus keeps each child anyway.
        self._counters: dict[tuple[str, Outcome], Counter] = {}

    async def start(self) -> None:
        # No per-host limit: isolation is per subscription (the dispatcher's slots), and many
        # subscriptions may share one host.
        self._client = HttpClient(
            limit=self._connection_limit, allow_private=self._settings.allow_private_targets
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def timeout_for(self, subscription: Subscription) -> float:
        """Seconds one POST to the subscription may take: its own `timeout_s` or the global."""
        return subscription.timeout_s or self._timeout_s

    async def ping(self, subscription: Subscription, *, now: float) -> Attempt:
        """Send a `relay.ping` event to this one subscription now, whatever its filters or
        enabled state; not retried; recorded in its attempts. Never raises on HTTP failure."""
        event = ping_event(subscription_id=subscription.id, now=now)
        result = await self.attempt(event, subscription, attempt_number=1, now=now)
        await self._store.attempts.record_many([result.attempt])
        return result.attempt

    async def attempt(
        self, event: Event, subscription: Subscription, *, attempt_number: int, now: float
    ) -> AttemptResult:
        """POST `event` to the subscription once; never raises on HTTP failure (the error is in
        the returned attempt). Does not record it."""
        started = time.perf_counter()
        status, body, retry_after, error = await self._post(event, subscription, now=now)
        duration_s = time.perf_counter() - started
        outcome = classify(status)
        attempt = Attempt(
            id=new_id("att"),
            event_id=event.id,
            subscription_id=subscription.id,
            attempt=attempt_number,
            at=now,
            status_code=status,
            error=redact(error) if error is not None else None,
            response_body=body,
            duration_ms=int(duration_s * 1000),
            outcome=outcome,
        )
        ATTEMPT_SECONDS.observe(duration_s)
        counter = self._counters.get((subscription.id, outcome))
        if counter is None:  # labels() takes a lock and builds a key: once per pair
            counter = self._counters[subscription.id, outcome] = DELIVERIES.labels(
                subscription.id, outcome.value
            )
        counter.inc()
        # Failures at info (an operator follows them); successes only at debug (the hot path).
        level = logging.DEBUG if outcome is Outcome.DELIVERED else logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level,
                "delivery attempt",
                extra={
                    "subscription_id": subscription.id,
                    "event_id": event.id,
                    "attempt": attempt_number,
                    "status": status,
                    "duration_ms": attempt.duration_ms,
                    "outcome": outcome.value,
                    "error": attempt.error,
                },
            )
        return AttemptResult(attempt=attempt, outcome=outcome, retry_after=retry_after)

    def headers_for(
        self, event: Event, subscription: Subscription, *, now: float, body: bytes | None = None
    ) -> dict[str, str]:
        """The request headers: the subscription's own first, then the signed webhook ones
        (over `body`, by default the event's body in the subscription's payload format)."""
        own = subscription.headers
        headers = {n: v for n, v in own.items() if not is_reserved_header(n)} if own else {}
        headers.update(
            webhook_headers(
                msg_id=event.id,
                timestamp=int(now),
                body=body_for(event, subscription.payload_format) if body is None else body,
                secrets=subscription.signing_secrets(now=now),
                user_agent=USER_AGENT,
            )
        )
        headers["accept-encoding"] = "identity"
        return headers

    async def _post(
        self, event: Event, subscription: Subscription, *, now: float
    ) -> tuple[int | None, str | None, str | None, str | None]:
        """(status, first 4 KiB of the body, Retry-After, error)."""
        if self._client is None:
            raise RuntimeError("Deliverer.start() was not called")
        payload = body_for(event, subscription.payload_format)
        try:
            headers = self.headers_for(event, subscription, now=now, body=payload)
        except InvalidInput as exc:  # no secret left to sign with, or a malformed one
            return None, None, None, f"cannot sign: {exc.detail}"
        timeout_s = self.timeout_for(subscription)
        try:
            response = await self._client.post(
                subscription.url,
                headers=headers,
                body=payload,
                timeout_s=timeout_s,
                body_limit=RESPONSE_BODY_LIMIT,
            )
        except TimeoutError:
            return None, None, None, f"timeout after {timeout_s:g} s"
        except (HttpError, OSError) as exc:
            return None, None, None, _describe(exc)
        body = response.body
        text = body.decode("utf-8", errors="replace") if body else None
        return response.status, text, response.retry_after, None


def _describe(exc: BaseException) -> str:
    """A short, secret-free description of why a request got no response."""
    if isinstance(exc, RefusedAddress):
        return str(exc)
    if isinstance(exc, ConnectFailed):
        cause = exc.os_error
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS error: {cause.verify_message or cause.reason}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or type(cause).__name__}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return f"DNS lookup failed for {exc.host}"
        return f"connection failed: {cause.strerror or type(cause).__name__}"
    if isinstance(exc, Disconnected):
        return "server disconnected without a response"
    if isinstance(exc, InvalidUrl):
        return "invalid URL"
    if isinstance(exc, InvalidHeader):
        return "invalid header"
    if isinstance(exc, InvalidResponse):
        return f"invalid response: {exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or type(exc).__name__}"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    return f"request failed: {type(exc).__name__}"
