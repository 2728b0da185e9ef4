"""The machine's limit: a plain aiohttp client loop posting the relay's own signed bodies.

Reads deliveries (JSON lines `{"url", "secret", "id", "body"}`), posts each once with
`concurrency` requests in flight over one pooled session, signing every request as the relay
does, and prints one JSON line `{"count", "errors", "elapsed_s", "rate"}`. Nothing else: no
Redis, no bookkeeping. `--loop uvloop` runs it on uvloop, as the relay's roles run: the
fastest this client gets. `--client relay` posts through the relay's own HTTP client
(relay/delivery/http_client.py) instead of aiohttp's: the plain loop at its fastest. Run:
`python -m bench.limit FILE [--concurrency 64] [--time-limit 120] [--loop asyncio|uvloop]
[--client aiohttp|relay]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from bench.signing import secret_key, webhook_headers
from relay.delivery.http_client import HttpClient, HttpError
from relay.event_loops import loop_factory

Deliveries = list[tuple[str, bytes, str, bytes]]


def load_deliveries(path: Path) -> list[tuple[str, bytes, str, bytes]]:
    """(url, hmac key, webhook id, body) per line."""
    deliveries = []
    keys: dict[str, bytes] = {}
    with path.open() as lines:
        for line in lines:
            row = json.loads(line)
            key = keys.setdefault(row["secret"], secret_key(row["secret"]))
            deliveries.append((row["url"], key, row["id"], row["body"].encode()))
    return deliveries


Post = Callable[[str, dict[str, str], bytes], Awaitable[int]]  # url, headers, body -> status


async def post_all(
    deliveries: Deliveries, *, concurrency: int, time_limit_s: float
) -> dict[str, float]:
    """Post every delivery once through aiohttp; stop early at `time_limit_s`."""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def post(url: str, headers: dict[str, str], body: bytes) -> int:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                return response.status

        return await _drive(deliveries, post, concurrency=concurrency, time_limit_s=time_limit_s)


async def post_all_relay_client(
    deliveries: Deliveries, *, concurrency: int, time_limit_s: float
) -> dict[str, float]:
    """The same through the relay's HTTP client."""
    client = HttpClient(limit=concurrency, allow_private=True)

    async def post(url: str, headers: dict[str, str], body: bytes) -> int:
        response = await client.post(url, headers=headers, body=body, timeout_s=15, body_limit=4096)
        return response.status

    try:
        return await _drive(deliveries, post, concurrency=concurrency, time_limit_s=time_limit_s)
    finally:
        await client.close()


async def _drive(
    deliveries: Deliveries, post: Post, *, concurrency: int, time_limit_s: float
) -> dict[str, float]:
    """`concurrency` loops taking the next delivery, signing it and posting it with `post`."""
    pending = iter(deliveries)
    count = errors = 0
    deadline = time.monotonic() + time_limit_s

    async def loop() -> None:
        nonlocal count, errors
        for url, key, webhook_id, body in pending:
            if time.monotonic() > deadline:
                return
            try:
                status = await post(url, webhook_headers(key, webhook_id, body), body)
            except (aiohttp.ClientError, HttpError, OSError):  # TimeoutError too
                errors += 1
                continue
            if 200 <= status < 300:
                count += 1
            else:
                errors += 1

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return _result(count, errors, elapsed, time.process_time() - cpu_started)


def _result(count: int, errors: int, elapsed: float, cpu_s: float) -> dict[str, float]:
    return {
        "count": count,
        "errors": errors,
        "elapsed_s": elapsed,
        "rate": count / elapsed,
        "cpu_s": cpu_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.limit")
    parser.add_argument("file", type=Path)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--client", choices=("aiohttp", "relay"), default="aiohttp")
    args = parser.parse_args()
    deliveries = load_deliveries(args.file)
    post = post_all if args.client == "aiohttp" else post_all_relay_client
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        result = runner.run(
            post(deliveries, concurrency=args.concurrency, time_limit_s=args.time_limit)
        )
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
