"""The demo receiver of `relay dev`: verifies each webhook's signature and prints it."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.core.errors import RelayError
from relay.core.signing import verify
from relay.serving import serve_asgi
from relay.settings import Settings


def create_receiver(
    *, secret: str | None, clock: Callable[[], float] = time.time, out: Callable[[str], None]
) -> Starlette:
    """An app that accepts POST / webhooks, prints one line each, and answers 204 when the
    signature verifies (400 otherwise)."""

    async def receive(request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        ok = secret is not None
        if secret is not None:
            try:
                verify(secret=secret, headers=headers, body=body, now=clock())
            except RelayError:
                ok = False
        out(_describe(headers.get("webhook-id", "?"), body, verified=ok))
        return Response(status_code=204 if ok else 400)

    return Starlette(routes=[Route("/", receive, methods=["POST"])])


def _describe(webhook_id: str, body: bytes, *, verified: bool) -> str:
    mark = "verified" if verified else "SIGNATURE INVALID"
    try:
        payload = json.loads(body)
        data = payload.get("data", {})
        who = f"{data.get('from', '-')} -> {data.get('recipient', '-')}"
        return f"[{mark}] {payload.get('type')} {webhook_id} {who}: {data.get('text')!r}"
    except (ValueError, AttributeError):
        return f"[{mark}] {webhook_id} (body is not JSON: {len(body)} bytes)"


async def serve_receiver(*, host: str, port: int, settings: Settings, stop: asyncio.Event) -> None:
    """Run the demo receiver until `stop`; lines go to stdout."""

    def out(line: str) -> None:
        print(line, file=sys.stdout, flush=True)

    app = create_receiver(secret=settings.demo_secret, out=out)
    await serve_asgi(app, host=host, port=port, stop=stop)
