"""Fixtures for the admin API: the real app (lifespan run) over a real Redis, an httpx
client with a valid token, a webhook receiver on loopback, and stored events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from starlette.applications import Starlette

from relay.api import create_app
from relay.core.events import event_from_message
from relay.core.models import Event, Message
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis
from tests.support import Receiver
from workers.dispatcher import run_dispatcher
from workers.poller import run_poller

TOKEN = "test-token"
SECOND_TOKEN = "second-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    """The root settings with two admin tokens (a rotation in progress)."""
    return settings.replace(admin_tokens=(TOKEN, SECOND_TOKEN))


@pytest.fixture
async def app(api_settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(api_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://relay.test", headers=AUTH
    ) as http:
        yield http


@pytest.fixture
async def anonymous(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client without the Authorization header."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://relay.test") as http:
        yield http


@pytest.fixture
async def store(api_settings: Settings) -> AsyncIterator[Store]:
    """The stores under this test's key prefix, on a client of the test's own loop."""
    assert api_settings.redis_url is not None
    redis = async_redis(api_settings.redis_url)
    yield Store.create(redis, api_settings)
    await redis.aclose()


@pytest.fixture
def receiver(serve_app: Callable[..., str]) -> tuple[Receiver, str]:
    """A webhook receiver on loopback and its URL."""
    recorder = Receiver()
    return recorder, serve_app(recorder.app()) + "/"


def message(document_id: str, *, timestamp: int = 1366624769, kind: str = "incoming") -> Message:
    return Message(
        kind="incoming" if kind == "incoming" else "outgoing",
        document_id=document_id,
        timestamp=timestamp,
        text=" ggghhh",
        sender="61555879987" if kind == "incoming" else None,
        recipient="61500079987",
    )


@pytest.fixture
def add_events(store: Store, api_settings: Settings) -> Callable[..., object]:
    """`await add_events(*messages, source_id=...)` stores events and returns them."""

    async def add(*messages: Message, source_id: str = "src_test") -> list[Event]:
        now_ms = int(time.time() * 1000)
        events = [
            event_from_message(m, source_id=source_id, created_at_ms=now_ms + i)
            for i, m in enumerate(messages)
        ]
        await store.events.add(events, retention_s=api_settings.event_retention_s)
        return events

    return add


@pytest.fixture
async def roles(api_settings: Settings) -> AsyncIterator[None]:
    """The real poller and dispatcher roles, stopped cleanly at the end."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_poller(api_settings, stop=stop)),
        asyncio.create_task(run_dispatcher(api_settings, stop=stop)),
    ]
    yield
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 20)
