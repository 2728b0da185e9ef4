"""What many tests share: waiting on a condition with a deadline, serving an ASGI app on
loopback, and a scripted webhook receiver that verifies every request with the official
`standardwebhooks` library."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from relay.delivery.jobs import retry_queue_for
from relay.settings import Settings
from workers.retry_worker import run_retry_worker

ROOT = Path(__file__).resolve().parent.parent
POLL_S = 0.05


def _fail(what: str, timeout_s: float) -> AssertionError:
    return AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


async def wait_until(
    condition: Callable[[], object], *, timeout_s: float = 20.0, what: str = "the condition"
) -> None:
    """Poll `condition()` (sync, or returning an awaitable) until it is true; AssertionError
    naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise _fail(what, timeout_s)
        await asyncio.sleep(POLL_S)


def wait_until_sync(
    condition: Callable[[], object], *, timeout_s: float = 20.0, what: str = "the condition"
) -> None:
    """`wait_until` for tests that are not coroutines (process-level crash tests)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise _fail(what, timeout_s)
        time.sleep(POLL_S * 4)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(app: Any, *, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on loopback in a background thread; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until_sync(
        lambda: server.started or not thread.is_alive(), timeout_s=10, what="the test server"
    )
    if not server.started:
        raise RuntimeError("test server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass(frozen=True)
class Received:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int  # what the receiver answered
    at: float  # time.monotonic()

    @property
    def document_id(self) -> str:
        """`data.documentId` of a standard body, "" for anything else."""
        try:
            return str(json.loads(self.body)["data"]["documentId"])
        except (ValueError, KeyError, TypeError):
            return ""


@dataclass
class Receiver:
    """A webhook receiver on `/` (plus `/endless` and `/redirect`). It answers `statuses` in
    order, then `default`, or 500 to a `fail_ratio` share picked by `rng`; `delays_s` stall
    answers in order, then `delay_s` stalls every answer. With a `secret` it verifies each
    request (`Received.verified`)."""

    secret: str | None = None
    statuses: list[int] = field(default_factory=list)
    default: int = 204
    fail_ratio: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
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
                status = self.statuses.pop(0) if self.statuses else self.default
                if self.fail_ratio and self.rng.random() < self.fail_ratio:
                    status = 500
                delay_s = self.delays_s.pop(0) if self.delays_s else self.delay_s
                self.received.append(
                    Received(
                        headers.get("webhook-id", ""),
                        headers,
                        body,
                        verified,
                        status,
                        time.monotonic(),
                    )
                )
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

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def ids(self) -> list[str]:
        """The webhook-id of every request, in arrival order."""
        return [r.webhook_id for r in self.snapshot()]

    def delivered(self) -> set[str]:
        """documentIds answered with a 2xx at least once."""
        return {r.document_id for r in self.snapshot() if 200 <= r.status < 300}


async def run_due_retries(settings: Settings, redis_url: str, subscription_id: str) -> None:
    """Make the subscription's scheduled retries due now and run a real RQ worker burst."""
    client = redis.Redis.from_url(redis_url)
    try:
        await asyncio.to_thread(retry_queue_for(settings, client).expedite, subscription_id)
    finally:
        client.close()
    await asyncio.to_thread(run_retry_worker, settings, burst=True)
