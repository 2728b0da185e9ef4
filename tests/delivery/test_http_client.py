"""The webhook HTTP client against raw loopback servers: pooling, stale connections, limits,
and answers that are not the common case. What a delivery makes of the results is in
test_deliverer.py."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import trustme

from relay.delivery.http_client import (
    ConnectFailed,
    Disconnected,
    HttpClient,
    InvalidHeader,
    InvalidUrl,
    RefusedAddress,
    _interleaved,
    parse_target,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@dataclass
class Server:
    """Answers request number n (counted over all connections, from 1) with `answer(n)`;
    records the connections and the requests."""

    answer: Callable[[int], bytes]
    url: str = ""
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    close_after: bool = False  # close each connection after its first answer
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                match = re.search(rb"(?i)content-length: *(\d+)", head)
                body = await reader.readexactly(int(match.group(1)) if match else 0)
                self.requests.append(head + body)
                writer.write(self.answer(len(self.requests)))
                await writer.drain()
                if self.close_after:
                    break
        except (OSError, asyncio.IncompleteReadError):
            pass
        writer.close()

    def drop_idle_connections(self) -> None:
        for writer in self.writers:
            writer.close()


@contextlib.asynccontextmanager
async def serve(server: Server) -> AsyncIterator[Server]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/hook?x=1"
    try:
        yield server
    finally:
        listener.close()
        server.drop_idle_connections()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    made = HttpClient(limit=8, allow_private=True)
    yield made
    await made.close()


async def post(client: HttpClient, url: str, *, timeout_s: float = 5.0) -> tuple[int, bytes]:
    response = await client.post(
        url, headers={"webhook-id": "msg_1"}, body=b"{}", timeout_s=timeout_s, body_limit=4096
    )
    return response.status, response.body


async def until(condition: Callable[[], bool], *, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


async def test_requests_reuse_one_pooled_connection(client: HttpClient) -> None:
    async with serve(Server(lambda n: OK)) as server:
        results = [await post(client, server.url) for _ in range(3)]

    assert results == [(200, b"ok")] * 3
    assert server.connections == 1
    first = server.requests[0].decode()
    assert first.startswith("POST /hook?x=1 HTTP/1.1\r\n")
    assert f"host: 127.0.0.1:{server.url.split(':')[2].split('/')[0]}\r\n" in first
    assert "content-length: 2\r\n" in first and "webhook-id: msg_1\r\n" in first
    assert first.endswith("\r\n\r\n{}")


async def test_a_connection_the_server_closed_while_idle_is_not_reused(
    client: HttpClient,
) -> None:
    async with serve(Server(lambda n: OK)) as server:
        await post(client, server.url)
        server.drop_idle_connections()
        await until(lambda: client.idle_connections() == 0)
        assert await post(client, server.url) == (200, b"ok")

    assert server.connections == 2
    assert len(server.requests) == 2  # the second request was sent once


async def test_a_stale_connection_that_fails_before_any_answer_is_sent_once_more(
    client: HttpClient,
) -> None:
    """The server drops the connection after reading the second request, unanswered (as a
    server closing an idle connection at that moment does): sent again on a new one."""
    async with serve(Server(lambda n: OK)) as server:

        def answer(n: int) -> bytes:
            if n != 2:
                return OK
            for writer in server.writers:
                writer.transport.abort()
            return b""

        server.answer = answer
        await post(client, server.url)
        assert client.idle_connections() == 1
        assert await post(client, server.url) == (200, b"ok")

    assert server.connections == 2
    assert len(server.requests) == 3  # the dropped one, then its repeat


async def test_a_new_connection_dropped_before_an_answer_is_not_repeated(
    client: HttpClient,
) -> None:
    async with serve(Server(lambda n: b"", close_after=True)) as server:
        with pytest.raises(Disconnected):
            await post(client, server.url)

    assert len(server.requests) == 1


async def test_connection_close_answers_are_not_pooled(client: HttpClient) -> None:
    closing = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
    async with serve(Server(lambda n: closing, close_after=True)) as server:
        assert [await post(client, server.url) for _ in range(2)] == [(204, b"")] * 2

    assert server.connections == 2


async def test_informational_answers_are_skipped_and_chunked_bodies_read(
    client: HttpClient,
) -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nslo\r\n4\r\nw do\r\n3\r\nwn!\r\n0\r\n\r\n"
    )
    async with serve(Server(lambda n: answer)) as server:
        response = await client.post(
            server.url, headers={}, body=b"{}", timeout_s=5, body_limit=4096
        )
        again = await post(client, server.url)

    assert (response.status, response.body, response.retry_after) == (429, b"slow down!", "7")
    assert again[0] == 429 and server.connections == 1  # the chunked answer was read whole


async def test_a_body_past_the_limit_is_cut_and_its_connection_closed(
    client: HttpClient,
) -> None:
    # 5,000 of the 100,000 bytes announced, then nothing: the answer is cut, not waited for.
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000
    async with serve(Server(lambda n: big if n == 1 else OK)) as server:
        response = await client.post(server.url, headers={}, body=b"", timeout_s=5, body_limit=100)
        await post(client, server.url)

    assert response.body == b"x" * 100
    assert server.connections == 2


async def test_requests_beyond_the_limit_wait_for_a_slot_until_their_deadline() -> None:
    client = HttpClient(limit=1, allow_private=True)
    release = asyncio.Event()
    answered: list[int] = []

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n{}")
            await release.wait()
            answered.append(1)
            writer.write(OK)
            await writer.drain()
        writer.close()

    listener = await asyncio.start_server(slow, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/"
    try:
        first = asyncio.create_task(post(client, url, timeout_s=5))
        await asyncio.sleep(0)  # the first takes the only slot
        with pytest.raises(TimeoutError):
            await post(client, url, timeout_s=0.2)  # never got the slot
        release.set()
        assert await first == (200, b"ok")
        assert answered == [1]  # the second was never sent
    finally:
        listener.close()
        await client.close()


async def test_a_header_with_a_line_break_is_refused_before_sending(client: HttpClient) -> None:
    async with serve(Server(lambda n: OK)) as server:
        with pytest.raises(InvalidHeader):
            await client.post(
                server.url,
                headers={"x-a": "1\r\nx-injected: yes"},
                body=b"{}",
                timeout_s=5,
                body_limit=10,
            )

    assert server.requests == []


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "http:///nohost", "http://exa mple.com/", "http://h:99999/"]
)
def test_urls_that_are_not_http_with_a_host_are_refused(url: str) -> None:
    with pytest.raises(InvalidUrl):
        parse_target(url)


def test_targets_name_ipv6_and_default_ports_as_the_host_header_expects() -> None:
    assert parse_target("https://[2001:db8::1]:8443/a").head == (
        "POST /a HTTP/1.1\r\nhost: [2001:db8::1]:8443\r\n"
    )
    target = parse_target("https://Example.COM")
    assert (target.host, target.port, target.tls) == ("example.com", 443, True)
    assert target.head == "POST / HTTP/1.1\r\nhost: example.com\r\n"


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/", "http://localhost:9/"])
async def test_private_addresses_are_refused_unless_allowed(url: str) -> None:
    client = HttpClient(limit=1, allow_private=False)
    try:
        with pytest.raises(RefusedAddress):
            await post(client, url)
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def tls_server(ca: trustme.CA) -> AsyncIterator[Server]:
    certificate = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    server = Server(lambda n: OK)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=context)
    server.url = f"https://127.0.0.1:{listener.sockets[0].getsockname()[1]}/"
    try:
        yield server
    finally:
        listener.close()
        server.drop_idle_connections()


async def test_https_targets_are_verified_against_the_trusted_cas() -> None:
    ca = trustme.CA()
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    clients = [
        HttpClient(limit=2, allow_private=True, tls=trusting),
        HttpClient(limit=2, allow_private=True),  # the system's CAs: not this test CA
    ]
    try:
        async with tls_server(ca) as server:
            assert [await post(clients[0], server.url) for _ in range(2)] == [(200, b"ok")] * 2
            with pytest.raises(ConnectFailed) as refused:
                await post(clients[1], server.url)
        assert server.connections == 1  # pooled for both; the refused one never got past TLS
        assert isinstance(refused.value.os_error, ssl.SSLCertVerificationError)
    finally:
        for client in clients:
            await client.close()


async def test_a_name_with_several_addresses_connects_to_the_first_that_answers(
    client: HttpClient,
) -> None:
    async with serve(Server(lambda n: OK)) as server:
        port = int(server.url.split(":")[2].split("/")[0])
        # 127.0.0.2 refuses (the server listens on 127.0.0.1 only): the race goes on to the next.
        sock = await client._race(["127.0.0.2", "127.0.0.1"], port)
        sock.close()

    assert sock.family == socket.AF_INET
    assert server.connections == 1
    assert _interleaved(["::1", "::2", "10.0.0.1", "10.0.0.2"]) == [
        "::1",
        "10.0.0.1",
        "::2",
        "10.0.0.2",
    ]
