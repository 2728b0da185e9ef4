"""A scripted webhook receiver for delivery tests: verifies every request with the official
`standardwebhooks` library and answers with the statuses it is told to."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


@dataclass(frozen=True)
class Received:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    at: float  # time.monotonic()


@dataclass
class Receiver:
    """`statuses` are answered in order, then `default`; `delays_s` stall answers in order,
    then `delay_s` stalls every answer."""

    secret: str | None = None
    statuses: list[int] = field(default_factory=list)
    default: int = 204
    delay_s: float = 0.0
    delays_s: list[float] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            verified = False
            if self.secret is not None:
                try:
                    Webhook(self.secret).verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    verified = False
            with self._lock:
                self.received.append(
                    Received(
                        headers.get("webhook-id", ""), headers, body, verified, time.monotonic()
                    )
                )
                status = self.statuses.pop(0) if self.statuses else self.default
                delay_s = self.delays_s.pop(0) if self.delays_s else self.delay_s
            if delay_s:
                await asyncio.sleep(delay_s)
            body_out = b"" if status in (204, 304) else b"ok"
            return Response(body_out, status_code=status, headers=self.headers)

        async def endless(request: Request) -> StreamingResponse:
            await request.body()

            async def chunks() -> AsyncIterator[bytes]:
                while True:
                    yield b"x" * 65536
                    await asyncio.sleep(0)

            return StreamingResponse(chunks(), status_code=200)

        async def redirect(request: Request) -> Response:
            await request.body()
            return Response(status_code=307, headers={"location": "/"})

        return Starlette(
            routes=[
                Route("/", receive, methods=["POST"]),
                Route("/endless", endless, methods=["POST"]),
                Route("/redirect", redirect, methods=["POST"]),
            ]
        )

    def ids(self) -> list[str]:
        with self._lock:
            return [r.webhook_id for r in self.received]


async def wait_until(condition: object, *, timeout_s: float = 20.0, what: str = "") -> None:
    """Poll `condition()` (sync or async) until true, failing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()  # type: ignore[operator]
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.05)
