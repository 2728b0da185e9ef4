"""The HTTP/1.1 client webhooks are POSTed with: pooled keep-alive connections, one request at a
time on each, responses parsed by httptools (llhttp, uvicorn's parser).

Why not aiohttp's ClientSession: a delivery is one small POST whose answer decides the
outcome, and aiohttp's general machinery (request and response objects, multidict headers,
payload registry, stream readers, per-request timers) cost 125-142 us of CPU per request on
the bench machine against 22-25 us here, most of a dispatcher's time (BENCHMARKS.md, "HTTP
client"). What it does: http and https (verified against the system's CAs), a total deadline
per request (connect, send, status and headers, body), at most `body_limit` bytes of a
response body kept (a longer one closes the connection unread), public addresses only unless
allowed (names are resolved here, so a DNS answer cannot point a saved name at a refused
address), and at most `limit` requests in flight. What it leaves out, on purpose: redirects
(never followed), proxies, cookies, compression (it asks for `identity`), HTTP/2.

A pooled connection the server closed while it sat idle fails the next request before any
answer; that request is sent once more on a new connection (as aiohttp does): at least once,
with the same webhook-id, never lost.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ipaddress
import itertools
import socket
import ssl
from asyncio import staggered
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

from relay.core.errors import RelayError
from relay.core.urls import is_public_address

KEEPALIVE_S = 15.0  # an idle pooled connection is closed after this long (aiohttp's default)
HAPPY_EYEBALLS_DELAY_S = 0.25  # between connection attempts to a name's addresses (RFC 8305)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class HttpError(Exception):
    """A request that got no usable response."""


class InvalidUrl(HttpError, ValueError):
    """Not an http(s) URL with a host."""


class InvalidHeader(HttpError, ValueError):
    """A header name or value that would break the request (a line break in it)."""


class RefusedAddress(RelayError, HttpError, OSError):
    """The target resolves only to addresses relay may not connect to."""


class ConnectFailed(HttpError):
    """No connection: DNS, refused, unreachable or TLS; the cause is `os_error`."""

    def __init__(self, host: str, os_error: OSError) -> None:
        super().__init__(f"connecting to {host} failed")
        self.host = host
        self.os_error = os_error


class Disconnected(HttpError):
    """The server closed the connection before a complete status line and headers."""


class InvalidResponse(HttpError):
    """The server's answer is not HTTP/1.x."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes  # at most the request's body_limit bytes: what arrived by the deadline
    retry_after: str | None


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL's request goes."""

    host: str  # to resolve and connect to (an IPv6 literal without brackets)
    port: int
    tls: bool
    head: str  # the request line and Host header
    is_ip: bool
    key: tuple[str, int, bool]  # the pool's: host, port, tls


