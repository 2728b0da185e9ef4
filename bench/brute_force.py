"""`python -m bench.brute_force [-n 1000]`: guessing tokens at line speed, and a valid client.

The real admin API on loopback (uvicorn, REDIS_URL or a local Redis, its own key prefix,
deleted afterwards). One attacker from 127.0.0.2 sends `n` wrong bearer tokens, 20 at a
time; at the same moment a valid client from 127.0.0.3 (distinct loopback source addresses,
so the limit sees two clients) reads `/v1/sources` one request after another. The same
valid client alone, just before, is the baseline. Prints the attacker's status counts and
the valid client's latency with and without the attack; writes
bench/results/brute-force-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import secrets
import socket
import statistics
import time
from collections import Counter
from pathlib import Path

import httpx
import redis

from relay.api import create_app
from relay.serving import serve_asgi
from relay.settings import Settings

TOKEN = "bench-" + secrets.token_hex(8)
VALID_REQUESTS = 400
ATTACK_CONCURRENCY = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(address: str, base_url: str, token: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(
        transport=transport, base_url=base_url, headers={"Authorization": f"Bearer {token}"}
    )


async def _valid_latencies_ms(base_url: str, count: int) -> list[float]:
    async with _client("127.0.0.3", base_url, TOKEN) as valid:
        latencies = []
        for _ in range(count):
            started = time.perf_counter()
            response = await valid.get("/v1/sources")
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
        return latencies


async def _attack(base_url: str, guesses: int) -> tuple[Counter[int], float]:
    statuses: Counter[int] = Counter()
    queue = iter(range(guesses))
    started = time.perf_counter()

    async def worker() -> None:
        async with httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2"), base_url=base_url
        ) as attacker:
            for _ in queue:
                guess = "rk_" + secrets.token_urlsafe(32)
                response = await attacker.get(
                    "/v1/sources", headers={"Authorization": f"Bearer {guess}"}
                )
                statuses[response.status_code] += 1

    await asyncio.gather(*(worker() for _ in range(ATTACK_CONCURRENCY)))
    return statuses, time.perf_counter() - started


def _summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }


async def run(guesses: int) -> dict[str, object]:
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"bench-bf-{secrets.token_hex(4)}:"
    settings = Settings.from_env(
        {"REDIS_URL": redis_url, "RELAY_KEY_PREFIX": prefix, "RELAY_ADMIN_TOKEN": TOKEN}
    )
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    stop = asyncio.Event()
    server = asyncio.create_task(
        serve_asgi(create_app(settings), host="127.0.0.1", port=port, stop=stop)
    )
    try:
        async with httpx.AsyncClient(base_url=base_url) as probe:
            for _ in range(200):
                try:
                    if (await probe.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        await _valid_latencies_ms(base_url, 50)  # warm up
        baseline = await _valid_latencies_ms(base_url, VALID_REQUESTS)
        (statuses, attack_s), during = await asyncio.gather(
            _attack(base_url, guesses), _valid_latencies_ms(base_url, VALID_REQUESTS)
        )
        return {
            "guesses": guesses,
            "attacker_statuses": dict(sorted(statuses.items())),
            "attack_s": round(attack_s, 3),
            "limit_per_minute": settings.auth_failures_per_minute,
            "valid_alone": _summary(baseline),
            "valid_during_attack": _summary(during),
            "p50_ratio": round(statistics.median(during) / statistics.median(baseline), 3),
        }
    finally:
        stop.set()
        await server
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="wrong tokens to send")
    result = asyncio.run(run(parser.parse_args().n))
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / f"brute-force-{datetime.date.today()}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
