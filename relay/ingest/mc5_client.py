"""The MC5 HTTP client: one pooled httpx.AsyncClient, errors translated at the boundary.

UpstreamError
├── UpstreamTransportError   connection failure, timeout, non-2xx, HTML page, invalid JSON,
│                            or JSON without the documented shape
└── UpstreamStatusError      a non-zero MC5 `status` (its `status` attribute says which)

Messages are readable ("transport: HTTP 502 from upstream", "MC5 status 3: authentication
failed") and never contain the password: it travels only in the POST body, never in a URL.
"""

from __future__ import annotations

import json

import httpx

from relay import __version__
from relay.core.errors import UpstreamTransportError
from relay.core.mc5 import ALL_MESSAGES_PATH, parse_page
from relay.core.models import Page

DEFAULT_TIMEOUT_S = 10.0


class MC5Client:
    """Calls `allMessages`; reuse one instance for every source and close it with `aclose`."""

    def __init__(
        self,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = f"relay/{__version__}",
    ) -> None:
        self._timeout_s = timeout_s
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            headers={"user-agent": user_agent, "accept": "application/json"},
        )

    async def fetch_page(self, *, base_url: str, username: str, password: str, since: int) -> Page:
        """One page of messages at or after `since`; raises UpstreamTransportError or
        UpstreamStatusError."""
        url = base_url.rstrip("/") + ALL_MESSAGES_PATH
        form = {"username": username, "password": password, "since": str(since)}
        try:
            response = await self._client.post(url, data=form)
        except httpx.TimeoutException as exc:
            raise _transport(f"no answer within {self._timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise _transport(f"{reason} (calling {url})") from exc
        if not response.is_success:
            raise _transport(f"HTTP {response.status_code} from upstream")
        content_type = response.headers.get("content-type", "")
        if "html" in content_type or response.content.lstrip()[:1] == b"<":
            raise _transport(f"HTML page instead of JSON (HTTP {response.status_code})")
        try:
            payload: object = json.loads(response.content)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise _transport(f"invalid JSON ({exc.__class__.__name__}: {exc})") from exc
        return parse_page(payload)

    async def aclose(self) -> None:
        await self._client.aclose()


def _transport(detail: str) -> UpstreamTransportError:
    return UpstreamTransportError(f"transport: {detail}")
