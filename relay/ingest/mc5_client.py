"""The MC5 HTTP client: one pooled aiohttp session, errors translated at the boundary.

UpstreamError
├── UpstreamTransportError   connection failure, timeout, non-2xx, HTML page, invalid JSON,
│                            JSON without the documented shape, a body over the size cap,
│                            or no complete answer within the deadline
└── UpstreamStatusError      a non-zero MC5 `status` (its `status` attribute says which)

Messages are readable ("transport: HTTP 502 from upstream", "MC5 status 3: authentication
failed") and never contain the password: it travels only in the POST body, never in a URL.

Bounds: a body is read at most `max_response_bytes` (a full page is ~50 KB) and the whole
call, body included, must end within `deadline_s`, so neither a huge nor a trickled answer
can hold a poll or the process memory. Bytes that are not UTF-8 are decoded with U+FFFD in
their place (RFC 8259 requires UTF-8; refusing them would block the account for good).

Why aiohttp: httpcore assigns requests to connections in O(requests x connections) on every
request event (encode/httpx#3215: 94.6 % of the poller's CPU at 1,000 accounts), and costs
several times aiohttp's CPU per request even at small pool sizes (BENCHMARKS.md, scale).
The session's connector holds `max_connections`; the poller keeps its concurrency at or
below it. An injected httpx `transport` (tests: real HTTP with faults added, or a mock) is
sent through httpx instead, with the same bounds and the same error translation.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import httpx

from relay import __version__
from relay.core.errors import UpstreamTransportError
from relay.core.mc5 import ALL_MESSAGES_PATH, parse_page
from relay.core.models import Page

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_DEADLINE_S = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 64
_CHUNK_BYTES = 64 * 1024


class _Oversize(Exception):
    """The body went past the cap (translated in fetch_page)."""


class MC5Client:
    """Calls `allMessages`; reuse one instance for every source and close it with `aclose`."""

    def __init__(
        self,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        deadline_s: float = DEFAULT_DEADLINE_S,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = f"relay/{__version__}",
    ) -> None:
        self._timeout_s = timeout_s
        self._deadline_s = deadline_s
        self._max_response_bytes = max_response_bytes
        self.max_connections = max_connections
        self._headers = {"user-agent": user_agent, "accept": "application/json"}
        self._session: aiohttp.ClientSession | None = None  # made in the running loop
        self._httpx = (
            None
            if transport is None
            else httpx.AsyncClient(
                transport=transport,
                timeout=httpx.Timeout(timeout_s),
                follow_redirects=False,
                headers=self._headers,
            )
        )

    async def fetch_page(self, *, base_url: str, username: str, password: str, since: int) -> Page:
        """One page of messages at or after `since`; raises UpstreamTransportError or
        UpstreamStatusError."""
        url = base_url.rstrip("/") + ALL_MESSAGES_PATH
        form = {"username": username, "password": password, "since": str(since)}
        try:
            async with asyncio.timeout(self._deadline_s):
                if self._httpx is not None:
                    status, content_type, body = await self._post_httpx(self._httpx, url, form)
                else:
                    status, content_type, body = await self._post(url, form)
        except _Oversize as exc:
            raise _transport(f"response larger than {self._max_response_bytes} bytes") from exc
        except (aiohttp.ServerTimeoutError, httpx.TimeoutException) as exc:
            raise _transport(f"no answer within {self._timeout_s:g} s") from exc
        except TimeoutError as exc:
            raise _transport(f"no complete answer within {self._deadline_s:g} s") from exc
        except (aiohttp.ClientError, httpx.HTTPError) as exc:
            reason = str(exc) or type(exc).__name__
            raise _transport(f"{reason} (calling {url})") from exc
        if not 200 <= status < 300:
            raise _transport(f"HTTP {status} from upstream")
        if "html" in content_type or body.lstrip()[:1] == b"<":
            raise _transport(f"HTML page instead of JSON (HTTP {status})")
        try:
            payload: object = json.loads(body.decode("utf-8", errors="replace"))
        except ValueError as exc:
            raise _transport(f"invalid JSON ({exc.__class__.__name__}: {exc})") from exc
        return parse_page(payload)

    async def _post(self, url: str, form: dict[str, str]) -> tuple[int, str, bytes]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self._timeout_s, sock_read=self._timeout_s
                ),
                headers=self._headers,
                auto_decompress=True,
            )
        async with self._session.post(url, data=form, allow_redirects=False) as response:
            self._check_declared(response.headers.get("content-length", ""))
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
                size += len(chunk)
                if size > self._max_response_bytes:
                    raise _Oversize
                chunks.append(chunk)
            return response.status, response.headers.get("content-type", ""), b"".join(chunks)

    async def _post_httpx(
        self, client: httpx.AsyncClient, url: str, form: dict[str, str]
    ) -> tuple[int, str, bytes]:
        async with client.stream("POST", url, data=form) as response:
            self._check_declared(response.headers.get("content-length", ""))
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_response_bytes:
                    raise _Oversize
                chunks.append(chunk)
            return response.status_code, response.headers.get("content-type", ""), b"".join(chunks)

    def _check_declared(self, declared: str) -> None:
        if declared.isdigit() and int(declared) > self._max_response_bytes:
            raise _Oversize

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._httpx is not None:
            await self._httpx.aclose()


def _transport(detail: str) -> UpstreamTransportError:
    return UpstreamTransportError(f"transport: {detail}")
