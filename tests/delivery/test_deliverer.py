"""One webhook attempt against real loopback receivers (uvicorn servers, raw TCP ones)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable, Mapping

import pytest
import redis.asyncio

from relay import __version__
from relay.core.events import event_from_message
from relay.core.models import Event, Message, Secret, Subscription
from relay.core.retry import Outcome
from relay.core.signing import new_secret
from relay.delivery.deliverer import RESPONSE_BODY_LIMIT, Deliverer
from relay.settings import Settings
from relay.store import Store
from tests.support import Receiver, free_port


def make_event(document_id: str = "51750a01e4b0d1406c9c5fdb") -> Event:
    message = Message(
        kind="incoming",
        document_id=document_id,
        timestamp=int(time.time()),
        text=" ggghhh",
        sender="61555879987",
        recipient="61500079987",
    )
    return event_from_message(message, source_id="src_test", created_at_ms=int(time.time() * 1000))


def make_subscription(
    url: str, secret: str, *, headers: Mapping[str, str] | None = None, **kw: object
) -> Subscription:
    return Subscription(
        id="sub_test",
        url=url,
        secrets=(Secret(secret),),
        created_at=time.time(),
        headers=dict(headers or {}),
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def deliverer_for(
    aredis: redis.asyncio.Redis,
) -> AsyncIterator[Callable[[Settings], Deliverer]]:
    started: list[Deliverer] = []

    def make(settings: Settings) -> Deliverer:
        deliverer = Deliverer(store=Store.create(aredis, settings), settings=settings)
        started.append(deliverer)
        return deliverer

    yield make
    for deliverer in started:
        await deliverer.close()


async def test_delivers_signed_standard_webhook_with_headers(
    settings: Settings, serve_app: Callable[..., str], deliverer_for: Callable[..., Deliverer]
) -> None:
    secret = new_secret()
    receiver = Receiver(secret=secret, default=200)
    url = serve_app(receiver.app())
    deliverer = deliverer_for(settings)
    await deliverer.start()
    event = make_event()
    now = time.time()

    result = await deliverer.attempt(
        event, make_subscription(url + "/", secret), attempt_number=1, now=now
    )

    assert result.outcome is Outcome.DELIVERED
    assert result.attempt.status_code == 200 and result.attempt.error is None
    assert result.attempt.response_body == "ok"
    (got,) = receiver.received
    assert got.verified
    assert got.webhook_id == event.id
    assert got.headers["webhook-timestamp"] == str(int(now))
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == f"relay/{__version__}"
    assert got.body == event.body
    assert json.loads(got.body)["data"]["text"] == " ggghhh"


async def test_rotation_overlap_sends_two_signatures_both_verifiable(
    settings: Settings, serve_app: Callable[..., str], deliverer_for: Callable[..., Deliverer]
) -> None:
    old, new = new_secret(), new_secret()
    old_receiver, new_receiver = Receiver(secret=old), Receiver(secret=new)
    deliverer = deliverer_for(settings)
    await deliverer.start()
    now = time.time()
    for receiver in (old_receiver, new_receiver):
        url = serve_app(receiver.app())
        subscription = make_subscription(url + "/", new)
        subscription = dataclasses.replace(
            subscription, secrets=(Secret(new), Secret(old, now + 3600))
        )
        await deliverer.attempt(make_event(), subscription, attempt_number=1, now=now)
    assert old_receiver.received[0].verified and new_receiver.received[0].verified
    assert len(old_receiver.received[0].headers["webhook-signature"].split(" ")) == 2


async def test_custom_headers_are_sent_but_cannot_override_webhook_headers(
    settings: Settings, serve_app: Callable[..., str], deliverer_for: Callable[..., Deliverer]
) -> None:
    secret = new_secret()
    receiver = Receiver(secret=secret)
    url = serve_app(receiver.app())
    deliverer = deliverer_for(settings)
    await deliverer.start()
    event = make_event()
    headers = {
        "X-Api-Key": "abc",
        "Webhook-Id": "evil",
        "webhook-signature": "v1,forged",
        "Content-Type": "text/plain",
        "webhook-timestamp": "1",
    }

    await deliverer.attempt(
        event,
        make_subscription(url + "/", secret, headers=headers),
        attempt_number=1,
        now=time.time(),
    )

    (got,) = receiver.received
    assert got.headers["x-api-key"] == "abc"
    assert got.webhook_id == event.id
    assert got.headers["content-type"] == "application/json"
    assert got.verified


async def test_redirects_are_not_followed_and_count_as_failed(
    settings: Settings, serve_app: Callable[..., str], deliverer_for: Callable[..., Deliverer]
) -> None:
    receiver = Receiver(secret=new_secret())
    url = serve_app(receiver.app())
    deliverer = deliverer_for(settings)
    await deliverer.start()

    result = await deliverer.attempt(
        make_event(),
        make_subscription(url + "/redirect", receiver.secret or ""),
        attempt_number=1,
        now=time.time(),
    )

    assert result.attempt.status_code == 307
    assert result.outcome is Outcome.FAILED
    assert receiver.received == []  # the redirect target was never called


async def test_endless_response_body_is_capped_at_4_kib_without_hanging(
    settings: Settings, serve_app: Callable[..., str], deliverer_for: Callable[..., Deliverer]
) -> None:
    url = serve_app(Receiver().app())
    deliverer = deliverer_for(settings.replace(delivery_timeout_s=10.0))
    await deliverer.start()
    started = time.monotonic()

    result = await deliverer.attempt(
        make_event(),
        make_subscription(url + "/endless", new_secret()),
        attempt_number=1,
        now=time.time(),
    )

    assert time.monotonic() - started < 5
    assert result.outcome is Outcome.DELIVERED
    assert result.attempt.response_body is not None
    assert len(result.attempt.response_body) == RESPONSE_BODY_LIMIT


async def test_slow_subscriber_times_out_as_a_failed_attempt(
    settings: Settings, serve_app: Callable[..., str], deliverer_for: Callable[..., Deliverer]
) -> None:
    url = serve_app(Receiver(delay_s=1.5).app())
    deliverer = deliverer_for(settings.replace(delivery_timeout_s=0.5))
    await deliverer.start()

    result = await deliverer.attempt(
        make_event(), make_subscription(url + "/", new_secret()), attempt_number=2, now=time.time()
    )

    assert result.outcome is Outcome.FAILED
    assert result.attempt.status_code is None
    assert result.attempt.error == "timeout after 0.5 s"
    assert result.attempt.attempt == 2
    assert 400 <= result.attempt.duration_ms < 2000


async def test_refused_connection_is_a_failed_attempt(
    settings: Settings, deliverer_for: Callable[..., Deliverer]
) -> None:
    deliverer = deliverer_for(settings)
    await deliverer.start()
    url = f"http://127.0.0.1:{free_port()}/"

    result = await deliverer.attempt(
        make_event(), make_subscription(url, new_secret()), attempt_number=1, now=time.time()
    )

    assert result.outcome is Outcome.FAILED
    assert result.attempt.error == "connection refused"


async def test_tls_failure_is_a_failed_attempt_without_secrets(
    settings: Settings, serve_app: Callable[..., str], deliverer_for: Callable[..., Deliverer]
) -> None:
    url = serve_app(Receiver().app()).replace("http://", "https://user:hunter2@")
    deliverer = deliverer_for(settings)
    await deliverer.start()
    secret = new_secret()

    result = await deliverer.attempt(
        make_event(), make_subscription(url + "/", secret), attempt_number=1, now=time.time()
    )

    assert result.outcome is Outcome.FAILED
    error = result.attempt.error or ""
    assert error.startswith("TLS error")
    assert "hunter2" not in error and secret not in error


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
async def test_private_targets_are_refused_unless_allowed(
    host: str,
    settings: Settings,
    serve_app: Callable[..., str],
    deliverer_for: Callable[..., Deliverer],
) -> None:
    receiver = Receiver()
    port = serve_app(receiver.app()).rsplit(":", 1)[1]
    deliverer = deliverer_for(settings.replace(allow_private_targets=False))
    await deliverer.start()

    result = await deliverer.attempt(
        make_event(),
        make_subscription(f"http://{host}:{port}/", new_secret()),
        attempt_number=1,
        now=time.time(),
    )

    assert result.outcome is Outcome.FAILED
    assert (result.attempt.error or "").startswith("refused:")
    assert receiver.received == []


async def test_ping_reaches_a_disabled_subscription_and_is_recorded(
    settings: Settings,
    aredis: redis.asyncio.Redis,
    serve_app: Callable[..., str],
    deliverer_for: Callable[..., Deliverer],
) -> None:
    store = Store.create(aredis, settings)
    receiver = Receiver(default=200)
    url = serve_app(receiver.app())
    subscription = await store.subscriptions.create(
        url=url + "/",
        event_types=("message.sent",),
        source_ids=None,
        description=None,
        headers={},
        enabled=False,
        now=time.time(),
    )
    receiver.secret = subscription.secrets[0].value
    deliverer = deliverer_for(settings)
    await deliverer.start()

    attempt = await deliverer.ping(subscription, now=time.time())

    assert attempt.status_code == 200
    (got,) = receiver.received
    assert got.verified
    assert json.loads(got.body)["type"] == "relay.ping"
    logged = await store.attempts.page(subscription.id, limit=10, cursor=None)
    assert [a.id for a in logged.items] == [attempt.id]


async def test_ping_never_raises_on_http_failure(
    settings: Settings, aredis: redis.asyncio.Redis, deliverer_for: Callable[..., Deliverer]
) -> None:
    deliverer = deliverer_for(settings)
    await deliverer.start()
    subscription = make_subscription(f"http://127.0.0.1:{free_port()}/", new_secret())

    attempt = await deliverer.ping(subscription, now=time.time())

    assert attempt.status_code is None and attempt.error == "connection refused"


def _fields(subscription: Subscription) -> dict[str, object]:
    return {name: getattr(subscription, name) for name in Subscription.__slots__}


# Misbehaving subscribers below HTTP: a raw TCP server that reads the request, then answers
# with `script` (bytes to send, then how to end: "close" = FIN, "reset" = RST, "hang").


@contextlib.asynccontextmanager
async def raw_subscriber(script: bytes, end: str, *, trickle_s: float = 0.0) -> AsyncIterator[str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            writer.write(script)
            await writer.drain()
            while trickle_s:
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(trickle_s)
            if end == "hang":
                await asyncio.sleep(3600)
            if end == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort() if end == "reset" else writer.close()
        except (OSError, asyncio.IncompleteReadError):
            writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2)


@pytest.mark.parametrize(
    ("script", "end", "error"),
    [
        (b"", "close", "server disconnected without a response"),
        (b"", "reset", None),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "reset", None),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n", "close", None),
        (b"garbage that is not HTTP\r\n\r\n", "close", None),
    ],
    ids=["fin-before-answer", "rst-before-answer", "rst-mid-headers", "fin-mid-headers", "junk"],
)
async def test_connection_dropped_before_a_full_status_is_a_failed_attempt(
    script: bytes,
    end: str,
    error: str | None,
    settings: Settings,
    deliverer_for: Callable[..., Deliverer],
) -> None:
    deliverer = deliverer_for(settings.replace(delivery_timeout_s=5.0))
    await deliverer.start()
    secret = new_secret()
    async with raw_subscriber(script, end) as url:
        started = time.monotonic()
        result = await deliverer.attempt(
            make_event(), make_subscription(url, secret), attempt_number=1, now=time.time()
        )

    assert time.monotonic() - started < 4  # ended by the drop, not by the 5 s timeout
    assert result.outcome is Outcome.FAILED
    assert result.attempt.status_code is None
    assert result.attempt.error
    assert secret not in result.attempt.error
    if error is not None:
        assert result.attempt.error == error


async def test_reset_mid_body_keeps_the_status_and_what_arrived(
    settings: Settings, deliverer_for: Callable[..., Deliverer]
) -> None:
    deliverer = deliverer_for(settings.replace(delivery_timeout_s=5.0))
    await deliverer.start()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial"
    async with raw_subscriber(head, "reset") as url:
        result = await deliverer.attempt(
            make_event(), make_subscription(url, new_secret()), attempt_number=1, now=time.time()
        )

    # The subscriber answered 200 before dropping: the status decides, the body is best effort.
    assert result.outcome is Outcome.DELIVERED
    assert result.attempt.status_code == 200
    assert (result.attempt.response_body or "").startswith("partial")


@pytest.mark.parametrize("end", ["hang", "trickle"])
async def test_a_body_that_never_ends_is_cut_at_the_delivery_timeout(
    end: str, settings: Settings, deliverer_for: Callable[..., Deliverer]
) -> None:
    deliverer = deliverer_for(settings.replace(delivery_timeout_s=1.0))
    await deliverer.start()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\nstart"
    trickle_s = 0.05 if end == "trickle" else 0.0
    async with raw_subscriber(head, "hang", trickle_s=trickle_s) as url:
        started = time.monotonic()
        result = await deliverer.attempt(
            make_event(), make_subscription(url, new_secret()), attempt_number=1, now=time.time()
        )
        elapsed_s = time.monotonic() - started

    assert elapsed_s < 3  # the 1 s delivery timeout bounds the whole attempt
    assert result.attempt.status_code == 200
    body = result.attempt.response_body or ""
    assert body.startswith("start") and len(body) <= RESPONSE_BODY_LIMIT


async def test_flat_subscription_gets_the_flat_body_signed(
    settings: Settings, serve_app: Callable[..., str], deliverer_for: Callable[..., Deliverer]
) -> None:
    secret = new_secret()
    receiver = Receiver(secret=secret, default=204)
    url = serve_app(receiver.app())
    deliverer = deliverer_for(settings)
    await deliverer.start()
    event = make_event()

    subscription = make_subscription(url + "/", secret, payload_format="flat")
    result = await deliverer.attempt(event, subscription, attempt_number=1, now=time.time())

    assert result.outcome is Outcome.DELIVERED
    (got,) = receiver.received
    assert got.verified and got.webhook_id == event.id
    body = json.loads(got.body)
    assert body["id"] == event.id and body["type"] == "message.received"
    assert body["document_id"] == "51750a01e4b0d1406c9c5fdb"
    assert body["from"] == "61555879987" and body["text"] == " ggghhh"
    assert "data" not in body
