"""`python -m bench.scale [--quick] [--accounts 1000,3000] [--interval 2] [--code DIR]`

Many MC5 accounts on one poller (issue 15): for each N, a private Redis, the real simulator
holding N idle accounts, and the relay's roles (`relay api`, `poller`, `dispatcher`, `worker`
as subprocesses run from `--code`, so another checkout, e.g. main, can be measured the same
way). Reports:

- API: POST /v1/sources latency over the last tenth of the N creates (8 clients), and
  GET /v1/sources?limit=100 and GET /v1/sources/{id} latency at N;
- Redis memory per source (used_memory delta / N, after a polling window);
- polls/s achieved vs asked (N / interval) over a window, accounts not polled in it, and
  poller CPU per poll (/proc utime + stime);
- poll lateness p50/p99: from the poller's `relay_poll_lateness_seconds` histogram (its
  heartbeat snapshot; absent on code without it), and, for any code, per account from its
  poll count in the window: window / polls - interval;
- one message per account added at once: delivered count, latency p50/p99/max from the
  wall time before the add to the receiver's arrival.

Writes bench/results/<date>-scale[-quick]-<label>.json. A shared 2-core VM is noisy: compare
runs made side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import redis

from bench.procs import PYTHON, ROOT, Child, free_port, wait_for_port
from bench.receiver_client import ReceiverClient
from bench.redis_server import private_redis
from bench.upstream import PASSWORD, Upstream, start_simulator

TOKEN = "bench-admin-token-0123456789"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 accounts, 10 s window")
    parser.add_argument("--accounts", default="1000,3000", help="comma-separated N")
    parser.add_argument("--interval", type=float, default=2.0, help="poll interval (s)")
    parser.add_argument("--window", type=float, default=None, help="measured seconds (20)")
    parser.add_argument("--code", type=Path, default=ROOT, help="relay checkout to run")
    parser.add_argument("--label", default="", help="name of this run in the results")
    parser.add_argument("--concurrency", type=int, default=None, help="RELAY_POLL_CONCURRENCY")
    return parser


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


class Roles:
    """The relay's role processes for one N, from one checkout."""

    def __init__(self, code: Path, env: dict[str, str], log_dir: Path) -> None:
        self._code, self._env, self._log_dir = code, env, log_dir
        self.children: dict[str, Child] = {}

    def start(self, role: str) -> Child:
        argv = [PYTHON, "-m", "workers.cli", role]
        env = self._env | {"PYTHONPATH": str(self._code)}
        child = Child(role, argv, log_dir=self._log_dir, env=env, cwd=self._code)
        self.children[role] = child
        return child

    def stop(self) -> None:
        for child in self.children.values():
            child.stop()


async def _create_sources(
    api: aiohttp.ClientSession, sim_url: str, usernames: list[str], interval_s: float
) -> list[float]:
    """Latencies in creation order (the caller reads the last tenth: the store at ~N).
    Timed through aiohttp: httpx's pool stalled 8 parallel clients for up to 500 ms every
    few hundred requests, which the API did not (same run, aiohttp p99 5 ms)."""
    latencies: list[float] = [0.0] * len(usernames)
    pending = iter(enumerate(usernames))  # shared by the clients, taken in order

    async def client() -> None:
        for index, username in pending:
            body = {
                "username": username,
                "password": PASSWORD,
                "base_url": sim_url,
                "poll_interval": interval_s,
                "start_from": "now",
            }
            started = time.perf_counter()
            async with api.post("/v1/sources", json=body) as response:
                await response.read()
            latencies[index] = time.perf_counter() - started
            response.raise_for_status()

    await asyncio.gather(*(client() for _ in range(8)))
    return latencies


async def _timed_gets(api: aiohttp.ClientSession, paths: list[str]) -> list[float]:
    latencies = []
    for path in paths:
        started = time.perf_counter()
        async with api.get(path) as response:
            await response.read()
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
    return latencies


async def _sim_counts(upstream: Upstream) -> dict[str, int]:
    stats = (await upstream.client.get("/_sim/stats")).json()
    return {k: int(v) for k, v in stats["requests_by_username"].items()}


