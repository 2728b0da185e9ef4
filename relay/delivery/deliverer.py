"""Sending one webhook: sign, POST through one pooled aiohttp session, describe the result.

Every failure becomes part of the returned attempt (an `error` string without secrets), so
callers never see an HTTP exception. Unless private targets are allowed, the connector only
connects to public addresses: names are resolved through `PublicOnlyResolver` (which also
covers DNS rebinding, since the filtered answer is what gets connected to) and IP-literal URLs
are checked before sending.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import math
import socket
import ssl
import time
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from relay import __version__
from relay.core.errors import InvalidInput, RelayError
from relay.core.events import body_for, ping_event
from relay.core.headers import is_reserved_header
from relay.core.ids import new_id
from relay.core.models import Attempt, Event, Subscription
from relay.core.redaction import redact
from relay.core.retry import Outcome, classify
from relay.core.signing import webhook_headers
from relay.core.urls import is_public_address
from relay.observability.metrics import ATTEMPT_SECONDS, DELIVERIES
from relay.settings import Settings
from relay.store import Store

log = logging.getLogger("relay.delivery")

USER_AGENT = f"relay/{__version__}"
RESPONSE_BODY_LIMIT = 4096
# The dispatcher's global in-flight cap; see BENCHMARKS.md, "Figures behind design choices".
CONNECTION_LIMIT = 256


class RefusedAddress(RelayError, OSError):
    """The target resolves only to addresses relay may not connect to."""


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """One attempt as recorded, what it means, and the subscriber's `Retry-After` if any."""

    attempt: Attempt
    outcome: Outcome
    retry_after: str | None = None


class PublicOnlyResolver(AbstractResolver):
    """Resolves like `inner` but keeps only public addresses; refuses a name with none."""

    def __init__(self, inner: AbstractResolver) -> None:
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [r for r in found if _is_public(r["host"])]
        if not public:
            raise RefusedAddress(f"refused: {host} resolves only to non-public addresses")
        return public

    async def close(self) -> None:
        await self._inner.close()


class Deliverer:
    """Holds the pooled HTTP client; `start()` before use and `close()` after."""

    def __init__(
        self, *, store: Store, settings: Settings, connection_limit: int = CONNECTION_LIMIT
    ) -> None:
        self._store = store
        self._settings = settings
        self._timeout_s = settings.delivery_timeout_s
        self._connection_limit = connection_limit
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        resolver: AbstractResolver = aiohttp.DefaultResolver()
        if not self._settings.allow_private_targets:
            resolver = PublicOnlyResolver(resolver)
        # No per-host limit: isolation is per subscription (the dispatcher's slots), and many
        # subscriptions may share one host.
        connector = aiohttp.TCPConnector(
            limit=self._connection_limit, limit_per_host=0, resolver=resolver
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # None here: each POST passes its subscription's timeout (_request_timeout).
            timeout=aiohttp.ClientTimeout(),
            auto_decompress=False,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

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
        DELIVERIES.labels(subscription.id, outcome.value).inc()
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
        if self._session is None:
            raise RuntimeError("Deliverer.start() was not called")
        refusal = self._refuse_ip_literal(subscription.url)
        if refusal is not None:
            return None, None, None, refusal
        payload = body_for(event, subscription.payload_format)
        try:
            headers = self.headers_for(event, subscription, now=now, body=payload)
        except InvalidInput as exc:  # no secret left to sign with, or a malformed one
            return None, None, None, f"cannot sign: {exc.detail}"
        timeout_s = self.timeout_for(subscription)
        deadline = asyncio.get_running_loop().time() + timeout_s
        try:
            response = await self._session.post(
                subscription.url,
                data=payload,
                headers=headers,
                allow_redirects=False,
                timeout=_request_timeout(timeout_s),
            )
        except TimeoutError:  # aiohttp's ServerTimeoutError and ConnectionTimeoutError too
            return None, None, None, f"timeout after {timeout_s:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return None, None, None, _describe(exc)
        try:
            # Most answers have no body (or it has arrived with the headers): no timed read.
            if response.content.at_eof():
                body = b""
            else:
                body = await _read_capped(response, deadline=deadline)
        finally:
            if response.content.at_eof():
                response.release()
            else:  # an endless or large body: drop the connection rather than drain it
                response.close()
        text = body.decode("utf-8", errors="replace") if body else None
        return response.status, text, response.headers.get("retry-after"), None

    def _refuse_ip_literal(self, url: str) -> str | None:
        return None if self._settings.allow_private_targets else _ip_literal_refusal(url)


@functools.lru_cache(maxsize=256)
def _request_timeout(timeout_s: float) -> aiohttp.ClientTimeout:
    """One POST's deadline, as aiohttp's total timeout: connecting, sending, the headers and
    the body read (_read_capped stops at the same deadline). One timer per request, never
    rounded up to a whole second (aiohttp ceils timeouts of 5 s and more by default)."""
    return aiohttp.ClientTimeout(total=timeout_s, ceil_threshold=math.inf)


@functools.lru_cache(maxsize=4096)  # asked per delivery, of a few distinct URLs
def _ip_literal_refusal(url: str) -> str | None:
    """Why a URL whose host is a non-public IP literal is refused; None for any other URL
    (a name: the resolver filters its addresses)."""
    try:
        host = URL(url).host or ""
    except (ValueError, TypeError):
        return "invalid URL"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return None if _is_public(host) else f"refused: {host} is not a public address"


async def _read_capped(response: aiohttp.ClientResponse, *, deadline: float) -> bytes:
    """At most RESPONSE_BODY_LIMIT bytes of the body, stopping at the deadline; the status
    already decides the outcome, so a slow body only shortens what is kept."""
    body = bytearray()
    try:
        async with asyncio.timeout_at(deadline):
            while len(body) < RESPONSE_BODY_LIMIT:
                chunk = await response.content.read(RESPONSE_BODY_LIMIT - len(body))
                if not chunk:
                    break
                body += chunk
    except (TimeoutError, aiohttp.ClientError, OSError):
        pass
    return bytes(body)


def _is_public(host: str) -> bool:
    try:
        return is_public_address(host)
    except ValueError:
        return False


def _describe(exc: BaseException) -> str:
    """A short, secret-free description of why a request got no response."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS error: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS error: {exc.os_error}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(cause, RefusedAddress):
            return str(cause)
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror) or isinstance(exc, aiohttp.ClientConnectorDNSError):
            return f"DNS lookup failed for {exc.host}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause}"
        return f"connection failed: {cause.strerror or type(cause).__name__}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected without a response"
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return "invalid URL"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"invalid response: {exc.message}"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    return f"request failed: {type(exc).__name__}"
