"""The demo receiver of `relay dev`: verifies each webhook's signature and prints one line.

It verifies with the secrets of every subscription pointing at it (its port and the request
path), read from the dev Redis on each request, so a subscription added by hand, or a secret
rotated, verifies at once. `POST /status/<code>` answers `<code>` after verifying: a failing
endpoint to try retries and dead letters on. A line is marked `[ping]` for a `relay.ping`,
`[retry]` for a webhook-id this path answered with a failure before and `[replay]` for one it
already accepted (a replay or redelivery), so repeats never look like new messages.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.core.errors import RelayError
from relay.core.signing import verify
from relay.serving import serve_asgi
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis

# (request path) -> the secrets that may have signed a webhook sent there
SecretLookup = Callable[[str], Awaitable[Sequence[str]]]
REMEMBERED_IDS = 10_000


def fixed_secrets(*secrets: str) -> SecretLookup:
    """A lookup that offers the same secrets for every path."""

    async def lookup(path: str) -> Sequence[str]:
        return secrets

    return lookup


def store_secrets(store: Store, *, port: int) -> SecretLookup:
    """A lookup of every secret of the subscriptions whose URL has this port and path."""

    async def lookup(path: str) -> Sequence[str]:
        found: list[str] = []
        for subscription in await store.subscriptions.all():
            url = urlsplit(subscription.url)
            if url.port == port and (url.path or "/") == path:
                found += [secret.value for secret in subscription.secrets]
        return found

    return lookup


def create_receiver(
    *,
    secrets: SecretLookup,
    clock: Callable[[], float] = time.time,
    out: Callable[[str], None],
) -> Starlette:
    """An app that accepts POST webhooks on any path, prints one line each, and answers 204
    (or the code of `/status/<code>`) when a signature verifies, 400 otherwise."""
    answered: OrderedDict[tuple[str, str], bool] = OrderedDict()  # (path, id) -> was 2xx

    async def receive(request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        path = request.url.path
        verified = False
        for secret in await secrets(path):
            try:
                verify(secret=secret, headers=headers, body=body, now=clock())
            except RelayError:
                continue
            verified = True
            break
        status = _status_for(path) if verified else 400
        webhook_id = headers.get("webhook-id", "?")
        before = answered.pop((path, webhook_id), None)
        answered[(path, webhook_id)] = 200 <= status < 300
        while len(answered) > REMEMBERED_IDS:
            answered.popitem(last=False)
        repeat = None if before is None else ("replay" if before else "retry")
        out(_describe(webhook_id, body, verified=verified, repeat=repeat, path=path, status=status))
        return Response(status_code=status)

    return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])


def _status_for(path: str) -> int:
    """The code asked for by `/status/<code>`, else 204."""
    prefix, _, code = path.rpartition("/status/")
    if not prefix and code.isdigit() and 200 <= int(code) <= 599:
        return int(code)
    return 204


def _describe(
    webhook_id: str, body: bytes, *, verified: bool, repeat: str | None, path: str, status: int
) -> str:
    marks = ["[verified]" if verified else "[SIGNATURE INVALID]"]
    notes = [] if path == "/" else [path]
    if verified and not 200 <= status < 300:
        notes.append(f"answered {status}")
    tail = f"  ({', '.join(notes)})" if notes else ""
    try:
        payload = json.loads(body)
        kind = payload.get("type")
        data = payload.get("data", {})
    except (ValueError, AttributeError):
        return f"{marks[0]} {webhook_id} (body is not JSON: {len(body)} bytes){tail}"
    if kind == "relay.ping":
        marks.append("[ping]")
    elif repeat is not None:
        marks.append(f"[{repeat}]")
    if kind == "relay.ping" or not isinstance(data, dict):
        return f"{' '.join(marks)} {kind} {webhook_id}{tail}"
    who = f"{data.get('from', '-')} -> {data.get('recipient', '-')}"
    return f"{' '.join(marks)} {kind} {webhook_id} {who}: {data.get('text')!r}{tail}"


async def serve_receiver(*, host: str, port: int, settings: Settings, stop: asyncio.Event) -> None:
    """Run the demo receiver until `stop`; lines go to stdout. Secrets come from the
    subscriptions in settings' Redis (and RELAY_DEMO_SECRET, which `relay dev` hands over)."""

    def out(line: str) -> None:
        print(line, file=sys.stdout, flush=True)

    redis = async_redis(settings.require_redis_url())
    from_store = store_secrets(Store.create(redis, settings), port=port)

    async def lookup(path: str) -> Sequence[str]:
        demo = [settings.demo_secret] if settings.demo_secret else []
        return [*demo, *await from_store(path)]

    try:
        app = create_receiver(secrets=lookup, out=out)
        await serve_asgi(app, host=host, port=port, stop=stop)
    finally:
        await redis.aclose()
