"""`python -m bench.poller_only [--accounts 1000,3000] [--interval 2] [--window 15]`

The poller alone, as close to its own cost as this machine allows (issue 15): one real
`Poller` in this process over N idle sources in a private Redis, against an upstream that
costs next to nothing (a keep-alive HTTP/1.1 server in a child process answering every call
with an empty MC5 page, `fast_upstream_main`). `bench.scale` measures the whole relay against
the real simulator, whose own request cost (Starlette + uvicorn, ~0.3-0.5 ms a call) shares
the two cores with the poller; this run takes the simulator out, so what it reports is the
poller's: polls/s achieved vs asked, CPU per idle poll (this process's CPU time / polls) and
poll lateness p99 (the poller's own figure). Writes bench/results/<date>-poller-only.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.procs import PYTHON, Child, free_port, wait_for_port
from bench.redis_server import private_redis

RESULTS_DIR = Path(__file__).resolve().parent / "results"
WARM_UP_S = 6.0
_EMPTY_PAGE = b'{"status":0,"hasMoreMessages":false,"incomingMessages":[],"outgoingMessages":[]}'
_REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(_EMPTY_PAGE)).encode()
    + b"\r\n\r\n"
    + _EMPTY_PAGE
)


class _EmptyPages(asyncio.Protocol):
    """Answers each complete request (headers + Content-Length body) with the empty page."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            head, separator, rest = self._buffer.partition(b"\r\n\r\n")
            if not separator:
                return
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if len(rest) < length:
                return
            self._buffer = rest[length:]
            self._transport.write(_REPLY)


def fast_upstream_main(port: int) -> None:
    """The child process: serve empty pages on 127.0.0.1:`port` until killed."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_EmptyPages, "127.0.0.1", port, backlog=4096)
        await server.serve_forever()

    asyncio.run(serve())


async def run_one(
    n: int, interval_s: float, window_s: float, redis_url: str, port: int
) -> dict[str, Any]:
    import redis.asyncio

    from relay.ingest.mc5_client import MC5Client
    from relay.ingest.poller import Poller
    from relay.observability.metrics import POLLS
    from relay.settings import Settings
    from relay.store.keys import Keys
    from relay.store.sources import SourceStore

    prefix = f"poller-only:{uuid.uuid4().hex[:8]}:"
    env = {
        "REDIS_URL": redis_url,
        "RELAY_KEY_PREFIX": prefix,
        "RELAY_POLL_INTERVAL": str(interval_s),
    }
    settings = Settings.from_env(env)
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    sources = SourceStore(redis=client, keys=Keys(prefix))
    now = time.time()
    for start in range(0, n, 50):
        await asyncio.gather(
            *(
                sources.create(
                    username=f"acct{i}@reseller",
                    password="pw",
                    base_url=f"http://127.0.0.1:{port}",
                    poll_interval_s=interval_s,
                    start_from=None,
                    now=now,
                )
                for i in range(start, min(n, start + 50))
            )
        )
    mc5 = MC5Client()
    poller = Poller(settings=settings, redis=client, mc5=mc5)

    def polls() -> float:
        return sum(s.value for m in POLLS.collect() for s in m.samples if s.name.endswith("_total"))

    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        await asyncio.sleep(WARM_UP_S + interval_s)
        polls_before, cpu_before, started = polls(), time.process_time(), time.monotonic()
        await asyncio.sleep(window_s)
        polls_after, cpu_after, ended = polls(), time.process_time(), time.monotonic()
        lateness_p99_s = poller.lateness_p99_s
    finally:
        stop.set()
        await task
        await mc5.aclose()
        await client.aclose()
    done = polls_after - polls_before
    elapsed = ended - started
    return {
        "accounts": n,
        "interval_s": interval_s,
        "window_s": round(elapsed, 1),
        "polls_per_s_asked": round(n / interval_s, 1),
        "polls_per_s_achieved": round(done / elapsed, 1),
        "achieved_pct": round(100 * done / elapsed / (n / interval_s), 1),
        "cpu_ms_per_poll": round(1000 * (cpu_after - cpu_before) / done, 3) if done else None,
        "poller_cpu_pct": round(100 * (cpu_after - cpu_before) / elapsed, 1),
        "lateness_p99_ms": round(1000 * lateness_p99_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.poller_only", description=__doc__)
    parser.add_argument("--accounts", default="1000,3000", help="comma-separated N")
    parser.add_argument("--interval", type=float, default=2.0, help="poll interval (s)")
    parser.add_argument("--window", type=float, default=15.0, help="measured seconds")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the upstream child
    args = parser.parse_args()
    if args.serve:
        fast_upstream_main(args.serve)
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="relay-bench-poller-") as logs:
        log_dir = Path(logs)
        port = free_port()
        upstream = Child(
            "upstream", [PYTHON, "-m", "bench.poller_only", "--serve", str(port)], log_dir=log_dir
        )
        try:
            wait_for_port(port, upstream)
            with private_redis(log_dir) as redis_url:
                for n in (int(x) for x in args.accounts.split(",") if x):
                    print(f"poller only: {n} accounts at {args.interval:g} s ...", flush=True)
                    result = asyncio.run(run_one(n, args.interval, args.window, redis_url, port))
                    print(json.dumps(result), flush=True)
                    results.append(result)
        finally:
            upstream.stop()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M")
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{stamp}-poller-only.json"
    path.write_text(json.dumps({"argv": sys.argv[1:], "results": results}, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