@functools.lru_cache(maxsize=65536)  # asked per request: one entry per URL in use (~300 B)
def parse_target(url: str) -> Target:
    if any(c <= " " or c == "\x7f" for c in url):  # would break the request line
        raise InvalidUrl("invalid URL")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise InvalidUrl("invalid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        raise InvalidUrl("invalid URL")
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = False
    try:
        ascii_host = host if is_ip else host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidUrl("invalid URL") from None
    default = _DEFAULT_PORTS[scheme]
    port = default if port is None else port
    named = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    host_header = named if port == default else f"{named}:{port}"
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    tls = scheme == "https"
    head = f"POST {path} HTTP/1.1\r\nhost: {host_header}\r\n"
    return Target(ascii_host, port, tls, head, is_ip, (ascii_host, port, tls))


def request_bytes(target: Target, headers: Mapping[str, str], body: bytes) -> bytes:
    """The whole request: line, headers, body."""
    text = (
        target.head
        + f"content-length: {len(body)}\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        + "\r\n"
    )
    if text.count("\n") != len(headers) + 4 or text.count("\r") != len(headers) + 4:
        raise InvalidHeader("a header name or value contains a line break")
    return text.encode("utf-8") + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection; `request` sends one request and reads its response."""

    def __init__(self, pool: HttpClient, key: tuple[str, int, bool]) -> None:
        self._pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._done: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._status: int | None = None
        self._informational = False
        self._retry_after: str | None = None
        self._body = bytearray()
        self._body_limit = 0
        self._received = False  # any byte of this request's answer
        self._reusable = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._done is None or self._done.done():  # nothing asked: a confused server
            self.close()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish()
        except httptools.HttpParserError as exc:
            self._fail(InvalidResponse(str(exc) or type(exc).__name__))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool._forget(self)
        if self._done is None or self._done.done():
            return
        if self._status is not None and not self._informational:
            self._finish()  # the status decides; the body is what arrived
        elif exc is None:
            self._fail(Disconnected("server disconnected without a response"))
        else:
            self._fail(exc)

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._status = None
        self._informational = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 11 and name.lower() == b"retry-after":
            self._retry_after = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = status = self._parser.get_status_code()
        self._informational = 100 <= status < 200 and status != 101

    def on_body(self, body: bytes) -> None:
        if self._informational or self._done is None or self._done.done():
            return
        room = self._body_limit - len(self._body)
        self._body += body[:room]
        if len(body) > room:  # the rest is not read: the connection cannot be reused
            self._finish()

    def on_message_complete(self) -> None:
        if self._informational:  # 100 Continue and the like: the answer follows
            self._informational = False
            self._status = None
            return
        self._reusable = self._parser.should_keep_alive()
        self._finish()

    # requests

    async def request(self, data: bytes, *, deadline: float, body_limit: int) -> Response:
        assert self.transport is not None
        loop = self._pool.loop
        self._done = done = loop.create_future()
        self._status = self._retry_after = None
        self._body = bytearray()
        self._body_limit = body_limit
        self._received = self._reusable = self._informational = False
        self._timer = loop.call_at(deadline, self._on_deadline)
        self.transport.write(data)
        try:
            await done
        finally:
            self._timer.cancel()
            if not self._reusable:
                self.close()
        assert self._status is not None
        return Response(self._status, bytes(self._body), self._retry_after)

    @property
    def received_nothing(self) -> bool:
        """No byte of the last request's answer arrived (a stale pooled connection)."""
        return not self._received

    def close(self) -> None:
        self._reusable = False
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _on_deadline(self) -> None:
        if self._status is not None and not self._informational:
            self._finish()  # status and headers in time: a slow body is cut, not an error
        else:
            self._fail(TimeoutError())

    def _finish(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        self._reusable = False
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)


class HttpClient:
    """Pooled connections by (host, port, tls); create it inside the event loop it serves."""

    def __init__(
        self,
        *,
        limit: int,
        allow_private: bool,
        keepalive_s: float = KEEPALIVE_S,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`tls`: how https targets are verified; by default against the system's CAs."""
        self.loop = asyncio.get_running_loop()
        self._limit = limit
        self._allow_private = allow_private
        self._keepalive_s = keepalive_s
        self._in_flight = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._idle: dict[tuple[str, int, bool], list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._tls = tls

    async def post(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes,
        timeout_s: float,
        body_limit: int,
    ) -> Response:
        """POST `body`; the response once the status, headers and body (up to `body_limit`
        bytes, or what arrived by the deadline) are in. Raises TimeoutError when no status
        came within `timeout_s`, an HttpError otherwise."""
        target = parse_target(url)
        data = request_bytes(target, headers, body)
        deadline = self.loop.time() + timeout_s
        await self._take_slot(deadline)
        try:
            connection = self._pooled(target.key)
            if connection is not None:
                try:
                    return await self._send(connection, data, deadline, body_limit)
                except (Disconnected, ConnectionError):
                    if not connection.received_nothing:
                        raise
                    # a stale connection: the server closed it while idle; once more below
            connection = await self._connect(target, deadline)
            return await self._send(connection, data, deadline, body_limit)
        finally:
            self._give_slot()

    def idle_connections(self) -> int:
        """Pooled connections waiting for a request, still open."""
        return sum(not c.closed for idle in self._idle.values() for c in idle)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()

    async def _send(
        self, connection: _Connection, data: bytes, deadline: float, body_limit: int
    ) -> Response:
        response = await connection.request(data, deadline=deadline, body_limit=body_limit)
        if not connection.closed:
            connection.idle_since = self.loop.time()
            self._idle.setdefault(connection.key, []).append(connection)
            if self._sweeper is None:
                self._sweeper = self.loop.call_later(self._keepalive_s, self._sweep)
        return response

    def _pooled(self, key: tuple[str, int, bool]) -> _Connection | None:
        idle = self._idle.get(key)
        stale_before = self.loop.time() - self._keepalive_s
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be stale
            if _reusable(connection, stale_before):
                return connection
            connection.close()
        return None

    def _sweep(self) -> None:
        self._sweeper = None
        stale_before = self.loop.time() - self._keepalive_s
        for key, idle in list(self._idle.items()):
            kept = []
            for connection in idle:
                if _reusable(connection, stale_before):
                    kept.append(connection)
                else:
                    connection.close()
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]
        if self._idle:
            self._sweeper = self.loop.call_later(self._keepalive_s, self._sweep)

    def _forget(self, connection: _Connection) -> None:
        self._open.discard(connection)

    async def _connect(self, target: Target, deadline: float) -> _Connection:
        tls = self._tls_context() if target.tls else None
        try:
            async with asyncio.timeout_at(deadline):
                addresses = await self._addresses(target)
                factory = functools.partial(_Connection, self, target.key)
                hostname = target.host if tls is not None else None
                if len(addresses) > 1:  # Happy Eyeballs: the first to connect wins
                    sock = await self._race(_interleaved(addresses), target.port)
                    _, connection = await self.loop.create_connection(
                        factory, sock=sock, ssl=tls, server_hostname=hostname
                    )
                else:
                    _, connection = await self.loop.create_connection(
                        factory, addresses[0], target.port, ssl=tls, server_hostname=hostname
                    )
        except OSError as exc:  # ssl.SSLError too; not RefusedAddress, raised as it is
            if isinstance(exc, HttpError):
                raise
            raise ConnectFailed(target.host, exc) from None
        self._open.add(connection)
        return connection

    async def _race(self, addresses: list[str], port: int) -> socket.socket:
        """A connected socket to the first of `addresses` that answers, each tried
        HAPPY_EYEBALLS_DELAY_S after the one before (RFC 8305); the first error if none."""

        async def attempt(address: str) -> socket.socket:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                await self.loop.sock_connect(sock, (address, port))
            except BaseException:
                sock.close()
                raise
            return sock

        winner, _, errors = await staggered.staggered_race(
            (functools.partial(attempt, address) for address in addresses),
            HAPPY_EYEBALLS_DELAY_S,
        )
        if winner is None:
            raise next(e for e in errors if isinstance(e, OSError))
        return cast(socket.socket, winner)

    async def _addresses(self, target: Target) -> list[str]:
        if target.is_ip:
            if not self._allow_private and not _is_public(target.host):
                raise RefusedAddress(f"refused: {target.host} is not a public address")
            return [target.host]
        try:
            found = await self.loop.getaddrinfo(
                target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except OSError as exc:  # socket.gaierror
            raise ConnectFailed(target.host, exc) from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        if not self._allow_private:
            addresses = [a for a in addresses if _is_public(a)]
            if not addresses:
                raise RefusedAddress(
                    f"refused: {target.host} resolves only to non-public addresses"
                )
        return addresses

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def _take_slot(self, deadline: float) -> None:
        if self._in_flight < self._limit and not self._waiters:
            self._in_flight += 1
            return
        waiter = self.loop.create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter  # the releasing request hands its slot over
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._give_slot()  # handed over as we gave up: pass it on
            else:
                waiter.cancel()
            raise

    def _give_slot(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot changes hands; in_flight stays
                return
        self._in_flight -= 1


def _reusable(connection: _Connection, stale_before: float) -> bool:
    """Whether a pooled connection is still open and was used after `stale_before`."""
    return not connection.closed and connection.idle_since > stale_before


def _interleaved(addresses: list[str]) -> list[str]:
    """The addresses with their families alternating, the resolver's first family first."""
    first_v6 = ":" in addresses[0]
    same = [a for a in addresses if (":" in a) == first_v6]
    other = [a for a in addresses if (":" in a) != first_v6]
    mixed = [a for pair in itertools.zip_longest(same, other) for a in pair if a is not None]
    return mixed


def _is_public(host: str) -> bool:
    try:
        return is_public_address(host)
    except ValueError:
        return False