def _lateness_buckets(client: redis.Redis, prefix: str) -> dict[float, float] | None:
    """The poller's cumulative lateness histogram buckets (le -> count), from its heartbeat."""
    for key in client.scan_iter(match=f"{prefix}hb:poller:*"):
        value = client.get(key)
        if value is None:
            continue
        for family in json.loads(value)["metrics"]:
            if family.get("name") != "relay_poll_lateness_seconds":
                continue
            buckets: dict[float, float] = {}
            for name, labels, value in family["samples"]:
                if name.endswith("_bucket"):
                    buckets[float(labels["le"])] = float(value)
            return buckets
    return None


def _bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    edges = sorted(after)
    counts = [after[e] - before.get(e, 0.0) for e in edges]
    total = counts[-1] if counts else 0.0
    for edge, count in zip(edges, counts, strict=True):
        if total and count >= q * total:
            return edge
    return float("nan")


async def run_one(n: int, args: argparse.Namespace, log_root: Path) -> dict[str, Any]:
    window_s = args.window or (10.0 if args.quick else 20.0)
    log_dir = log_root / f"n{n}"
    log_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"accounts": n, "interval_s": args.interval, "window_s": window_s}
    with private_redis(log_dir) as redis_url:
        sim_child, sim_url = start_simulator(log_dir)
        receiver = ReceiverClient("receiver", log_dir)
        upstream = Upstream(sim_url)
        prefix = f"scale:{uuid.uuid4().hex[:8]}:"
        api_port = free_port()
        env = {
            "REDIS_URL": redis_url,
            "RELAY_KEY_PREFIX": prefix,
            "RELAY_ADMIN_TOKEN": TOKEN,
            "RELAY_ALLOW_PRIVATE_TARGETS": "true",
            "RELAY_POLL_INTERVAL": str(args.interval),
            "RELAY_API_PORT": str(api_port),
            "RELAY_LOG_LEVEL": "WARNING",
        }
        if args.concurrency:
            env["RELAY_POLL_CONCURRENCY"] = str(args.concurrency)
        roles = Roles(args.code, env, log_dir)
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        headers = {"authorization": f"Bearer {TOKEN}"}
        api = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api_port}", headers=headers, timeout=60
        )
        timed = aiohttp.ClientSession(f"http://127.0.0.1:{api_port}", headers=headers)
        try:
            usernames = [f"acct{i}@reseller" for i in range(n)]
            for start in range(0, n, 200):
                await asyncio.gather(
                    *(upstream.add_accounts([u]) for u in usernames[start : start + 200])
                )
            wait_for_port(api_port, roles.start("api"))
            memory_before = int(client.info("memory")["used_memory"])
            creates = await _create_sources(timed, sim_url, usernames, args.interval)
            tail = creates[-max(1, n // 10) :]
            result["create_p50_ms"] = _ms(statistics.median(tail))
            result["create_p99_ms"] = _ms(_percentile(tail, 0.99))
            page = (await api.get("/v1/sources", params={"limit": 100})).json()
            ids = [s["id"] for s in page["data"]]
            lists = await _timed_gets(timed, ["/v1/sources?limit=100"] * 20)
            reads = await _timed_gets(timed, [f"/v1/sources/{i}" for i in ids])
            result["list_p99_ms"] = _ms(_percentile(lists, 0.99))
            result["read_p99_ms"] = _ms(_percentile(reads, 0.99))
            subscription = {"url": receiver.url("/scale"), "description": "bench scale"}
            (await api.post("/v1/subscriptions", json=subscription)).raise_for_status()

            poller = roles.start("poller")
            roles.start("dispatcher")
            roles.start("worker")
            warm_deadline = time.monotonic() + 60 + n / 100
            while time.monotonic() < warm_deadline:
                if len(await _sim_counts(upstream)) >= n:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(args.interval)  # one more round at cadence
            before_counts = await _sim_counts(upstream)
            cpu_before = poller.cpu_seconds() or 0.0
            sim_cpu_before = sim_child.cpu_seconds() or 0.0
            buckets_before = _lateness_buckets(client, prefix)
            started = time.monotonic()
            await asyncio.sleep(window_s)
            elapsed = time.monotonic() - started
            after_counts = await _sim_counts(upstream)
            cpu_after = poller.cpu_seconds() or 0.0
            sim_cpu_after = sim_child.cpu_seconds() or 0.0
            buckets_after = _lateness_buckets(client, prefix)
            polls = {u: after_counts.get(u, 0) - before_counts.get(u, 0) for u in usernames}
            total = sum(polls.values())
            result["polls_per_s_asked"] = round(n / args.interval, 1)
            result["polls_per_s_achieved"] = round(total / elapsed, 1)
            result["achieved_pct"] = round(100 * total / elapsed / (n / args.interval), 1)
            result["accounts_not_polled"] = sum(1 for c in polls.values() if c == 0)
            result["poller_cpu_pct"] = round(100 * (cpu_after - cpu_before) / elapsed, 1)
            result["simulator_cpu_pct"] = round(100 * (sim_cpu_after - sim_cpu_before) / elapsed, 1)
            result["cpu_ms_per_poll"] = (
                round(1000 * (cpu_after - cpu_before) / total, 3) if total else None
            )
            gaps = [elapsed / c - args.interval if c else elapsed for c in polls.values()]
            result["per_account_lateness_p50_ms"] = _ms(max(0.0, _percentile(gaps, 0.5) or 0))
            result["per_account_lateness_p99_ms"] = _ms(max(0.0, _percentile(gaps, 0.99) or 0))
            if buckets_before is not None and buckets_after is not None:
                result["lateness_p50_ms_le"] = _ms(
                    _bucket_quantile(buckets_before, buckets_after, 0.5)
                )
                result["lateness_p99_ms_le"] = _ms(
                    _bucket_quantile(buckets_before, buckets_after, 0.99)
                )
            memory_after = int(client.info("memory")["used_memory"])
            result["redis_bytes_per_source"] = round((memory_after - memory_before) / n)

            await receiver.reset()
            sent: dict[str, float] = {}
            for start in range(0, n, 100):
                batch = usernames[start : start + 100]
                for sent_at, doc_ids in await asyncio.gather(
                    *(upstream.add_now(u, 1) for u in batch)
                ):
                    for doc_id in doc_ids:
                        sent[doc_id] = sent_at
            result["inject_spread_s"] = round(max(sent.values()) - min(sent.values()), 2)
            deadline = time.monotonic() + args.interval + 60
            arrivals: dict[str, float] = {}
            while time.monotonic() < deadline:
                by_path, documents = await receiver.arrivals()
                arrivals = {
                    documents[w]: at
                    for w, at in by_path.get("/scale", {}).items()
                    if w in documents
                }
                if len(arrivals) >= n:
                    break
                await asyncio.sleep(0.5)
            latencies = [arrivals[d] - sent[d] for d in sent if d in arrivals]
            result["delivered"] = len(latencies)
            result["delivery_p50_ms"] = _ms(_percentile(latencies, 0.5))
            result["delivery_p99_ms"] = _ms(_percentile(latencies, 0.99))
            result["delivery_max_ms"] = _ms(max(latencies) if latencies else None)
        finally:
            roles.stop()
            await api.aclose()
            await timed.close()
            await upstream.close()
            await receiver.close()
            sim_child.stop()
            client.close()
    return result


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    sizes = [1000] if args.quick else [int(x) for x in args.accounts.split(",") if x]
    results = []
    with tempfile.TemporaryDirectory(prefix="relay-bench-scale-") as logs:
        for n in sizes:
            print(f"scale: {n} accounts at {args.interval:g} s from {args.code} ...", flush=True)
            row = await run_one(n, args, Path(logs))
            print(json.dumps(row), flush=True)
            results.append(row)
    return results


def main() -> None:
    args = _parser().parse_args()
    results = asyncio.run(main_async(args))
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M")
    name = f"{stamp}-scale{'-quick' if args.quick else ''}{'-' + args.label if args.label else ''}"
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    keys = list(results[0]) if results else []
    print("| " + " | ".join(keys) + " |")
    for row in results:
        print("| " + " | ".join(str(row.get(k)) for k in keys) + " |")


if __name__ == "__main__":
    main()
